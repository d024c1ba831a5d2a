package rita

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults of DecideWithRetry and DecideAndEvolveWithRetry.
const (
	defaultRetryAttempts = 3
	defaultRetryInitial  = 10 * time.Millisecond
	defaultRetryMax      = 500 * time.Millisecond
)

// RetryOption is an option of DecideWithRetry and DecideAndEvolveWithRetry.
type RetryOption interface {
	configureRetry(*retryConfig) error
}

type retryConfig struct {
	attempts int
	initial  time.Duration
	max      time.Duration
	filters  []string
	notify   func(attempt int, err error)
}

type retryOption func(*retryConfig) error

func (f retryOption) configureRetry(c *retryConfig) error { return f(c) }

// WithRetryAttempts sets how many times a command is decided at most,
// counting the first attempt: 1 means no retry. The default is 3. A value
// below 1 is refused with ErrInvalidOption.
func WithRetryAttempts(n int) RetryOption {
	return retryOption(func(c *retryConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: %d retry attempts, want at least 1", ErrInvalidOption, n)
		}
		c.attempts = n
		return nil
	})
}

// WithRetryBackoff sets the wait between attempts: before the second
// attempt it is initial, and it doubles before each further one up to max.
// Each wait is jittered, drawn at random between half of it and all of it,
// so that deciders that collided do not collide again in step. The default
// is 10ms doubling up to 500ms; (0, 0) retries at once. A negative duration,
// or a max below initial, is refused with ErrInvalidOption.
func WithRetryBackoff(initial, max time.Duration) RetryOption {
	return retryOption(func(c *retryConfig) error {
		if initial < 0 || max < initial {
			return fmt.Errorf("%w: retry backoff from %v up to %v", ErrInvalidOption, initial, max)
		}
		c.initial, c.max = initial, max
		return nil
	})
}

// WithRetryFilters sets the filters the model is brought up to date with
// after a conflict, in the form WithFilters takes: those the model was
// loaded with. Without it, the model catches up on exactly the subjects
// whose expectations failed (the decided events' entities, or their
// Expect patterns). Give it when the decision also depends on events the
// decided events do not expect, such as a limit over all accounts;
// WithRetryFilters(">") reloads from the whole store. The events read are
// those after the lowest sequence the failed decision expected, and the
// model must skip the ones it has already applied, as a Model does. A
// malformed filter is refused as WithFilters refuses it; no filters with
// ErrInvalidOption.
func WithRetryFilters(filters ...string) RetryOption {
	return retryOption(func(c *retryConfig) error {
		if len(filters) == 0 {
			return fmt.Errorf("%w: WithRetryFilters without filters", ErrInvalidOption)
		}
		for _, f := range filters {
			if _, err := filterSubject("x", f); err != nil {
				return err
			}
		}
		c.filters = append(c.filters, filters...)
		return nil
	})
}

// WithRetryNotify sets a function that is called after each attempt that
// failed with ErrSequenceConflict and will be retried, before the wait, with
// the attempt's number (1 for the first) and its error; for logging or
// metrics. It is called on the deciding goroutine. A nil function is refused
// with ErrInvalidOption.
func WithRetryNotify(fn func(attempt int, err error)) RetryOption {
	return retryOption(func(c *retryConfig) error {
		if fn == nil {
			return fmt.Errorf("%w: nil retry notify function", ErrInvalidOption)
		}
		c.notify = fn
		return nil
	})
}

