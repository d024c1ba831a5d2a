package rita

import (
	"context"
	"errors"
	"fmt"
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
// WithNoWait is given.
//
// An Apply that fails is tried again after a backoff (WithBackoff), up to
// WithMaxAttempts times; an error wrapping ErrUnprocessable is not retried.
// If it still fails, or an event cannot be decoded, the projection halts:
// it applies no later event, so that its checkpoint stays exact; the
// Subscription ends, and its Err returns an error wrapping
// ErrProjectionHalted and the cause. Project it again to go on from the
// checkpoint. If the projection halts while catching up, Project returns
// that error (and only returns it). The error handler (WithErrHandler; by
// default the Manager's logger) is told of failures the projection recovers
// from, and of a halt once Project has returned.
//
// An error of p.LastSequence is returned as is.
func (s *EventStore) Project(ctx context.Context, p Projection, opts ...ProjectOption) (*Subscription, error) {
	cfg, err := begin(s, ctx, opProject, "projection", p == nil, opts)
	if err != nil {
		return nil, err
	}
	last, err := p.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pr := &projector{
		s:          s,
		p:          p,
		cfg:        cfg,
		last:       last,
		ctx:        pctx,
		cancel:     cancel,
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		errHandler: cfg.errHandler,
		tel:        s.tel.consumer(s.name, "project", ""),
		apply:      p.Apply,
	}
	if pr.errHandler == nil {
		pr.errHandler = func(err error, e *Event, _ jetstream.Msg) { s.m.logError("projection", "", s.name, err, e) }
	}
	wcfg := *cfg
	wcfg.after = last
	wcfg.errHandler = pr.handleError
	w, err := s.watch(ctx, pr, &wcfg)
	if err != nil {
		cancel()
		if halted := pr.halt(); halted != nil {
			return nil, halted
		}
		return nil, err
	}
	pr.mu.Lock()
	pr.w = w
	halted := pr.haltErr
	pr.mu.Unlock()
	go pr.follow()
	if halted != nil {
		// Halted while catching up: the error is Project's to return.
		w.Stop()
		if !cfg.noWait {
			return nil, halted
		}
		pr.errHandler(halted, nil, nil)
	}
	return &Subscription{run: pr, prefix: fmt.Sprintf("rita: projection of store %q: ", s.name)}, nil
}

// projector is the Evolver of the watcher behind Project. The watcher calls
// Evolve and handleError from its one goroutine, so last needs no lock.
type projector struct {
	s          *EventStore
	p          Projection
	cfg        *config
	last       uint64
	ctx        context.Context // Apply's; cancelled by Stop
	cancel     context.CancelFunc
	stopCh     chan struct{}
	stopOnce   sync.Once
	done       chan struct{} // closed once the watcher has ended
	errHandler func(error, *Event, jetstream.Msg)
	halted     atomic.Bool
	tel        *consumerTelemetry
	apply      func(context.Context, *Event) error // p.Apply

	mu      sync.Mutex
	w       *watcher // set once the watcher runs
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
		err := pr.tel.handle(withAttempt(pr.ctx, attempt), e, attempt, pr.apply)
		if err == nil {
			pr.last = e.sequence
			return nil
		}
		if pr.ctx.Err() != nil {
			return errProjectionStopped
		}
		if errors.Is(err, ErrUnprocessable) || attempt >= pr.cfg.maxAttempts {
			herr := fmt.Errorf("%w: store %q: event %d (%s) of %s not applied after %s: %w",
				ErrProjectionHalted, pr.s.name, e.sequence, e.Type, e.Entity, attempts(attempt), err)
			pr.mu.Lock()
			pr.haltErr = herr
			pr.mu.Unlock()
			return herr
		}
		t := time.NewTimer(pr.cfg.backoff.Delay(attempt))
		select {
		case <-t.C:
		case <-pr.stopCh:
			t.Stop()
			return errProjectionStopped
		}
	}
}

// handleError halts the projection on an event it could not apply or
// decode; other failures go to the error handler. A halt once Project has
// returned goes to the error handler too (before, Project returns it).
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
	pr.mu.Lock()
	if pr.haltErr == nil { // an event that could not be decoded
		pr.haltErr = fmt.Errorf("%w: store %q: %w", ErrProjectionHalted, pr.s.name, err)
	}
	err = pr.haltErr
	w := pr.w
	pr.mu.Unlock()
	if w != nil {
		pr.errHandler(err, e, msg)
		w.Stop() // from the error handler: does not wait
	}
}

// halt returns why the projection halted, nil if it did not.
func (pr *projector) halt() error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.haltErr
}

// follow closes done once the watcher has ended.
func (pr *projector) follow() {
	<-pr.w.Closed()
	close(pr.done)
}

// Stop stops the projection: once it returns, Apply is not called any more.
// An Apply that runs is waited for within ctx (its context is cancelled if
// ctx ends first); a retry waiting for its backoff ends at once.
func (pr *projector) Stop(ctx context.Context) error {
	pr.stopOnce.Do(func() { close(pr.stopCh) })
	stopped := make(chan struct{})
	go func() {
		pr.w.Stop()
		close(stopped)
	}()
	defer pr.cancel()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		pr.cancel()
		<-stopped
		return ctx.Err()
	}
}

func (pr *projector) Done() <-chan struct{} { return pr.done }

func (pr *projector) Err() error {
	select {
	case <-pr.done:
	default:
		return nil
	}
	if err := pr.halt(); err != nil {
		return err
	}
	return pr.w.Err()
}
