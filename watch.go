package rita

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// Watcher represents an active event subscription. Call Stop to stop
// applying events and remove the underlying consumer.
//
// Watchers are made by Watch; the interface is not meant to be implemented
// elsewhere. Its methods are safe for concurrent use.
type Watcher interface {
	// Stop stops the watcher: once it returns, no event is applied any
	// more, the watcher's goroutines have ended and its consumer is
	// removed. It may be called more than once and from the error
	// handler (which then does not wait for the goroutine it runs on). It
	// must not be called from the Evolver.
	Stop()

	// Closed returns a channel that is closed once the watcher has ended:
	// after Stop, or by itself, when its connection was closed or its
	// store deleted.
	Closed() <-chan struct{}

	// Err returns why the watcher ended by itself, once Closed is closed;
	// nil while it runs and after Stop.
	Err() error

	// WaitFor returns once the watcher has applied every event it selects
	// up to sequence seq of the store: the sequence Append or Decide
	// returned, to read one's own writes. Events the watcher does not
	// select are not waited for, and an event that failed to apply (it
	// went to the error handler) counts as applied. 0 returns at once. A
	// sequence the store has not reached yet is not waited for either:
	// WaitFor returns once the selected events stored so far are applied.
	//
	// It asks the stream leader, once, whether a selected event lies
	// between the last one applied and seq, and then waits for the watcher
	// to get there, without polling. It fails with ctx's error (saying
	// which sequence it waited for and where the watcher was), or when the
	// watcher ends first (wrapping Err if it ended by itself). Transient
	// failures of the question are retried, as reads are.
	WaitFor(ctx context.Context, seq uint64) error
}

// Watch creates a watcher that asynchronously consumes events from the event
// store and applies them to the provided Evolver. The watcher can be
// configured with various options such as error handling and subject patterns
// to filter events. Since this will update the Evolver asynchronously, the
// Evolver implementation must be thread-safe. Use the `NewModel()` helper to
// create a thread-safe model.
//
// Watch reads the store from the start (or after WithAfterSequence), through
// WithFilters when given, in stream order, each event once. Its consumer
// sends idle heartbeats; when it fails (a gap, two missed heartbeats, a
// consumer lost with its server) or the connection reconnects, the watcher
// replaces it with one that starts after the last event applied, so it rides
// out restarts and leader changes without a gap or a repeated event. Unless
// WithNoWait is given, it returns once every matching event stored when it
// began has been applied (on a replicated store, as the stream leader counts
// them, so an event whose Append has returned is among them). An event that
// cannot be decoded or that the model refuses goes to the error handler (by
// default, logged through the Manager's logger) and the watcher goes on: an
// event that fails during catch-up still counts as caught up. Each failure of
// the consumer goes to the error handler too, with a nil event and message.
//
// While it sets up and catches up, Watch tries again after transient
// failures until ctx ends (or, without a deadline, until it has failed to
// reach the store for 30 s); it then stops the watcher and returns an error
// that matches the context's error. ctx only bounds Watch itself: the
// watcher runs until Stop, or until the connection is closed or the store
// deleted (see Watcher.Closed).
//
// Watch keeps no state on the server; Durable(name).Watch resumes after a
// restart instead.
func (s *EventStore) Watch(ctx context.Context, model Evolver, opts ...WatchOption) (Watcher, error) {
	cfg, err := begin(s, ctx, opWatch, "model", model == nil, opts)
	if err != nil {
		return nil, err
	}
	w, err := s.watch(ctx, model, cfg)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// watch starts a watcher of cfg (selection, error handler, no wait).
func (s *EventStore) watch(ctx context.Context, model Evolver, cfg *config) (*watcher, error) {
	spec, err := s.readSpec(cfg.filters)
	if err != nil {
		return nil, err
	}
	spec.After = cfg.after
	w := &watcher{
		store:      s,
		model:      model,
		spec:       spec,
		errHandler: cfg.errHandler,
		caughtUp:   make(chan struct{}),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		listenDone: make(chan struct{}),
	}
	if w.errHandler == nil {
		w.errHandler = func(err error, e *Event, _ jetstream.Msg) { s.m.logError("watch", "", s.name, err, e) }
	}
	if s.src.Replicated {
		target, err := read.Bound(ctx, s.src, spec.Bounds(), time.Time{})
		if err != nil {
			return nil, fmt.Errorf("rita: watch store %q: %w", s.name, err)
		}
		w.target = max(target, cfg.after)
	}
	w.reader = read.NewOrdered(ctx, s.src, spec)
	if err := w.reader.Connect(ctx); err != nil {
		return nil, fmt.Errorf("rita: watch store %q: %w", s.name, err)
	}
	if cfg.noWait {
		w.reader.Unbounded()
	}
	w.reader.OnError = func(err error) {
		w.handleError(fmt.Errorf("rita: watch store %q: %w", s.name, err), nil, nil)
	}
	w.pos.advance(cfg.after)
	w.pending = w.reader.Pending()
	if s.src.Replicated && w.target == cfg.after || !s.src.Replicated && w.pending == 0 {
		w.caughtUpNow()
	}
	w.runCtx, w.cancel = context.WithCancel(context.Background())
	w.listen()
	go w.run()
	if cfg.noWait {
		return w, nil
	}
	select {
	case <-w.caughtUp:
		return w, nil
	case <-ctx.Done():
		w.Stop()
		return nil, fmt.Errorf("rita: watch store %q: catching up: %w", s.name, ctx.Err())
	case <-w.done:
		w.Stop()
		return nil, fmt.Errorf("rita: watch store %q: stopped while catching up: %w", s.name, w.err)
	}
}

// watcher applies the messages of an Ordered reader to a model, on its own
// goroutine (run), until Stop. A second goroutine (listen) makes the reader
// replace its consumer when the connection has moved to another server, so
// events flow again without waiting for missed heartbeats.
//
// Invariants: the model is only evolved under mu and only while stopped is
// false, so once Stop has set stopped under mu no event is applied any more.
// The error handler is called outside mu, so it may call Stop. The reader is
// used by run only (and interrupted by listen).
type watcher struct {
	store      *EventStore
	model      Evolver
	spec       *read.Spec
	reader     *read.Ordered
	errHandler func(error, *Event, jetstream.Msg)
	runCtx     context.Context // ends with Stop
	cancel     context.CancelFunc

	pos position // the last sequence applied, for WaitFor

	target    uint64 // replicated: caught up at this sequence
	pending   uint64 // otherwise: matching events stored at the start
	delivered uint64 // touched by run only
	idles     int    // touched by run only

	mu        sync.Mutex
	stopped   atomic.Bool
	inHandler atomic.Bool
	stopOnce  sync.Once

	caughtUp     chan struct{}
	caughtUpOnce sync.Once
	stopCh       chan struct{} // closed by Stop
	done         chan struct{} // closed when run has ended
	listenDone   chan struct{} // closed when listen has ended
	err          error         // why run ended by itself; read after done is closed
}

func (w *watcher) Stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped.Store(true)
		w.mu.Unlock()
		close(w.stopCh)
		w.cancel()
	})
	if !w.inHandler.Load() {
		<-w.done
		<-w.listenDone
	}
}

