package rita

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
	"github.com/synadia-labs/rita/types"
)

// Options.
//
// Every operation takes functional options of its own type, so that the
// compiler refuses most options that do not apply; the few that it cannot
// refuse (the documented API makes every EvolveOption a WatchOption) fail at
// run time with ErrInvalidOption. Which option each operation takes:
//
//	option               type           Evolve  Watch  Durable.Watch  Durable.React  Project  DecideWithRetry
//	WithFilters          EvolveOption   yes     yes    yes            yes            yes      -
//	WithAfterSequence    EvolveOption   yes     yes    yes (1)        yes (1)        no (2)   -
//	WithStopSequence     EvolveOption   yes     no     no             no             no       -
//	WithSnapshot         EvolveOption   yes     no     no             no             no       -
//	WithErrHandler       WatchOption    -       yes    yes            yes            yes      -
//	WithNoWait           WatchOption    -       yes    yes            no (3)         yes      -
//	WithConcurrency      DurableOption  -       -      yes            yes            -        -
//	WithAckWait          DurableOption  -       -      yes            yes            -        -
//	WithPartitions       DurableOption  -       -      yes            yes            -        -
//	WithMaxAttempts      RetryOption    -       -      yes            yes            yes      yes
//	WithBackoff          RetryOption    -       -      yes            yes            yes      yes
//	WithRetryFilters     DecideOption   -       -      -              -              -        yes
//	WithRetryNotify      DecideOption   -       -      -              -              -        yes
//
//	"-": refused by the compiler; "no": refused at run time with ErrInvalidOption.
//	(1) where a durable consumer starts when it is first made; an existing one resumes.
//	(2) a projection starts after its own checkpoint.
//	(3) React returns as soon as it runs; it never waits to catch up.
//
// Defaults: a durable consumer handles one event at a time (WithConcurrency),
// waits 30 s for a vanished process (WithAckWait), and tries a failing event
// 5 times with backoff from 100 ms doubling up to 5 s before parking it; a
// projection tries an Apply 5 times with the same backoff before it halts;
// DecideWithRetry decides 3 times with backoff from 10 ms doubling up to
// 500 ms. A nil option is refused with ErrInvalidOption.
//
// New takes ManagerOptions, which hold for every store of the Manager:
// WithRegistry, WithClock, WithIDer, WithLogger, WithExpectRequired,
// WithTracerProvider, WithMeterProvider and WithEncryption.

// EvolveOption is an option for the event store Evolve operation. The
// options that select events (WithAfterSequence, WithFilters) are also
// WatchOptions.
type EvolveOption interface {
	WatchOption
	evolveOption()
}

// WatchOption is an option for the event store Watch operation. Every
// WatchOption is also an option of durable consumers (DurableOption) and of
// Project (ProjectOption).
type WatchOption interface {
	DurableOption
	ProjectOption
	watchOption()
}

// DurableOption is an option of Durable.Watch and Durable.React.
type DurableOption interface {
	option
	durableOption()
}

// ProjectOption is an option of Project.
type ProjectOption interface {
	option
	projectOption()
}

// DecideOption is an option of DecideWithRetry and DecideAndEvolveWithRetry.
type DecideOption interface {
	option
	decideOption()
}

// RetryOption says how often and how patiently a failing step is tried:
// a command that conflicts (DecideWithRetry), an event a durable consumer
// or a projection fails to handle.
type RetryOption interface {
	DurableOption
	ProjectOption
	DecideOption
}

// option sets what it says in a config.
type option interface {
	apply(*config) error
}

// config holds every option of every operation; each operation reads the
// ones it takes.
type config struct {
	after, stop  uint64
	filters      []string
	snapshot     *SnapshotConfig
	errHandler   func(error, *Event, jetstream.Msg)
	noWait       bool
	concurrency  int
	ackWait      time.Duration
	partitions   int
	maxAttempts  int
	backoff      *jsapi.Backoff
	retryFilters []string
	notify       func(attempt int, err error)

	given []string // the names of the options given
}

// operation names an operation, for the options it refuses at run time.
type operation string

const (
	opEvolve       operation = "Evolve"
	opWatch        operation = "Watch"
	opDurableWatch operation = "Durable.Watch"
	opReact        operation = "Durable.React"
	opProject      operation = "Project"
	opDecide       operation = "DecideWithRetry"
)

