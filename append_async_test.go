package rita_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

// TestAppendAsync sends many events from one goroutine with a window of
// them in flight and checks what was stored: every event once, in the
// order sent, with the sequences Wait gave.
func TestAppendAsync(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "async")
	ctx := testCtx(t)

	const n, window = 2000, 256
	var inFlight []*rita.PendingAppend
	var sent []*rita.Event
	var seqs []uint64
	wait := func(p *rita.PendingAppend) {
		seq, err := p.Wait(ctx)
		requireNoError(t, err)
		seqs = append(seqs, seq)
	}
	for i := range n {
		ev := rawEvent(fmt.Sprintf("order.%d", i%50), "placed", fmt.Sprintf("e%d", i))
		if len(inFlight) == window {
			wait(inFlight[0])
			inFlight = inFlight[1:]
		}
		p, err := s.AppendAsync(ctx, ev)
		requireNoError(t, err)
		inFlight = append(inFlight, p)
		sent = append(sent, ev)
	}
	for _, p := range inFlight {
		wait(p)
	}
	requireSeqs(t, seqs, seqRange(1, n))
	for i, ev := range sent {
		if ev.Sequence() != uint64(i+1) || ev.Subject() == "" {
			t.Fatalf("event %d: sequence %d, subject %q after Wait", i, ev.Sequence(), ev.Subject())
		}
	}
	if got := e.msgs(t, "async"); got != n {
		t.Fatalf("%d messages stored, want %d", got, n)
	}
	var all recorder
	_, err := s.Evolve(ctx, &all)
	requireNoError(t, err)
	for i, got := range all.all() {
		if got.ID != sent[i].ID || string(got.Data.([]byte)) != fmt.Sprintf("e%d", i) {
			t.Fatalf("event %d read back as %s %q, sent %s", i, got.ID, got.Data, sent[i].ID)
		}
	}

	// Wait again gives the same.
	p, err := s.AppendAsync(ctx, rawEvent("order.1", "paid", "x"))
	requireNoError(t, err)
	first, err1 := p.Wait(ctx)
	second, err2 := p.Wait(ctx)
	if first != n+1 || second != first || err1 != nil || err2 != nil {
		t.Fatalf("Wait gave %d, %v, then %d, %v; want %d twice", first, err1, second, err2, n+1)
	}
}

// TestAppendAsyncOutcomes checks that a pending append ends as Append
// would: a conflict, a duplicate, an invalid event refused before anything
// is sent, a context that ends.
func TestAppendAsyncOutcomes(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "outcomes")
	ctx := testCtx(t)
	appendN(t, s, "order.1", "placed", 3)

	t.Run("conflict", func(t *testing.T) {
		ev := rawEvent("order.1", "paid", "x")
		ev.Expect = rita.ExpectSequence(1)
		p, err := s.AppendAsync(ctx, ev)
		requireNoError(t, err)
		_, err = p.Wait(ctx)
		requireErrorIs(t, err, rita.ErrSequenceConflict)
		var ce *rita.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v is not a *ConflictError", err)
		}
		if got := e.msgs(t, "outcomes"); got != 3 {
			t.Fatalf("%d messages stored after a conflict, want 3", got)
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		ev := rawEvent("order.2", "placed", "y")
		ev.ID = "dup-1"
		first, err := s.Append(ctx, []*rita.Event{ev})
		requireNoError(t, err)
		again := rawEvent("order.2", "placed", "y")
		again.ID = "dup-1"
		p, err := s.AppendAsync(ctx, again)
		requireNoError(t, err)
		seq, err := p.Wait(ctx)
		requireNoError(t, err)
		if seq != first {
			t.Fatalf("a duplicate waited for gave %d, want the first sequence %d", seq, first)
		}
		if got := e.msgs(t, "outcomes"); got != 4 {
			t.Fatalf("%d messages stored after a duplicate, want 4", got)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		p, err := s.AppendAsync(ctx, &rita.Event{Entity: "not-two-tokens", Data: []byte("x"), Type: "placed"})
		requireErrorIs(t, err, rita.ErrEventEntityInvalid)
		if p != nil {
			t.Fatal("a PendingAppend for an invalid event")
		}
		_, err = s.AppendAsync(ctx, nil)
		requireErrorIs(t, err, rita.ErrEventNil)
		if got := e.msgs(t, "outcomes"); got != 4 {
			t.Fatalf("%d messages stored after invalid events, want 4", got)
		}
	})

	t.Run("context ended", func(t *testing.T) {
		// No acknowledgement can come: the server is gone.
		e := newEnv(t)
		s := e.store(t, "ended")
		e.srv.Stop()
		p, err := s.AppendAsync(ctx, rawEvent("order.3", "placed", "z"))
		requireNoError(t, err)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		start := time.Now()
		_, err = p.Wait(cctx)
		requireErrorIs(t, err, context.Canceled)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Wait with an ended context took %v", took)
		}
		_, err = s.AppendAsync(cctx, rawEvent("order.3", "placed", "z"))
		requireErrorIs(t, err, context.Canceled)
	})
}

// TestAppendAsyncRidesOutRestart sends events while the server is down:
// Wait stores each once when it is back.
func TestAppendAsyncRidesOutRestart(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "restart")
	ctx := testCtx(t)
	appendN(t, s, "order.1", "placed", 1)

	e.srv.Stop()
	var pending []*rita.PendingAppend
	for i := range 5 {
		p, err := s.AppendAsync(ctx, rawEvent("order.2", "placed", fmt.Sprint(i)))
		requireNoError(t, err)
		pending = append(pending, p)
	}
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(500 * time.Millisecond) // the server's outage, not a wait for a condition
		e.srv.Restart()
	}()
	seen := map[uint64]bool{}
	for i, p := range pending {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		seq, err := p.Wait(wctx)
		cancel()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if seen[seq] || seq < 2 || seq > 6 {
			t.Fatalf("event %d stored at %d (seen: %v)", i, seq, seen)
		}
		seen[seq] = true
	}
	<-restarted
	if got := e.msgs(t, "restart"); got != 6 {
		t.Fatalf("%d messages stored, want 6: each event once", got)
	}
}

// TestAppendAsyncTelemetry checks that an AppendAsync has Append's span
// (ended by Wait, its context in the event's traceparent) and metrics.
func TestAppendAsyncTelemetry(t *testing.T) {
	e := newEnv(t)
	tr := newTracing(t)
	mt := newMetrics(t)
	m := e.manager(t, rita.WithTracerProvider(tr.tp), rita.WithMeterProvider(mt.mp))
	s := createStore(t, m, "traced")
	ctx := testCtx(t)

	p, err := s.AppendAsync(ctx, rawEvent("order.1", "placed", "{}"))
	requireNoError(t, err)
	seq, err := p.Wait(ctx)
	requireNoError(t, err)
	span := tr.waitSpans(t, "append traced", 1)[0]
	requireAttr(t, span, "messaging.destination.name", "$ES.traced.order.1.placed")
	msg := e.rawMsg(t, "traced", seq)
	sc := span.SpanContext
	if v, want := msg.Header.Get("traceparent"), fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()); v != want {
		t.Fatalf("traceparent %q, want %q", v, want)
	}
	if got := sum(t, mt.collect(t), "rita.append.events"); got != 1 {
		t.Fatalf("rita.append.events = %d, want 1", got)
	}
}
