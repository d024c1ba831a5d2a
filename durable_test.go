package rita_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// process is one "process" running a reactor: a connection of its own, a
// Manager on it, and the store opened through it.
type process struct {
	name  string
	nc    *nats.Conn
	store *rita.EventStore
}

func (e *env) process(t *testing.T, name, store string) *process {
	t.Helper()
	nc := e.srv.Connect(t, nats.Name(name))
	m, err := rita.New(nc)
	requireNoError(t, err)
	s, err := m.GetEventStore(testCtx(t), store)
	requireNoError(t, err)
	return &process{name: name, nc: nc, store: s}
}

// stopReactor stops r within a bound.
func stopReactor(t *testing.T, r *rita.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// A reactor stopped in the middle of its work and started again (a restart)
// resumes after the last event it handled: no event is lost or handled
// twice.
func TestReactRestartMidway(t *testing.T) {
	leakCheckAfterServer(t)
	e := newEnv(t)
	s := e.store(t, "restart")
	ents := entities(5)
	for range 20 {
		appendRound(t, s, "step", ents...)
	}
	const total = 100
	j := newJournal()
	stopAt := make(chan struct{})
	var once sync.Once
	j.setFail(func(_ string, ev *rita.Event, _ int) error {
		if j.count() >= 30 {
			once.Do(func() { close(stopAt) })
		}
		return nil
	})
	r, err := s.Durable("proj").React(testCtx(t), j.handler("first"), rita.WithConcurrency(3))
	requireNoError(t, err)
	<-stopAt
	stopReactor(t, r)
	n := j.count()
	if n >= total {
		t.Fatalf("the first run handled all %d events before it was stopped", n)
	}
	p, err := s.Durable("proj").Progress(testCtx(t))
	requireNoError(t, err)
	// The events it had not handled were given back: still in flight.
	if p.Active || p.Lag() != uint64(total-n) || p.CaughtUp() {
		t.Fatalf("after Stop with %d handled: progress %+v", n, p)
	}

	r2 := react(t, s, "proj", j.handler("second"), rita.WithConcurrency(3))
	_ = r2
	waitCaughtUp(t, s, "proj")
	j.check(t, true)
	requireSeqs(t, j.seqs(), seqRange(1, total))
	if by := j.byProc(); by["first"] != n || by["second"] != total-n {
		t.Fatalf("handled by process: %v, first stopped at %d", by, n)
	}
}

// leakCheckAfterServer checks, once t and all its cleanups (which stop the
// server and close the connections) are done, that no goroutine started
// after the call is left. Call it before the server is started.
func leakCheckAfterServer(t *testing.T) {
	t.Helper()
	check := leakCheck(t)
	t.Cleanup(func() {
		if !t.Failed() {
			check()
		}
	})
}

// A durable Watch resumes where it stopped, applying each event once, also
// while events keep being appended.
func TestDurableWatchRestart(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "dwatch")
	appendN(t, s, "order.1", "placed", 10)
	var r recorder
	view := s.Durable("view")
	if view.Name() != "view" {
		t.Fatalf("Durable(%q).Name() = %q", "view", view.Name())
	}
	w, err := view.Watch(testCtx(t), &r)
	requireNoError(t, err)
	requireSeqs(t, r.seqs(), seqRange(1, 10)) // caught up when Watch returns
	appendN(t, s, "order.2", "placed", 5)
	requireNoError(t, view.WaitCaughtUp(testCtx(t)))
	stopSub(t, w)
	stopSub(t, w) // twice is fine
	select {
	case <-w.Closed():
	default:
		t.Fatal("Closed not closed after Stop")
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err after Stop = %v, want nil", err)
	}

	appendN(t, s, "order.1", "shipped", 5) // while stopped
	w, err = view.Watch(testCtx(t), &r)
	requireNoError(t, err)
	requireSeqs(t, r.seqs(), seqRange(1, 20))
	p, err := view.Progress(testCtx(t))
	requireNoError(t, err)
	if !p.CaughtUp() || p.Applied != 20 || p.StoreSequence != 20 || !p.Active || p.Name != "view" {
		t.Fatalf("progress %+v", p)
	}
	stopSub(t, w)
}

// A durable Watch parks an event its Evolver keeps refusing, after its
// attempts, and the error handler gets it.
func TestDurableWatchPoison(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "dpoison")
	appendEach(t, s, rawEvent("order.1", "placed", "a"), rawEvent("order.2", "placed", "b"), rawEvent("order.1", "paid", "c"))
	r := recorder{fail: func(ev *rita.Event, _ int) error {
		if ev.Sequence() == 1 {
			return errors.New("bad row")
		}
		return nil
	}}
	var rep reports
	w, err := s.Durable("view").Watch(testCtx(t), &r, fast(rita.WithErrHandler(rep.handler))...)
	requireNoError(t, err)
	defer stopSub(t, w)
	requireSeqs(t, r.seqs(), []uint64{2})
	eventually(t, waitFor, func() bool { return rep.count() == 2 }, "reports %v", rep.all())
	rep.mu.Lock()
	if rep.seqs[0] != 1 || rep.seqs[1] != 3 {
		t.Fatalf("reported events %v", rep.seqs)
	}
	rep.mu.Unlock()
	parked, err := s.Durable("view").Parked(testCtx(t))
	requireNoError(t, err)
	if len(parked) != 2 || parked[0].Reason != "bad row" || parked[0].Attempts != 3 {
		t.Fatalf("parked %+v", parked)
	}
}

