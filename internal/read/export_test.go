package read

import (
	"context"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// ChainTail lets the tests of package read_test, which append with package
// rita (package read cannot import it: rita imports read), tell a tail found
// by following expectations from one found by a read.
var ChainTail = chainTail

// ChainEntity reads the entity on filter by its chain of expectations
// alone, whatever that costs (Entity follows it only where it is worth
// it): its messages, or ok false if the chain does not hold.
func ChainEntity(ctx context.Context, src *Source, filter string) (msgs []jsapi.Msg, ok bool, err error) {
	c, err := jsapi.NewCollector(ctx, src.NC, 0)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	if err := c.Request(jsapi.MsgGetSubject(src.Stream), "last", jsapi.LastBody(filter, false)); err != nil {
		return nil, false, err
	}
	if err := c.Request(jsapi.StreamInfoSubject(src.Stream), "count", jsapi.CountBody(filter)); err != nil {
		return nil, false, err
	}
	answers, err := c.Gather("last", "count")
	if err != nil {
		return nil, false, err
	}
	last, err := jsapi.ParseLast(answers["last"])
	if err != nil {
		return nil, false, err
	}
	counts, err := jsapi.ParseCount(answers["count"])
	if err != nil || last == nil {
		return nil, last == nil, err
	}
	d := &direct{src: src, filter: filter, bound: last.Seq, fn: func(m *Msg) error {
		msgs = append(msgs, m.Msg)
		return nil
	}}
	ch := d.startChain(c, last, counts)
	if ch == nil {
		return nil, false, nil
	}
	ok, err = d.finishChain(ch, counts)
	return msgs, ok, err
}
