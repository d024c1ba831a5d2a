package rita_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// nothing more. Wait until the server has the acknowledgement of every
	// event a handled, or those events would rightly come back to b after
	// the ack wait, and be handled twice. a may have handled events after
	// one it has not (another entity's, waiting for a slot), so the ack
	// floor does not tell: every event up to Delivered went to a, and
	// those not in flight are the ones acknowledged.
	eventually(t, waitFor, func() bool {
		if blocked.Load() < 2 {
			return false
		}
		handled := uint64(j.byProc()["a"])
		p, err := b.store.Durable("r").Progress(testCtx(t))
		return err == nil && p.Delivered-uint64(p.InFlight) == handled
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

// journal records what reactor handlers (of one or several "processes") do
// with events, and the violations of the reactor's promises it sees: two
// handlers busy with one entity at the same time.
type journal struct {
	mu       sync.Mutex
	busy     map[string]string // entity → process handling one of its events
	done     []handling        // successful handlings, in the order they ended
	attempts map[uint64]int    // calls per sequence
	overlaps []string
	// fail, if set, decides the outcome of a call; attempt counts the calls
	// for the event so far, this one included.
	fail func(proc string, e *rita.Event, attempt int) error
}

type handling struct {
	proc   string
	seq    uint64
	entity string
}

func newJournal() *journal {
	return &journal{busy: map[string]string{}, attempts: map[uint64]int{}}
}

func (j *journal) setFail(fail func(proc string, e *rita.Event, attempt int) error) {
	j.mu.Lock()
	j.fail = fail
	j.mu.Unlock()
}

// handler returns the handler of process proc.
func (j *journal) handler(proc string) func(context.Context, *rita.Event) error {
	return func(ctx context.Context, e *rita.Event) error {
		j.mu.Lock()
		if other, ok := j.busy[e.Entity]; ok {
			j.overlaps = append(j.overlaps, fmt.Sprintf("%s got event %d of %s while %s handles one", proc, e.Sequence(), e.Entity, other))
		}
		j.busy[e.Entity] = proc
		j.attempts[e.Sequence()]++
		n := j.attempts[e.Sequence()]
		fail := j.fail
		j.mu.Unlock()
		var err error
		if fail != nil {
			err = fail(proc, e, n)
		}
		j.mu.Lock()
		delete(j.busy, e.Entity)
		if err == nil {
			j.done = append(j.done, handling{proc: proc, seq: e.Sequence(), entity: e.Entity})
		}
		j.mu.Unlock()
		return err
	}
}

func (j *journal) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.done)
}

func (j *journal) handled() []handling {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.done)
}

// seqs returns the sequences handled, sorted.
func (j *journal) seqs() []uint64 {
	var out []uint64
	for _, h := range j.handled() {
		out = append(out, h.seq)
	}
	slices.Sort(out)
	return out
}

func (j *journal) callsOf(seq uint64) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.attempts[seq]
}

// byProc counts the handlings of each process.
func (j *journal) byProc() map[string]int {
	m := map[string]int{}
	for _, h := range j.handled() {
		m[h.proc]++
	}
	return m
}

// check fails t if two handlers overlapped on an entity, or an entity's
// events were handled out of sequence order, or (with once) an event was
// handled more than once.
func (j *journal) check(t *testing.T, once bool) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.overlaps) > 0 {
		t.Fatalf("handlers overlapped on an entity:\n%v", j.overlaps)
	}
	last := map[string]uint64{}
	seen := map[uint64]bool{}
	for _, h := range j.done {
		if once && seen[h.seq] {
			t.Fatalf("event %d handled more than once: %v", h.seq, j.done)
		}
		seen[h.seq] = true
		if h.seq < last[h.entity] || (once && h.seq == last[h.entity]) {
			t.Fatalf("events of %s out of order: %d after %d", h.entity, h.seq, last[h.entity])
		}
		last[h.entity] = h.seq
	}
}

// reports collects what an error handler gets.
type reports struct {
	mu   sync.Mutex
	errs []error
	seqs []uint64
}

func (r *reports) handler(err error, e *rita.Event, _ jetstream.Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
	r.seqs = append(r.seqs, e.Sequence())
}

func (r *reports) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

func (r *reports) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

// quiet is an error handler for tests that check parked events otherwise.
func quiet(error, *rita.Event, jetstream.Msg) {}

// appendRound appends, for each of entities, one raw event of type typ, in
// one Append per event, interleaving the entities; it returns the last
// sequence.
func appendRound(t *testing.T, s *rita.EventStore, typ string, entities ...string) uint64 {
	t.Helper()
	var last uint64
	for _, ent := range entities {
		seq, err := s.Append(testCtx(t), []*rita.Event{rawEvent(ent, typ, ent)})
		if err != nil {
			t.Fatalf("Append(%s): %v", ent, err)
		}
		last = seq
	}
	return last
}

// entities returns n entity names "order.1" ... "order.n".
func entities(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("order.%d", i+1)
	}
	return out
}

