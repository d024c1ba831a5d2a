package rita_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

// A poison event is parked after its attempts, with why; the later events of
// its entity are parked behind it, in order; other entities flow. Retried
// once the cause is fixed, the entity's parked events are handled in order
// and the entity's new events are handled again.
func TestReactPoisonEvent(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "poison")
	j := newJournal()
	var broken atomic.Bool
	broken.Store(true)
	j.setFail(func(_ string, ev *rita.Event, _ int) error {
		if broken.Load() && string(ev.Data.([]byte)) == "poison" {
			return errors.New("cannot charge card")
		}
		return nil
	})
	var rep reports
	react(t, s, "billing", j.handler("p"), fast(rita.WithErrHandler(rep.handler), rita.WithConcurrency(2))...)

	// order.1: 1 ok, 3 poison, 5 and 7 behind it; order.2: 2, 4, 6, 8 ok.
	appendEach(t, s,
		rawEvent("order.1", "placed", "ok"),
		rawEvent("order.2", "placed", "ok"),
		rawEvent("order.1", "paid", "poison"),
		rawEvent("order.2", "paid", "ok"),
		rawEvent("order.1", "shipped", "ok"),
		rawEvent("order.2", "shipped", "ok"),
		rawEvent("order.1", "delivered", "ok"),
		rawEvent("order.2", "delivered", "ok"),
	)
	waitCaughtUp(t, s, "billing")
	requireSeqs(t, j.seqs(), []uint64{1, 2, 4, 6, 8})
	if n := j.callsOf(3); n != 3 {
		t.Fatalf("poison event tried %d times, want 3", n)
	}
	for _, seq := range []uint64{5, 7} {
		if n := j.callsOf(seq); n != 0 {
			t.Fatalf("event %d, behind the parked one, was handled %d times", seq, n)
		}
	}

	parked, err := s.Durable("billing").Parked(testCtx(t))
	requireNoError(t, err)
	var got []string
	for _, p := range parked {
		got = append(got, fmt.Sprintf("%d %s %s attempts=%d blockedBy=%d", p.Event.Sequence(), p.Consumer, p.Event.Type, p.Attempts, p.BlockedBy))
	}
	want := []string{
		"3 billing paid attempts=3 blockedBy=0",
		"5 billing shipped attempts=0 blockedBy=3",
		"7 billing delivered attempts=0 blockedBy=3",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	first := parked[0]
	if first.Reason != "cannot charge card" || first.Event.Entity != "order.1" || string(first.Event.Data.([]byte)) != "poison" ||
		first.Event.ID == "" || first.ParkedAt.IsZero() || first.DecodeErr != nil {
		t.Fatalf("parked event = %+v, event %+v", first, first.Event)
	}
	if !strings.Contains(parked[1].Reason, "event 3 of order.1") {
		t.Fatalf("reason of a blocked event = %q", parked[1].Reason)
	}
	// Each parked event went to the error handler.
	eventually(t, waitFor, func() bool { return rep.count() == 3 }, "reports: %v", rep.all())
	if errs := rep.all(); !strings.Contains(errs[0].Error(), "cannot charge card") {
		t.Fatalf("first report: %v", errs[0])
	}
	p, err := s.Durable("billing").Progress(testCtx(t))
	requireNoError(t, err)
	if p.Parked != 3 || !p.CaughtUp() {
		t.Fatalf("progress = %+v", p)
	}

	// New events of the blocked entity are parked too; others flow.
	appendEach(t, s, rawEvent("order.1", "archived", "ok"), rawEvent("order.2", "archived", "ok"))
	waitCaughtUp(t, s, "billing")
	requireSeqs(t, j.seqs(), []uint64{1, 2, 4, 6, 8, 10})

	// Fixed: retry (naming any of the entity's parked events).
	broken.Store(false)
	requireNoError(t, s.Durable("billing").RetryParked(testCtx(t), 5))
	eventually(t, waitFor, func() bool { return j.count() == 10 }, "handled %v", j.handled())
	j.check(t, true)
	var order1 []uint64
	for _, h := range j.handled() {
		if h.entity == "order.1" {
			order1 = append(order1, h.seq)
		}
	}
	requireSeqs(t, order1, []uint64{1, 3, 5, 7, 9})
	eventually(t, waitFor, func() bool {
		l, err := s.Durable("billing").Parked(testCtx(t))
		return err == nil && len(l) == 0
	}, "parked events left")

	// The entity is no longer blocked.
	last := appendRound(t, s, "reopened", "order.1")
	waitCaughtUp(t, s, "billing")
	requireSeqs(t, j.seqs(), seqRange(1, last))
}

