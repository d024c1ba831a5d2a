package rita_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/synadia-labs/rita"
)

const waitFor = 10 * time.Second

// leakCheck snapshots the goroutines running now (the server's, the
// connection's) and returns a function that fails t if others remain.
func leakCheck(t *testing.T) func() {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		goleak.VerifyNone(t, ignore)
	}
}

// warmUp runs an Evolve so that the server has started whatever it starts
// lazily for a store before the goroutines are counted.
func warmUp(t *testing.T, s *rita.EventStore) {
	t.Helper()
	if _, err := s.Evolve(testCtx(t), &recorder{}); err != nil {
		t.Fatalf("warm-up Evolve: %v", err)
	}
}

func (e *env) eventuallyNoConsumers(t *testing.T, name string) {
	t.Helper()
	eventually(t, waitFor, func() bool { return e.consumers(t, name) == 0 }, "consumers of %s: %d", name, e.consumers(t, name))
}

func TestWatchCatchUpAndLive(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "watch")
	appendN(t, s, "order.1", "placed", 50)
	appendEach(t, s, rawEvent("order.2", "placed", "a"), rawEvent("user.1", "created", "b"))
	warmUp(t, s)
	verify := leakCheck(t)

	var r recorder
	w, err := s.Watch(testCtx(t), &r)
	requireNoError(t, err)
	// Catch-up: every event present at the start is applied when Watch returns.
	requireSeqs(t, r.seqs(), seqRange(1, 52))

	// Live: one by one and as a batch.
	appendEach(t, s, rawEvent("order.1", "shipped", "c"), rawEvent("order.3", "placed", "d"))
	appendN(t, s, "order.4", "placed", 5)
	eventually(t, waitFor, func() bool { return r.count() == 59 }, "applied %d of 59", r.count())
	requireSeqs(t, r.seqs(), seqRange(1, 59))
	last := r.all()[58]
	if last.Entity != "order.4" || last.Type != "placed" || last.Subject() != "$ES.watch.order.4.placed" || last.ID == "" {
		t.Fatalf("last event: %s %s %s %q", last.Entity, last.Type, last.Subject(), last.ID)
	}

	w.Stop()
	e.eventuallyNoConsumers(t, "watch")
	verify()
}

func TestWatchEmptyStore(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "empty")
	var r recorder
	w, err := s.Watch(testCtx(t), &r)
	requireNoError(t, err)
	defer w.Stop()
	if r.count() != 0 {
		t.Fatalf("applied %d events of an empty store", r.count())
	}
	appendEach(t, s, rawEvent("order.1", "placed", "a"))
	eventually(t, waitFor, func() bool { return r.count() == 1 }, "applied %d", r.count())
	requireSeqs(t, r.seqs(), []uint64{1})
}

func TestWatchNoWait(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "nowait")
	appendN(t, s, "order.1", "placed", 300)

	release := make(chan struct{})
	r := recorder{fail: func(*rita.Event, int) error {
		<-release
		return nil
	}}
	// The model cannot apply anything until released: Watch must not wait.
	type result struct {
		w   rita.Watcher
		err error
	}
	res := make(chan result, 1)
	go func() {
		w, err := s.Watch(testCtx(t), &r, rita.WithNoWait())
		res <- result{w, err}
	}()
	var got result
	select {
	case got = <-res:
	case <-time.After(waitFor):
		close(release)
		t.Fatalf("Watch with WithNoWait waited for catch-up")
	}
	if n := r.count(); n != 0 {
		t.Errorf("%d events applied by a blocked model", n)
	}
	close(release)
	requireNoError(t, got.err)
	w := got.w
	defer w.Stop()
	eventually(t, waitFor, func() bool { return r.count() == 300 }, "applied %d of 300", r.count())
	appendEach(t, s, rawEvent("order.1", "shipped", "x"))
	eventually(t, waitFor, func() bool { return r.count() == 301 }, "applied %d of 301", r.count())
	requireSeqs(t, r.seqs(), seqRange(1, 301))
}

