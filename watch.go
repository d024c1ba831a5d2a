package rita

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Watcher represents an active event subscription. Call Stop to drain pending
// messages and stop the underlying consumer.
type Watcher interface {
	Stop()
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
// If ctx ends before catch-up, Watch stops the watcher and returns the
// context's error; without a deadline, it gives up after failing to reach
// the store for 30 s. ctx only bounds Watch itself: the watcher runs until
// Stop, or until the connection is closed or the store deleted (which the
// error handler is told).
//
// With WithDurable it uses a durable consumer instead, which resumes after
// the last event applied; see WithDurable.
func (s *EventStore) Watch(ctx context.Context, model Evolver, opts ...WatchOption) (Watcher, error) {
	if s == nil {
		return nil, errNilStore
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if model == nil {
		return nil, fmt.Errorf("%w: nil model", ErrInvalidArgument)
	}
	cfg, err := newWatchConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.durable.name != "" {
		return s.watchDurable(ctx, model, cfg) // durable_watch.go
	}
	if err := cfg.checkPlainWatch(); err != nil {
		return nil, err
	}
	subjects, match, err := s.selectSubjects(cfg.filters)
	if err != nil {
		return nil, err
	}
	spec := readSpec{subjects: subjects, match: match, afterSeq: cfg.afterSeq}
	w := &watcher{
		store:      s,
		model:      model,
		match:      match,
		spec:       spec,
		errHandler: cfg.errHandler,
		replicated: s.replicated(),
		caughtUp:   make(chan struct{}),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		listenDone: make(chan struct{}),
	}
	if w.errHandler == nil {
		w.errHandler = w.logError
	}
	// A Watch without a deadline gives up on a store it cannot reach,
	// rather than wait forever: while it sets up, and until it has caught
	// up unless it does not wait for that.
	var giveUpAfter time.Duration
	if _, ok := ctx.Deadline(); !ok {
		giveUpAfter = maxOutage
	}
	if w.replicated {
		target, err := s.leaderBound(ctx, spec.bounds(), time.Time{}, giveUpAfter)
		if err != nil {
			return nil, fmt.Errorf("rita: watch store %q: %w", s.name, err)
		}
		w.target = max(target, cfg.afterSeq)
	}
	w.reader = newOrderedReader(s, spec)
	w.reader.giveUpAfter = giveUpAfter
	if err := w.reader.connect(ctx); err != nil {
		return nil, fmt.Errorf("rita: watch store %q: %w", s.name, err)
	}
	if cfg.noWait {
		w.reader.giveUpAfter = 0
	}
	w.reader.onError = func(err error) {
		w.handleError(fmt.Errorf("rita: watch store %q: %w", s.name, err), nil, nil)
	}
	w.pending = w.reader.pending
	if w.replicated && w.target == cfg.afterSeq || !w.replicated && w.pending == 0 {
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

// watcher applies the messages of an orderedReader to a model, on its own
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
	match      []string
	spec       readSpec
	reader     *orderedReader
	errHandler func(error, *Event, jetstream.Msg)
	runCtx     context.Context // ends with Stop
	cancel     context.CancelFunc

	replicated bool
	target     uint64 // replicated: caught up at this sequence
	pending    uint64 // otherwise: matching events stored at the start
	delivered  uint64 // touched by run only
	idles      int    // touched by run only

	mu        sync.Mutex
	stopped   atomic.Bool
	inHandler atomic.Bool
	stopOnce  sync.Once

	caughtUp     chan struct{}
	caughtUpOnce sync.Once
	stopCh       chan struct{} // closed by Stop
	done         chan struct{} // closed when run has ended
	listenDone   chan struct{} // closed when listen has ended
	err          error         // why run ended; read after done is closed
}

// Stop stops the watcher: once it returns, no event is applied any more, the
// watcher's goroutines have ended and its consumer is removed. It may be
// called more than once and from the error handler (which then does not wait
// for the goroutine it runs on). It must not be called from the Evolver.
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

func (w *watcher) markCaughtUp() {
	w.caughtUpOnce.Do(func() { close(w.caughtUp) })
}

func (w *watcher) isCaughtUp() bool {
	select {
	case <-w.caughtUp:
		return true
	default:
		return false
	}
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
		if !w.isCaughtUp() && (w.replicated || w.reader.giveUpAfter > 0) {
			idle = readIdle
		}
		msg, md, err := w.reader.next(w.runCtx, idle)
		if errors.Is(err, errIdle) {
			w.idle()
			continue
		}
		if err != nil {
			if w.stopped.Load() {
				w.err = jetstream.ErrMsgIteratorClosed
				return
			}
			w.err = err
			w.handleError(fmt.Errorf("rita: watch store %q: %w", w.store.name, err), nil, nil)
			return
		}
		w.idles = 0
		w.apply(msg, md)
	}
}

// idle handles a wait without a message while catching up: it asks the
// leader whether anything is left to catch up on, and replaces a consumer
// that stays silent.
func (w *watcher) idle() {
	if now, err := w.store.leaderLastSeq(w.runCtx, w.spec.bounds(), time.Time{}); err == nil {
		done := max(w.reader.last, w.spec.afterSeq)
		if w.replicated {
			// The target may have been removed by a limit meanwhile.
			w.target = min(w.target, max(now, w.spec.afterSeq))
		}
		if now <= done || w.replicated && done >= w.target {
			w.caughtUpNow()
			return
		}
	}
	if w.idles++; w.idles >= readStallIdles {
		w.reader.restart()
		w.idles = 0
	}
}

// caughtUpNow marks the watcher caught up; from then on it no longer gives
// up on an unreachable store.
func (w *watcher) caughtUpNow() {
	w.reader.giveUpAfter = 0
	w.markCaughtUp()
}

func (w *watcher) apply(msg jetstream.Msg, md *jetstream.MsgMetadata) {
	w.delivered++
	if w.replicated && md.Sequence.Stream >= w.target ||
		!w.replicated && (w.delivered >= w.pending || md.NumPending == 0) {
		defer w.caughtUpNow()
	}
	if w.match != nil && !matchesAny(w.match, msg.Subject()) {
		return
	}
	e, err := decodeEvent(w.store.m.types, msg.Subject(), msg.Headers(), msg.Data(), md.Sequence.Stream, md.Timestamp)
	if err != nil {
		w.handleError(err, nil, msg)
		return
	}
	w.mu.Lock()
	if w.stopped.Load() {
		w.mu.Unlock()
		return
	}
	err = w.model.Evolve(e)
	w.mu.Unlock()
	if err != nil {
		w.handleError(fmt.Errorf("rita: watch store %q: evolve event %d (%s): %w", w.store.name, e.sequence, e.Type, err), e, msg)
	}
}

func (w *watcher) handleError(err error, e *Event, msg jetstream.Msg) {
	w.inHandler.Store(true)
	defer w.inHandler.Store(false)
	w.errHandler(err, e, msg)
}

func (w *watcher) logError(err error, e *Event, _ jetstream.Msg) {
	attrs := []any{slog.String("store", w.store.name), slog.Any("error", err)}
	if e != nil {
		attrs = append(attrs, slog.Uint64("sequence", e.sequence), slog.String("entity", e.Entity), slog.String("type", e.Type))
	}
	w.store.m.logger.Error("rita: watch", attrs...)
}

func (w *watcher) removeConsumer() {
	err := w.reader.close(context.Background())
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
				w.reader.interrupt()
			case <-w.stopCh:
				return
			case <-w.done:
				return
			}
		}
	}()
}