// refused lists the options that op's option type lets through and op does
// not take.
func (op operation) refused() []string {
	switch op {
	case opWatch, opDurableWatch:
		return []string{"WithStopSequence", "WithSnapshot"}
	case opReact:
		return []string{"WithStopSequence", "WithSnapshot", "WithNoWait"}
	case opProject:
		return []string{"WithAfterSequence", "WithStopSequence", "WithSnapshot"}
	}
	return nil
}

// configure applies opts for op, and fills the defaults op uses.
func configure[O option](op operation, opts []O) (*config, error) {
	c := &config{}
	for _, o := range opts {
		if any(o) == nil {
			return nil, fmt.Errorf("%w: nil option passed to %s", ErrInvalidOption, op)
		}
		if err := o.apply(c); err != nil {
			return nil, err
		}
	}
	for _, name := range op.refused() {
		if slices.Contains(c.given, name) {
			return nil, fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, name, op)
		}
	}
	switch op {
	case opDecide:
		c.retryDefaults(3, jsapi.Backoff{Initial: 10 * time.Millisecond, Max: 500 * time.Millisecond})
	case opDurableWatch, opReact, opProject:
		c.retryDefaults(5, jsapi.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second})
		c.concurrency = max(c.concurrency, 1)
		if c.ackWait == 0 {
			c.ackWait = 30 * time.Second
		}
	}
	return c, nil
}

func (c *config) retryDefaults(attempts int, b jsapi.Backoff) {
	if c.maxAttempts == 0 {
		c.maxAttempts = attempts
	}
	if c.backoff == nil {
		c.backoff = &b
	}
}

// The option values, one type per set of operations that take them.
type (
	opt struct {
		name string
		fn   func(*config) error
	}
	selectOpt  opt // Evolve, Watch, durable consumers, Project
	watchOpt   opt // Watch, durable consumers, Project
	durableOpt opt // durable consumers
	retryOpt   opt // durable consumers, Project, DecideWithRetry
	decideOpt  opt // DecideWithRetry
)

func (o opt) apply(c *config) error {
	if err := o.fn(c); err != nil {
		return err
	}
	c.given = append(c.given, o.name)
	return nil
}

func (o selectOpt) apply(c *config) error { return opt(o).apply(c) }
func (selectOpt) evolveOption()           {}
func (selectOpt) watchOption()            {}
func (selectOpt) durableOption()          {}
func (selectOpt) projectOption()          {}

func (o watchOpt) apply(c *config) error { return opt(o).apply(c) }
func (watchOpt) watchOption()            {}
func (watchOpt) durableOption()          {}
func (watchOpt) projectOption()          {}

func (o durableOpt) apply(c *config) error { return opt(o).apply(c) }
func (durableOpt) durableOption()          {}

func (o retryOpt) apply(c *config) error { return opt(o).apply(c) }
func (retryOpt) durableOption()          {}
func (retryOpt) projectOption()          {}
func (retryOpt) decideOption()           {}

func (o decideOpt) apply(c *config) error { return opt(o).apply(c) }
func (decideOpt) decideOption()           {}

// WithAfterSequence specifies the sequence after which events are fetched,
// up to the end of the sequence. This useful when partially applied state
// has been derived up to a specific sequence and only the latest events need
// to be fetched. This can be passed in `Evolve`, `Watch` and to durable
// consumers (Project refuses it: a projection starts after its checkpoint).
//
// The event at seq itself is not read: reading starts at seq+1, so the
// sequence returned by a previous Evolve (or Model.Sequence) can be passed
// as is. For a durable consumer it is where the consumer starts when it is
// first made.
func WithAfterSequence(seq uint64) EvolveOption {
	return selectOpt{"WithAfterSequence", func(c *config) error {
		c.after = seq
		return nil
	}}
}

// WithStopSequence specifies the sequence of the last event that should be
// fetched. This is useful to control how much replay is performed when
// evolving a state.
//
// The event at seq is included. 0 means no limit. It applies to Evolve only.
func WithStopSequence(seq uint64) EvolveOption {
	return selectOpt{"WithStopSequence", func(c *config) error {
		c.stop = seq
		return nil
	}}
}