func TestWatchSelection(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "wsel")
	fillEvolveFixture(t, s) // sequences 1..8, see evolveFixture

	tests := []struct {
		name      string
		opts      []rita.WatchOption
		catchUp   []uint64
		afterLive []uint64 // after the live events 9..12 below
	}{
		{"entity", []rita.WatchOption{rita.WithFilters("order.1")}, []uint64{1, 3, 7}, []uint64{1, 3, 7, 10, 12}},
		{"entity type", []rita.WatchOption{rita.WithFilters("user")}, []uint64{4, 6, 8}, []uint64{4, 6, 8, 11}},
		{"event type", []rita.WatchOption{rita.WithFilters("*.*.shipped")}, []uint64{3, 5, 8}, []uint64{3, 5, 8, 9, 12}},
		{"overlapping", []rita.WatchOption{rita.WithFilters("order", "order.1")}, []uint64{1, 2, 3, 5, 7}, []uint64{1, 2, 3, 5, 7, 9, 10, 12}},
		{"partially overlapping", []rita.WatchOption{rita.WithFilters("*.1", "order.*")}, []uint64{1, 2, 3, 4, 5, 7, 8}, []uint64{1, 2, 3, 4, 5, 7, 8, 9, 10, 12}},
		{"after", []rita.WatchOption{rita.WithAfterSequence(5)}, []uint64{6, 7, 8}, []uint64{6, 7, 8, 9, 10, 11, 12}},
		{"after the last", []rita.WatchOption{rita.WithAfterSequence(8)}, nil, []uint64{9, 10, 11, 12}},
		{"filter and after", []rita.WatchOption{rita.WithFilters("order"), rita.WithAfterSequence(3)}, []uint64{5, 7}, []uint64{5, 7, 9, 10, 12}},
		{"no match yet", []rita.WatchOption{rita.WithFilters("user.2.deleted")}, nil, nil},
	}
	watchers := make([]rita.Watcher, len(tests))
	recorders := make([]*recorder, len(tests))
	for i, tt := range tests {
		r := &recorder{}
		w, err := s.Watch(testCtx(t), r, tt.opts...)
		if err != nil {
			t.Fatalf("%s: Watch: %v", tt.name, err)
		}
		defer w.Stop()
		watchers[i], recorders[i] = w, r
		if got := r.seqs(); !equalSeqs(got, tt.catchUp) {
			t.Errorf("%s: caught up with %v, want %v", tt.name, got, tt.catchUp)
		}
	}

	// Live: 9 order.2 shipped, 10 order.1 paid, 11 user.7 created,
	// 12 order.1 shipped. Each watcher waits for its own last event.
	appendEach(t, s,
		rawEvent("order.2", "shipped", "9"),
		rawEvent("order.1", "paid", "10"),
		rawEvent("user.7", "created", "11"),
		rawEvent("order.1", "shipped", "12"),
	)
	for i, tt := range tests {
		r := recorders[i]
		if len(tt.afterLive) > 0 {
			want := len(tt.afterLive)
			eventually(t, waitFor, func() bool { return r.count() >= want }, "%s: applied %v", tt.name, r.seqs())
		}
	}
	for i, tt := range tests {
		if got := recorders[i].seqs(); !equalSeqs(got, tt.afterLive) {
			t.Errorf("%s: applied %v, want %v", tt.name, got, tt.afterLive)
		}
	}
	for _, w := range watchers {
		w.Stop()
	}
	e.eventuallyNoConsumers(t, "wsel")
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type handled struct {
	err     error
	seq     uint64
	hasMsg  bool
	subject string
	event   *rita.Event
}

type handlerLog struct {
	mu    sync.Mutex
	calls []handled
}

