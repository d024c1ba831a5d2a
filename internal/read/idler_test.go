package read

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestIdlerEndsLongWaits checks the watchdog: a wait ends with ErrIdle
// after one to one and a half idle times (with some slack for a busy
// machine), and time spent between waits does not count.
func TestIdlerEndsLongWaits(t *testing.T) {
	const idle = 40 * time.Millisecond
	var i idler
	defer i.release()
	ctx := context.Background()

	// Short waits with long gaps between them never idle.
	for range 5 {
		ictx := i.arm(ctx, idle)
		if ictx.Err() != nil {
			t.Fatalf("context ended before a wait: %v", context.Cause(ictx))
		}
		i.disarm()
		time.Sleep(idle) // the caller handling a message, not waiting
	}
	if i.idled() {
		t.Fatal("idled although no wait lasted")
	}

	start := time.Now()
	ictx := i.arm(ctx, idle)
	<-ictx.Done()
	waited := time.Since(start)
	i.disarm()
	if !i.idled() || !errors.Is(context.Cause(ictx), ErrIdle) {
		t.Fatalf("cause %v, want ErrIdle", context.Cause(ictx))
	}
	if waited < idle || waited > 3*idle {
		t.Fatalf("a wait idled after %v, want between %v and about %v", waited, idle, idle*3/2)
	}

	// The next wait gets a fresh context.
	ictx = i.arm(ctx, idle)
	if ictx.Err() != nil {
		t.Fatal("the context after an idle wait is ended")
	}
	i.disarm()

	// A parent that ends ends the wait, and it is not idle.
	pctx, cancel := context.WithCancel(ctx)
	ictx = i.arm(pctx, idle)
	cancel()
	<-ictx.Done()
	i.disarm()
	if i.idled() {
		t.Fatal("a cancelled wait reported as idle")
	}
}
