package rita

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Projection is a read model that keeps, in its own database, the sequence
// of the last event it applied (its checkpoint), written in the same
// transaction as the rows the event changes. Such a projection needs no
// durable consumer: Project starts it after its checkpoint, and since an
// event's rows and the checkpoint are committed together or not at all,
// every event takes effect exactly once, however the process stops.
type Projection interface {
	// LastSequence returns the checkpoint: the sequence of the last event
	// Apply committed, 0 if none.
	LastSequence(ctx context.Context) (uint64, error)

	// Apply applies e to the read model and records e.Sequence() as the
	// checkpoint, in one transaction. An Apply that finds the checkpoint at
	// or past e.Sequence() should commit nothing and return nil: that makes
	// several processes projecting into one database safe.
	Apply(ctx context.Context, e *Event) error
}

// Project keeps p up to date with the store: it reads p's checkpoint and
// watches the store from the event after it (through WithFilters when given),
// calling p.Apply for each event in stream order, one at a time. Like Watch,
// it returns once the events stored when it began are applied, unless
// WithNoWait is given; the returned Watcher's Stop ends it.
//
// An Apply that fails is tried again after a backoff (WithBackoff), up to
// WithMaxAttempts times; an error wrapping ErrUnprocessable is not retried.
// If it still fails, or an event cannot be decoded, the projection halts:
// it applies no later event, so that its checkpoint stays exact, and the
// error handler (WithErrHandler; by default the Manager's logger) gets an
// error wrapping ErrProjectionHalted and the cause. Project it again to go
// on from the checkpoint. If the projection halts while catching up, Project
// returns that error.
//
// Project accepts WithFilters, WithNoWait, WithErrHandler, WithMaxAttempts
// and WithBackoff. WithAfterSequence (the checkpoint says where to start),
// WithDurable, WithConcurrency and WithAckWait fail with ErrInvalidOption. An
// error of p.LastSequence is returned as is.
func (s *EventStore) Project(ctx context.Context, p Projection, opts ...WatchOption) (Watcher, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if p == nil {
		return nil, fmt.Errorf("%w: nil projection", ErrInvalidArgument)
	}
	cfg, err := newWatchConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.durable.refuse("Project", "WithDurable", "WithConcurrency", "WithAckWait"); err != nil {
		return nil, err
	}
	if cfg.afterSeq != 0 {
		return nil, fmt.Errorf("%w: WithAfterSequence does not apply to Project: the checkpoint says where to start", ErrInvalidOption)
	}
	last, err := p.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pr := &projector{
		s:          s,
		p:          p,
		cfg:        cfg.durable.withDefaults(),
		last:       last,
		ctx:        pctx,
		cancel:     cancel,
		stopCh:     make(chan struct{}),
		errHandler: cfg.errHandler,
	}
	if pr.errHandler == nil {
		pr.errHandler = pr.logError
	}
	inner := []WatchOption{WithAfterSequence(last), WithErrHandler(pr.handleError)}
	if len(cfg.filters) > 0 {
		inner = append(inner, WithFilters(cfg.filters...))
	}
	if cfg.noWait {
		inner = append(inner, WithNoWait())
	}
	w, err := s.Watch(ctx, pr, inner...)
	if err != nil {
		cancel()
		return nil, err
	}
	pw := &projectionWatcher{pr: pr, w: w}
	pr.mu.Lock()
	pr.w = w
	halted := pr.haltErr
	pr.mu.Unlock()
	if halted != nil && !cfg.noWait {
		pw.Stop()
		return nil, halted
	}
	return pw, nil
}

// projector is the Evolver of the Watch behind Project. The watcher calls
// Evolve and handleError from its one goroutine, so last needs no lock.
type projector struct {
	s          *EventStore
	p          Projection
	cfg        durableConfig
	last       uint64
	ctx        context.Context
	cancel     context.CancelFunc
	stopCh     chan struct{}
	errHandler func(error, *Event, jetstream.Msg)
	halted     atomic.Bool

	mu      sync.Mutex
	w       Watcher // set once Watch returns
	haltErr error
}

// errProjectionStopped ends an Apply retry when the projection is stopped;
// it is not reported.
var errProjectionStopped = errors.New("rita: projection stopped")

// Evolve applies e unless the projection halted or has applied it already.
func (pr *projector) Evolve(e *Event) error {
	if pr.halted.Load() || e.sequence <= pr.last {
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := pr.p.Apply(pr.ctx, e)
		if err == nil {
			pr.last = e.sequence
			return nil
		}
		if pr.ctx.Err() != nil {
			return errProjectionStopped
		}
		if errors.Is(err, ErrUnprocessable) || attempt >= pr.cfg.maxAttempts {
			return fmt.Errorf("%w: store %q: event %d (%s) of %s not applied after %d attempts: %w",
				ErrProjectionHalted, pr.s.name, e.sequence, e.Type, e.Entity, attempt, err)
		}
		t := time.NewTimer(pr.cfg.delay(attempt))
		select {
		case <-t.C:
		case <-pr.stopCh:
			t.Stop()
			return errProjectionStopped
		}
	}
}

// handleError halts the projection on an event it could not apply or
// decode, and reports.
func (pr *projector) handleError(err error, e *Event, msg jetstream.Msg) {
	if errors.Is(err, errProjectionStopped) {
		pr.halted.Store(true)
		return
	}
	if msg == nil {
		// Not about an event (the consumer's trouble): nothing was skipped.
		pr.errHandler(err, e, msg)
		return
	}
	if pr.halted.Swap(true) {
		return
	}
	if !errors.Is(err, ErrProjectionHalted) {
		err = fmt.Errorf("%w: store %q: %w", ErrProjectionHalted, pr.s.name, err)
	}
	pr.errHandler(err, e, msg)
	pr.mu.Lock()
	pr.haltErr = err
	w := pr.w
	pr.mu.Unlock()
	if w != nil {
		w.Stop() // from the error handler: does not wait
	}
}

func (pr *projector) logError(err error, e *Event, _ jetstream.Msg) {
	attrs := []any{slog.String("store", pr.s.name), slog.Any("error", err)}
	if e != nil {
		attrs = append(attrs, slog.Uint64("sequence", e.sequence), slog.String("entity", e.Entity), slog.String("type", e.Type))
	}
	pr.s.m.logger.Error("rita: projection", attrs...)
}

// projectionWatcher is the Watcher Project returns.
type projectionWatcher struct {
	pr   *projector
	w    Watcher
	once sync.Once
}

// Stop stops the projection: once it returns, Apply is not called any more.
// An Apply that runs is waited for (its context is cancelled); a retry
// waiting for its backoff ends at once.
func (pw *projectionWatcher) Stop() {
	pw.once.Do(func() {
		close(pw.pr.stopCh)
		pw.pr.cancel()
	})
	pw.w.Stop()
}