func (h *handlerLog) handle(err error, e *rita.Event, msg jetstream.Msg) {
	c := handled{err: err, event: e, hasMsg: msg != nil}
	if e != nil {
		c.seq = e.Sequence()
	}
	if msg != nil {
		c.subject = msg.Subject()
	}
	h.mu.Lock()
	h.calls = append(h.calls, c)
	h.mu.Unlock()
}

func (h *handlerLog) get() []handled {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]handled(nil), h.calls...)
}

func TestWatchErrHandler(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "errs")
	fillEvolveFixture(t, s)

	// The model refuses sequence 3, the last existing one (8), and 10.
	refuse := map[uint64]bool{3: true, 8: true, 10: true}
	r := recorder{fail: func(ev *rita.Event, _ int) error {
		if refuse[ev.Sequence()] {
			return fmt.Errorf("sequence %d: %w", ev.Sequence(), errModel)
		}
		return nil
	}}
	var h handlerLog
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	w, err := s.Watch(ctx, &r, rita.WithErrHandler(h.handle))
	requireNoError(t, err) // catch-up completes despite the failures
	defer w.Stop()
	requireSeqs(t, r.seqs(), []uint64{1, 2, 4, 5, 6, 7})
	calls := h.get()
	if len(calls) != 2 {
		t.Fatalf("handler called %d times, want 2: %+v", len(calls), calls)
	}
	for i, want := range []uint64{3, 8} {
		c := calls[i]
		if !errors.Is(c.err, errModel) {
			t.Errorf("handler call %d: error %v, want the model's", i, c.err)
		}
		if c.seq != want || !c.hasMsg || c.event == nil || c.subject != c.event.Subject() {
			t.Errorf("handler call %d: seq %d, msg %v subject %q, want seq %d with its message", i, c.seq, c.hasMsg, c.subject, want)
		}
	}
	if calls[0].event != nil && (calls[0].event.Entity != "order.1" || calls[0].event.Type != "shipped") {
		t.Errorf("handler got event %s %s, want order.1 shipped", calls[0].event.Entity, calls[0].event.Type)
	}

	// Live failures go to the handler too, and the watcher goes on.
	appendEach(t, s, rawEvent("order.9", "placed", "9"), rawEvent("order.9", "placed", "10"), rawEvent("order.9", "placed", "11"))
	eventually(t, waitFor, func() bool { return r.count() == 8 }, "applied %v", r.seqs())
	requireSeqs(t, r.seqs(), []uint64{1, 2, 4, 5, 6, 7, 9, 11})
	calls = h.get()
	if len(calls) != 3 || calls[2].seq != 10 || !errors.Is(calls[2].err, errModel) {
		t.Fatalf("handler calls %+v, want a third for sequence 10", calls)
	}
}

func TestWatchUndecodableEvent(t *testing.T) {
	e := newEnv(t)
	raw := e.store(t, "undec")
	typed, err := e.manager(t, rita.WithRegistry(newRegistry(t, orderTypes()))).GetEventStore(testCtx(t), "undec")
	requireNoError(t, err)
	_, err = typed.Append(testCtx(t), []*rita.Event{{Entity: "order.1", Data: &placedEvt{OrderID: "1"}}})
	requireNoError(t, err)
	appendEach(t, raw, rawEvent("order.1", "mystery", "?"))
	_, err = typed.Append(testCtx(t), []*rita.Event{{Entity: "order.1", Data: &shippedEvt{OrderID: "1"}}})
	requireNoError(t, err)

	var r recorder
	var h handlerLog
	w, err := typed.Watch(testCtx(t), &r, rita.WithErrHandler(h.handle))
	requireNoError(t, err)
	defer w.Stop()
	requireSeqs(t, r.seqs(), []uint64{1, 3})
	calls := h.get()
	if len(calls) != 1 || !errors.Is(calls[0].err, rita.ErrEventDecode) || calls[0].event != nil || !calls[0].hasMsg || calls[0].subject != "$ES.undec.order.1.mystery" {
		t.Fatalf("handler calls %+v, want one ErrEventDecode for sequence 2 with its message and no event", calls)
	}
}

