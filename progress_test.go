package rita_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

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
