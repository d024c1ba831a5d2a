package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
)

// BenchmarkLoadEntityShapes loads order.42 from stores whose entities look
// different (see shapes: four, two or one event type per entity, with or
// without the expectations Model.Decide stamps), on the single server, each
// way: the library's Evolve with WithFilters, a raw ordered consumer
// filtered on the entity, a raw direct batch get over the entity's wildcard,
// one raw direct batch get per literal subject, and, where the events carry
// expectations, a raw read that follows them back from the entity's last
// event (what the library does where that is faster than a read by subject,
// see internal/read/entity_chain.go). Figures for BENCHMARKS.md, not pairs.
func BenchmarkLoadEntityShapes(b *testing.B) {
	raws := []struct {
		name   string
		load   rawLoader
		expect bool // needs the expectations
	}{
		{"raw-consumer", rawConsumerLoad, false},
		{"raw-batchget", rawBatchGetLoad, false},
		{"raw-batchget-literal", rawBatchGetLiteralLoad, false},
		{"raw-chain", rawChainLoad, true},
	}
	for _, sh := range shapes {
		for _, st := range storages {
			for _, size := range the.sizes() {
				b.Run(fmt.Sprintf("%s/storage=%s/events=%s", sh.name, st.name, sizeName(size)), func(b *testing.B) {
					f := the.fixture(b, st.typ, size, sh)
					warm(b, f)
					methods := []named{{"method=lib", func(b *testing.B) { loadLib(b, f) }}}
					for _, r := range raws {
						if r.expect && !sh.expect {
							continue
						}
						methods = append(methods, named{"method=" + r.name, func(b *testing.B) { loadRaw(b, f, r.load) }})
					}
					if os.Getenv(envOrder) == "raw-first" {
						slices.Reverse(methods)
					}
					for _, m := range methods {
						b.Run(m.name, m.fn)
					}
				})
			}
		}
	}
}

// warm loads the entity once each way, untimed, so that no method pays
// for bringing a file store's blocks back into memory: the first load after
// the blocks' caches and per-block subject index expired (they are dropped
// when idle, and a block read only to find nothing in it is dropped at
// once) reads every block of the store from disk, about a second for the
// 1M-event stores; see BENCHMARKS.md.
func warm(b *testing.B, f *fixture) {
	b.Helper()
	ctx := context.Background()
	c := &rawClient{nc: f.be.nc, f: f}
	for _, load := range []rawLoader{rawBatchGetLoad, rawBatchGetLiteralLoad} {
		if err := load(ctx, c, loadEntity, &Order{}); err != nil {
			b.Fatal(err)
		}
	}
}

// rawChainLoad reads the entity backwards by its expectations: the last
// message on its subjects (a direct get, indexed), then, one direct get by
// sequence each, the message each one expected before it, until the one
// that expected 0 (the entity's first). 100 round trips one after the
// other, but no walk of the stream: the server finds each message by its
// sequence. It works only if every event of the entity carries an
// expectation on the whole entity, as Model.Decide stamps them; a hole in
// the chain is an error here.
func rawChainLoad(ctx context.Context, c *rawClient, n int, o *Order) error {
	subject := "$JS.API.DIRECT.GET.ES_" + c.f.name
	body := []byte(`{"last_by_subj":"` + entitySubject(c.f, n) + `.*"}`)
	var msgs []*nats.Msg
	for {
		m, err := c.nc.RequestWithContext(ctx, subject, body)
		if err != nil {
			return err
		}
		if len(m.Data) == 0 && m.Header.Get("Status") != "" {
			return fmt.Errorf("direct get: %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
		}
		msgs = append(msgs, m)
		prev := m.Header.Get("Nats-Expected-Last-Subject-Sequence")
		switch prev {
		case "":
			return errors.New("an event without an expectation: the chain is broken")
		case "0":
			slices.Reverse(msgs)
			for _, m := range msgs {
				if err := applyDirect(o, m); err != nil {
					return err
				}
			}
			return nil
		}
		body = []byte(`{"seq":` + prev + `}`)
	}
}