func TestWatchDefaultHandlerLogs(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	e := newEnv(t, rita.WithLogger(logger))
	s := e.store(t, "logs")
	appendEach(t, s, rawEvent("order.1", "placed", "a"), rawEvent("order.1", "shipped", "b"), rawEvent("order.1", "paid", "c"))

	r := recorder{fail: func(ev *rita.Event, _ int) error {
		if ev.Sequence() == 2 {
			return errModel
		}
		return nil
	}}
	w, err := s.Watch(testCtx(t), &r)
	requireNoError(t, err)
	defer w.Stop()
	requireSeqs(t, r.seqs(), []uint64{1, 3})
	eventually(t, waitFor, func() bool { return strings.Contains(buf.String(), errModel.Error()) }, "log %q does not hold the model's error", buf.String())
	if strings.Count(buf.String(), errModel.Error()) != 1 {
		t.Fatalf("log %q, want the error once", buf.String())
	}
}

func TestWatchContext(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "wctx")
	appendN(t, s, "order.1", "placed", 1000)
	warmUp(t, s)

	t.Run("cancelled before", func(t *testing.T) {
		verify := leakCheck(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var r recorder
		w, err := s.Watch(ctx, &r)
		requireErrorIs(t, err, context.Canceled)
		if w != nil {
			t.Fatalf("Watch returned a watcher with an error")
		}
		e.eventuallyNoConsumers(t, "wctx")
		n := r.count()
		consistently(t, 200*time.Millisecond, func() bool { return r.count() == n }, "events applied after Watch failed: %d then %d", n, r.count())
		verify()
	})

	t.Run("cancelled during catch-up", func(t *testing.T) {
		verify := leakCheck(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		entered := make(chan struct{})
		release := make(chan struct{})
		r := recorder{fail: func(_ *rita.Event, applied int) error {
			if applied == 0 {
				close(entered)
				<-release
			}
			return nil
		}}
		type result struct {
			w   rita.Watcher
			err error
		}
		res := make(chan result, 1)
		go func() {
			w, err := s.Watch(ctx, &r)
			res <- result{w, err}
		}()
		select {
		case <-entered:
		case <-time.After(waitFor):
			t.Fatalf("the model was never called")
		}
		cancel()
		close(release)
		var got result
		select {
		case got = <-res:
		case <-time.After(waitFor):
			t.Fatalf("Watch did not return after its context was cancelled")
		}
		requireErrorIs(t, got.err, context.Canceled)
		if got.w != nil {
			got.w.Stop()
			t.Fatalf("Watch returned a watcher with an error")
		}
		n := r.count()
		if n >= 1000 {
			t.Fatalf("all events applied although the context was cancelled")
		}
		consistently(t, 200*time.Millisecond, func() bool { return r.count() == n }, "events applied after Watch failed: %d then %d", n, r.count())
		e.eventuallyNoConsumers(t, "wctx")
		verify()
	})

	t.Run("context ends only the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var r recorder
		w, err := s.Watch(ctx, &r)
		requireNoError(t, err)
		defer w.Stop()
		cancel()
		appendEach(t, s, rawEvent("order.1", "shipped", "after"))
		eventually(t, waitFor, func() bool { return r.count() == 1001 }, "applied %d of 1001", r.count())
	})
}

func TestWatchStop(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "stop")
	appendN(t, s, "order.1", "placed", 10)
	warmUp(t, s)
	verify := leakCheck(t)

	var r recorder
	w, err := s.Watch(testCtx(t), &r)
	requireNoError(t, err)
	if r.count() != 10 {
		t.Fatalf("caught up with %d, want 10", r.count())
	}
	w.Stop()
	appendN(t, s, "order.1", "shipped", 5)
	consistently(t, 300*time.Millisecond, func() bool { return r.count() == 10 }, "applied %d after Stop", r.count())
	w.Stop() // twice is fine
	e.eventuallyNoConsumers(t, "stop")
	verify()
}

