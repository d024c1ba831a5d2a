package rita_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// Append started while the server is gone retries until it is back, and
// stores the event once.
func TestAppendRidesOutRestart(t *testing.T) {
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t, ritatest.Reconnecting())
	var retries retryCounter
	m, err := rita.New(nc, rita.WithLogger(slog.New(&retries)))
	requireNoError(t, err)
	s := createStore(t, m, "restart")
	appendN(t, s, "order.1", "placed", 1)

	srv.Stop()
	type result struct {
		seq uint64
		err error
	}
	done := make(chan result, 1)
	event := rawEvent("order.1", "shipped", "x")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		seq, err := s.Append(ctx, []*rita.Event{event})
		done <- result{seq, err}
	}()
	eventually(t, waitFor, func() bool { return retries.n.Load() >= 1 }, "Append did not retry while the server was gone")
	srv.Restart()
	r := <-done
	requireNoError(t, r.err)
	if r.seq != 2 {
		t.Fatalf("Append returned %d, want 2", r.seq)
	}
	t.Logf("Append retried %d times: %v", retries.n.Load(), &retries)
	var rec recorder
	_, err = s.Evolve(testCtx(t), &rec)
	requireNoError(t, err)
	requireSeqs(t, rec.seqs(), seqRange(1, 2))
}

// An event appended again with its ID, and the Expect it had, gets its first
// sequence back, although the Expect no longer holds: a server outside a
// cluster checks the Expect before the ID, so Append looks the ID up.
func TestAppendAgainWithExpect(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "again")
	first := &rita.Event{ID: "mine", Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)}
	seq, err := s.Append(testCtx(t), []*rita.Event{first})
	requireNoError(t, err)
	appendEach(t, s, rawEvent("order.1", "shipped", "y"))

	again := &rita.Event{ID: "mine", Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)}
	got, err := s.Append(testCtx(t), []*rita.Event{again})
	requireNoError(t, err)
	if got != seq || again.Sequence() != seq {
		t.Fatalf("appended again at %d (Sequence %d), want the first sequence %d", got, again.Sequence(), seq)
	}
	if n := e.msgs(t, "again"); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
	// Another ID with a stale Expect is a conflict.
	_, err = s.Append(testCtx(t), []*rita.Event{{ID: "other", Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
}

// Append to a store deleted meanwhile fails at once rather than retrying
// the silence.
func TestAppendToDeletedStore(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "gone")
	requireNoError(t, e.m.DeleteEventStore(testCtx(t), "gone"))
	start := time.Now()
	_, err := s.Append(testCtx(t), []*rita.Event{rawEvent("order.1", "placed", "x")})
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Append to a deleted store took %v", took)
	}
	_, err = s.Evolve(testCtx(t), &recorder{})
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = s.Watch(testCtx(t), &recorder{})
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch on a deleted store waited for its context: %v", err)
	}
}
