package rita_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// Partitioned durable consumers (WithPartitions): several processes share
// one reactor's work, each entity handled by one of them at a time and in
// order. Each "process" is a connection and a Manager of its own.

// appendSpread appends n raw events over the entities, round-robin, in
// atomic batches; it returns the last sequence.
func appendSpread(t *testing.T, s *rita.EventStore, typ string, ents []string, n int) uint64 {
	t.Helper()
	var last uint64
	for done := 0; done < n; {
		k := min(n-done, rita.MaxBatchSize)
		batch := make([]*rita.Event, k)
		for i := range batch {
			batch[i] = rawEvent(ents[(done+i)%len(ents)], typ, fmt.Sprint(done+i))
		}
		seq, err := s.Append(testCtx(t), batch)
		requireNoError(t, err)
		last, done = seq, done+k
	}
	return last
}

// sleepy makes j's handlers take d per event.
func sleepy(j *journal, d time.Duration) {
	j.setFail(func(string, *rita.Event, int) error {
		time.Sleep(d)
		return nil
	})
}

// partitionedRun is the scenario of the issue: procs processes run one
// partitioned reactor whose handler takes 5 ms, over events events of 200
// entities; every event is handled, each entity's in order and by one
// process at a time, and every process does some of the work.
func partitionedRun(t *testing.T, procs, events int) {
	e := newEnv(t)
	e.store(t, "orders")
	j := newJournal()
	sleepy(j, 5*time.Millisecond)
	opts := []rita.DurableOption{rita.WithPartitions(8), rita.WithConcurrency(8), rita.WithErrHandler(quiet)}
	var ps []*process
	for i := range procs {
		p := e.process(t, fmt.Sprintf("p%d", i), "orders")
		ps = append(ps, p)
		react(t, p.store, "mailer", j.handler(p.name), opts...)
	}
	start := time.Now()
	last := appendSpread(t, ps[0].store, "placed", entities(200), events)
	waitCaughtUp(t, ps[0].store, "mailer")
	t.Logf("%d processes: %d events in %v, by process %v", procs, events, time.Since(start), j.byProc())
	j.check(t, false)
	requireSeqs(t, uniq(j.seqs()), seqRange(1, last))
	by := j.byProc()
	for _, p := range ps {
		if by[p.name] == 0 {
			t.Fatalf("process %s handled nothing: %v", p.name, by)
		}
	}
	prog, err := ps[0].store.Durable("mailer").Progress(testCtx(t))
	requireNoError(t, err)
	if len(prog.Partitions) != 8 || !prog.CaughtUp() || prog.Applied != last || !prog.Active {
		t.Fatalf("progress %+v, want 8 partitions caught up at %d", prog, last)
	}
}

