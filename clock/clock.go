// Package clock abstracts the current time so that code which records
// timestamps can be tested with a time of the test's choosing.
package clock

import "time"

// Clock tells the time. Implementations must be safe for concurrent use by
// multiple goroutines.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
}

// Time is the real clock: its Now is time.Now.
//
// Time is a variable so that it can be passed as a value; do not reassign
// it.
var Time Clock = realClock{}

// Fixed returns a clock whose Now always returns t. The clock is an
// immutable value, safe for concurrent use.
func Fixed(t time.Time) Clock {
	return fixedClock{t: t}
}

// realClock implements Clock with time.Now.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// fixedClock implements Clock with a constant time.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
