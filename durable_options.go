package rita

import (
	"fmt"
	"strings"
	"time"
)

// Options of durable consumption: a Watch with WithDurable, React and (for
// the retry options) Project. They are WatchOptions, so the selection
// options (WithFilters, WithAfterSequence) and WithErrHandler combine with
// them in one list. A plain Watch, which keeps no state on the server,
// refuses them with ErrInvalidOption.

// Defaults of durable consumption.
const (
	// DefaultMaxAttempts is how many times an event is tried before it is
	// parked, unless WithMaxAttempts says otherwise.
	DefaultMaxAttempts = 5

	// DefaultAckWait is how long an event delivered to a process that
	// vanished stays with it before it is delivered again, unless
	// WithAckWait says otherwise.
	DefaultAckWait = 30 * time.Second

	// defaultMaxAckPending bounds the events delivered to a durable consumer
	// and not yet acknowledged: those being handled, waiting behind an
	// earlier event of their entity, or retried.
	defaultMaxAckPending = 1000
)

// defaultBackoff is the wait before each retry of a failing event, unless
// WithBackoff says otherwise.
func defaultBackoff() []time.Duration {
	return []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 5 * time.Second}
}

// durableConfig holds the options of durable consumption.
type durableConfig struct {
	name        string
	concurrency int
	maxAttempts int
	backoff     []time.Duration
	ackWait     time.Duration

	given []string // names of the options given, to refuse them where they do not apply
}

// durableOption configures durable consumption.
type durableOption struct {
	name string
	fn   func(*durableConfig) error
}

func (o durableOption) configureWatch(c *watchConfig) error {
	if err := o.fn(&c.durable); err != nil {
		return err
	}
	c.durable.given = append(c.durable.given, o.name)
	return nil
}

// WithDurable makes Watch use the durable consumer name instead of an
// ordered one, so that a process that restarts resumes after the last event
// its Evolver applied, and several processes watching with the same name
// share the work without applying an event twice at the same time.
//
// An event is acknowledged once the Evolver returns nil for it. An Evolver
// error is retried (WithMaxAttempts, WithBackoff) before any later event of
// the same entity is applied; after the last attempt, or at once for an
// error wrapping ErrUnprocessable, the event goes to the error handler and is
// parked (see EventStore.ListParked), and so are the later events of its
// entity until it is retried. Events of other entities go on.
//
// The consumer is created on first use and stays on the server when the
// watcher stops; Rebuild starts it again from the beginning, DeleteDurable
// removes it. name must be a valid consumer name: no dots, wildcards,
// whitespace or path separators; an invalid one fails with ErrInvalidOption.
// WithAfterSequence sets where a new consumer starts; an existing one resumes
// where it stopped. WithDurable is refused by React, which takes the name as
// an argument.
func WithDurable(name string) WatchOption {
	return durableOption{name: "WithDurable", fn: func(c *durableConfig) error {
		if err := validateDurableName(name); err != nil {
			return err
		}
		c.name = name
		return nil
	}}
}

// WithConcurrency sets how many events of different entities a durable
// Watch or React handles at the same time; default 1. Events of one entity
// are always handled one at a time, in order. n < 1 fails with
// ErrInvalidOption.
func WithConcurrency(n int) WatchOption {
	return durableOption{name: "WithConcurrency", fn: func(c *durableConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: concurrency %d, want at least 1", ErrInvalidOption, n)
		}
		c.concurrency = n
		return nil
	}}
}

// WithMaxAttempts sets how many times an event is tried, the first time
// included, before it is parked (durable Watch, React) or the projection
// halts (Project); default DefaultMaxAttempts. n < 1 fails with
// ErrInvalidOption.
func WithMaxAttempts(n int) WatchOption {
	return durableOption{name: "WithMaxAttempts", fn: func(c *durableConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: max attempts %d, want at least 1", ErrInvalidOption, n)
		}
		c.maxAttempts = n
		return nil
	}}
}

// WithBackoff sets the waits between the attempts at a failing event: the
// n-th retry waits delays[n-1], and the last delay repeats; default
// DefaultBackoff. While an event waits, the later events of its entity wait
// too, and events of other entities go on. The default is 100ms, 500ms, 2s,
// 5s. No delays, or a negative one, fails with ErrInvalidOption.
func WithBackoff(delays ...time.Duration) WatchOption {
	return durableOption{name: "WithBackoff", fn: func(c *durableConfig) error {
		if len(delays) == 0 {
			return fmt.Errorf("%w: WithBackoff needs at least one delay", ErrInvalidOption)
		}
		for _, d := range delays {
			if d < 0 {
				return fmt.Errorf("%w: negative backoff %v", ErrInvalidOption, d)
			}
		}
		c.backoff = append([]time.Duration(nil), delays...)
		return nil
	}}
}

// WithAckWait sets how long an event delivered to a durable Watch or React
// may go unacknowledged before the server delivers it again; default
// DefaultAckWait. A running process keeps the events it holds alive well
// within it, so it only matters when a process vanishes without stopping:
// its events, and its place as the process that receives the events (the
// pin of the consumer's priority group), pass to another process after about
// this long. Less than two seconds fails with ErrInvalidOption.
func WithAckWait(d time.Duration) WatchOption {
	return durableOption{name: "WithAckWait", fn: func(c *durableConfig) error {
		if d < 2*time.Second {
			return fmt.Errorf("%w: ack wait %v, want at least 2s", ErrInvalidOption, d)
		}
		c.ackWait = d
		return nil
	}}
}

// withDefaults returns c with the zero values replaced by the defaults.
func (c durableConfig) withDefaults() durableConfig {
	if c.concurrency == 0 {
		c.concurrency = 1
	}
	if c.maxAttempts == 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if len(c.backoff) == 0 {
		c.backoff = defaultBackoff()
	}
	if c.ackWait == 0 {
		c.ackWait = DefaultAckWait
	}
	return c
}

// delay returns the wait before attempt n+1 after attempt n failed.
func (c durableConfig) delay(n int) time.Duration {
	if n-1 < len(c.backoff) {
		return c.backoff[n-1]
	}
	return c.backoff[len(c.backoff)-1]
}

// refuse fails with ErrInvalidOption if any of the named options was given.
func (c durableConfig) refuse(operation string, names ...string) error {
	for _, g := range c.given {
		for _, n := range names {
			if g == n {
				return fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, g, operation)
			}
		}
	}
	return nil
}

// checkPlainWatch fails with ErrInvalidOption if a Watch without WithDurable
// was given an option of durable consumption.
func (c *watchConfig) checkPlainWatch() error {
	if len(c.durable.given) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s applies to a durable Watch (WithDurable), React or Project, not a plain Watch",
		ErrInvalidOption, strings.Join(c.durable.given, ", "))
}

// validateDurableName checks that name can be a JetStream consumer name and
// a subject token.
func validateDurableName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty durable name", ErrInvalidOption)
	}
	if len(name) > 200 {
		return fmt.Errorf("%w: durable name of %d bytes, at most 200", ErrInvalidOption, len(name))
	}
	if !validLiteralToken(name) || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%w: durable name %q must be one subject token without wildcards, whitespace or path separators", ErrInvalidOption, name)
	}
	return nil
}
