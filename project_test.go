package rita_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

// memDB is a read model with its checkpoint, committed together under one
// lock (a transaction). It outlives the projections that fill it, as a
// database outlives a process.
type memDB struct {
	mu         sync.Mutex
	checkpoint uint64
	applied    []uint64 // every sequence committed, in order
	calls      map[uint64]int
	// fail, if set, is asked before an event is committed.
	fail func(ctx context.Context, e *rita.Event, call int) error
	// lastErr is returned by LastSequence if set.
	lastErr error
}

func newMemDB() *memDB { return &memDB{calls: map[uint64]int{}} }

func (db *memDB) LastSequence(context.Context) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.checkpoint, db.lastErr
}

func (db *memDB) Apply(ctx context.Context, e *rita.Event) error {
	db.mu.Lock()
	db.calls[e.Sequence()]++
	n := db.calls[e.Sequence()]
	fail := db.fail
	db.mu.Unlock()
	if fail != nil {
		if err := fail(ctx, e, n); err != nil {
			return err
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if e.Sequence() <= db.checkpoint {
		return nil // applied already: commit nothing
	}
	db.applied = append(db.applied, e.Sequence())
	db.checkpoint = e.Sequence()
	return nil
}

func (db *memDB) state() (uint64, []uint64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.checkpoint, slices.Clone(db.applied)
}

func (db *memDB) callsOf(seq uint64) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.calls[seq]
}

func (db *memDB) setFail(fail func(ctx context.Context, e *rita.Event, call int) error) {
	db.mu.Lock()
	db.fail = fail
	db.mu.Unlock()
}

// A projection stopped in the middle (while an Apply runs) and started again
// resumes after its checkpoint: every event is committed once, in order.
func TestProjectRestartMidway(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "proj")
	appendN(t, s, "order.1", "placed", 100)
	db := newMemDB()
	stop := make(chan struct{})
	var once sync.Once
	db.setFail(func(ctx context.Context, e *rita.Event, call int) error {
		if e.Sequence() == 40 && call == 1 {
			// Stopped while this one is being applied: it is not committed.
			once.Do(func() { close(stop) })
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	w, err := s.Project(testCtx(t), db, rita.WithNoWait())
	requireNoError(t, err)
	<-stop
	// Stop waits for the Apply that runs within its context, then cancels
	// it and says so.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	requireErrorIs(t, w.Stop(ctx), context.DeadlineExceeded)
	cp, applied := db.state()
	if cp != 39 {
		t.Fatalf("checkpoint %d after stopping at 40", cp)
	}
	requireSeqs(t, applied, seqRange(1, cp))

	appendN(t, s, "order.2", "placed", 10)
	w, err = s.Project(testCtx(t), db) // returns once caught up
	requireNoError(t, err)
	defer stopSub(t, w)
	cp, applied = db.state()
	if cp != 110 {
		t.Fatalf("checkpoint %d, want 110", cp)
	}
	requireSeqs(t, applied, seqRange(1, 110))
	for seq := uint64(1); seq <= 110; seq++ {
		if want := 1 + btoi(seq == 40); db.callsOf(seq) != want {
			t.Fatalf("event %d applied in %d calls, want %d", seq, db.callsOf(seq), want)
		}
	}
	appendN(t, s, "order.3", "placed", 1)
	eventually(t, waitFor, func() bool { cp, _ := db.state(); return cp == 111 }, "live event not applied")
}

// A projection halts at an event it cannot apply after its attempts: no
// later event is applied, the checkpoint stays before it, and the error
// handler says so. Projected again once fixed, it goes on from there.
func TestProjectHalts(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "halt")
	appendN(t, s, "order.1", "placed", 2)
	db := newMemDB()
	var broken sync.Mutex
	failing := true
	db.setFail(func(_ context.Context, e *rita.Event, _ int) error {
		broken.Lock()
		defer broken.Unlock()
		if failing && e.Sequence() == 4 {
			return errors.New("disk full")
		}
		return nil
	})
	var rep reports
	w, err := s.Project(testCtx(t), db, fastProject(rita.WithErrHandler(rep.handler))...)
	requireNoError(t, err)
	defer stopSub(t, w)
	appendN(t, s, "order.1", "placed", 4) // 3..6
	eventually(t, waitFor, func() bool { return rep.count() == 1 }, "no report")
	err = rep.all()[0]
	requireErrorIs(t, err, rita.ErrProjectionHalted)
	if cp, _ := db.state(); cp != 3 {
		t.Fatalf("checkpoint %d, want 3", cp)
	}
	consistently(t, 100*time.Millisecond, func() bool { cp, _ := db.state(); return cp == 3 }, "applied past the failing event")
	if n := db.callsOf(4); n != 3 {
		t.Fatalf("event 4 tried %d times, want 3", n)
	}
	// The subscription ended by itself, and says why.
	select {
	case <-w.Closed():
	case <-time.After(waitFor):
		t.Fatal("the halted projection's subscription did not end")
	}
	requireErrorIs(t, w.Err(), rita.ErrProjectionHalted)
	stopSub(t, w)
	if w.Err() == nil {
		t.Fatal("Err forgot the halt after Stop")
	}

	broken.Lock()
	failing = false
	broken.Unlock()
	w, err = s.Project(testCtx(t), db)
	requireNoError(t, err)
	defer stopSub(t, w)
	cp, applied := db.state()
	if cp != 6 {
		t.Fatalf("checkpoint %d, want 6", cp)
	}
	requireSeqs(t, applied, seqRange(1, 6))
}

// ErrUnprocessable halts at once; halting while catching up makes Project
// fail.
func TestProjectUnprocessableWhileCatchingUp(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "unproc")
	appendN(t, s, "order.1", "placed", 3)
	db := newMemDB()
	db.setFail(func(_ context.Context, e *rita.Event, _ int) error {
		if e.Sequence() == 2 {
			return rita.ErrUnprocessable
		}
		return nil
	})
	var rep reports
	w, err := s.Project(testCtx(t), db, rita.WithErrHandler(rep.handler))
	if w != nil {
		t.Fatal("Project returned a watcher")
	}
	requireErrorIs(t, err, rita.ErrProjectionHalted)
	requireErrorIs(t, err, rita.ErrUnprocessable)
	// Reported once: returned, not also handed to the error handler, and
	// the cause named once.
	if n := rep.count(); n != 0 {
		t.Fatalf("the halt was also reported to the error handler: %v", rep.all())
	}
	if n := strings.Count(err.Error(), "event 2"); n != 1 {
		t.Fatalf("error %q names the event %d times, want once", err, n)
	}
	if cp, _ := db.state(); cp != 1 || db.callsOf(2) != 1 {
		t.Fatalf("checkpoint %d, event 2 applied in %d calls", cp, db.callsOf(2))
	}
	eventually(t, waitFor, func() bool { return e.consumers(t, "unproc") == 0 }, "consumer left")
}

// Stop ends a retry that waits for its backoff at once.
func TestProjectStopDuringBackoff(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "backoff")
	appendN(t, s, "order.1", "placed", 1)
	db := newMemDB()
	tried := make(chan struct{}, 1)
	db.setFail(func(context.Context, *rita.Event, int) error {
		select {
		case tried <- struct{}{}:
		default:
		}
		return errors.New("down")
	})
	var rep reports
	w, err := s.Project(testCtx(t), db, rita.WithNoWait(), rita.WithBackoff(time.Hour, time.Hour), rita.WithErrHandler(rep.handler))
	requireNoError(t, err)
	<-tried
	done := make(chan struct{})
	go func() { stopSub(t, w); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Stop waited for the backoff")
	}
	if n := rep.count(); n != 0 {
		t.Fatalf("stopping was reported: %v", rep.all())
	}
}

