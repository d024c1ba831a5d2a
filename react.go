package rita

import (
	"context"
	"fmt"
)

// Reactor runs a handler for the events of a store, for side effects (send
// an email, call another service), with a durable consumer: see
// EventStore.React. It is safe for concurrent use by multiple goroutines.
type Reactor struct {
	d *durable
}

// React runs handler for every event of the store (or of WithFilters) with
// the durable consumer name, created on first use, and returns once it runs.
// A process that restarts resumes after the last event handled, and several
// processes may run the same reactor: the server delivers to one of them at a
// time and hands over to another when it stops (Stop) or vanishes (after
// WithAckWait), so that an event is never handled by two processes at the
// same time. (A process cut off from the server for longer than WithAckWait,
// rather than gone, cannot keep its events: they pass to another process
// while its handlers may still run.)
//
// What handler returns decides what happens to the event:
//   - nil: it is acknowledged, and never delivered again;
//   - an error wrapping ErrUnprocessable: it is parked at once;
//   - any other error: it is tried again after a backoff (WithBackoff), up
//     to WithMaxAttempts times, and then parked.
//
// A parked event goes to the error handler (WithErrHandler; by default it is
// logged through the Manager's logger) and is kept in the store's parked
// events (ListParked, RetryParked). The later events of its entity are parked
// too, until it is retried, so that the events of an entity are always
// handled in order. Events of different entities are handled in parallel,
// up to WithConcurrency at once (default 1); a failing event holds up only
// the later events of its own entity.
//
// Delivery is at least once: a process that vanishes after its handler
// succeeded and before the event was acknowledged has the event handled
// again by the next one, so handlers should be idempotent. handler gets a
// context that ends when Stop gives up waiting for it; it must not call Stop.
//
// React accepts WithFilters, WithAfterSequence (where a new consumer starts),
// WithErrHandler, WithConcurrency, WithMaxAttempts, WithBackoff and
// WithAckWait; WithDurable and WithNoWait fail with ErrInvalidOption, and so
// does an invalid name; a nil handler fails with ErrInvalidArgument.
func (s *EventStore) React(ctx context.Context, name string, handler func(context.Context, *Event) error, opts ...WatchOption) (*Reactor, error) {
	if s == nil {
		return nil, errNilStore
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if handler == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidArgument)
	}
	if err := validateDurableName(name); err != nil {
		return nil, err
	}
	cfg, err := newWatchConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.noWait {
		return nil, fmt.Errorf("%w: WithNoWait does not apply to React", ErrInvalidOption)
	}
	if err := cfg.durable.refuse("React", "WithDurable"); err != nil {
		return nil, err
	}
	d, err := s.startDurable(ctx, name, "reactor", handler, cfg)
	if err != nil {
		return nil, err
	}
	return &Reactor{d: d}, nil
}

// Name returns the name of the reactor, which is the name of its consumer.
func (r *Reactor) Name() string { return r.d.name }

// Stop stops the reactor: it takes no new event, lets the handlers that run
// finish within ctx, gives the events it has not handled back to the server
// and lets another process running the reactor take over at once. Its state
// stays on the server, so the next run resumes where it stopped.
//
// If ctx ends first, Stop cancels the handlers' context and returns an error
// wrapping ctx's; the events those handlers hold stay with this process
// until they return, so that no other process handles them meanwhile.
// Stop may be called more than once, and from the error handler, but not
// from the handler.
func (r *Reactor) Stop(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	return r.d.stop(ctx)
}

// Progress returns the reactor's progress; see EventStore.Progress.
func (r *Reactor) Progress(ctx context.Context) (Progress, error) {
	return r.d.s.Progress(ctx, r.d.name)
}

// WaitCaughtUp waits until the reactor has done every event stored when it
// was called; see EventStore.WaitCaughtUp.
func (r *Reactor) WaitCaughtUp(ctx context.Context) error {
	return r.d.s.WaitCaughtUp(ctx, r.d.name)
}