// uniq returns sorted seqs without repeats.
func uniq(seqs []uint64) []uint64 {
	var out []uint64
	for i, s := range seqs {
		if i == 0 || s != seqs[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func TestPartitionedOneProcess(t *testing.T)    { partitionedRun(t, 1, 2000) }
func TestPartitionedTwoProcesses(t *testing.T)  { partitionedRun(t, 2, 2000) }
func TestPartitionedFourProcesses(t *testing.T) { partitionedRun(t, 4, 2000) }

// A process joins in the middle and one stops in the middle: the
// partitions move, and still every event is handled, each entity's in
// order and by one process at a time.
func TestPartitionedJoinAndStop(t *testing.T) {
	e := newEnv(t)
	e.store(t, "orders")
	j := newJournal()
	sleepy(j, 5*time.Millisecond)
	opts := []rita.DurableOption{rita.WithPartitions(8), rita.WithConcurrency(4), rita.WithErrHandler(quiet)}
	a := e.process(t, "a", "orders")
	b := e.process(t, "b", "orders")
	c := e.process(t, "c", "orders")
	ra, err := a.store.Durable("mailer").React(testCtx(t), j.handler("a"), opts...)
	requireNoError(t, err)
	react(t, b.store, "mailer", j.handler("b"), opts...)
	last := appendSpread(t, a.store, "placed", entities(200), 2000)

	eventually(t, waitFor, func() bool { return j.count() >= 500 }, "handled %d", j.count())
	react(t, c.store, "mailer", j.handler("c"), opts...) // joins
	eventually(t, waitFor, func() bool { return j.byProc()["c"] >= 50 }, "c handled %d", j.byProc()["c"])
	stopReactor(t, ra) // leaves
	stoppedAt := j.byProc()["a"]

	waitCaughtUp(t, b.store, "mailer")
	j.check(t, false)
	requireSeqs(t, uniq(j.seqs()), seqRange(1, last))
	by := j.byProc()
	if by["a"] != stoppedAt || by["b"] == 0 || by["c"] == 0 {
		t.Fatalf("handled by process %v; a stopped after %d", by, stoppedAt)
	}
	t.Logf("handled by process %v", by)
}

// A process cut off (its connection closed, nothing stopped) hands its
// partitions to the others once the ack wait has passed: every event is
// handled, each entity's in order and never by two processes at once.
func TestPartitionedCutOff(t *testing.T) {
	e := newEnv(t)
	e.store(t, "orders")
	j := newJournal()
	sleepy(j, 5*time.Millisecond)
	const ackWait = 2 * time.Second
	opts := []rita.DurableOption{rita.WithPartitions(8), rita.WithConcurrency(4), rita.WithAckWait(ackWait), rita.WithErrHandler(quiet)}
	a := e.process(t, "a", "orders")
	b := e.process(t, "b", "orders")
	ra, err := a.store.Durable("mailer").React(testCtx(t), j.handler("a"), opts...)
	requireNoError(t, err)
	react(t, b.store, "mailer", j.handler("b"), opts...)
	last := appendSpread(t, b.store, "placed", entities(200), 2000)

	eventually(t, waitFor, func() bool { return j.byProc()["a"] >= 200 }, "a handled %d", j.byProc()["a"])
	// The entities a was handling: b takes them over.
	aEntities := map[string]bool{}
	for _, h := range j.handled() {
		if h.proc == "a" {
			aEntities[h.entity] = true
		}
	}
	a.nc.Close()
	cut := time.Now()
	select {
	case <-ra.Closed():
	case <-time.After(waitFor):
		t.Fatal("a's subscription did not end with its connection")
	}
	t.Logf("a ended with %v", ra.Err())
	before := len(j.handled())
	eventually(t, waitFor, func() bool {
		for _, h := range j.handled()[before:] {
			if h.proc == "b" && aEntities[h.entity] {
				return true
			}
		}
		return false
	}, "b took none of a's entities over")
	took := time.Since(cut)
	t.Logf("b took over a's partitions %v after a was cut off (ack wait %v)", took, ackWait)
	if took > ackWait+ackWait/4+2*time.Second {
		t.Fatalf("took over after %v, bound %v", took, ackWait+ackWait/4+2*time.Second)
	}

	waitCaughtUp(t, b.store, "mailer")
	j.check(t, false)
	requireSeqs(t, uniq(j.seqs()), seqRange(1, last))
}

// Parked events, their retry, Rebuild and Delete work for a partitioned
// consumer as for a plain one: the entries are kept under the consumer's
// name whatever partition parked them.
func TestPartitionedParkRetryRebuildDelete(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "orders")
	ents := entities(20)
	last := appendSpread(t, s, "placed", ents, 100)
	j := newJournal()
	var mu sync.Mutex
	broken := true
	j.setFail(func(_ string, ev *rita.Event, _ int) error {
		mu.Lock()
		defer mu.Unlock()
		if broken && ev.Entity == "order.7" {
			return fmt.Errorf("%w: not now", rita.ErrUnprocessable)
		}
		return nil
	})
	d := s.Durable("ledger")
	opts := fast(rita.WithPartitions(4), rita.WithConcurrency(4), rita.WithErrHandler(quiet))
	r, err := d.React(testCtx(t), j.handler("p"), opts...)
	requireNoError(t, err)
	waitCaughtUp(t, s, "ledger")
	parked, err := d.Parked(testCtx(t))
	requireNoError(t, err)
	if len(parked) != 5 {
		t.Fatalf("parked %d events, want the 5 of order.7", len(parked))
	}
	for _, p := range parked {
		if p.Consumer != "ledger" || p.Event.Entity != "order.7" || p.Event.Subject() != "$ES.orders.order.7.placed" {
			t.Fatalf("parked %+v (%s)", p, p.Event.Subject())
		}
	}
	if j.count() != 95 {
		t.Fatalf("handled %d, want 95", j.count())
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	requireNoError(t, d.RetryParked(testCtx(t), parked[0].Event.Sequence()))
	eventually(t, waitFor, func() bool { return j.count() == 100 }, "handled %d after the retry", j.count())
	eventually(t, waitFor, func() bool {
		p, err := d.Parked(testCtx(t))
		return err == nil && len(p) == 0
	}, "parked events left after the retry")
	j.check(t, true)

	// Rebuild refuses while it runs, then starts every partition again.
	if err := d.Rebuild(testCtx(t), 0); !errors.Is(err, rita.ErrDurableActive) {
		t.Fatalf("Rebuild while running: %v, want ErrDurableActive", err)
	}
	stopReactor(t, r)
	requireNoError(t, d.Rebuild(testCtx(t), 50))
	j2 := newJournal()
	r = react(t, s, "ledger", j2.handler("p"), opts...)
	waitCaughtUp(t, s, "ledger")
	j2.check(t, true)
	requireSeqs(t, j2.seqs(), seqRange(51, last))

	// Delete removes the partition stream.
	stopReactor(t, r)
	requireNoError(t, d.Delete(testCtx(t)))
	if _, err := e.js.Stream(testCtx(t), "ES_orders_PARTITIONS_ledger"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("partition stream after Delete: %v", err)
	}
	if _, err := d.Progress(testCtx(t)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("Progress after Delete: %v, want ErrConsumerNotFound", err)
	}
}

// A partitioned consumer keeps its number of partitions, and a name is
// either partitioned or not, until Delete.
func TestPartitionedRefusals(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "orders")
	appendSpread(t, s, "placed", entities(4), 8)
	h := func(context.Context, *rita.Event) error { return nil }
	for _, n := range []int{0, -1, 1025} {
		if _, err := s.Durable("x").React(testCtx(t), h, rita.WithPartitions(n)); !errors.Is(err, rita.ErrInvalidOption) {
			t.Fatalf("WithPartitions(%d): %v, want ErrInvalidOption", n, err)
		}
	}
	r := react(t, s, "parts", h, rita.WithPartitions(4))
	stopReactor(t, r)
	if _, err := s.Durable("parts").React(testCtx(t), h, rita.WithPartitions(8)); !errors.Is(err, rita.ErrInvalidOption) {
		t.Fatalf("other number of partitions: %v, want ErrInvalidOption", err)
	}
	if _, err := s.Durable("parts").React(testCtx(t), h); !errors.Is(err, rita.ErrInvalidOption) {
		t.Fatalf("plain run of a partitioned consumer: %v, want ErrInvalidOption", err)
	}
	r = react(t, s, "plain", h)
	waitCaughtUp(t, s, "plain")
	stopReactor(t, r)
	if _, err := s.Durable("plain").React(testCtx(t), h, rita.WithPartitions(4)); !errors.Is(err, rita.ErrInvalidOption) {
		t.Fatalf("partitioned run of a plain consumer: %v, want ErrInvalidOption", err)
	}
}

// A partitioned durable Watch with filters catches up, and applies only
// the events its filters take.
func TestPartitionedWatchFilters(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "orders")
	appendSpread(t, s, "placed", entities(10), 40)
	appendSpread(t, s, "shipped", entities(10), 20)
	_, err := s.Append(testCtx(t), []*rita.Event{rawEvent("user.1", "placed", "x")})
	requireNoError(t, err)
	var mu sync.Mutex
	got := map[string]int{}
	model := evolverFunc(func(ev *rita.Event) error {
		mu.Lock()
		got[ev.Entity[:5]+"/"+ev.Type]++
		mu.Unlock()
		return nil
	})
	w, err := s.Durable("placed").Watch(testCtx(t), model, rita.WithPartitions(3), rita.WithFilters("order.*.placed"), rita.WithConcurrency(4))
	requireNoError(t, err)
	defer stopReactor(t, w)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got["order/placed"] != 40 {
		t.Fatalf("applied %v, want 40 order placed", got)
	}
}

// A partitioned reactor leaves no goroutine of rita or the JetStream client
// behind: stopped, stopped from its error handler, or cut off.
func TestPartitionedNoGoroutineLeft(t *testing.T) {
	e := newEnv(t)
	e.store(t, "orders")
	a := e.process(t, "a", "orders")
	b := e.process(t, "b", "orders")
	c := e.process(t, "c", "orders")
	j := newJournal()
	opts := []rita.DurableOption{rita.WithPartitions(4), rita.WithConcurrency(2), rita.WithAckWait(2 * time.Second)}
	ra, err := a.store.Durable("mailer").React(testCtx(t), j.handler("a"), append(opts, rita.WithErrHandler(quiet))...)
	requireNoError(t, err)
	rb, err := b.store.Durable("mailer").React(testCtx(t), j.handler("b"), append(opts, rita.WithErrHandler(quiet))...)
	requireNoError(t, err)
	// c stops itself from its error handler, on the first event it parks.
	var self *rita.Subscription
	ready := make(chan struct{})
	stopped := make(chan struct{})
	var once sync.Once
	rc, err := c.store.Durable("mailer").React(testCtx(t), func(ctx context.Context, ev *rita.Event) error {
		return fmt.Errorf("%w: c cannot", rita.ErrUnprocessable)
	}, append(opts, rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) {
		<-ready
		once.Do(func() {
			_ = self.Stop(context.Background())
			close(stopped)
		})
	}))...)
	requireNoError(t, err)
	self = rc
	close(ready)
	last := appendSpread(t, a.store, "placed", entities(40), 200)
	<-stopped
	c.nc.Close()
	b.nc.Close() // b is cut off
	<-rb.Closed()
	waitCaughtUp(t, a.store, "mailer")
	if got := uniq(j.seqs()); len(got)+mustParked(t, a.store, "mailer") < int(last) {
		t.Fatalf("handled %d and parked the rest of %d?", len(got), last)
	}
	stopReactor(t, ra)
	stopReactor(t, rb)
	a.nc.Close()
	requireNoLibraryGoroutines(t)
}

