package rita_test

// No goroutine outlives the call or the watcher that started it: checked with
// goleak on a steady server, and, where servers stop and restart (which
// replaces the server's and the connection's own goroutines), by looking for
// goroutines running rita's or the JetStream client's code.

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// libraryFrame matches a stack frame of rita (not its tests) or of the
// JetStream client.
var libraryFrame = regexp.MustCompile(`github\.com/synadia-labs/rita\.|github\.com/nats-io/nats\.go/jetstream\.`)

// libraryGoroutines returns the stacks of the goroutines, other than the
// caller's, that run rita's or the JetStream client's code.
func libraryGoroutines() []string {
	var found []string
	for _, g := range allStacks() {
		if libraryFrame.MatchString(g) {
			found = append(found, g)
		}
	}
	return found
}

// allStacks returns the stacks of the goroutines other than the caller's.
func allStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")[1:] // the first is the caller's
}

// goroutinesRunning returns the stacks of the goroutines, other than the
// caller's, that run a function whose name contains fn.
func goroutinesRunning(fn string) []string {
	var found []string
	for _, g := range allStacks() {
		if strings.Contains(g, fn) {
			found = append(found, g)
		}
	}
	return found
}

// requireNoLibraryGoroutines fails t unless, within a few seconds, no
// goroutine runs rita's or the JetStream client's code.
func requireNoLibraryGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := libraryGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of rita or the JetStream client remain:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On a steady server: Evolve (whole, filtered, failing, cancelled),
// Append (one, a batch, a conflict, a duplicate batch), Decide, and
// watchers (stopped, stopped from their handler, cancelled while catching
// up, without waiting) leave no goroutine behind.
func TestNoGoroutineOutlivesCalls(t *testing.T) {
	e, s := newBankEnv(t, "leaks")
	// More than one pull request holds (at most 4 MiB): reads ask again.
	deposits := make([]*rita.Event, 700)
	pad := map[string]string{"pad": strings.Repeat("x", 8<<10)}
	for i := range deposits {
		deposits[i] = &rita.Event{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 1}, Meta: pad}
	}
	_, err := s.Append(testCtx(t), deposits)
	requireNoError(t, err)
	warmUp(t, s)
	verify := leakCheck(t)

	ctx := testCtx(t)
	model := rita.NewModel(newLedger())
	_, err = s.Evolve(ctx, model)
	requireNoError(t, err)
	_, err = s.Evolve(ctx, rita.NewModel(newLedger()), rita.WithFilters("account.1"), rita.WithAfterSequence(10), rita.WithStopSequence(500))
	requireNoError(t, err)
	_, err = s.Evolve(ctx, evolverFunc(func(*rita.Event) error { return errEvolve }))
	requireErrorIs(t, err, errEvolve)
	cctx, cancel := context.WithCancel(ctx)
	_, err = s.Evolve(cctx, evolverFunc(func(*rita.Event) error { cancel(); return nil }))
	requireErrorIs(t, err, context.Canceled)

	_, _, err = s.DecideAndEvolve(ctx, model, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 1}})
	requireNoError(t, err)
	_, _, err = s.Decide(ctx, rita.NewModel(newLedger()), &rita.Command{Data: &depositCmd{Account: "1", Amount: 1}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	batch := []*rita.Event{
		{ID: "b1", Entity: accountEntity("2"), Data: &depositedEvt{Amount: 1}},
		{ID: "b2", Entity: accountEntity("3"), Data: &depositedEvt{Amount: 1}},
	}
	_, err = s.Append(ctx, batch)
	requireNoError(t, err)
	_, err = s.Append(ctx, batch)
	requireErrorIs(t, err, rita.ErrDuplicateEvent)

	w, err := s.Watch(ctx, rita.NewModel(newLedger()))
	requireNoError(t, err)
	w.Stop()
	w.Stop()
	stopped := make(chan struct{})
	var self rita.Watcher
	ready := make(chan struct{})
	self, err = s.Watch(ctx, evolverFunc(func(*rita.Event) error { return errEvolve }), rita.WithNoWait(),
		rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) {
			<-ready
			self.Stop()
			select {
			case <-stopped:
			default:
				close(stopped)
			}
		}))
	requireNoError(t, err)
	close(ready)
	<-stopped
	self.Stop()
	cctx, cancel = context.WithCancel(ctx)
	_, err = s.Watch(cctx, evolverFunc(func(*rita.Event) error { cancel(); return nil }))
	requireErrorIs(t, err, context.Canceled)
	w, err = s.Watch(ctx, &recorder{}, rita.WithNoWait())
	requireNoError(t, err)
	w.Stop()

	verify()
	e.eventuallyNoConsumers(t, "leaks")
}