// WithFilters specifies the subject filter to use when evolving state. The
// filter can be in the form of `<entity-type>`, `<entity-type>.<entity-id>`,
// or `<entity-type>.<entity-id>.<event-type>`. Wildcards can be used as well
// at any token position: "*" for one token, and ">" as the last token for
// the rest. This can be passed in `Evolve`, `Watch`, to durable consumers
// and to Project.
//
// Several filters select the events matching any of them; an empty filter
// selects every event. A filter with more than three tokens fails with
// ErrSubjectTooManyTokens, a malformed one with ErrFilterInvalid. Passing
// WithFilters again replaces the filters.
func WithFilters(filters ...string) EvolveOption {
	return selectOpt{"WithFilters", func(c *config) error {
		if err := checkFilters(filters); err != nil {
			return err
		}
		c.filters = slices.Clone(filters)
		return nil
	}}
}

// WithSnapshot makes Evolve of one or more entities start each from the
// latest snapshot of it saved under cfg, if there is one it can trust, and
// read only the events after it; with cfg.Every it also saves a new
// snapshot of an entity when it has read enough of its events. Evolve then
// returns the sequence of the last event in the model's state, whether it
// came from a snapshot or was read.
//
// A snapshot is used only if it was saved under the same Version, for this
// store (not an earlier one of the same name), and no event of the entity up
// to it has been removed since (its count of events plus the events after it
// must be the entity's count); otherwise, and with a WithStopSequence before
// the entity's last event, the entity is read from the start. So the model
// ends in the state a replay of the entity's events gives.
//
// Each filter must name one entity, "<entity-type>.<entity-id>"; the
// entities are loaded one after the other, each one's events in stream
// order. The model's state (T of a *Model[T], or the model itself) must
// implement EntitySnapshotter, which snapshots and restores each entity's
// part of it, or, for a model of one entity, encoding.BinaryUnmarshaler
// (and, to save snapshots, encoding.BinaryMarshaler), which restore the
// whole state: a *Model[T] that already holds another entity then refuses
// it rather than wipe that entity. Evolve refuses anything else, and
// WithAfterSequence, with ErrInvalidOption. A snapshot that cannot be
// saved does not fail Evolve: it is logged through the Manager's logger. It
// applies to Evolve only.
func WithSnapshot(cfg SnapshotConfig) EvolveOption {
	return selectOpt{"WithSnapshot", func(c *config) error {
		if err := cfg.validate(); err != nil {
			return err
		}
		c.snapshot = &cfg
		return nil
	}}
}

// WithErrHandler sets the error handler function for the watcher.
//
// The handler is called, from the watcher's goroutine, for every event that
// could not be decoded (with a nil *Event) or that the Evolver refused; the
// watcher then goes on with the next event. It is also called, with a nil
// *Event and a nil jetstream.Msg, for each failure of the watcher's consumer
// (a missed heartbeat, a consumer lost with its server, a failed attempt to
// replace it), which the watcher recovers from by itself, and for the one
// that ends it (a closed connection, a deleted store). A durable consumer
// calls it for each event it parks and each failure it recovers from; a
// projection for failures it recovers from, and for a halt once Project
// has returned. The default handler (also with nil) logs through the
// Manager's logger.
func WithErrHandler(fn func(error, *Event, jetstream.Msg)) WatchOption {
	return watchOpt{"WithErrHandler", func(c *config) error {
		c.errHandler = fn
		return nil
	}}
}

// WithNoWait configures the watcher to not wait for catch-up before returning.
func WithNoWait() WatchOption {
	return watchOpt{"WithNoWait", func(c *config) error {
		c.noWait = true
		return nil
	}}
}

// WithConcurrency sets how many events of different entities a durable
// consumer handles at the same time; default 1. Events of one entity are
// always handled one at a time, in order. n < 1 fails with
// ErrInvalidOption.
func WithConcurrency(n int) DurableOption {
	return durableOpt{"WithConcurrency", func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: concurrency %d, want at least 1", ErrInvalidOption, n)
		}
		c.concurrency = n
		return nil
	}}
}