// A durable Watch with WithNoWait returns before it has caught up.
func TestDurableWatchNoWait(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "dnowait")
	appendN(t, s, "order.1", "placed", 3)
	release := make(chan struct{})
	r := recorder{fail: func(*rita.Event, int) error { <-release; return nil }}
	w, err := s.Durable("view").Watch(testCtx(t), &r, rita.WithNoWait())
	requireNoError(t, err)
	if n := r.count(); n != 0 {
		t.Fatalf("applied %d before release", n)
	}
	close(release)
	requireNoError(t, s.Durable("view").WaitCaughtUp(testCtx(t)))
	requireSeqs(t, r.seqs(), seqRange(1, 3))
	stopSub(t, w)
}

// Two processes run the same reactor: each event is handled once, the
// events of each entity in order, never by both at the same time; when the
// process doing the work stops, the other takes over.
func TestReactTwoProcesses(t *testing.T) {
	e := newEnv(t)
	e.store(t, "shared")
	a := e.process(t, "a", "shared")
	b := e.process(t, "b", "shared")
	j := newJournal()
	j.setFail(func(string, *rita.Event, int) error {
		time.Sleep(200 * time.Microsecond)
		return nil
	})
	ents := entities(8)
	opts := []rita.DurableOption{rita.WithConcurrency(3)}
	ra, err := a.store.Durable("shared-reactor").React(testCtx(t), j.handler("a"), opts...)
	requireNoError(t, err)
	rb, err := b.store.Durable("shared-reactor").React(testCtx(t), j.handler("b"), opts...)
	requireNoError(t, err)
	running := map[string]*rita.Subscription{"a": ra, "b": rb}
	defer func() {
		for _, r := range running {
			stopReactor(t, r)
		}
	}()

	// Append from the side while the reactors run.
	appended := make(chan uint64, 1)
	go func() {
		var last uint64
		for i := range 30 {
			for _, ent := range ents {
				seq, err := a.store.Append(context.Background(), []*rita.Event{rawEvent(ent, "step", fmt.Sprint(i))})
				if err != nil {
					t.Errorf("Append: %v", err)
					appended <- 0
					return
				}
				last = seq
			}
		}
		appended <- last
	}()

	eventually(t, waitFor, func() bool { return j.count() >= 60 }, "handled %d", j.count())
	// Stop the process doing the work (the pinned one); the other takes over.
	by := j.byProc()
	active, standby := "a", "b"
	if by["b"] > by["a"] {
		active, standby = "b", "a"
	}
	stopReactor(t, running[active])
	delete(running, active)
	handledBefore := j.byProc()[active]

	last := <-appended
	if last == 0 {
		t.FailNow()
	}
	waitCaughtUp(t, a.store, "shared-reactor")
	j.check(t, true)
	requireSeqs(t, j.seqs(), seqRange(1, last))
	by = j.byProc()
	if by[active] != handledBefore || by[standby] == 0 {
		t.Fatalf("handled by process %v; %s stopped after %d", by, active, handledBefore)
	}
	t.Logf("handled by process: %v of %d", by, last)
}

// A process that vanishes (its connection closes, nothing stopped) while
// it holds events hands them over after the ack wait: the other process
// handles every event, and the events of each entity in order.
func TestReactProcessVanishes(t *testing.T) {
	e := newEnv(t)
	e.store(t, "crash")
	a := e.process(t, "a", "crash")
	b := e.process(t, "b", "crash")
	ents := entities(4)
	for range 5 {
		appendRound(t, a.store, "step", ents...)
	}
	j := newJournal()
	holding := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	var blocked atomic.Int32
	j.setFail(func(proc string, ev *rita.Event, _ int) error {
		if proc == "a" && ev.Sequence() >= 6 {
			once.Do(func() { close(holding) })
			blocked.Add(1)
			<-release
			return errors.New("process gone")
		}
		return nil
	})
	opts := []rita.DurableOption{rita.WithConcurrency(2), rita.WithAckWait(2 * time.Second), rita.WithMaxAttempts(1000), rita.WithBackoff(time.Hour, time.Hour)}
	var rep reports // a's errors, once its connection is gone
	ra, err := a.store.Durable("r").React(testCtx(t), j.handler("a"), append(opts, rita.WithErrHandler(rep.handler))...)
	requireNoError(t, err)
	<-holding
	// b starts while a holds events, so it waits as a standby.
	rb := react(t, b.store, "r", j.handler("b"), opts...)
	_ = rb
	// Once both of a's handler slots hold a blocked event, a handles
	// nothing more. Wait until the server has the acknowledgements of what
	// it handled, or those events would rightly come back to b after the
	// ack wait, and be handled twice.
	eventually(t, waitFor, func() bool {
		if blocked.Load() < 2 {
			return false
		}
		handled := uint64(0)
		for _, seq := range j.seqs() {
			if seq == handled+1 {
				handled = seq
			}
		}
		p, err := b.store.Durable("r").Progress(testCtx(t))
		return err == nil && p.Applied >= handled
	}, "a's acknowledgements stored")
	a.nc.Close() // the process vanishes
	close(release)
	stopReactor(t, ra) // returns at once: nothing can be done without a connection
	// New events of the same entities reach b before a's events come back:
	// b must still handle each entity's events in order.
	last := appendRound(t, b.store, "after", ents...)

	waitCaughtUp(t, b.store, "r")
	j.check(t, true)
	requireSeqs(t, j.seqs(), seqRange(1, last))
	if by := j.byProc(); by["a"] == 0 || by["b"] == 0 {
		t.Fatalf("handled by process %v", by)
	}
}

