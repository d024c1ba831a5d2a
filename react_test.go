package rita_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

// Every event is handled once, the events of each entity in order, and no
// two handlers are busy with one entity at the same time, for any
// concurrency.
func TestReactHandlesEachEventOnceInEntityOrder(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency %d", conc), func(t *testing.T) {
			e := newEnv(t)
			s := e.store(t, "orders")
			ents := entities(6)
			for range 5 {
				appendRound(t, s, "placed", ents...)
			}
			j := newJournal()
			j.setFail(func(string, *rita.Event, int) error {
				time.Sleep(time.Millisecond) // let handlers overlap in time
				return nil
			})
			react(t, s, "mailer", j.handler("p1"), rita.WithConcurrency(conc))
			last := appendRound(t, s, "paid", ents...)
			waitCaughtUp(t, s, "mailer")
			j.check(t, true)
			requireSeqs(t, j.seqs(), seqRange(1, last))
		})
	}
}

// A reactor's events, stored before and after it starts, filtered as
// Evolve filters them.
func TestReactFilters(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "filters")
	appendEach(t, s,
		rawEvent("order.1", "placed", "a"),
		rawEvent("customer.1", "joined", "b"),
		rawEvent("order.2", "placed", "c"),
		rawEvent("order.1", "paid", "d"),
	)
	tests := []struct {
		name    string
		filters []string
		want    []uint64
	}{
		{"all", nil, []uint64{1, 2, 3, 4, 5, 6}},
		{"orders", []string{"order"}, []uint64{1, 3, 4, 5}},
		{"placed", []string{"*.*.placed"}, []uint64{1, 3, 5}},
		// Overlapping filters: the consumer reads everything and rita
		// matches.
		{"overlap", []string{"order.1", "*.*.placed"}, []uint64{1, 3, 4, 5}},
	}
	journals := map[string]*journal{}
	for _, tt := range tests {
		j := newJournal()
		journals[tt.name] = j
		var opts []rita.DurableOption
		if tt.filters != nil {
			opts = append(opts, rita.WithFilters(tt.filters...))
		}
		react(t, s, tt.name, j.handler("p"), opts...)
	}
	appendEach(t, s, rawEvent("order.3", "placed", "e"), rawEvent("customer.1", "left", "f"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waitCaughtUp(t, s, tt.name)
			requireSeqs(t, journals[tt.name].seqs(), tt.want)
		})
	}
}

// A reactor started after a sequence (with WithAfterSequence) begins there.
func TestReactAfterSequence(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "after")
	appendN(t, s, "order.1", "placed", 5)
	j := newJournal()
	react(t, s, "late", j.handler("p"), rita.WithAfterSequence(3))
	waitCaughtUp(t, s, "late")
	requireSeqs(t, j.seqs(), []uint64{4, 5})
}