func (w *watcher) Closed() <-chan struct{} { return w.done }

func (w *watcher) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

func (w *watcher) isCaughtUp() bool {
	select {
	case <-w.caughtUp:
		return true
	default:
		return false
	}
}

// caughtUpNow marks the watcher caught up; from then on it no longer gives
// up on an unreachable store.
func (w *watcher) caughtUpNow() {
	w.reader.Unbounded()
	w.caughtUpOnce.Do(func() { close(w.caughtUp) })
}

// run takes messages until the watcher is stopped or the reader fails for
// good (the connection is closed, the store deleted), then removes the
// consumer.
func (w *watcher) run() {
	defer close(w.done)
	defer w.removeConsumer()
	for {
		// While catching up, wait with an idle time: a replicated store
		// asks the leader again, and a reader that may give up notices a
		// server that is gone.
		var idle time.Duration
		if !w.isCaughtUp() {
			idle = read.Idle
		}
		msg, err := w.reader.Next(w.runCtx, idle)
		if errors.Is(err, read.ErrIdle) {
			w.idle()
			continue
		}
		if err != nil {
			if w.stopped.Load() {
				return
			}
			w.err = err
			w.handleError(fmt.Errorf("rita: watch store %q: %w", w.store.name, err), nil, nil)
			return
		}
		w.idles = 0
		w.apply(msg)
	}
}

// idle handles a wait without a message while catching up: it asks the
// leader whether anything is left to catch up on, and replaces a consumer
// that stays silent.
func (w *watcher) idle() {
	if now, err := read.BoundOnce(w.runCtx, w.store.src, w.spec.Bounds(), time.Time{}); err == nil {
		done := max(w.reader.Last(), w.spec.After)
		if w.store.src.Replicated {
			// The target may have been removed by a limit meanwhile.
			w.target = min(w.target, max(now, w.spec.After))
		}
		if now <= done || w.store.src.Replicated && done >= w.target {
			w.caughtUpNow()
			return
		}
	}
	if w.idles++; w.idles >= read.StallIdles {
		w.reader.Restart()
		w.idles = 0
	}
}

