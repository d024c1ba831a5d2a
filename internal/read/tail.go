package read

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// The tail after a snapshot: an entity's events after the snapshot's
// sequence S, up to its last one, L.
//
// Reading them with a filtered read walks the stream from S to L, which is
// what snapshots are meant to avoid. Most events, though, say which event
// came before them: Model.Decide stamps the first event of each entity it
// decides with Expect, the entity's last sequence, and the server checked,
// when it stored the event, that no event of the entity came in between (if
// the expected subject covers all the entity's subjects). Following those
// expectations back from L, with one direct get by sequence per step, finds
// the tail without a walk. The other events of an atomic batch are found by
// their place in it: a batch's messages are stored together, in order.
//
// When the chain breaks (an event without such an expectation, or a get
// that fails) the tail is read with a filtered read after all. Either way,
// the caller checks the snapshot's count of events plus the tail against
// the entity's count.

const (
	// maxChainSteps bounds the round trips spent following expectations.
	maxChainSteps = 32
	// MaxTail is the longest tail read after a snapshot; with a longer one
	// the snapshot is not worth it and the entity is read from the start.
	MaxTail = 10_000
)

var errTailTooLong = errors.New("snapshot tail too long")

// Tail returns the events on pattern (one entity's) after from, up to and
// including last, in order; nil if there are more than MaxTail.
func Tail(ctx context.Context, src *Source, pattern string, from uint64, last *jsapi.Msg) ([]jsapi.Msg, error) {
	if last.Seq == from {
		return []jsapi.Msg{}, nil
	}
	if tail := chainTail(ctx, src, pattern, from, last); tail != nil {
		return tail, nil
	}
	tail := []jsapi.Msg{}
	err := Entity(ctx, src, pattern, from, 0, Known{Last: last}, func(m *Msg) error {
		if len(tail) == MaxTail {
			return errTailTooLong
		}
		tail = append(tail, m.Msg)
		return nil
	})
	if errors.Is(err, errTailTooLong) {
		return nil, nil
	}
	return tail, err
}

// chainTail follows expectations back from last to from; nil if the chain
// breaks.
func chainTail(ctx context.Context, src *Source, pattern string, from uint64, last *jsapi.Msg) []jsapi.Msg {
	if !src.Direct {
		return nil
	}
	c, err := jsapi.NewCollector(ctx, src.NC, 0)
	if err != nil {
		return nil
	}
	defer c.Close()
	tail := []jsapi.Msg{*last} // newest first
	cur := *last
	for step := 0; step < maxChainSteps; step++ {
		if k, _ := strconv.Atoi(cur.Header.Get(jsapi.HdrBatchSeq)); k > 1 && cur.Header.Get(wire.HdrExpectSeq) == "" {
			// The events before cur in its atomic batch, in one request.
			msgs, err := getRange(c, src, "r"+strconv.Itoa(step), cur.Seq-uint64(k-1), k-1)
			if err != nil {
				return nil
			}
			id := cur.Header.Get(jsapi.HdrBatchID)
			for i, m := range msgs {
				if m.Seq != cur.Seq-uint64(k-1)+uint64(i) || m.Header.Get(jsapi.HdrBatchID) != id {
					return nil
				}
			}
			for i := len(msgs) - 1; i >= 0 && cur.Header.Get(wire.HdrExpectSeq) == ""; i-- {
				if m := msgs[i]; wire.Matches(pattern, m.Subject) {
					switch {
					case m.Seq == from:
						slices.Reverse(tail)
						return tail
					case m.Seq < from:
						return nil
					}
					tail = append(tail, m)
					cur = m
				}
			}
			step++
		}
		exp, ok := expectedPrevious(&cur, pattern)
		switch {
		case !ok || exp < from:
			return nil
		case exp == from:
			slices.Reverse(tail)
			return tail
		}
		m, err := getSeq(c, src, "s"+strconv.Itoa(step), exp)
		if err != nil || m == nil || !wire.Matches(pattern, m.Subject) {
			return nil
		}
		tail = append(tail, *m)
		cur = *m
	}
	return nil
}

// expectedPrevious returns the sequence m expected to be the last of its
// entity's events before it, if m carries an expectation that covers every
// subject of the entity (pattern).
func expectedPrevious(m *jsapi.Msg, pattern string) (uint64, bool) {
	v := m.Header.Get(wire.HdrExpectSeq)
	subj := m.Header.Get(wire.HdrExpectSubject)
	if v == "" || subj == "" || !wire.Covers(subj, pattern) {
		return 0, false
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	return seq, err == nil
}

// getSeq gets the message at seq; nil if there is none.
func getSeq(c *jsapi.Collector, src *Source, tag string, seq uint64) (*jsapi.Msg, error) {
	return c.GetOne(jsapi.DirectGetSubject(src.Stream), tag, jsapi.SeqBody(seq))
}

// getRange gets the n messages from seq on.
func getRange(c *jsapi.Collector, src *Source, tag string, seq uint64, n int) ([]jsapi.Msg, error) {
	return c.Get(jsapi.DirectGetSubject(src.Stream), tag, jsapi.RangeBody(seq, n))
}
