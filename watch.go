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
// WithFilters when given, with an ordered consumer that the client re-creates
// after a gap or a reconnect. Unless WithNoWait is given, it returns once
// every matching event stored when it began has been applied. An event that
// cannot be decoded or that the model refuses goes to the error handler (by
// default, logged through the Manager's logger) and the watcher goes on: an
// event that fails during catch-up still counts as caught up. If ctx ends
// before catch-up, Watch stops the watcher and returns the context's error.
// ctx only bounds Watch itself: the watcher runs until Stop.
//
// With WithDurable it uses a durable consumer instead, which resumes after
// the last event applied; see WithDurable.
func (s *EventStore) Watch(ctx context.Context, model Evolver, opts ...WatchOption) (Watcher, error) {
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
	ocfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects}
	if cfg.afterSeq > 0 {
		ocfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		ocfg.OptStartSeq = cfg.afterSeq + 1
	}
	oc, err := s.stream.OrderedConsumer(ctx, ocfg)
	if err != nil {
		return nil, fmt.Errorf("rita: watch store %q: %w", s.name, err)
	}
	it, err := oc.Messages()
	if err != nil {
		return nil, fmt.Errorf("rita: watch store %q: %w", s.name, err)
	}
	w := &watcher{
		store:      s,
		model:      model,
		match:      match,
		oc:         oc,
		it:         it,
		errHandler: cfg.errHandler,
		caughtUp:   make(chan struct{}),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
	}
	if w.errHandler == nil {
		w.errHandler = w.logError
	}
	if info := oc.CachedInfo(); info != nil {
		w.pending = info.NumPending
	}
	if w.pending == 0 {
		w.markCaughtUp()
	}
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
		return nil, fmt.Errorf("rita: watch store %q: stopped while catching up: %w", s.name, w.err)
	}
}

// watcher applies the messages of an ordered consumer to a model, on its own
// goroutine (run), until Stop.
//
// Invariants: the model is only evolved under mu and only while stopped is
// false, so once Stop has set stopped under mu no event is applied any more.
// The error handler is called outside mu, so it may call Stop.
type watcher struct {
	store      *EventStore
	model      Evolver
	match      []string
	oc         jetstream.Consumer
	it         jetstream.MessagesContext
	errHandler func(error, *Event, jetstream.Msg)

	pending   uint64 // matching events stored at the start
	delivered uint64 // touched by run only

	mu        sync.Mutex
	stopped   atomic.Bool
	inHandler atomic.Bool
	stopOnce  sync.Once

	caughtUp     chan struct{}
	caughtUpOnce sync.Once
	stopCh       chan struct{} // closed by Stop
	done         chan struct{}
	err          error // why run ended; read after done is closed
}

// Stop stops the watcher: once it returns, no event is applied any more, the
// watcher's goroutine has ended and its consumer is removed. It may be called
// more than once and from the error handler (which then does not wait for
// the goroutine it runs on). It must not be called from the Evolver.
func (w *watcher) Stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped.Store(true)
		w.mu.Unlock()
		close(w.stopCh)
		w.it.Stop()
	})
	if !w.inHandler.Load() {
		<-w.done
	}
}

func (w *watcher) markCaughtUp() {
	w.caughtUpOnce.Do(func() { close(w.caughtUp) })
}

// run takes messages until the watcher is stopped, then removes the consumer.
func (w *watcher) run() {
	defer close(w.done)
	defer w.removeConsumer()
	for !w.stopped.Load() {
		msg, err := w.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || w.stopped.Load() {
				w.err = jetstream.ErrMsgIteratorClosed
				return
			}
			w.handleError(fmt.Errorf("rita: watch store %q: %w", w.store.name, err), nil, nil)
			if w.store.m.nc.IsClosed() {
				w.err = err
				return
			}
			w.pause()
			continue
		}
		w.apply(msg)
	}
}

// pause waits a little before taking the next message after an error, or
// until the watcher is stopped.
func (w *watcher) pause() {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.stopCh:
	}
}

func (w *watcher) apply(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		w.handleError(fmt.Errorf("%w: %w", ErrEventDecode, err), nil, msg)
		return
	}
	w.delivered++
	if w.delivered >= w.pending || md.NumPending == 0 {
		defer w.markCaughtUp()
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
	info := w.oc.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := w.store.m.js.DeleteConsumer(ctx, streamName(w.store.name), info.Name); err != nil &&
		!errors.Is(err, jetstream.ErrConsumerNotFound) && !w.store.m.nc.IsClosed() {
		w.handleError(fmt.Errorf("rita: watch store %q: remove consumer: %w", w.store.name, err), nil, nil)
	}
}
