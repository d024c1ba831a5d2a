package jsapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// The one retry policy of rita's reads and writes.
//
// A call that meets a transient failure (Transient) sends the same request
// again, after a backoff, from where it got to, until its context ends. A
// call whose context has no deadline gets Budget instead: it gives up once
// it has failed for that long without making progress. Either way the error
// it gives up with matches context.DeadlineExceeded (or the context's own
// error), says what the call was waiting for, and wraps the last failure.
//
// Invariants: a Retry never waits after its context has ended; every wait
// is one Backoff step, jittered; the budget counts from the first failure
// after the last progress, so a long read that keeps delivering never gives
// up.

const (
	// Budget bounds the retries of a call whose context has no deadline:
	// how long it may fail without progress. A stream leader election
	// takes a few seconds; a server restart some more.
	Budget = 30 * time.Second

	// FirstAttemptTimeout bounds the first attempt of a request that may
	// go unanswered (sent as a server stops, or to a leader that just
	// lost its place); each later attempt gets twice as long, up to four
	// times as long.
	FirstAttemptTimeout = time.Second
)

// AttemptTimeout is the timeout of attempt n (1 for the first).
func AttemptTimeout(n int) time.Duration {
	return FirstAttemptTimeout << min(max(n-1, 0), 2)
}

// Backoff is a schedule of waits between attempts: Initial before the
// second attempt, doubling before each later one up to Max. Each wait is
// drawn at random between half of it and all of it, so that callers that
// failed together do not retry in step.
type Backoff struct {
	Initial, Max time.Duration
}

// TransientBackoff paces the retries of transient failures.
func TransientBackoff() Backoff {
	return Backoff{Initial: 20 * time.Millisecond, Max: time.Second}
}

// PollBackoff paces polling for a condition on the server: a consumer
// catching up, a durable consumer's events all arriving.
func PollBackoff() Backoff {
	return Backoff{Initial: 5 * time.Millisecond, Max: 250 * time.Millisecond}
}

// Delay returns the wait after n failed attempts (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return jitter(min(d, b.Max))
}

// jitter returns a random duration between d/2 and d.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return max(d, 0)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Wait returns after d, or earlier with ctx's error.
func Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retry keeps count of the failures of one call. The zero value is not
// usable; make one with NewRetry.
type Retry struct {
	what    string // what the call waits for, for its error
	budget  bool   // ctx has no deadline: Budget applies
	backoff Backoff
	notify  func(attempt int, err error)

	attempts int       // attempts failed since the last progress
	total    int       // attempts failed in all
	retried  int       // failures tried again after
	failing  time.Time // when the first of those failed
}

// NewRetry starts counting the failures of a call waiting for what (as in
// "the stream leader's last sequence"). notify, if not nil, is called for
// each failure that will be retried, with the attempt's number.
func NewRetry(ctx context.Context, what string, notify func(attempt int, err error)) *Retry {
	_, hasDeadline := ctx.Deadline()
	return &Retry{what: what, budget: !hasDeadline, backoff: TransientBackoff(), notify: notify}
}

// Unbounded lifts the budget: from now on the call tries until its context
// ends.
func (r *Retry) Unbounded() { r.budget = false }

// Attempts returns how many attempts have failed in all.
func (r *Retry) Attempts() int { return r.total }

// Retried returns how many failures the call was tried again after (those
// notify was told of).
func (r *Retry) Retried() int { return r.retried }

// Attempt returns the number of the attempt about to be made since the
// last progress (1 for the first).
func (r *Retry) Attempt() int { return r.attempts + 1 }

// Progressed records that the call got somewhere: the budget and the
// backoff start again.
func (r *Retry) Progressed() {
	r.attempts, r.failing = 0, time.Time{}
}

// Failed records a failed attempt. It returns nil, after a backoff, when the
// call should try again: err is transient (or retry says so) and the context
// has not ended, nor the budget run out. Otherwise it returns the error the
// call ends with: err itself when it is not transient, or an error that
// matches the context's error (context.DeadlineExceeded for the budget) and
// wraps err.
func (r *Retry) Failed(ctx context.Context, err error) error {
	return r.failed(ctx, err, Transient(err))
}

// FailedRetryable is Failed for an error the caller knows to be worth
// another attempt, transient or not.
func (r *Retry) FailedRetryable(ctx context.Context, err error) error {
	return r.failed(ctx, err, true)
}

func (r *Retry) failed(ctx context.Context, err error, retryable bool) error {
	if r.attempts == 0 {
		r.failing = time.Now()
	}
	r.attempts++
	r.total++
	if d := DeniedBy(ctx); d != nil {
		return d // a permission violation cancelled the call (Denials)
	}
	if errors.Is(err, ErrPermissionDenied) {
		return err // never retried, even when the caller would
	}
	if cerr := ctx.Err(); cerr != nil {
		return r.ended(cerr, err)
	}
	if !retryable {
		return err
	}
	if r.budget && time.Since(r.failing) >= Budget {
		return r.ended(fmt.Errorf("gave up after failing for %v: %w", Budget, context.DeadlineExceeded), err)
	}
	r.retried++
	if r.notify != nil {
		r.notify(r.total, err)
	}
	if werr := Wait(ctx, r.backoff.Delay(r.attempts)); werr != nil {
		return r.ended(werr, err)
	}
	return nil
}

// ended is the error of a call that stops retrying because of cause.
func (r *Retry) ended(cause, last error) error {
	return Ended(r.what, cause, last, r.total)
}

// Ended is the error of a call waiting for what that stopped because of
// cause (the context's error, say) after attempts failed attempts, the last
// of which failed with last. It matches both cause and last.
func Ended(what string, cause, last error, attempts int) error {
	tries := "1 attempt"
	if attempts != 1 {
		tries = fmt.Sprintf("%d attempts", attempts)
	}
	if what != "" {
		what += ": "
	}
	if last == nil || last == cause {
		return fmt.Errorf("%s%w (after %s)", what, cause, tries)
	}
	return fmt.Errorf("%s%w (after %s; last error: %w)", what, cause, tries, last)
}

// Do runs one request, attempt after attempt, each within its
// AttemptTimeout, until it succeeds, fails for good, or the Retry rules give
// up. req gets the attempt's context. A permission violation ends it at
// once when ctx is guarded (Denials.Guard).
func Do(ctx context.Context, what string, notify func(attempt int, err error), req func(context.Context) error) error {
	r := NewRetry(ctx, what, notify)
	for {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout(r.Attempt()))
		err := req(actx)
		cancel()
		if err == nil {
			return nil
		}
		if err := r.Failed(ctx, err); err != nil {
			return err
		}
	}
}