// Stop waits for the handlers that run, within its context; if the context
// ends first, the handlers' context is cancelled and Stop says so.
func TestReactStopContext(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "stopctx")
	appendN(t, s, "order.1", "placed", 1)
	started := make(chan struct{})
	cancelled := make(chan struct{})
	r, err := s.Durable("r").React(testCtx(t), func(ctx context.Context, _ *rita.Event) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	})
	requireNoError(t, err)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = r.Stop(ctx)
	requireErrorIs(t, err, context.DeadlineExceeded)
	select {
	case <-cancelled:
	case <-time.After(waitFor):
		t.Fatal("the handler's context was not cancelled")
	}
	// Stop again completes: the event was given back, not handled.
	requireNoError(t, r.Stop(testCtx(t)))
	p, err := s.Durable("r").Progress(testCtx(t))
	requireNoError(t, err)
	if p.Applied != 0 || p.Active || p.Parked != 0 {
		t.Fatalf("progress %+v", p)
	}
}

// Stop may be called from the error handler.
func TestReactStopFromErrHandler(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "stopeh")
	appendN(t, s, "order.1", "placed", 2)
	var r *rita.Subscription
	ready := make(chan struct{})
	stopped := make(chan error, 1)
	r, err := s.Durable("r").React(testCtx(t),
		func(context.Context, *rita.Event) error { return rita.ErrUnprocessable },
		rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) {
			<-ready
			err := r.Stop(context.Background())
			select {
			case stopped <- err:
			default:
			}
		}))
	requireNoError(t, err)
	close(ready)
	select {
	case err := <-stopped:
		requireNoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Stop from the error handler did not return")
	}
}

// A reactor's handler learns from its context which attempt it makes: the
// tries of this process, then, after a process vanished holding the event,
// the deliveries before.
func TestReactAttempt(t *testing.T) {
	if rita.Attempt(context.Background()) != 0 || rita.Attempt(nilCtx()) != 0 {
		t.Fatal("Attempt of a context not from rita is not 0")
	}
	e := newEnv(t)
	s := e.store(t, "attempt")
	appendN(t, s, "order.1", "placed", 2)
	var mu sync.Mutex
	seen := map[uint64][]int{}
	r := react(t, s, "r", func(ctx context.Context, ev *rita.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen[ev.Sequence()] = append(seen[ev.Sequence()], rita.Attempt(ctx))
		if ev.Sequence() == 1 && len(seen[1]) < 3 {
			return errors.New("not yet")
		}
		return nil
	}, rita.WithBackoff(time.Millisecond, time.Millisecond))
	_ = r
	waitCaughtUp(t, s, "r")
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "map[1:[1 2 3] 2:[1]]" {
		t.Fatalf("attempts seen %v, want event 1 tried 1, 2, 3 and event 2 once", seen)
	}
}

func TestReactAttemptAfterRedelivery(t *testing.T) {
	e := newEnv(t)
	e.store(t, "redeliver")
	a := e.process(t, "a", "redeliver")
	b := e.process(t, "b", "redeliver")
	appendN(t, a.store, "order.1", "placed", 1)
	holding := make(chan struct{})
	release := make(chan struct{})
	opts := []rita.DurableOption{rita.WithAckWait(2 * time.Second), rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) {})}
	ra, err := a.store.Durable("r").React(testCtx(t), func(ctx context.Context, _ *rita.Event) error {
		if rita.Attempt(ctx) != 1 {
			return fmt.Errorf("a: attempt %d", rita.Attempt(ctx))
		}
		close(holding)
		<-release
		return errors.New("gone")
	}, opts...)
	requireNoError(t, err)
	<-holding
	got := make(chan int, 1)
	react(t, b.store, "r", func(ctx context.Context, _ *rita.Event) error {
		got <- rita.Attempt(ctx)
		return nil
	}, opts...)
	a.nc.Close() // the process vanishes holding the event
	close(release)
	stopReactor(t, ra)
	select {
	case n := <-got:
		if n != 2 {
			t.Fatalf("the redelivered event's attempt is %d, want 2", n)
		}
	case <-time.After(waitFor):
		t.Fatal("the event was not redelivered to b")
	}
}