func TestReactInvalid(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "invalid")
	h := newJournal().handler("p")
	tests := []struct {
		name    string
		ctx     context.Context
		durable string
		h       func(context.Context, *rita.Event) error
		opts    []rita.DurableOption
		want    error
	}{
		{"nil context", nilCtx(), "r", h, nil, rita.ErrInvalidArgument},
		{"nil handler", context.Background(), "r", nil, nil, rita.ErrInvalidArgument},
		{"empty name", context.Background(), "", h, nil, rita.ErrInvalidOption},
		{"dotted name", context.Background(), "a.b", h, nil, rita.ErrInvalidOption},
		{"wildcard name", context.Background(), "a*", h, nil, rita.ErrInvalidOption},
		{"WithNoWait", context.Background(), "r", h, []rita.DurableOption{rita.WithNoWait()}, rita.ErrInvalidOption},
		{"WithStopSequence", context.Background(), "r", h, []rita.DurableOption{rita.WithStopSequence(3)}, rita.ErrInvalidOption},
		{"zero concurrency", context.Background(), "r", h, []rita.DurableOption{rita.WithConcurrency(0)}, rita.ErrInvalidOption},
		{"zero attempts", context.Background(), "r", h, []rita.DurableOption{rita.WithMaxAttempts(0)}, rita.ErrInvalidOption},
		{"backoff max below initial", context.Background(), "r", h, []rita.DurableOption{rita.WithBackoff(time.Second, time.Millisecond)}, rita.ErrInvalidOption},
		{"negative backoff", context.Background(), "r", h, []rita.DurableOption{rita.WithBackoff(-time.Second, time.Second)}, rita.ErrInvalidOption},
		{"short ack wait", context.Background(), "r", h, []rita.DurableOption{rita.WithAckWait(time.Millisecond)}, rita.ErrInvalidOption},
		{"bad filter", context.Background(), "r", h, []rita.DurableOption{rita.WithFilters("a.b.c.d")}, rita.ErrSubjectTooManyTokens},
		{"nil option", context.Background(), "r", h, []rita.DurableOption{nil}, rita.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Durable(tt.durable).React(tt.ctx, tt.h, tt.opts...)
			if r != nil {
				t.Fatalf("React returned a reactor")
			}
			requireErrorIs(t, err, tt.want)
		})
	}
	e.requireNoConsumers(t, "invalid")
}

// A plain Watch refuses, at run time, the options of Evolve that the
// compiler lets through (the options of durable consumers do not compile).
func TestWatchRefusesEvolveOptions(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "plain")
	for _, o := range []rita.WatchOption{rita.WithStopSequence(2), rita.WithSnapshot(rita.SnapshotConfig{Version: "1"})} {
		_, err := s.Watch(testCtx(t), &recorder{}, o)
		requireErrorIs(t, err, rita.ErrInvalidOption)
		if !strings.Contains(err.Error(), "does not apply to Watch") {
			t.Fatalf("error %q does not say why", err)
		}
	}
	e.requireNoConsumers(t, "plain")
}

// A failing handler is retried with backoff; events of other entities
// meanwhile go on, and the later events of its entity wait for it.
func TestReactRetriesInEntityOrder(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "retry")
	j := newJournal()
	release := make(chan struct{})
	j.setFail(func(_ string, ev *rita.Event, attempt int) error {
		if ev.Sequence() == 1 && attempt < 3 {
			return errors.New("flaky")
		}
		if ev.Sequence() == 1 {
			<-release // third attempt succeeds once released
		}
		return nil
	})
	// order.1: 1, 3; order.2: 2, 4.
	appendRound(t, s, "placed", "order.1", "order.2")
	appendRound(t, s, "paid", "order.1", "order.2")
	react(t, s, "flaky", j.handler("p"), rita.WithBackoff(time.Millisecond, time.Millisecond), rita.WithMaxAttempts(3))
	eventually(t, waitFor, func() bool { return j.count() == 2 && j.callsOf(1) == 3 }, "handled %v", j.handled())
	requireSeqs(t, j.seqs(), []uint64{2, 4})
	if n := j.callsOf(3); n != 0 {
		t.Fatalf("event 3 was handled before event 1 of its entity (%d calls)", n)
	}
	close(release)
	waitCaughtUp(t, s, "flaky")
	requireSeqs(t, j.seqs(), []uint64{1, 2, 3, 4})
	j.check(t, true)
}

// A panicking handler counts as a failing one.
func TestReactHandlerPanics(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "panics")
	j := newJournal()
	j.setFail(func(_ string, ev *rita.Event, attempt int) error {
		if attempt == 1 {
			panic("boom")
		}
		return nil
	})
	appendN(t, s, "order.1", "placed", 2)
	var rep reports
	react(t, s, "p", j.handler("p"), fast(rita.WithErrHandler(rep.handler))...)
	waitCaughtUp(t, s, "p")
	requireSeqs(t, j.seqs(), []uint64{1, 2})
	if n := j.callsOf(1); n != 2 {
		t.Fatalf("event 1 called %d times, want 2", n)
	}
}
