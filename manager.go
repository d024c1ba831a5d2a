package rita

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/internal/durable"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/telemetry"
	"github.com/synadia-labs/rita/internal/wire"
	"github.com/synadia-labs/rita/types"
)

// Manager creates and manages EventStore instances. It provides shared
// dependencies (type registry, ID generator, clock) to all stores it creates.
//
// A Manager is safe for concurrent use by multiple goroutines. It holds no
// resources of its own: the connection stays the caller's to close (which
// also ends the store's watchers and durable consumers, and the
// subscriptions on which the Manager's appends and imports get their
// acknowledgements: the appends' is made when the Manager opens its first
// store, the imports' by the first Import). The methods of a nil
// *Manager fail with ErrInvalidArgument.
//
// Creating, getting, updating and deleting a store ride out a cluster that
// elects a leader or a server that restarts, as reads and appends do: a
// request that goes unanswered is sent again until ctx ends (for at most
// 30 s of failures when ctx has no deadline); the error then matches
// context.DeadlineExceeded.
type Manager struct {
	nc *nats.Conn
	js jetstream.JetStream
	// acks publishes the first attempt of a single event's Append
	// (append.go): the acknowledgements of all the calls in flight come
	// back on its one subscription, and none waits for another.
	acks   *jsapi.Acks
	types  *types.Registry
	id     id.ID
	clock  clock.Clock
	logger *slog.Logger

	// denials ends calls the server's permissions refuse (denied.go).
	denials *jsapi.Denials

	// expectRequired refuses appends of entities without an Expect
	// (WithExpectRequired).
	expectRequired bool

	tracerProvider trace.TracerProvider // WithTracerProvider
	meterProvider  metric.MeterProvider // WithMeterProvider
	tel            *telemetry.Telemetry

	enc *encryption // WithEncryption
}

// New initializes a new Manager instance with a NATS connection.
//
// It fails with ErrInvalidArgument for a nil connection. It makes no
// request. It wraps the connection's asynchronous error handler (once per
// connection; the handler it had is still called for every error) to learn
// of the server's permission violations, so that a call the server refuses
// fails at once with ErrPermissionDenied; a handler set on the connection
// later replaces the wrapper, and such a call then fails after its first
// attempt's timeout.
func New(nc *nats.Conn, opts ...ManagerOption) (*Manager, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrInvalidArgument)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("rita: jetstream: %w", err)
	}
	m := &Manager{nc: nc, js: js, acks: jsapi.NewAcks(nc), id: id.NUID, clock: clock.Time, denials: jsapi.WatchDenials(nc)}
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
	if m.id == nil {
		m.id = id.NUID
	}
	if m.clock == nil {
		m.clock = clock.Time
	}
	if m.tracerProvider == nil {
		m.tracerProvider = otel.GetTracerProvider()
	}
	if m.meterProvider == nil {
		m.meterProvider = otel.GetMeterProvider()
	}
	if m.tel, err = telemetry.New(m.tracerProvider, m.meterProvider); err != nil {
		return nil, fmt.Errorf("%w: telemetry: %w", ErrInvalidOption, err)
	}
	return m, nil
}