// WithAckWait sets how long an event delivered to a durable consumer may go
// unacknowledged before the server delivers it again; default 30 s. A
// running process keeps the events it holds alive well within it, so it
// only matters when a process vanishes without stopping: its events, and its
// place as the process that receives the events (the pin of the consumer's
// priority group), pass to another process after about this long. Less than
// two seconds fails with ErrInvalidOption.
func WithAckWait(d time.Duration) DurableOption {
	return durableOpt{"WithAckWait", func(c *config) error {
		if d < 2*time.Second {
			return fmt.Errorf("%w: ack wait %v, want at least 2s", ErrInvalidOption, d)
		}
		c.ackWait = d
		return nil
	}}
}

// WithPartitions makes a durable consumer partitioned: the store's
// entities are spread over n partitions by a stable hash of the entity, and
// the processes running the consumer share the partitions, each partition
// handled by one process at a time. A process that joins takes its share,
// one that stops hands its partitions over at once, and one that vanishes
// hands them over after about WithAckWait. Within a process,
// WithConcurrency applies as without partitions. Every process must give
// the same n; a consumer keeps the n (and the entity and event types of its
// filters) it was made with until Delete: another fails with
// ErrInvalidOption, as does running partitioned a consumer that was made
// without, or the other way round. n below 1 or above 1024 fails with
// ErrInvalidOption. See docs/durable-consumers.md for how many to choose.
func WithPartitions(n int) DurableOption {
	return durableOpt{"WithPartitions", func(c *config) error {
		if n < 1 || n > maxPartitions {
			return fmt.Errorf("%w: %d partitions, want 1 to %d", ErrInvalidOption, n, maxPartitions)
		}
		c.partitions = n
		return nil
	}}
}

// maxPartitions bounds WithPartitions: each partition is a consumer.
const maxPartitions = 1024

// WithMaxAttempts sets how many times a failing step is tried, the first
// time included: a command whose append conflicts (DecideWithRetry; default
// 3), an event a durable consumer's handler fails on before it is parked,
// an Apply of a projection before it halts (default 5). 1 means no retry;
// n < 1 fails with ErrInvalidOption.
func WithMaxAttempts(n int) RetryOption {
	return retryOpt{"WithMaxAttempts", func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max attempts %d, want at least 1", ErrInvalidOption, n)
		}
		c.maxAttempts = n
		return nil
	}}
}

// WithBackoff sets the wait between attempts: initial before the second
// attempt, doubling before each later one up to max. Each wait is drawn at
// random between half of it and all of it, so that callers that failed
// together do not try again in step. While a durable consumer waits to try
// an event again, the later events of its entity wait too; events of other
// entities go on. (0, 0) tries again at once. A negative duration, or a max
// below initial, fails with ErrInvalidOption.
func WithBackoff(initial, max time.Duration) RetryOption {
	return retryOpt{"WithBackoff", func(c *config) error {
		if initial < 0 || max < initial {
			return fmt.Errorf("%w: backoff from %v up to %v", ErrInvalidOption, initial, max)
		}
		c.backoff = &jsapi.Backoff{Initial: initial, Max: max}
		return nil
	}}
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
func WithRetryFilters(filters ...string) DecideOption {
	return decideOpt{"WithRetryFilters", func(c *config) error {
		if len(filters) == 0 {
			return fmt.Errorf("%w: WithRetryFilters without filters", ErrInvalidOption)
		}
		if err := checkFilters(filters); err != nil {
			return err
		}
		c.retryFilters = append(c.retryFilters, filters...)
		return nil
	}}
}

// WithRetryNotify sets a function that is called after each attempt that
// failed with ErrSequenceConflict and will be retried, before the wait, with
// the attempt's number (1 for the first) and its error; for logging or
// metrics. It is called on the deciding goroutine. A nil function is refused
// with ErrInvalidOption.
func WithRetryNotify(fn func(attempt int, err error)) DecideOption {
	return decideOpt{"WithRetryNotify", func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: nil retry notify function", ErrInvalidOption)
		}
		c.notify = fn
		return nil
	}}
}

// checkFilters checks filters as WithFilters takes them.
func checkFilters(filters []string) error {
	for _, f := range filters {
		// The store name does not change what is valid in a filter.
		if _, err := filterPattern("x", f); err != nil {
			return err
		}
	}
	return nil
}

