package ritatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/internal/eventdiff"
	"github.com/synadia-labs/rita/types"
)

// specTimeout bounds a RunStore, so that a broken specification fails
// rather than hangs.
const specTimeout = time.Minute

// RunStore checks s through a real event store, and fails t with a
// description of every difference if it does not hold. It starts an
// embedded server (NewServer) with a store named "spec" on a Manager with
// reg (nil: no registry, so event Data is []byte), and runs CheckStore.
func (s Spec[T]) RunStore(t testing.TB, reg *types.Registry, newState func() T) {
	t.Helper()
	nc := NewServer(t).Connect(t)
	var opts []rita.ManagerOption
	if reg != nil {
		opts = append(opts, rita.WithRegistry(reg))
	}
	m, err := rita.New(nc, opts...)
	if err != nil {
		t.Fatalf("ritatest: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), specTimeout)
	defer cancel()
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "spec"})
	if err != nil {
		t.Fatalf("ritatest: %v", err)
	}
	if err := s.CheckStore(ctx, store, newState); err != nil {
		t.Error(err)
	}
}

// CheckStore checks s through store and returns the differences as an
// error; nil when s holds. The store should be one of its own: the events
// it already holds are not part of the state, but a decision that expects
// an entity they touch fails.
//
// The Given events are appended (in atomic batches of at most
// rita.MaxBatchSize), a fresh state from newState wrapped in a rita.Model
// is evolved with them from the store, and EventStore.Decide decides the
// command. The decided events are compared with Then, as Run does, then the
// model evolves with them, as DecideAndEvolve would; then the events are
// read back from the store and compared again, which shows what encoding
// loses, and a fresh state must accept the Given and decided events as read
// back. With a ThenError, nothing may be stored.
func (s Spec[T]) CheckStore(ctx context.Context, store *rita.EventStore, newState func() T) error {
	cmd, err := s.prepare(newState)
	if err != nil {
		return err
	}
	if store == nil {
		return fmt.Errorf("ritatest: invalid spec run: nil store")
	}
	prior, err := store.Evolve(ctx, specEvolver(func(*rita.Event) error { return nil }))
	if err != nil {
		return s.storeFailf("reading the store before the spec: %v", err)
	}
	given := make([]*rita.Event, len(s.Given))
	for i, e := range s.Given {
		given[i] = specCopyEvent(e)
	}
	last := prior
	for from := 0; from < len(given); from += rita.MaxBatchSize {
		seq, err := store.Append(ctx, given[from:min(from+rita.MaxBatchSize, len(given))])
		if err != nil {
			return s.storeFailf("appending the Given events: %v", err)
		}
		last = seq
	}
	model := rita.NewModel(newState())
	if last > prior {
		if _, err := store.Evolve(ctx, model, rita.WithAfterSequence(prior), rita.WithStopSequence(last)); err != nil {
			return s.storeFailf("evolving the state with the Given events, as stored: %v", err)
		}
	}

	events, _, err := store.Decide(ctx, model, cmd)
	if msg := s.compare(events, err); msg != "" {
		return s.storeFailf("%s", msg)
	}
	for i, e := range events {
		if err := model.Evolve(e); err != nil {
			return s.storeFailf("decided event %d (%s): the state refused it: %v", i+1, eventdiff.Event(e), err)
		}
	}

	// Read everything back: the decided events as stored, and a replay of
	// the whole specification into a fresh state.
	var stored []*rita.Event
	replay := rita.NewModel(newState())
	_, err = store.Evolve(ctx, specEvolver(func(e *rita.Event) error {
		if e.Sequence() > last {
			stored = append(stored, e)
		}
		if err := replay.Evolve(e); err != nil {
			return fmt.Errorf("the state refused event %d (%s) as read back: %w", e.Sequence(), eventdiff.Event(e), err)
		}
		return nil
	}), rita.WithAfterSequence(prior))
	if err != nil {
		return s.storeFailf("replaying the stored events: %v", err)
	}
	if s.ThenError != nil {
		if len(stored) > 0 {
			return s.storeFailf("the decision failed as expected, but it stored %s anyway%s", eventdiff.Plural(len(stored), "event"), eventdiff.List(stored))
		}
		return nil
	}
	if msg := eventdiff.Events("stored (as read back)", s.Then, stored); msg != "" {
		return s.storeFailf("%s", msg)
	}
	return nil
}

// specEvolver lets a function be a rita.Evolver.
type specEvolver func(*rita.Event) error

func (f specEvolver) Evolve(e *rita.Event) error { return f(e) }