func TestWatchStopWhileBusy(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "busy")
	warmUp(t, s)
	verify := leakCheck(t)

	var r recorder
	w, err := s.Watch(testCtx(t), &r)
	requireNoError(t, err)

	// Events keep arriving while the watcher is stopped, from several
	// goroutines that call Stop at once.
	stopAppending := make(chan struct{})
	appenderDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopAppending:
				appenderDone <- nil
				return
			default:
			}
			if _, err := s.Append(context.Background(), []*rita.Event{rawEvent("order.1", "placed", "x")}); err != nil {
				appenderDone <- err
				return
			}
		}
	}()
	eventually(t, waitFor, func() bool { return r.count() >= 20 }, "applied %d", r.count())
	var stops sync.WaitGroup
	for range 3 {
		stops.Go(w.Stop)
	}
	stops.Wait()
	n := r.count()
	consistently(t, 300*time.Millisecond, func() bool { return r.count() == n }, "applied %d after Stop returned with %d", r.count(), n)
	close(stopAppending)
	requireNoError(t, <-appenderDone)
	requireSeqs(t, r.seqs(), seqRange(1, uint64(n)))
	e.eventuallyNoConsumers(t, "busy")
	verify()
}

// Stop may be called from the error handler.
func TestWatchStopFromHandler(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "hstop")
	warmUp(t, s)
	verify := leakCheck(t)

	var (
		w       rita.Watcher
		wMu     sync.Mutex
		stopped atomic.Bool
	)
	r := recorder{fail: func(ev *rita.Event, _ int) error {
		if ev.Sequence() == 2 {
			return errModel
		}
		return nil
	}}
	handler := func(err error, _ *rita.Event, _ jetstream.Msg) {
		wMu.Lock()
		defer wMu.Unlock()
		if errors.Is(err, errModel) && w != nil {
			w.Stop()
			stopped.Store(true)
		}
	}
	wMu.Lock()
	var err error
	w, err = s.Watch(testCtx(t), &r, rita.WithErrHandler(handler))
	wMu.Unlock()
	requireNoError(t, err)
	appendEach(t, s, rawEvent("order.1", "a", "1"), rawEvent("order.1", "b", "2"))
	eventually(t, waitFor, stopped.Load, "handler never stopped the watcher")
	appendEach(t, s, rawEvent("order.1", "c", "3"))
	consistently(t, 300*time.Millisecond, func() bool { return r.count() == 1 }, "applied %v after Stop", r.seqs())
	w.Stop()
	e.eventuallyNoConsumers(t, "hstop")
	verify()
}

func TestWatchInvalid(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "winv")
	appendN(t, s, "order.1", "placed", 3)
	tests := []struct {
		name  string
		model rita.Evolver
		opts  []rita.WatchOption
		want  error
	}{
		{"stop sequence", &recorder{}, []rita.WatchOption{rita.WithStopSequence(2)}, rita.ErrInvalidOption},
		{"nil option", &recorder{}, []rita.WatchOption{nil}, rita.ErrInvalidOption},
		{"too many tokens", &recorder{}, []rita.WatchOption{rita.WithFilters("a.b.c.d")}, rita.ErrSubjectTooManyTokens},
		{"bad filter", &recorder{}, []rita.WatchOption{rita.WithFilters("a b")}, rita.ErrFilterInvalid},
		{"nil model", nil, nil, rita.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := s.Watch(testCtx(t), tt.model, tt.opts...)
			requireErrorIs(t, err, tt.want)
			if w != nil {
				w.Stop()
				t.Fatalf("Watch returned a watcher with an error")
			}
			if r, ok := tt.model.(*recorder); ok && r.count() != 0 {
				t.Fatalf("refused Watch applied %d events", r.count())
			}
			e.requireNoConsumers(t, "winv")
		})
	}
	_, err := s.Watch(nilCtx(), &recorder{})
	requireErrorIs(t, err, rita.ErrInvalidArgument)
}

