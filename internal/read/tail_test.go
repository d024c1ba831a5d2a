package read_test

import (
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// The tail after a snapshot is found by following the expectations events
// carry, through atomic batches too; where the chain breaks, there is none,
// and Tail reads it instead. The events are appended by rita, so that the
// chain is followed over the headers Append really writes.
func TestSnapshotChainTail(t *testing.T) {
	ctx := t.Context()
	nc := startChainServer(t)
	cs := newChainStore(t, nc, "chain", jetstream.FileStorage)
	s, src := cs.s, cs.src
	pattern := wire.EntityPattern("chain", "order.1")

	ev := func(entity string, expect *rita.Expect) *rita.Event {
		return &rita.Event{Entity: entity, Type: "line", Data: []byte("x"), Expect: expect}
	}
	var seqs []uint64 // of order.1
	add := func(events ...*rita.Event) {
		t.Helper()
		if _, err := s.Append(ctx, events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Entity == "order.1" {
				seqs = append(seqs, e.Sequence())
			}
		}
	}
	lastOf := func() uint64 {
		if len(seqs) == 0 {
			return 0
		}
		return seqs[len(seqs)-1]
	}
	add(ev("order.1", rita.ExpectSequence(0)))
	add(ev("order.2", nil), ev("order.1", rita.ExpectSequence(lastOf())))
	add(ev("order.1", rita.ExpectSequence(lastOf())), ev("order.2", nil), ev("order.1", nil), ev("order.1", nil))
	add(ev("order.1", rita.ExpectSequenceSubject(lastOf(), "order")))   // a pattern covering the entity
	add(ev("order.1", rita.ExpectSequenceSubject(lastOf(), "order.1"))) // the entity itself
	chained := len(seqs)
	add(ev("order.1", nil)) // breaks the chain
	add(ev("order.1", rita.ExpectSequence(lastOf())))

	last := func(upTo int) *jsapi.Msg {
		t.Helper()
		c, err := jsapi.NewCollector(ctx, nc, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		m, err := c.GetOne(jsapi.DirectGetSubject(src.Stream), "x", jsapi.SeqBody(seqs[upTo]))
		if err != nil || m == nil {
			t.Fatalf("get %d: %v, %v", seqs[upTo], m, err)
		}
		return m
	}
	seqsOf := func(msgs []jsapi.Msg) []uint64 {
		var got []uint64
		for _, m := range msgs {
			got = append(got, m.Seq)
		}
		return got
	}
	for from := range chained - 1 {
		for to := from + 1; to < chained; to++ {
			want := seqs[from+1 : to+1]
			tail := read.ChainTail(ctx, src, pattern, seqs[from], last(to))
			if got := seqsOf(tail); tail == nil || !slices.Equal(got, want) {
				t.Fatalf("chain after %d up to %d: %v, want %v", seqs[from], seqs[to], got, want)
			}
			tail, err := read.Tail(ctx, src, pattern, seqs[from], last(to))
			if got := seqsOf(tail); err != nil || !slices.Equal(got, want) {
				t.Fatalf("Tail after %d up to %d: %v, %v; want %v", seqs[from], seqs[to], got, err, want)
			}
		}
	}
	// Across the event without an expectation there is no chain, but the
	// tail is still found, by a read.
	if tail := read.ChainTail(ctx, src, pattern, seqs[0], last(len(seqs)-1)); tail != nil {
		t.Fatalf("chain across a broken link: %v", seqsOf(tail))
	}
	tail, err := read.Tail(ctx, src, pattern, seqs[0], last(len(seqs)-1))
	if err != nil || len(tail) != len(seqs)-1 || !slices.Equal(seqsOf(tail), seqs[1:]) {
		t.Fatalf("snapshot tail: %d events %v, %v; want %d: %v", len(tail), seqsOf(tail), err, len(seqs)-1, seqs[1:])
	}
	// An expectation on the event's own subject only does not say what came
	// before on the entity's other subjects.
	add(&rita.Event{Entity: "order.1", Type: "paid", Data: []byte("x"), Expect: rita.ExpectSequenceSubject(0, "order.1.paid")})
	if tail := read.ChainTail(ctx, src, pattern, seqs[len(seqs)-2], last(len(seqs)-1)); tail != nil {
		t.Fatalf("chain through a narrower expectation: %v", seqsOf(tail))
	}
	// Not ported: the expectation above (0) is before the start anyway. Here
	// the narrower one names the start itself, and the chain must still not
	// take it, for it would skip the event in between.
	paid := lastOf()
	add(ev("order.1", nil))
	add(&rita.Event{Entity: "order.1", Type: "paid", Data: []byte("x"), Expect: rita.ExpectSequenceSubject(paid, "order.1.paid")})
	if tail := read.ChainTail(ctx, src, pattern, paid, last(len(seqs)-1)); tail != nil {
		t.Fatalf("chain through a narrower expectation of the start: %v", seqsOf(tail))
	}
	if tail, err := read.Tail(ctx, src, pattern, paid, last(len(seqs)-1)); err != nil || !slices.Equal(seqsOf(tail), seqs[len(seqs)-2:]) {
		t.Fatalf("Tail after %d: %v, %v; want %v", paid, seqsOf(tail), err, seqs[len(seqs)-2:])
	}
}
