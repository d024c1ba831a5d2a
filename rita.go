// Package rita builds event-sourced applications on NATS JetStream.
//
// A Manager, made from a *nats.Conn, creates and opens EventStores; each store
// is one JetStream stream. Append stores events, with optimistic concurrency
// (Expect) and de-duplication by event ID; several events are appended as one
// atomic batch. Evolve replays stored events into a model, Watch keeps one
// up to date as events arrive, and Decide turns a command into events and
// appends them (DecideWithRetry decides again after a sequence conflict).
// Model wraps an application's state type and makes it safe for concurrent
// use.
//
// The wire format (subjects, headers) is described in the README and is shared
// with every other rita store.
package rita

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/types"
)

// Manager creates and manages EventStore instances. It provides shared
// dependencies (type registry, ID generator, clock) to all stores it creates.
//
// A Manager is safe for concurrent use by multiple goroutines. It holds no
// resources of its own: the connection stays the caller's to close (which
// also ends the store's watchers). The methods of a nil *Manager fail with
// ErrInvalidArgument.
type Manager struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	types  *types.Registry
	id     id.ID
	clock  clock.Clock
	logger *slog.Logger
}

// ManagerOption models a option when creating a type registry.
type ManagerOption interface {
	configureManager(*Manager) error
}

type managerOption func(*Manager) error

func (f managerOption) configureManager(m *Manager) error { return f(m) }

// WithRegistry sets an explicit type registry.
//
// With a registry, event Data is a value of a registered type, encoded with
// the registry's codec and decoded back into that type when read. Without
// one, Data must be a []byte and is read back as one. A nil registry is
// refused with ErrInvalidOption.
func WithRegistry(types *types.Registry) ManagerOption {
	return managerOption(func(m *Manager) error {
		if types == nil {
			return fmt.Errorf("%w: nil type registry", ErrInvalidOption)
		}
		m.types = types
		return nil
	})
}

// WithClock sets a clock implementation. Default it clock.Time.
func WithClock(clock clock.Clock) ManagerOption {
	return managerOption(func(m *Manager) error {
		if clock == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		m.clock = clock
		return nil
	})
}

// WithIDer sets a unique ID generator implementation. Default is id.NUID.
func WithIDer(id id.ID) ManagerOption {
	return managerOption(func(m *Manager) error {
		if id == nil {
			return fmt.Errorf("%w: nil ID generator", ErrInvalidOption)
		}
		m.id = id
		return nil
	})
}

// WithLogger sets the logger the stores report to, for example the errors
// of a Watch that has no error handler. Default is slog.Default().
func WithLogger(logger *slog.Logger) ManagerOption {
	return managerOption(func(m *Manager) error {
		if logger == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		m.logger = logger
		return nil
	})
}

// New initializes a new Manager instance with a NATS connection.
//
// It fails with ErrInvalidArgument for a nil connection and with
// ErrInvalidOption for an option given a nil value. It makes no request.
func New(nc *nats.Conn, opts ...ManagerOption) (*Manager, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrInvalidArgument)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("rita: jetstream: %w", err)
	}
	m := &Manager{
		nc:    nc,
		js:    js,
		id:    id.NUID,
		clock: clock.Time,
	}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil ManagerOption", ErrInvalidOption)
		}
		if err := o.configureManager(m); err != nil {
			return nil, err
		}
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	return m, nil
}

// EventStoreConfig configures the stream behind an event store. Name is
// required; every other field maps to the stream field of the same name
// (Replicas 0 means 1, Storage's zero value is file storage, zero limits mean
// none).
type EventStoreConfig struct {
	Name        string
	Description string
	Metadata    map[string]string
	Replicas    int
	Storage     jetstream.StorageType
	Placement   *jetstream.Placement
	RePublish   *jetstream.RePublish
	MaxMsgs     int64
	MaxAge      time.Duration
	MaxBytes    int64

	// Duplicates is how long the store remembers an event ID to refuse the
	// same ID again (de-duplication). 0 means JetStream's default, two
	// minutes.
	Duplicates time.Duration
}