// An error wrapping ErrUnprocessable parks the event at once.
func TestReactUnprocessable(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "unproc")
	j := newJournal()
	j.setFail(func(_ string, ev *rita.Event, _ int) error {
		if ev.Sequence() == 1 {
			return fmt.Errorf("no such customer: %w", rita.ErrUnprocessable)
		}
		return nil
	})
	appendEach(t, s, rawEvent("order.1", "placed", "a"), rawEvent("order.2", "placed", "b"))
	react(t, s, "r", j.handler("p"), rita.WithMaxAttempts(10), rita.WithBackoff(time.Hour, time.Hour), rita.WithErrHandler(quiet))
	waitCaughtUp(t, s, "r")
	requireSeqs(t, j.seqs(), []uint64{2})
	p, err := s.Durable("r").GetParked(testCtx(t), 1)
	requireNoError(t, err)
	if p.Attempts != 1 || !strings.Contains(p.Reason, "no such customer") {
		t.Fatalf("parked = %+v", p)
	}
}

// A retried event that fails again is parked again with its attempts added
// up; the entity's later parked events stay parked behind it.
func TestRetryParkedFailsAgain(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "again")
	j := newJournal()
	j.setFail(func(_ string, ev *rita.Event, _ int) error {
		if ev.Sequence() == 1 {
			return errors.New("still broken")
		}
		return nil
	})
	var rep reports
	react(t, s, "r", j.handler("p"), fast(rita.WithErrHandler(rep.handler))...)
	appendN(t, s, "order.1", "placed", 2)
	waitCaughtUp(t, s, "r")
	eventually(t, waitFor, func() bool { return rep.count() == 2 }, "reports %v", rep.all())
	requireNoError(t, s.Durable("r").RetryParked(testCtx(t), 1))
	eventually(t, waitFor, func() bool { return rep.count() == 3 }, "reports %v", rep.all())
	eventually(t, waitFor, func() bool {
		p, err := s.Durable("r").GetParked(testCtx(t), 1)
		return err == nil && p.Attempts == 6
	}, "attempts not added up")
	l, err := s.Durable("r").Parked(testCtx(t))
	requireNoError(t, err)
	if len(l) != 2 || l[1].Event.Sequence() != 2 {
		t.Fatalf("parked %v", l)
	}
	if j.count() != 0 {
		t.Fatalf("handled %v", j.handled())
	}
}

// DeleteParked skips an event: retrying the rest handles them.
func TestDeleteParked(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "skip")
	j := newJournal()
	j.setFail(func(_ string, ev *rita.Event, _ int) error {
		if ev.Sequence() == 1 {
			return rita.ErrUnprocessable
		}
		return nil
	})
	react(t, s, "r", j.handler("p"), fast(rita.WithErrHandler(quiet))...)
	appendN(t, s, "order.1", "placed", 3)
	waitCaughtUp(t, s, "r")
	requireNoError(t, s.Durable("r").DeleteParked(testCtx(t), 1))
	_, err := s.Durable("r").GetParked(testCtx(t), 1)
	requireErrorIs(t, err, rita.ErrParkedNotFound)
	requireNoError(t, s.Durable("r").RetryParked(testCtx(t), 2))
	eventually(t, waitFor, func() bool { return j.count() == 2 }, "handled %v", j.handled())
	requireSeqs(t, j.seqs(), []uint64{2, 3})
	j.check(t, true)
}

