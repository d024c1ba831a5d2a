package rita

import (
	"testing"
	"time"
)

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		name         string
		initial, max time.Duration
		want         []time.Duration // the un-jittered wait after 1, 2, ... failed attempts
	}{
		{"defaults", defaultRetryInitial, defaultRetryMax, []time.Duration{10, 20, 40, 80, 160, 320, 500, 500}},
		{"capped at once", 10, 10, []time.Duration{10, 10, 10}},
		{"none", 0, 0, []time.Duration{0, 0, 0}},
		{"zero initial", 0, 100, []time.Duration{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &retryConfig{initial: tt.initial, max: tt.max}
			unit := time.Duration(1)
			if tt.name == "defaults" {
				unit = time.Millisecond
			}
			for i, w := range tt.want {
				w *= unit
				// Jittered between half and all of it; try often enough
				// to see values off both ends if the range were wrong.
				for range 200 {
					got := c.backoff(i + 1)
					if got < w/2 || got > w {
						t.Fatalf("backoff(%d) = %v, want within [%v, %v]", i+1, got, w/2, w)
					}
				}
			}
		})
	}
	// Many attempts do not overflow.
	c := &retryConfig{initial: time.Second, max: time.Hour}
	if got := c.backoff(1000); got < 30*time.Minute || got > time.Hour {
		t.Fatalf("backoff(1000) = %v", got)
	}
}
