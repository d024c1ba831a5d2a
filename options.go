package rita

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EvolveOption is an option for the event store Evolve operation. The options
// that select events (WithAfterSequence, WithFilters) are also WatchOptions.
type EvolveOption interface {
	WatchOption
	configureEvolve(*evolveConfig) error
}

// WatchOption is an option for the event store Watch operation.
type WatchOption interface {
	configureWatch(*watchConfig) error
}

// readConfig selects the events that Evolve or Watch reads.
type readConfig struct {
	afterSeq uint64
	stopSeq  uint64
	filters  []string
}

type evolveConfig struct {
	readConfig
	snapshot *SnapshotConfig // WithSnapshot
}

type watchConfig struct {
	readConfig
	errHandler func(error, *Event, jetstream.Msg)
	noWait     bool
	durable    durableConfig // durable_options.go
}

// readOption selects events and applies to both Evolve and Watch.
type readOption func(*readConfig) error

func (f readOption) configureEvolve(c *evolveConfig) error { return f(&c.readConfig) }
func (f readOption) configureWatch(c *watchConfig) error   { return f(&c.readConfig) }

// evolveOnlyOption applies to Evolve; passed to Watch it is refused.
type evolveOnlyOption struct {
	name string
	fn   func(*evolveConfig) error
}

func (o evolveOnlyOption) configureEvolve(c *evolveConfig) error { return o.fn(c) }
func (o evolveOnlyOption) configureWatch(*watchConfig) error {
	return fmt.Errorf("%w: %s applies to Evolve, not Watch", ErrInvalidOption, o.name)
}

// watchOption applies to Watch only.
type watchOption func(*watchConfig) error

func (f watchOption) configureWatch(c *watchConfig) error { return f(c) }

// WithAfterSequence specifies the sequence of the first event that should be
// fetched from the sequence up to the end of the sequence. This useful when
// partially applied state has been derived up to a specific sequence and only
// the latest events need to be fetched. This can be passed in `Evolve` and
// `Watch`.
//
// The event at seq itself is not read: reading starts at seq+1, so the
// sequence returned by a previous Evolve (or Model.Sequence) can be passed
// as is.
func WithAfterSequence(seq uint64) EvolveOption {
	return readOption(func(c *readConfig) error {
		c.afterSeq = seq
		return nil
	})
}

// WithStopSequence specifies the sequence of the last event that should be
// fetched. This is useful to control how much replay is performed when
// evolving a state.
//
// The event at seq is included. 0 means no limit. It applies to Evolve only;
// Watch refuses it with ErrInvalidOption.
func WithStopSequence(seq uint64) EvolveOption {
	return evolveOnlyOption{name: "WithStopSequence", fn: func(c *evolveConfig) error {
		c.stopSeq = seq
		return nil
	}}
}

// WithFilters specifies the subject filter to use when evolving state. The
// filter can be in the form of `<entity-type>`, `<entity-type>.<entity-id>`,
// or `<entity-type>.<entity-id>.<event-type>`. Wildcards can be used as well
// at any token position. This can be passed in `Evolve` and `Watch`.
//
// Several filters select the events matching any of them. A filter with more
// than three tokens fails with ErrSubjectTooManyTokens, a malformed one with
// ErrFilterInvalid. Passing WithFilters twice adds to the filters.
func WithFilters(filters ...string) EvolveOption {
	return readOption(func(c *readConfig) error {
		for _, f := range filters {
			// The store name does not change what is valid in a filter.
			if _, err := filterSubject("x", f); err != nil {
				return err
			}
		}
		c.filters = append(c.filters, filters...)
		return nil
	})
}

// WithErrHandler sets the error handler function for the watcher.
//
// The handler is called, from the watcher's goroutine, for every event that
// could not be decoded (with a nil *Event) or that the Evolver refused; the
// watcher then goes on with the next event. It is also called, with a nil
// *Event and a nil jetstream.Msg, for each failure of the watcher's consumer
// (a missed heartbeat, a consumer lost with its server, a failed attempt to
// replace it), which the watcher recovers from by itself, and for the one
// that ends it (a closed connection, a deleted store). The default handler
// logs through the Manager's logger. A nil handler is refused with
// ErrInvalidOption.
func WithErrHandler(fn func(error, *Event, jetstream.Msg)) WatchOption {
	return watchOption(func(c *watchConfig) error {
		if fn == nil {
			return fmt.Errorf("%w: nil error handler", ErrInvalidOption)
		}
		c.errHandler = fn
		return nil
	})
}

// WithNoWait configures the watcher to not wait for catch-up before returning.
func WithNoWait() WatchOption {
	return watchOption(func(c *watchConfig) error {
		c.noWait = true
		return nil
	})
}

func newEvolveConfig(opts []EvolveOption) (*evolveConfig, error) {
	c := &evolveConfig{}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil EvolveOption", ErrInvalidOption)
		}
		if err := o.configureEvolve(c); err != nil {
			return nil, err
		}
	}
	if c.stopSeq != 0 && c.stopSeq < c.afterSeq {
		return nil, fmt.Errorf("%w: stop sequence %d is before after sequence %d", ErrInvalidOption, c.stopSeq, c.afterSeq)
	}
	return c, nil
}

func newWatchConfig(opts []WatchOption) (*watchConfig, error) {
	c := &watchConfig{}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil WatchOption", ErrInvalidOption)
		}
		if err := o.configureWatch(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}