func (w *watcher) apply(msg *read.Msg) {
	w.delivered++
	if w.store.src.Replicated && msg.Seq >= w.target ||
		!w.store.src.Replicated && (w.delivered >= w.pending || msg.NumPending == 0) {
		defer w.caughtUpNow()
	}
	if w.spec.Match != nil && !wire.MatchesAny(w.spec.Match, msg.Subject) {
		w.pos.advance(msg.Seq)
		return
	}
	e, err := decodeEvent(context.Background(), w.store.m.types, w.store.ring, &msg.Msg)
	if err != nil {
		w.pos.advance(msg.Seq)
		w.handleError(err, nil, msg.Raw)
		return
	}
	w.mu.Lock()
	if w.stopped.Load() {
		w.mu.Unlock()
		return
	}
	err = w.model.Evolve(e)
	w.mu.Unlock()
	w.pos.advance(msg.Seq)
	if err != nil {
		w.handleError(fmt.Errorf("rita: watch store %q: evolve event %d (%s): %w", w.store.name, e.sequence, e.Type, err), e, msg.Raw)
	}
}

func (w *watcher) WaitFor(ctx context.Context, seq uint64) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidArgument)
	}
	src := w.store.src
	for {
		at, _ := w.pos.get()
		if at >= seq {
			return nil
		}
		if err := w.endedBefore(at, seq); err != nil {
			return err
		}
		// The first selected event after the watcher's place: none up to
		// seq means there is nothing to wait for.
		var next uint64
		err := src.Do(ctx, "the next event", func(ctx context.Context) (err error) {
			next, err = jsapi.NextSeq(ctx, src.NC, src.Stream, w.spec.Bounds(), at, jsapi.FirstAttemptTimeout)
			return err
		})
		if err != nil {
			return fmt.Errorf("rita: watch store %q: waiting for sequence %d, applied up to %d: %w", w.store.name, seq, at, err)
		}
		if next == 0 || next > seq {
			return nil
		}
		for at < next {
			var advanced <-chan struct{}
			at, advanced = w.pos.get()
			if at >= next {
				break
			}
			select {
			case <-advanced:
			case <-ctx.Done():
				return fmt.Errorf("rita: watch store %q: waiting for sequence %d, applied up to %d: %w", w.store.name, seq, at, ctx.Err())
			case <-w.done:
				return w.endedBefore(at, seq)
			}
		}
	}
}

// endedBefore returns, once the watcher has ended, the error of WaitFor(seq)
// with the watcher at at; nil while it runs.
func (w *watcher) endedBefore(at, seq uint64) error {
	select {
	case <-w.done:
	default:
		return nil
	}
	if w.err != nil {
		return fmt.Errorf("rita: watch store %q: ended at sequence %d, before %d: %w", w.store.name, at, seq, w.err)
	}
	return fmt.Errorf("rita: watch store %q: stopped at sequence %d, before %d", w.store.name, at, seq)
}

// position is how far a watcher has got, for WaitFor: advance costs an
// atomic store while nobody waits.
//
// Invariant: a waiter sets waiting before it reads seq, and advance stores
// seq before it reads waiting, so a waiter that read the old seq is woken.
type position struct {
	seq     atomic.Uint64
	waiting atomic.Bool
	mu      sync.Mutex
	ch      chan struct{} // closed at the next advance
}

// advance records that every event up to seq has been applied.
func (p *position) advance(seq uint64) {
	p.seq.Store(seq)
	if p.waiting.Load() {
		p.mu.Lock()
		if p.ch != nil {
			close(p.ch)
			p.ch = nil
		}
		p.waiting.Store(false)
		p.mu.Unlock()
	}
}

// get returns the sequence reached and a channel closed once it advances.
func (p *position) get() (uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
	p.waiting.Store(true)
	return p.seq.Load(), p.ch
}

func (w *watcher) handleError(err error, e *Event, msg jetstream.Msg) {
	w.inHandler.Store(true)
	defer w.inHandler.Store(false)
	w.errHandler(err, e, msg)
}

func (w *watcher) removeConsumer() {
	err := w.reader.Close(context.Background())
	if err != nil && !w.store.m.nc.IsClosed() {
		w.handleError(fmt.Errorf("rita: watch store %q: remove consumer: %w", w.store.name, err), nil, nil)
	}
}

// listen interrupts the reader each time the connection reconnects, until
// the watcher stops, run ends or the connection closes.
func (w *watcher) listen() {
	nc := w.store.m.nc
	ch := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	go func() {
		defer close(w.listenDone)
		defer nc.RemoveStatusListener(ch)
		for {
			select {
			case st, ok := <-ch:
				if !ok || st == nats.CLOSED {
					return
				}
				w.reader.Interrupt()
			case <-w.stopCh:
				return
			case <-w.done:
				return
			}
		}
	}()
}