// mustParked returns how many events name has parked.
func mustParked(t *testing.T, s *rita.EventStore, name string) int {
	t.Helper()
	p, err := s.Durable(name).Parked(testCtx(t))
	requireNoError(t, err)
	return len(p)
}

// Deleting the store deletes the partitions of its partitioned consumers,
// and ends the subscriptions running them.
func TestPartitionedStoreDeleted(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "orders")
	e.store(t, "orders_PARTITIONS_x") // a store whose stream's name looks like a partition stream's
	appendSpread(t, s, "placed", entities(4), 8)
	r, err := s.Durable("mailer").React(testCtx(t), func(context.Context, *rita.Event) error { return nil }, rita.WithPartitions(2), rita.WithErrHandler(quiet))
	requireNoError(t, err)
	waitCaughtUp(t, s, "mailer")
	requireNoError(t, e.m.DeleteEventStore(testCtx(t), "orders"))
	select {
	case <-r.Closed():
	case <-time.After(waitFor):
		t.Fatal("the subscription did not end with its store")
	}
	if r.Err() == nil {
		t.Fatal("Err is nil after the store was deleted")
	}
	if _, err := e.js.Stream(testCtx(t), "ES_orders_PARTITIONS_mailer"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("partition stream after DeleteEventStore: %v", err)
	}
	if _, err := e.js.Stream(testCtx(t), "ES_orders_PARTITIONS_x"); err != nil {
		t.Fatalf("the other store's stream: %v", err)
	}
}