// Events that cannot be decoded are parked at once, kept raw, and reported
// with ErrEventDecode; a durable Watch parks what its Evolver refuses.
func TestParkUndecodable(t *testing.T) {
	e := newEnv(t)
	w := e.store(t, "undec")
	reg := newRegistry(t, orderTypes())
	s, err := e.manager(t, rita.WithRegistry(reg)).GetEventStore(testCtx(t), "undec")
	requireNoError(t, err)
	// Raw events the registry does not know.
	appendEach(t, w, rawEvent("order.1", "mystery", "?"))
	var rep reports
	j := newJournal()
	react(t, s, "r", j.handler("p"), rita.WithErrHandler(rep.handler))
	waitCaughtUp(t, s, "r")
	eventually(t, waitFor, func() bool { return rep.count() == 1 }, "reports %v", rep.all())
	requireErrorIs(t, rep.all()[0], rita.ErrEventDecode)
	p, err := s.Durable("r").GetParked(testCtx(t), 1)
	requireNoError(t, err)
	requireErrorIs(t, p.DecodeErr, rita.ErrEventDecode)
	if string(p.Event.Data.([]byte)) != "?" || p.Event.Type != "mystery" || p.Attempts != 0 {
		t.Fatalf("parked %+v event %+v", p, p.Event)
	}
}

func TestParkedNotFound(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "none")
	ctx := testCtx(t)
	l, err := s.Durable("r").Parked(ctx)
	requireNoError(t, err)
	if l == nil || len(l) != 0 {
		t.Fatalf("Parked = %v", l)
	}
	_, err = s.Durable("r").GetParked(ctx, 1)
	requireErrorIs(t, err, rita.ErrParkedNotFound)
	requireErrorIs(t, s.Durable("r").RetryParked(ctx, 1), rita.ErrParkedNotFound)
	requireErrorIs(t, s.Durable("r").DeleteParked(ctx, 1), rita.ErrParkedNotFound)
	_, err = s.Durable("a.b").Parked(ctx)
	requireErrorIs(t, err, rita.ErrInvalidOption)
	_, err = s.Durable("r").Parked(nilCtx())
	requireErrorIs(t, err, rita.ErrInvalidArgument)

	// With the stream there but nothing parked.
	react(t, s, "r", newJournal().handler("p"))
	_, err = s.Durable("r").GetParked(ctx, 1)
	requireErrorIs(t, err, rita.ErrParkedNotFound)
}

// Deleting a store deletes its parked events.
func TestDeleteEventStoreDeletesParked(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "gone")
	j := newJournal()
	j.setFail(func(string, *rita.Event, int) error { return rita.ErrUnprocessable })
	r, err := s.Durable("r").React(testCtx(t), j.handler("p"), rita.WithErrHandler(quiet))
	requireNoError(t, err)
	appendN(t, s, "order.1", "placed", 1)
	waitCaughtUp(t, s, "r")
	requireNoError(t, r.Stop(testCtx(t)))
	if names := e.streamNames(t); !slices.Equal(names, []string{"ES_gone", "ES_gone_PARKED"}) {
		t.Fatalf("streams %v", names)
	}
	requireNoError(t, e.m.DeleteEventStore(testCtx(t), "gone"))
	if names := e.streamNames(t); len(names) != 0 {
		t.Fatalf("streams left: %v", names)
	}
}

// The parked events of two consumers are kept apart.
func TestParkedPerConsumer(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "two")
	fail := func(string, *rita.Event, int) error { return rita.ErrUnprocessable }
	a, b := newJournal(), newJournal()
	a.setFail(fail)
	b.setFail(fail)
	react(t, s, "a", a.handler("p"), rita.WithErrHandler(quiet))
	react(t, s, "b", b.handler("p"), rita.WithErrHandler(quiet))
	appendN(t, s, "order.1", "placed", 1)
	waitCaughtUp(t, s, "a")
	waitCaughtUp(t, s, "b")
	for _, name := range []string{"a", "b"} {
		got, err := s.Durable(name).Parked(context.Background())
		requireNoError(t, err)
		if len(got) != 1 || got[0].Consumer != name {
			t.Fatalf("parked of %s: %v", name, got)
		}
	}
	requireNoError(t, s.Durable("a").DeleteParked(testCtx(t), 1))
	only, err := s.Durable("b").Parked(context.Background())
	requireNoError(t, err)
	if len(only) != 1 || only[0].Consumer != "b" {
		t.Fatalf("parked of b %v", only)
	}
}
