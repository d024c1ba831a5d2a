package read

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// Reading one entity subject by subject.
//
// An entity's events are stored on a few literal subjects, one per event
// type, and the server's per-block index finds the first message of a
// literal subject in a block without a walk; for a wildcard filter it walks
// the block from where it is. So where an entity's events are sparse (each
// of its subjects once or so per block of the stream, as in a large store
// where many entities interleave), one batch get per subject skips almost
// all of the stream: in the 1M-event file store of the benchmarks, 2 ms
// instead of 105 ms (BENCHMARKS.md). Where they are dense it costs one walk
// per subject instead of one in all: about 1.5 times the wildcard read in
// the 100k-event file store, still faster in memory stores.
//
// The leader's count of the entity's messages per subject names every
// subject and says how many messages to ask for on each: the batch gets go
// out together, and their answers are merged by sequence. The read is
// complete if it holds the entity's last message and as many messages as
// were counted; if not (messages were stored or removed between the
// lookups, a replica behind the leader answered, or a get failed) nothing
// has been delivered and the caller reads with the wildcard filter instead.

const (
	// maxLiteralSubjects is the most subjects read one by one; an entity
	// with more event types is read with its wildcard filter.
	maxLiteralSubjects = 8
	// maxLiteralEvents is the most events read subject by subject: they
	// are merged in memory before they are delivered.
	maxLiteralEvents = 4096
)

func useLiteral(c *jsapi.Counts) bool {
	return len(c.Subjects) > 0 && len(c.Subjects) <= maxLiteralSubjects && c.Total <= maxLiteralEvents
}

// literal reads the messages counted in c, every one up to the bound, and
// delivers them in stream order. It returns false, having delivered
// nothing, if the answers do not add up to a complete read; an error only
// from fn.
func (d *direct) literal(col *jsapi.Collector, c *jsapi.Counts) (bool, error) {
	subjects := make([]string, 0, len(c.Subjects))
	for subj := range c.Subjects {
		subjects = append(subjects, subj)
	}
	slices.Sort(subjects)
	open := map[string]bool{}
	for i, subj := range subjects {
		if n := c.Subjects[subj]; n > 0 {
			tag := "lit" + strconv.Itoa(i)
			if err := col.Request(jsapi.DirectGetSubject(d.src.Stream), tag, jsapi.BatchBody(1, subj, int(n))); err != nil {
				return false, nil
			}
			open[tag] = true
		}
	}
	msgs := make([]jsapi.Msg, 0, c.Total)
	for len(open) > 0 {
		tag, msg, err := col.Next()
		if err != nil {
			return false, nil
		}
		if !open[tag] {
			continue // an answer to an earlier request
		}
		done, _, err := jsapi.DirectStatus(msg)
		if err != nil {
			return false, nil
		}
		if done {
			delete(open, tag)
			continue
		}
		m, err := jsapi.ParseDirect(msg)
		if err != nil {
			return false, nil
		}
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b jsapi.Msg) int { return cmp.Compare(a.Seq, b.Seq) })
	// Keep what is up to the bound; it must end there and be all there was.
	n := len(msgs)
	for n > 0 && msgs[n-1].Seq > d.bound {
		n--
	}
	if n == 0 || msgs[n-1].Seq != d.bound || uint64(n) != c.Total {
		return false, nil
	}
	for i := 1; i < n; i++ {
		if msgs[i].Seq == msgs[i-1].Seq {
			return false, nil
		}
	}
	for i := range msgs[:n] {
		d.msg = Msg{Msg: msgs[i]}
		if err := d.deliver(&d.msg); err != nil {
			return true, err
		}
	}
	return true, nil
}