// Where the server goes away and comes back: failed calls and a watcher
// that ran across the restart leave no goroutine behind.
func TestNoGoroutineOutlivesFaults(t *testing.T) {
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t, ritatest.Reconnecting())
	m, err := rita.New(nc)
	requireNoError(t, err)
	s := createStore(t, m, "leaks")
	// More than one pull request holds (at most 4 MiB): Evolve has to ask
	// again after the server has gone.
	for range 2 {
		_, err := s.Append(testCtx(t), rawBatch("order.1", rita.MaxBatchSize, 4<<10))
		requireNoError(t, err)
	}
	var running recorder
	w, err := s.Watch(testCtx(t), &running)
	requireNoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	applied := 0
	_, err = s.Evolve(ctx, evolverFunc(func(*rita.Event) error {
		if applied++; applied == 1 {
			srv.Stop()
		}
		return nil
	}))
	cancel()
	if err == nil {
		t.Fatalf("Evolve succeeded without a server")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = s.Append(ctx, []*rita.Event{rawEvent("order.1", "lost", "x")})
	cancel()
	requireErrorIs(t, err, context.DeadlineExceeded)
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = s.Watch(ctx, &recorder{})
	cancel()
	if err == nil {
		t.Fatalf("Watch succeeded without a server")
	}

	srv.Restart()
	seq := appendN(t, s, "order.1", "shipped", 1)
	eventually(t, waitFor, func() bool { return running.last() >= seq }, "the watcher did not resume")
	w.Stop()
	requireNoLibraryGoroutines(t)
}

// A watcher whose connection is closed ends its goroutines without Stop,
// tells its handler, and Stop still returns; the subscription on which
// the Manager's appends get their acknowledgements ends with the
// connection too.
func TestNoGoroutineOutlivesClosedConnection(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "closing")
	appendN(t, s, "order.1", "placed", 3)
	subscriptions := len(goroutinesRunning("(*Conn).waitForMsgs"))
	nc := e.srv.Connect(t)
	m, err := rita.New(nc)
	requireNoError(t, err)
	own, err := m.GetEventStore(testCtx(t), "closing")
	requireNoError(t, err)
	appendN(t, own, "order.2", "placed", 3)
	ended := make(chan error, 10)
	w, err := own.Watch(testCtx(t), &recorder{}, rita.WithErrHandler(func(err error, _ *rita.Event, _ jetstream.Msg) {
		ended <- err
	}))
	requireNoError(t, err)
	nc.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Errorf("handler got %v, want an error matching nats.ErrConnectionClosed", err)
		}
	case <-time.After(waitFor):
		t.Fatalf("the handler was not told that the connection closed")
	}
	requireNoLibraryGoroutines(t)
	done := make(chan struct{})
	go func() { w.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatalf("Stop did not return after the connection closed")
	}
	eventually(t, waitFor, func() bool { return len(goroutinesRunning("(*Conn).waitForMsgs")) == subscriptions },
		"the closed connection's subscriptions still deliver: %d goroutines, %d before it", len(goroutinesRunning("(*Conn).waitForMsgs")), subscriptions)
}