// filterPattern turns a filter of one to three tokens into the subject
// pattern it stands for: "order" becomes $ES.NAME.order.*.* and "order.1"
// becomes $ES.NAME.order.1.*; "" stands for every event. A token may be the
// wildcard "*"; the last one may also be ">".
func filterPattern(store, filter string) (string, error) {
	if filter == "" {
		filter = ">" // every event
	}
	toks := strings.Split(filter, ".")
	if len(toks) > 3 {
		return "", fmt.Errorf("%w: %q", ErrSubjectTooManyTokens, filter)
	}
	for i, tok := range toks {
		switch {
		case tok == "*":
		case tok == ">":
			if i != len(toks)-1 {
				return "", fmt.Errorf("%w: %q: '>' may only be the last token", ErrFilterInvalid, filter)
			}
		case !wire.ValidToken(tok):
			return "", fmt.Errorf("%w: %q: token %q must be '*' or free of wildcards and whitespace", ErrFilterInvalid, filter, tok)
		}
	}
	return wire.FilterPattern(store, filter), nil
}

// ManagerOption is an option of New.
type ManagerOption interface {
	configureManager(*Manager) error
}

type managerOption func(*Manager) error

func (f managerOption) configureManager(m *Manager) error { return f(m) }

// WithRegistry sets an explicit type registry.
//
// With a registry, event Data is a value of a registered type, encoded with
// the registry's codec and decoded back into that type when read. Without
// one (or with nil), Data must be a []byte (or an encoding.BinaryMarshaler)
// and is read back as a []byte.
func WithRegistry(types *types.Registry) ManagerOption {
	return managerOption(func(m *Manager) error {
		m.types = types
		return nil
	})
}

// WithClock sets a clock implementation. Default (and with nil) is
// clock.Time.
func WithClock(clock clock.Clock) ManagerOption {
	return managerOption(func(m *Manager) error {
		m.clock = clock
		return nil
	})
}

// WithIDer sets a unique ID generator implementation. Default (and with
// nil) is id.NUID.
func WithIDer(id id.ID) ManagerOption {
	return managerOption(func(m *Manager) error {
		m.id = id
		return nil
	})
}

// WithLogger sets the logger the stores report to: the errors of watchers
// and durable consumers that have no error handler, and (at Debug level)
// each retry after a transient failure. Default (and with nil) is
// slog.Default().
func WithLogger(logger *slog.Logger) ManagerOption {
	return managerOption(func(m *Manager) error {
		m.logger = logger
		return nil
	})
}

// WithExpectRequired makes Append (and so Decide and its variants) refuse,
// with ErrExpectRequired and before anything is stored, events written
// without an expectation: every entity an append writes needs an Expect on
// one of its events in the call (or an Expect.Pattern that covers it).
//
// Optimistic concurrency is what keeps two commands decided on the same
// stale state from both being stored, and only the decider sets it: a
// rita.Model stamps each entity's first event with the last sequence it has
// seen, a plain Decider sets nothing. With this option, a decider that
// forgets fails at once instead of storing events that skip the check. A
// new entity's first event expects sequence 0 (ExpectSequence(0)).
func WithExpectRequired() ManagerOption {
	return managerOption(func(m *Manager) error {
		m.expectRequired = true
		return nil
	})
}

// WithTracerProvider sets where the Manager's spans go: Append, Evolve,
// Decide and its variants, and the handling of each event by a durable
// consumer or a projection (docs/observability.md lists them). Default
// (and with nil) is the global provider, otel.GetTracerProvider(), which
// records nothing until the application installs an SDK.
func WithTracerProvider(tp trace.TracerProvider) ManagerOption {
	return managerOption(func(m *Manager) error {
		m.tracerProvider = tp
		return nil
	})
}

// WithMeterProvider sets where the Manager's metrics go: events appended,
// conflicts, retries, events read, snapshot hits, handler durations and
// failures, events parked, and the lag of durable consumers
// (docs/observability.md has the names and units). Default (and with nil)
// is the global provider, otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) ManagerOption {
	return managerOption(func(m *Manager) error {
		m.meterProvider = mp
		return nil
	})
}