func TestProjectInvalid(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "pinv")
	db := newMemDB()
	// WithConcurrency and WithAckWait do not compile; these do, and are
	// refused.
	for _, o := range []rita.ProjectOption{rita.WithAfterSequence(1), rita.WithStopSequence(2), rita.WithSnapshot(rita.SnapshotConfig{Version: "1"})} {
		_, err := s.Project(testCtx(t), db, o)
		requireErrorIs(t, err, rita.ErrInvalidOption)
	}
	_, err := s.Project(testCtx(t), nil)
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	_, err = s.Project(nilCtx(), db)
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	boom := errors.New("no database")
	db.lastErr = boom
	_, err = s.Project(testCtx(t), db)
	requireErrorIs(t, err, boom)
	e.requireNoConsumers(t, "pinv")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A projection's Apply learns from its context which attempt it makes.
func TestProjectAttempt(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "pattempt")
	appendN(t, s, "order.1", "placed", 2)
	db := newMemDB()
	var attempts []int
	db.fail = func(ctx context.Context, e *rita.Event, n int) error {
		attempts = append(attempts, rita.Attempt(ctx))
		if e.Sequence() == 1 && n < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	sub, err := s.Project(testCtx(t), db, rita.WithBackoff(time.Millisecond, time.Millisecond))
	requireNoError(t, err)
	defer sub.Stop(testCtx(t))
	if fmt.Sprint(attempts) != "[1 2 3 1]" {
		t.Fatalf("attempts %v, want event 1 at 1, 2, 3 and event 2 at 1", attempts)
	}
}