// CreateEventStore creates the event store given the configuration. The
// stream is named ES_<name> and captures the subjects $ES.<name>.>.
//
// A name JetStream cannot take is refused before any request
// (ErrEventStoreNameRequired, ErrEventStoreNameInvalid). Creating a store that
// exists with the same configuration returns it; with a different one fails
// with an error matching jetstream.ErrStreamNameAlreadyInUse that names the
// fields that differ (UpdateEventStore changes them).
func (m *Manager) CreateEventStore(ctx context.Context, config EventStoreConfig) (*EventStore, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	cfg, err := config.streamConfig()
	if err != nil {
		return nil, err
	}
	var stream jetstream.Stream
	err = m.do(ctx, config.Name, "the store's stream to be created", func(ctx context.Context) error {
		// Creating a stream that exists with the same configuration
		// succeeds: an attempt after one whose answer was lost is safe.
		var err error
		stream, err = m.js.CreateStream(ctx, cfg)
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, m.existsError(ctx, config, err)
	}
	if err != nil {
		return nil, fmt.Errorf("rita: create event store %q: %w", config.Name, err)
	}
	return m.newEventStore(config.Name, stream), nil
}

// existsError says how the store that exists differs from config, and what
// to call instead.
func (m *Manager) existsError(ctx context.Context, config EventStoreConfig, err error) error {
	stream, serr := m.js.Stream(ctx, wire.StreamName(config.Name))
	if serr != nil {
		return fmt.Errorf("rita: create event store %q: it exists with another configuration (call UpdateEventStore to change it, or GetEventStore to use it as it is): %w", config.Name, err)
	}
	info, ok := storeInfo(stream.CachedInfo())
	if !ok {
		return fmt.Errorf("rita: create event store %q: stream %s exists and is not an event store's: %w", config.Name, wire.StreamName(config.Name), err)
	}
	return fmt.Errorf("rita: create event store %q: it exists with another configuration (%s): call UpdateEventStore to change it, or GetEventStore to use it as it is: %w",
		config.Name, strings.Join(configDiff(info.Config, config), "; "), err)
}

// GetEventStore opens an existing event store. A missing store fails with an
// error matching jetstream.ErrStreamNotFound.
func (m *Manager) GetEventStore(ctx context.Context, name string) (*EventStore, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	if err := validateStoreName(name); err != nil {
		return nil, err
	}
	var stream jetstream.Stream
	err := m.do(ctx, name, "the store's stream", func(ctx context.Context) error {
		var err error
		stream, err = m.js.Stream(ctx, wire.StreamName(name))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rita: get event store %q: %w", name, err)
	}
	return m.newEventStore(name, stream), nil
}

// UpdateEventStore updates the event store configuration. A missing store
// fails with an error matching jetstream.ErrStreamNotFound; a change the
// server does not allow (such as Storage) fails with the server's error.
// EventStores opened before keep the configuration they were opened with.
func (m *Manager) UpdateEventStore(ctx context.Context, config EventStoreConfig) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	cfg, err := config.streamConfig()
	if err != nil {
		return err
	}
	err = m.do(ctx, config.Name, "the store's stream to be updated", func(ctx context.Context) error {
		_, err := m.js.UpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("rita: update event store %q: %w", config.Name, err)
	}
	return nil
}

// DeleteEventStore deletes the event store and every event in it, its
// parked events, the snapshots of its models and the data keys of its
// entities (WithEncryption). A missing store fails with
// an error matching jetstream.ErrStreamNotFound.
func (m *Manager) DeleteEventStore(ctx context.Context, name string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if err := validateStoreName(name); err != nil {
		return err
	}
	if err := m.deleteStream(ctx, name, wire.StreamName(name), "the store's stream to be deleted"); err != nil {
		return fmt.Errorf("rita: delete event store %q: %w", name, err)
	}
	if err := m.deleteStream(ctx, name, wire.ParkedStream(name), "the stream of parked events to be deleted"); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("rita: delete parked events of store %q: %w", name, err)
	}
	if err := m.do(ctx, name, "the partitions to be deleted", func(ctx context.Context) error {
		return durable.DeleteAllPartitions(ctx, m.js, name)
	}); err != nil {
		return fmt.Errorf("rita: delete the partitioned consumers of store %q: %w", name, err)
	}
	if err := m.deleteBucket(ctx, name, wire.SnapshotBucket(name), "the snapshot bucket to be deleted"); err != nil {
		return fmt.Errorf("rita: delete snapshots of store %q: %w", name, err)
	}
	if err := m.deleteBucket(ctx, name, wire.KeyBucket(name), "the key bucket to be deleted"); err != nil {
		return fmt.Errorf("rita: delete the data keys of store %q: %w", name, err)
	}
	return nil
}

// deleteBucket deletes a key-value bucket of store, if it exists.
func (m *Manager) deleteBucket(ctx context.Context, store, bucket, what string) error {
	return m.do(ctx, store, what, func(ctx context.Context) error {
		err := m.js.DeleteKeyValue(ctx, bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// deleteStream deletes stream, trying again after transient failures. A
// stream that is missing on a later attempt was deleted by an earlier one
// whose answer was lost.
func (m *Manager) deleteStream(ctx context.Context, store, stream, what string) error {
	attempts := 0
	return m.do(ctx, store, what, func(ctx context.Context) error {
		attempts++
		err := m.js.DeleteStream(ctx, stream)
		if attempts > 1 && errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		return err
	})
}

// do runs one request to the JetStream API under the retry policy of reads
// and writes (jsapi.Do): one that goes unanswered while a cluster elects a
// leader or a server restarts is sent again, until ctx ends (or the
// policy's budget runs out); the retries are logged at debug level.
// A request the server's permissions refuse fails at once with
// ErrPermissionDenied.
func (m *Manager) do(ctx context.Context, store, what string, req func(context.Context) error) error {
	scope := storeScope(store)
	ctx, release := m.guard(ctx, scope)
	defer release()
	err := jsapi.Do(ctx, what, func(attempt int, err error) {
		m.logger.Debug("rita: manager: retrying", "store", store, "waiting for", what, "attempt", attempt, "error", err)
		telemetry.NewAttrs(telemetry.KeyStore.String(store), telemetry.KeyOperation.String("manager")).Add(ctx, m.tel.M.Retries, 1)
	}, req)
	return jsapi.Cause(ctx, m.nc, scope, err)
}

// EventStores returns an iterator over the event stores on the connection,
// each with its info, in no particular order. It yields a nil info and the
// error once if listing fails (the iteration then ends). Streams that are
// not event stores (of other applications, or a store's parked events) are
// left out.
//
//	for info, err := range m.EventStores(ctx) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(info.Config.Name, info.Events)
//	}
func (m *Manager) EventStores(ctx context.Context) iter.Seq2[*EventStoreInfo, error] {
	return func(yield func(*EventStoreInfo, error) bool) {
		if err := m.check(ctx); err != nil {
			yield(nil, err)
			return
		}
		scope := accountScope()
		ctx, release := m.guard(ctx, scope)
		defer release()
		list := m.js.ListStreams(ctx, jetstream.WithStreamListSubject(wire.SubjectPrefix+">"))
		for si := range list.Info() {
			info, ok := storeInfo(si)
			if ok && !yield(info, nil) {
				return
			}
		}
		if err := list.Err(); err != nil {
			yield(nil, fmt.Errorf("rita: list event stores: %w", jsapi.Cause(ctx, m.nc, scope, err)))
		}
	}
}

// check refuses a nil manager or context.
func (m *Manager) check(ctx context.Context) error {
	switch {
	case m == nil:
		return errNilManager
	case ctx == nil:
		return errNilContext
	}
	return nil
}

// logError logs an error that has no handler to go to: of what (a watcher,
// a durable consumer named name, a projection) of store, about e if set.
func (m *Manager) logError(what, name, store string, err error, e *Event) {
	attrs := []any{slog.String("store", store), slog.Any("error", err)}
	if name != "" {
		attrs = append(attrs, slog.String("name", name))
	}
	if e != nil {
		attrs = append(attrs, slog.Uint64("sequence", e.sequence), slog.String("entity", e.Entity), slog.String("type", e.Type))
	}
	m.logger.Error("rita: "+what, attrs...)
}

var (
	errNilContext = fmt.Errorf("%w: nil context", ErrInvalidArgument)
	errNilManager = fmt.Errorf("%w: nil *Manager", ErrInvalidArgument)
	errNilStore   = fmt.Errorf("%w: nil *EventStore", ErrInvalidArgument)
)