// A Watch and DecideAndEvolve feeding the same Model never apply an event
// twice.
func TestWatchAndDecideAndEvolve(t *testing.T) {
	e, s := newBankEnv(t, "both")
	ctx := testCtx(t)
	// Some history the Watch catches up with.
	for i := range 5 {
		_, _, err := s.Decide(ctx, newLedger(), &rita.Command{Data: &depositCmd{Account: fmt.Sprint(i % 2), Amount: 10}})
		requireNoError(t, err)
	}
	warmUp(t, s)
	verify := leakCheck(t)

	bank := newLedger()
	m := rita.NewModel(bank)
	w, err := s.Watch(ctx, m)
	requireNoError(t, err)
	if m.Sequence() != 5 {
		t.Fatalf("caught up to %d, want 5", m.Sequence())
	}

	const perAccount = 20
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for a := range 3 {
		wg.Go(func() {
			for i := range perAccount {
				cmd := &rita.Command{Data: &depositCmd{Account: fmt.Sprint(a), Amount: 1}}
				if i%5 == 4 {
					cmd = &rita.Command{Data: &withdrawCmd{Account: fmt.Sprint(a), Amount: 1}}
				}
				if _, _, err := s.DecideAndEvolve(ctx, m, cmd); err != nil {
					errs <- fmt.Errorf("account %d command %d: %w", a, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = 5 + 3*perAccount
	eventually(t, waitFor, func() bool { return m.Sequence() == total }, "model at %d, want %d", m.Sequence(), total)
	w.Stop()
	requireNoError(t, m.View(func(b *ledger) error {
		if len(b.Applied) != total {
			return fmt.Errorf("applied %d sequences, want %d", len(b.Applied), total)
		}
		for seq, n := range b.Applied {
			if n != 1 {
				return fmt.Errorf("sequence %d applied %d times", seq, n)
			}
		}
		// 3 of 5 deposits of 10 went to account 0, 2 to account 1; then
		// each account got 16 deposits and 4 withdrawals of 1.
		want := map[string]int{"account.0": 30 + 12, "account.1": 20 + 12, "account.2": 12}
		for acc, v := range want {
			if b.Balances[acc] != v {
				return fmt.Errorf("%s balance %d, want %d", acc, b.Balances[acc], v)
			}
		}
		return nil
	}))
	e.eventuallyNoConsumers(t, "both")
	verify()
}

// The watcher's consumer is re-created after the connection is lost: no
// event is missed or applied twice.
func TestWatchSurvivesReconnect(t *testing.T) {
	e := newEnv(t)
	writer := e.store(t, "recon")
	// The watcher has a connection of its own, which the server drops.
	nc := e.srv.Connect(t, nats.ReconnectWait(20*time.Millisecond))
	m, err := rita.New(nc)
	requireNoError(t, err)
	s, err := m.GetEventStore(testCtx(t), "recon")
	requireNoError(t, err)
	appendN(t, writer, "order.1", "placed", 5)

	var r recorder
	w, err := s.Watch(testCtx(t), &r)
	requireNoError(t, err)
	defer w.Stop()
	requireSeqs(t, r.seqs(), seqRange(1, 5))

	reconnected := make(chan struct{}, 1)
	nc.SetReconnectHandler(func(*nats.Conn) {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})
	cid, err := nc.GetClientID()
	requireNoError(t, err)
	requireNoError(t, e.srv.DisconnectClientByID(cid))
	appendN(t, writer, "order.1", "shipped", 5)
	select {
	case <-reconnected:
	case <-time.After(waitFor):
		t.Fatalf("the watcher's connection did not reconnect")
	}
	appendN(t, writer, "order.1", "paid", 5)
	eventually(t, waitFor, func() bool { return r.count() >= 15 }, "applied %v", r.seqs())
	requireSeqs(t, r.seqs(), seqRange(1, 15))
	w.Stop()
	e.eventuallyNoConsumers(t, "recon")
}

// WaitFor after an Append returns once the watcher's model holds the event:
// reading one's own writes without a poll.
func TestWatchWaitFor(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "wait")
	m := rita.NewModel(newShop())
	w, err := s.Watch(testCtx(t), m)
	requireNoError(t, err)
	defer w.Stop()
	requireNoError(t, w.WaitFor(testCtx(t), 0))
	for i := range 20 {
		seq, err := s.Append(testCtx(t), []*rita.Event{rawEvent("order.1", "placed", strconv.Itoa(i))})
		requireNoError(t, err)
		requireNoError(t, w.WaitFor(testCtx(t), seq))
		if got := m.EntitySequence("order.1"); got != seq {
			t.Fatalf("after WaitFor(%d) the model is at %d", seq, got)
		}
		// Waiting for an earlier sequence returns at once.
		requireNoError(t, w.WaitFor(testCtx(t), seq-1))
	}
}

// A filtered watcher does not wait for events it does not select, nor for
// a sequence the store has not reached.
func TestWatchWaitForSelection(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "waitsel")
	m := rita.NewModel(newShop())
	w, err := s.Watch(testCtx(t), m, rita.WithFilters("order.1"))
	requireNoError(t, err)
	defer w.Stop()
	own, err := s.Append(testCtx(t), []*rita.Event{rawEvent("order.1", "placed", "x")})
	requireNoError(t, err)
	other := appendN(t, s, "stock.1", "counted", 5)

	requireNoError(t, w.WaitFor(testCtx(t), other)) // selects order.1 at own only
	if got := m.EntitySequence("order.1"); got != own {
		t.Fatalf("after WaitFor(%d) the model is at %d, want %d", other, got, own)
	}

	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = w.WaitFor(ctx, other+1)
	// Nothing after other is stored: nothing to wait for.
	requireNoError(t, err)
	if time.Since(start) > 150*time.Millisecond {
		t.Fatalf("WaitFor of a sequence not stored took %v", time.Since(start))
	}
}

// WaitFor while the watcher cannot get there: the deadline, or the watcher
// stopping, ends it with an error that says so.
func TestWatchWaitForEnds(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "waitend")
	block := make(chan struct{})
	var once sync.Once
	w, err := s.Watch(testCtx(t), rita.EvolverFunc(func(ev *rita.Event) error {
		if ev.Sequence() == 2 {
			<-block
		}
		return nil
	}))
	requireNoError(t, err)
	appendN(t, s, "order.1", "placed", 3)

	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	err = w.WaitFor(ctx, 3)
	requireErrorIs(t, err, context.DeadlineExceeded)
	if !strings.Contains(err.Error(), "waiting for sequence 3") {
		t.Errorf("error %q does not say what it waited for", err)
	}

	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- w.WaitFor(testCtx(t), 3) }()
	}
	go func() {
		// Stop waits for the blocked Evolve; release it once Stop began.
		time.AfterFunc(50*time.Millisecond, func() { once.Do(func() { close(block) }) })
		w.Stop()
	}()
	for range cap(errs) {
		select {
		case err := <-errs:
			// Either the watcher got to 3 before it stopped, or it stopped
			// first and says so.
			if err != nil && !strings.Contains(err.Error(), "stopped at sequence") {
				t.Fatalf("WaitFor during Stop: %v", err)
			}
		case <-time.After(waitFor):
			t.Fatal("WaitFor did not return after Stop")
		}
	}
	<-w.Closed()
	err = w.WaitFor(testCtx(t), 100)
	if err == nil || !strings.Contains(err.Error(), "stopped at sequence") {
		t.Fatalf("WaitFor after Stop = %v, want an error saying it stopped", err)
	}
	requireErrorIs(t, w.WaitFor(nilCtx(), 1), rita.ErrInvalidArgument)
}
