package rita

import (
	"context"
	"fmt"
)

// DurableWatcher is the Watcher that Watch returns when given WithDurable:
// besides Stop, it reports the progress of its consumer.
type DurableWatcher interface {
	Watcher

	// Name returns the durable name given to WithDurable.
	Name() string

	// Progress returns the progress of the durable consumer; see
	// EventStore.Progress.
	Progress(ctx context.Context) (Progress, error)

	// WaitCaughtUp waits until every event stored when it was called has
	// been applied or parked; see EventStore.WaitCaughtUp.
	WaitCaughtUp(ctx context.Context) error
}

// watchDurable is Watch with WithDurable: the Evolver is the handler of a
// durable consumer.
func (s *EventStore) watchDurable(ctx context.Context, model Evolver, cfg *watchConfig) (Watcher, error) {
	handler := func(_ context.Context, e *Event) error { return model.Evolve(e) }
	d, err := s.startDurable(ctx, cfg.durable.name, "durable watch", handler, cfg)
	if err != nil {
		return nil, err
	}
	w := &durableWatcher{d: d}
	if cfg.noWait {
		return w, nil
	}
	if err := s.WaitCaughtUp(ctx, d.name); err != nil {
		w.Stop()
		return nil, fmt.Errorf("rita: watch store %q: catching up: %w", s.name, err)
	}
	return w, nil
}

// durableWatcher is a durable Watch.
type durableWatcher struct {
	d *durable
}

// Stop stops the watcher: it takes no new event, waits for the Evolver
// calls that run, gives the events it has not applied back to the server
// and lets another process watching with the same name take over at once.
// The consumer stays on the server. It may be called more than once and from
// the error handler, but not from the Evolver.
func (w *durableWatcher) Stop() { _ = w.d.stop(context.Background()) }

func (w *durableWatcher) Name() string { return w.d.name }

func (w *durableWatcher) Progress(ctx context.Context) (Progress, error) {
	return w.d.s.Progress(ctx, w.d.name)
}

func (w *durableWatcher) WaitCaughtUp(ctx context.Context) error {
	return w.d.s.WaitCaughtUp(ctx, w.d.name)
}