// streamConfig maps c to the stream of the store: ES_<name> on $ES.<name>.>,
// with atomic publish and direct get allowed.
func (c *EventStoreConfig) streamConfig() (jetstream.StreamConfig, error) {
	if err := validateStoreName(c.Name); err != nil {
		return jetstream.StreamConfig{}, err
	}
	if c.Duplicates < 0 {
		return jetstream.StreamConfig{}, fmt.Errorf("%w: negative Duplicates %v", ErrInvalidArgument, c.Duplicates)
	}
	if c.Replicas < 0 {
		return jetstream.StreamConfig{}, fmt.Errorf("%w: negative Replicas %d", ErrInvalidArgument, c.Replicas)
	}
	return jetstream.StreamConfig{
		Name:               streamName(c.Name),
		Description:        c.Description,
		Metadata:           c.Metadata,
		Subjects:           []string{storeSubjects(c.Name)},
		Replicas:           c.Replicas,
		Storage:            c.Storage,
		Placement:          c.Placement,
		RePublish:          c.RePublish,
		MaxMsgs:            nonZeroLimit(c.MaxMsgs),
		MaxAge:             c.MaxAge,
		MaxBytes:           nonZeroLimit(c.MaxBytes),
		Duplicates:         c.Duplicates,
		AllowAtomicPublish: true,
		AllowDirect:        true,
	}, nil
}

// nonZeroLimit maps the zero value ("no limit") to JetStream's -1.
func nonZeroLimit(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// CreateEventStore creates the event store given the configuration. The
// stream is named ES_<name> and captures the subjects $ES.<name>.>.
//
// A name JetStream cannot take is refused before any request
// (ErrEventStoreNameRequired, ErrEventStoreNameInvalid). Creating a store that
// exists with the same configuration returns it; with a different one fails
// with an error matching jetstream.ErrStreamNameAlreadyInUse.
func (m *Manager) CreateEventStore(ctx context.Context, config EventStoreConfig) (*EventStore, error) {
	if m == nil {
		return nil, errNilManager
	}
	if ctx == nil {
		return nil, errNilContext
	}
	cfg, err := config.streamConfig()
	if err != nil {
		return nil, err
	}
	stream, err := m.js.CreateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("rita: create event store %q: %w", config.Name, err)
	}
	return m.newEventStore(config.Name, stream), nil
}

// GetEventStore opens an existing event store. A missing store fails with an
// error matching jetstream.ErrStreamNotFound.
func (m *Manager) GetEventStore(ctx context.Context, name string) (*EventStore, error) {
	if m == nil {
		return nil, errNilManager
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if err := validateStoreName(name); err != nil {
		return nil, err
	}
	stream, err := m.js.Stream(ctx, streamName(name))
	if err != nil {
		return nil, fmt.Errorf("rita: get event store %q: %w", name, err)
	}
	return m.newEventStore(name, stream), nil
}

// UpdateEventStore updates the event store configuration. A missing store
// fails with an error matching jetstream.ErrStreamNotFound; a change the
// server does not allow (such as Storage) fails with the server's error.
func (m *Manager) UpdateEventStore(ctx context.Context, config EventStoreConfig) error {
	if m == nil {
		return errNilManager
	}
	if ctx == nil {
		return errNilContext
	}
	cfg, err := config.streamConfig()
	if err != nil {
		return err
	}
	if _, err := m.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("rita: update event store %q: %w", config.Name, err)
	}
	return nil
}

// DeleteEventStore deletes the event store and every event in it, its
// parked events and the snapshots of its models. A missing store fails with
// an error matching
// jetstream.ErrStreamNotFound.
func (m *Manager) DeleteEventStore(ctx context.Context, name string) error {
	if m == nil {
		return errNilManager
	}
	if ctx == nil {
		return errNilContext
	}
	if err := validateStoreName(name); err != nil {
		return err
	}
	if err := m.js.DeleteStream(ctx, streamName(name)); err != nil {
		return fmt.Errorf("rita: delete event store %q: %w", name, err)
	}
	// Its parked events (park.go), if any, go with it.
	if err := m.js.DeleteStream(ctx, parkedStreamName(name)); err != nil && !isStreamNotFound(err) {
		return fmt.Errorf("rita: delete parked events of store %q: %w", name, err)
	}
	return m.deleteSnapshots(ctx, name)
}

var (
	errNilContext = fmt.Errorf("%w: nil context", ErrInvalidArgument)
	errNilManager = fmt.Errorf("%w: nil *Manager", ErrInvalidArgument)
	errNilStore   = fmt.Errorf("%w: nil *EventStore", ErrInvalidArgument)
)

// isStreamNotFound reports whether err says the store's stream is missing.
func isStreamNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound)
}