// fast are options of a durable consumer that keep retries short in tests.
func fast(opts ...rita.DurableOption) []rita.DurableOption {
	return append([]rita.DurableOption{rita.WithBackoff(5*time.Millisecond, 5*time.Millisecond), rita.WithMaxAttempts(3)}, opts...)
}

// fastProject are the options of Project that keep retries short in tests.
func fastProject(opts ...rita.ProjectOption) []rita.ProjectOption {
	return append([]rita.ProjectOption{rita.WithBackoff(5*time.Millisecond, 5*time.Millisecond), rita.WithMaxAttempts(3)}, opts...)
}

// react starts a reactor and stops it when t ends.
func react(t *testing.T, s *rita.EventStore, name string, h func(context.Context, *rita.Event) error, opts ...rita.DurableOption) *rita.Subscription {
	t.Helper()
	r, err := s.Durable(name).React(testCtx(t), h, opts...)
	if err != nil {
		t.Fatalf("React(%q): %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop(%q): %v", name, err)
		}
	})
	return r
}

// waitCaughtUp fails t unless the reactor or durable watch name catches up.
func waitCaughtUp(t *testing.T, s *rita.EventStore, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Durable(name).WaitCaughtUp(ctx); err != nil {
		p, _ := s.Durable(name).Progress(context.Background())
		t.Fatalf("WaitCaughtUp(%q): %v (progress %+v)", name, err, p)
	}
	p, _ := s.Durable(name).Progress(context.Background())
	t.Logf("caught up: %+v", p)
}

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
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // a failing test does not leave the handler blocked
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
	eventually(t, waitFor, func() bool { return j.count() >= 2 && j.callsOf(1) >= 3 }, "handled %v", j.handled())
	requireSeqs(t, j.seqs(), []uint64{2, 4})
	if n := j.callsOf(1); n != 3 {
		t.Fatalf("event 1 called %d times, want 3", n)
	}
	if n := j.callsOf(3); n != 0 {
		t.Fatalf("event 3 was handled before event 1 of its entity (%d calls)", n)
	}
	free()
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

// Progress shows the lag of a reactor that is behind and reaches zero lag
// once it has handled everything.
func TestProgressReachesZeroLag(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "lag")
	release := make(chan struct{})
	j := newJournal()
	j.setFail(func(string, *rita.Event, int) error { <-release; return nil })
	react(t, s, "slow", j.handler("p"))
	last := appendN(t, s, "order.1", "placed", 20)
	appendN(t, s, "order.2", "placed", 5)
	last += 5

	eventually(t, waitFor, func() bool {
		p, err := s.Durable("slow").Progress(testCtx(t))
		return err == nil && p.Lag() == 25 && p.InFlight > 0
	}, "lag never showed")
	p, err := s.Durable("slow").Progress(testCtx(t))
	requireNoError(t, err)
	if p.CaughtUp() || !p.Active || p.Applied != 0 || p.StoreSequence != last || p.Name != "slow" {
		t.Fatalf("progress while blocked: %+v", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	requireErrorIs(t, s.Durable("slow").WaitCaughtUp(ctx), context.DeadlineExceeded)

	close(release)
	eventually(t, waitFor, func() bool {
		p, err := s.Durable("slow").Progress(testCtx(t))
		return err == nil && p.Lag() == 0
	}, "lag never reached zero")
	p, err = s.Durable("slow").Progress(testCtx(t))
	requireNoError(t, err)
	if !p.CaughtUp() || p.Applied != last || p.Delivered != last || p.Parked != 0 || p.Pending != 0 {
		t.Fatalf("progress at zero lag: %+v", p)
	}
	requireNoError(t, s.Durable("slow").WaitCaughtUp(testCtx(t)))
	requireSeqs(t, j.seqs(), seqRange(1, last))
}

// A filtered consumer is caught up once its last matching event is done,
// whatever follows in the store.
func TestWaitCaughtUpFiltered(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "wfilter")
	appendEach(t, s, rawEvent("order.1", "placed", "a"), rawEvent("customer.1", "joined", "b"))
	j := newJournal()
	react(t, s, "orders", j.handler("p"), rita.WithFilters("order"))
	waitCaughtUp(t, s, "orders")
	requireSeqs(t, j.seqs(), []uint64{1})
}

func TestProgressErrors(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "perr")
	_, err := s.Durable("never").Progress(testCtx(t))
	requireErrorIs(t, err, jetstream.ErrConsumerNotFound)
	requireErrorIs(t, s.Durable("never").WaitCaughtUp(testCtx(t)), jetstream.ErrConsumerNotFound)
	requireErrorIs(t, s.Durable("never").Rebuild(testCtx(t), 0), jetstream.ErrConsumerNotFound)
	requireErrorIs(t, s.Durable("never").Delete(testCtx(t)), jetstream.ErrConsumerNotFound)
	_, err = s.Durable("a.b").Progress(testCtx(t))
	requireErrorIs(t, err, rita.ErrInvalidOption)
	requireErrorIs(t, s.Durable("x").WaitCaughtUp(nilCtx()), rita.ErrInvalidArgument)
	requireErrorIs(t, s.Durable("x").Rebuild(nilCtx(), 0), rita.ErrInvalidArgument)
}

