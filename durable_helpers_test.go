package rita_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

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
