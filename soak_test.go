package rita_test

// The soak test: appends, deciders, a watcher and a reactor run together on
// one server for minutes while the server restarts every 30 s. At the end
// every acknowledged event is stored exactly once (and no event twice), the
// watched model equals a fresh replay, the reactor handled every event, and
// the goroutines and heap are back where they started.
//
// It is skipped with -short, and unless RITA_SOAK gives its duration (as
// "3m"); .ci/run runs it for a bounded time.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

const (
	// soakRestartEvery is how often the soak test restarts the server.
	soakRestartEvery = 30 * time.Second

	// soakGoroutineSlack allows for the goroutines of the test itself
	// that come and go.
	soakGoroutineSlack = 2
)

// soakLog counts what the workers of the soak test saw.
type soakLog struct {
	mu    sync.Mutex
	acked map[string]uint64 // acknowledged event IDs, with their sequence (0: acknowledged as a duplicate batch)
	fails map[string]int    // failed calls, by kind
}

func (l *soakLog) ack(events []*rita.Event, byDuplicate bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range events {
		seq := e.Sequence()
		if byDuplicate {
			seq = 0
		}
		l.acked[e.ID] = seq
	}
}

func (l *soakLog) fail(kind string) {
	l.mu.Lock()
	l.fails[kind]++
	l.mu.Unlock()
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	d, err := time.ParseDuration(os.Getenv("RITA_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("soak test: set RITA_SOAK to its duration (RITA_SOAK=3m) to run it")
	}
	restartEvery := min(soakRestartEvery, d/3)

	srv := ritatest.NewServer(t)
	nc := srv.Connect(t, ritatest.Reconnecting())
	m, err := rita.New(nc, rita.WithRegistry(newRegistry(t, bankTypes())))
	requireNoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "soak"})
	requireNoError(t, err)

	// The starting level, once the server and connection run.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	startGoroutines, startHeap := clientGoroutines(), ms.HeapAlloc

	log := &soakLog{acked: map[string]uint64{}, fails: map[string]int{}}

	// The watcher and the reactor.
	var watchErrs atomic.Int64
	watched := rita.NewModel(newLedger())
	w, err := s.Watch(ctx, watched, rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) { watchErrs.Add(1) }))
	requireNoError(t, err)
	var reacted sync.Map // event ID -> *atomic.Int64
	var reactErrs atomic.Int64
	reactor := s.Durable("soak-reactor")
	sub, err := reactor.React(ctx, func(_ context.Context, e *rita.Event) error {
		n, _ := reacted.LoadOrStore(e.ID, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return nil
	}, rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) { reactErrs.Add(1) }))
	requireNoError(t, err)

	// Appenders: batches of their own accounts, the same events again
	// (same IDs) after a failure until acknowledged. Deciders: deposits on
	// shared accounts, deciding on models that go stale.
	stop := make(chan struct{})
	var workers sync.WaitGroup
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for a := range 2 {
		workers.Go(func() {
			for n := 0; !stopped(); n++ {
				events := make([]*rita.Event, 1+n%3)
				for i := range events {
					events[i] = &rita.Event{
						ID:     fmt.Sprintf("app-%d-%d-%d", a, n, i),
						Entity: accountEntity(fmt.Sprintf("a%d-%d", a, (n+i)%5)),
						Data:   &depositedEvt{Amount: 1},
					}
				}
				for {
					actx, acancel := context.WithTimeout(ctx, 20*time.Second)
					_, err := s.Append(actx, events)
					acancel()
					if err == nil || errors.Is(err, rita.ErrDuplicateEvent) {
						log.ack(events, err != nil)
						break
					}
					log.fail("append")
					if ctx.Err() != nil {
						return
					}
				}
				time.Sleep(5 * time.Millisecond) // pacing, not synchronisation
			}
		})
	}
	for k := range 2 {
		workers.Go(func() {
			model := rita.NewModel(newLedger())
			for n := 0; !stopped(); n++ {
				dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
				events, _, err := s.DecideAndEvolveWithRetry(dctx, model, depositOf(fmt.Sprintf("shared-%d", n%3), 1))
				dcancel()
				if err != nil {
					log.fail(fmt.Sprintf("decide (%d)", k))
					// Its events may be stored or not: catch up before the
					// next decision.
					_, _ = s.Evolve(ctx, model, rita.WithAfterSequence(model.Sequence()))
					continue
				}
				log.ack(events, false)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}

	// The server restarts every restartEvery until d has passed.
	end := time.Now().Add(d)
	restarts := 0
	for time.Until(end) > restartEvery {
		time.Sleep(restartEvery) // the schedule of the faults
		srv.Restart()
		restarts++
	}
	time.Sleep(time.Until(end))
	close(stop)
	workers.Wait()

	// A fresh replay of the whole store.
	replay := rita.NewModel(newLedger())
	var stored []*rita.Event
	last, err := s.Evolve(ctx, rita.EvolverFunc(func(e *rita.Event) error {
		stored = append(stored, e)
		return replay.Evolve(e)
	}))
	requireNoError(t, err)
	ids := map[string]uint64{}
	for _, e := range stored {
		if seq, dup := ids[e.ID]; dup {
			t.Errorf("event %s stored twice: at %d and %d", e.ID, seq, e.Sequence())
		}
		ids[e.ID] = e.Sequence()
	}
	log.mu.Lock()
	acked, fails := maps.Clone(log.acked), maps.Clone(log.fails)
	log.mu.Unlock()
	for id, seq := range acked {
		got, ok := ids[id]
		switch {
		case !ok:
			t.Errorf("acknowledged event %s (sequence %d) lost", id, seq)
		case seq != 0 && got != seq:
			t.Errorf("event %s acknowledged at %d, stored at %d", id, seq, got)
		}
	}

	// The watcher ends where the replay does, in the same state.
	requireNoError(t, w.WaitFor(ctx, last))
	var diff string
	_ = watched.View(func(wl *ledger) error {
		return replay.View(func(rl *ledger) error {
			if !maps.Equal(wl.Balances, rl.Balances) {
				diff = fmt.Sprintf("balances %v, replay %v", wl.Balances, rl.Balances)
			}
			for seq, n := range wl.Applied {
				if n != 1 {
					diff += fmt.Sprintf("; event %d applied %d times", seq, n)
				}
			}
			if len(wl.Applied) != len(rl.Applied) {
				diff += fmt.Sprintf("; %d events applied, replay %d", len(wl.Applied), len(rl.Applied))
			}
			return nil
		})
	})
	if diff != "" {
		t.Errorf("watched model differs from a fresh replay: %s", diff)
	}

	// The reactor handled every event, at least once.
	requireNoError(t, reactor.WaitCaughtUp(ctx))
	var handledTwice int
	for id := range ids {
		n, ok := reacted.Load(id)
		if !ok {
			t.Errorf("event %s never reached the reactor", id)
			continue
		}
		if n.(*atomic.Int64).Load() > 1 {
			handledTwice++
		}
	}

	// Everything stops, and leaves nothing behind.
	w.Stop()
	requireNoError(t, sub.Stop(ctx))
	var goroutines int
	for deadline := time.Now().Add(30 * time.Second); ; {
		goroutines = clientGoroutines()
		if len(libraryGoroutines()) == 0 && goroutines <= startGoroutines+soakGoroutineSlack {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d at the start, %d at the end; of rita and jetstream: %v", startGoroutines, goroutines, libraryGoroutines())
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
	// What the test itself kept (every event, the models, the maps) and
	// the embedded server's caches of the store live on the same heap as
	// the client: drop them, and the store, before measuring.
	nStored, nAcked := len(ids), len(acked)
	stored, ids, acked, replay, watched, log = nil, nil, nil, nil, nil, nil
	reacted.Clear()
	requireNoError(t, m.DeleteEventStore(ctx, "soak"))
	limit := 2*startHeap + 32<<20
	for deadline := time.Now().Add(30 * time.Second); ; {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc <= limit {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("heap %d MiB at the end, %d MiB at the start", ms.HeapAlloc>>20, startHeap>>20)
			break
		}
		time.Sleep(100 * time.Millisecond) // polling
	}
	t.Logf("%v, %d restarts: %d events stored (%d acknowledged), failed calls %v; watcher errors %d; reactor errors %d, events handled twice %d; goroutines %d -> %d, heap %d -> %d MiB",
		d, restarts, nStored, nAcked, fails, watchErrs.Load(), reactErrs.Load(), handledTwice,
		startGoroutines, goroutines, startHeap>>20, ms.HeapAlloc>>20)
}

// clientGoroutines counts the goroutines that run no code of the embedded
// server, whose own (one set per stream and consumer it loaded) change
// with what it stores and when it restarts.
func clientGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "nats-io/nats-server") {
			n++
		}
	}
	return n
}