func newRetryConfig(opts []RetryOption) (*retryConfig, error) {
	c := &retryConfig{attempts: defaultRetryAttempts, initial: defaultRetryInitial, max: defaultRetryMax}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil RetryOption", ErrInvalidOption)
		}
		if err := o.configureRetry(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// backoff returns the jittered wait before attempt n+1, after n failed
// attempts (n >= 1).
func (c *retryConfig) backoff(n int) time.Duration {
	d := c.initial
	for i := 1; i < n && d < c.max; i++ {
		d *= 2
	}
	d = min(d, c.max)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// DecideWithRetry is Decide that decides again when the append fails with
// ErrSequenceConflict, because events were stored since the model last saw
// the entities it decided on.
//
// After a conflict it waits (see WithRetryBackoff), brings the model up to
// date by evolving it with the events it missed, then asks it to decide the
// same command afresh: the events of the failed attempt are discarded, and a
// Model stamps the new ones with the sequences it has now seen. It makes at
// most WithRetryAttempts attempts (3 by default). The events it missed are
// read from the subjects whose expectations failed, after the lowest
// sequence the failed decision expected (or from WithRetryFilters); an event
// that an Expect says the model has already seen is not applied again.
//
// When every attempt conflicts, the error matches ErrSequenceConflict and
// says how many attempts were made. If ctx ends while waiting, the error
// matches both the context's error and ErrSequenceConflict. Any other
// error (the decider's, an invalid event, a failed catch-up) ends it at
// once. The command's ID and Time are filled once, so every attempt, and
// the stored events' causation, share them. Like Decide, it does not evolve
// the model with the events it stores; DecideAndEvolveWithRetry does.
func (s *EventStore) DecideWithRetry(ctx context.Context, model DeciderEvolver, cmd *Command, opts ...RetryOption) ([]*Event, uint64, error) {
	return s.decideWithRetry(ctx, model, cmd, false, opts)
}

// DecideAndEvolveWithRetry is DecideAndEvolve that decides again when the
// append fails with ErrSequenceConflict, as DecideWithRetry does. Once the
// events are stored, the model evolves with them; if that fails, the events
// have already been stored.
func (s *EventStore) DecideAndEvolveWithRetry(ctx context.Context, model DeciderEvolver, cmd *Command, opts ...RetryOption) ([]*Event, uint64, error) {
	return s.decideWithRetry(ctx, model, cmd, true, opts)
}

func (s *EventStore) decideWithRetry(ctx context.Context, model DeciderEvolver, cmd *Command, evolve bool, opts []RetryOption) ([]*Event, uint64, error) {
	if err := s.checkCommand(ctx, model, cmd); err != nil {
		return nil, 0, err
	}
	cfg, err := newRetryConfig(opts)
	if err != nil {
		return nil, 0, err
	}
	for attempt := 1; ; attempt++ {
		events, seq, err := s.decideOnce(ctx, model, cmd)
		if err == nil {
			if evolve && len(events) > 0 {
				return events, seq, evolveStored(model, events, seq)
			}
			return events, seq, nil
		}
		if events == nil || !errors.Is(err, ErrSequenceConflict) {
			// A decider's own error (no events) is never retried.
			return nil, 0, err
		}
		if attempt >= cfg.attempts {
			return nil, 0, fmt.Errorf("rita: decide: gave up after %s: %w", attempts(attempt), err)
		}
		if cfg.notify != nil {
			cfg.notify(attempt, err)
		}
		if d := cfg.backoff(attempt); d > 0 {
			if werr := wait(ctx, d); werr != nil {
				return nil, 0, fmt.Errorf("rita: decide: %w while waiting to retry after %s: %w", werr, attempts(attempt), err)
			}
		}
		if err := s.catchUp(ctx, model, events, cfg.filters); err != nil {
			return nil, 0, fmt.Errorf("rita: decide: catching up after a sequence conflict (attempt %d): %w", attempt, err)
		}
	}
}

// attempts says "1 attempt" or "n attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// expectation is what a failed decision said the model had seen: every
// event on pattern (a subject pattern of the store) up to seq.
type expectation struct {
	pattern string
	seq     uint64
}

// catchUp evolves model with the events it missed, as told by the Expects
// of the events it decided on: those stored on the expected subjects (or on
// filters, when given) after the lowest expected sequence. An event that
// lies on an expected subject at or before that subject's expected sequence
// was seen by the model, and is skipped.
func (s *EventStore) catchUp(ctx context.Context, model Evolver, decided []*Event, filters []string) error {
	var seen []expectation
	var derived []string
	after := uint64(0)
	for _, e := range decided {
		if e == nil || e.Expect == nil {
			continue
		}
		filter := e.Entity
		if e.Expect.Pattern != "" {
			filter = e.Expect.Pattern
		}
		pattern, err := filterSubject(s.name, filter)
		if err != nil {
			return err
		}
		if len(seen) == 0 || e.Expect.Sequence < after {
			after = e.Expect.Sequence
		}
		seen = append(seen, expectation{pattern: pattern, seq: e.Expect.Sequence})
		derived = append(derived, filter)
	}
	if len(seen) == 0 {
		// A conflict needs an Expect; without one there is nothing to read.
		return fmt.Errorf("%w: no decided event has an Expect to catch up from", ErrSequenceConflict)
	}
	if len(filters) == 0 {
		filters = derived
	}
	missed := evolverFunc(func(e *Event) error {
		for _, x := range seen {
			if e.sequence <= x.seq && subjectMatches(x.pattern, e.subject) {
				return nil
			}
		}
		return model.Evolve(e)
	})
	_, err := s.Evolve(ctx, missed, WithFilters(filters...), WithAfterSequence(after))
	return err
}

// evolverFunc lets a function be an Evolver.
type evolverFunc func(*Event) error

func (f evolverFunc) Evolve(e *Event) error { return f(e) }
