package jsapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		want []time.Duration // the un-jittered wait after 1, 2, ... failed attempts
	}{
		{"transient", TransientBackoff(), []time.Duration{20, 40, 80, 160, 320, 640, 1000, 1000}},
		{"decide", Backoff{10, 500}, []time.Duration{10, 20, 40, 80, 160, 320, 500, 500}},
		{"capped at once", Backoff{10, 10}, []time.Duration{10, 10, 10}},
		{"none", Backoff{0, 0}, []time.Duration{0, 0, 0}},
		{"zero initial", Backoff{0, 100}, []time.Duration{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unit := time.Duration(1)
			if tt.name == "transient" {
				unit = time.Millisecond
			}
			for i, w := range tt.want {
				w *= unit
				// Jittered between half and all of it; try often enough
				// to see values off both ends if the range were wrong.
				for range 200 {
					if got := tt.b.Delay(i + 1); got < w/2 || got > w {
						t.Fatalf("Delay(%d) = %v, want within [%v, %v]", i+1, got, w/2, w)
					}
				}
			}
		})
	}
	// Many attempts do not overflow.
	if got := (Backoff{time.Second, time.Hour}).Delay(1000); got < 30*time.Minute || got > time.Hour {
		t.Fatalf("Delay(1000) = %v", got)
	}
}

func TestAttemptTimeout(t *testing.T) {
	for n, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 4 * time.Second} {
		if got := AttemptTimeout(n); got != want {
			t.Errorf("AttemptTimeout(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestWait(t *testing.T) {
	if err := Wait(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Wait(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Wait on a cancelled context waited")
	}
}

// Do tries a transient failure again until it succeeds, and gives up at
// once on a final one; when ctx ends it says what it waited for.
func TestDo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls, notified := 0, 0
	err := Do(ctx, "the answer", func(int, error) { notified++ }, func(context.Context) error {
		calls++
		if calls < 3 {
			return nats.ErrNoResponders
		}
		return nil
	})
	if err != nil || calls != 3 || notified != 2 {
		t.Fatalf("Do = %v after %d calls, %d notified; want nil after 3, 2", err, calls, notified)
	}

	final := errors.New("refused")
	calls = 0
	err = Do(ctx, "the answer", nil, func(context.Context) error { calls++; return final })
	if !errors.Is(err, final) || calls != 1 {
		t.Fatalf("Do = %v after %d calls; want the final error after 1", err, calls)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	err = Do(short, "the answer", nil, func(context.Context) error { return nats.ErrTimeout })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("Do past its deadline = %v; want DeadlineExceeded wrapping the last failure", err)
	}
	if want := "the answer"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say it waited for %q", err, want)
	}
}