// tally is a read model: how many events of each entity it has seen, and
// the sum of their payload lengths. It is safe for concurrent use.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
}

func newTally() *tally { return &tally{counts: map[string]int{}} }

func (t *tally) Evolve(e *rita.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[e.Entity] += len(e.Data.([]byte))
	return nil
}

func (t *tally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
}

// Rebuilding a durable Watch from zero gives what a fresh replay gives.
func TestRebuildFromZero(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "rebuild")
	ents := entities(3)
	for _, typ := range []string{"placed", "paid", "shipped"} {
		appendRound(t, s, typ, ents...)
	}
	first := newTally()
	w, err := s.Durable("view").Watch(testCtx(t), first)
	requireNoError(t, err)
	requireErrorIs(t, s.Durable("view").Rebuild(testCtx(t), 0), rita.ErrDurableActive)
	requireErrorIs(t, s.Durable("view").Delete(testCtx(t)), rita.ErrDurableActive)
	stopSub(t, w)
	appendRound(t, s, "archived", ents...)

	// The read model is reset (here: a new one) and the watch rebuilt.
	requireNoError(t, s.Durable("view").Rebuild(testCtx(t), 0))
	rebuilt := newTally()
	w, err = s.Durable("view").Watch(testCtx(t), rebuilt)
	requireNoError(t, err)
	defer stopSub(t, w)

	fresh := newTally()
	_, err = s.Evolve(testCtx(t), fresh)
	requireNoError(t, err)
	if got, want := rebuilt.snapshot(), fresh.snapshot(); !maps.Equal(got, want) {
		t.Fatalf("rebuilt %v, fresh replay %v", got, want)
	}
	// The first model did not see the events stored while it was stopped.
	if maps.Equal(first.snapshot(), fresh.snapshot()) {
		t.Fatalf("the first model saw events it should not have: %v", first.snapshot())
	}
}

// Rebuild from a sequence delivers the events after it again, also for a
// consumer that started later (it is made again).
func TestRebuildFromSequence(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "rebuildseq")
	appendN(t, s, "order.1", "placed", 10)
	tests := []struct {
		name       string
		startAfter uint64
		rebuild    uint64
		want       []uint64
	}{
		{"later", 0, 6, []uint64{7, 8, 9, 10}},
		{"earlier", 8, 2, seqRange(3, 10)},
		{"zero", 5, 0, seqRange(1, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.name
			j := newJournal()
			r, err := s.Durable(name).React(testCtx(t), j.handler("first"), rita.WithAfterSequence(tt.startAfter))
			requireNoError(t, err)
			waitCaughtUp(t, s, name)
			stopReactor(t, r)
			requireNoError(t, s.Durable(name).Rebuild(testCtx(t), tt.rebuild))
			again := newJournal()
			react(t, s, name, again.handler("second"))
			waitCaughtUp(t, s, name)
			requireSeqs(t, again.seqs(), tt.want)
		})
	}
}

// Rebuild and DeleteDurable remove the consumer's parked events.
func TestRebuildRemovesParked(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "rbparked")
	appendN(t, s, "order.1", "placed", 2)
	j := newJournal()
	j.setFail(func(string, *rita.Event, int) error { return rita.ErrUnprocessable })
	var rep reports
	r, err := s.Durable("r").React(testCtx(t), j.handler("p"), rita.WithErrHandler(rep.handler))
	requireNoError(t, err)
	waitCaughtUp(t, s, "r")
	stopReactor(t, r)
	requireNoError(t, s.Durable("r").Rebuild(testCtx(t), 0))
	l, err := s.Durable("r").Parked(testCtx(t))
	requireNoError(t, err)
	if len(l) != 0 {
		t.Fatalf("parked after Rebuild: %v", l)
	}
	// A run after the rebuild meets them again.
	r, err = s.Durable("r").React(testCtx(t), j.handler("p"), rita.WithErrHandler(rep.handler))
	requireNoError(t, err)
	waitCaughtUp(t, s, "r")
	stopReactor(t, r)
	requireNoError(t, s.Durable("r").Delete(testCtx(t)))
	l, err = s.Durable("r").Parked(testCtx(t))
	requireNoError(t, err)
	if len(l) != 0 {
		t.Fatalf("parked after DeleteDurable: %v", l)
	}
	e.requireNoConsumers(t, "rbparked")
	if n := e.consumers(t, "rbparked_PARKED"); n != 0 {
		// The parked stream is ES_<store>_PARKED, which consumers() names ES_+name.
		t.Fatalf("consumers on the parked stream: %d", n)
	}
	// The next run starts afresh.
	again := newJournal()
	react(t, s, "r", again.handler("p"))
	waitCaughtUp(t, s, "r")
	requireSeqs(t, again.seqs(), []uint64{1, 2})
}

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
