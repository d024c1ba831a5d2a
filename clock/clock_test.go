package clock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/synadia-labs/rita/clock"
)

func TestTime(t *testing.T) {
	before := time.Now()
	got := clock.Time.Now()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Errorf("Time.Now() = %v, want between %v and %v", got, before, after)
	}
	// The real clock carries a monotonic reading, like time.Now; Round(0)
	// strips it, so the two differ only if it is there.
	if got == got.Round(0) {
		t.Errorf("Time.Now() has no monotonic clock reading")
	}
}

func TestFixed(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	c := clock.Fixed(at)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if got := c.Now(); !got.Equal(at) || got.Location() != time.UTC {
					t.Errorf("Fixed(%v).Now() = %v", at, got)
					return
				}
			}
		}()
	}
	wg.Wait()

	if other := clock.Fixed(at.Add(time.Hour)); other.Now().Equal(at) {
		t.Error("a second fixed clock shares the first one's time")
	}
	if got := clock.Fixed(time.Time{}).Now(); !got.IsZero() {
		t.Errorf("Fixed(zero).Now() = %v", got)
	}
}
