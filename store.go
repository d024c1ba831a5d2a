package rita

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/keys"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// MaxBatchSize is the most events one Append stores. They form one atomic
// batch, and the server takes at most 1000 messages in one; a longer Append
// is refused with ErrTooManyEvents rather than split, since a split batch
// would no longer be atomic.
const MaxBatchSize = 1000

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

	// MaxMsgsPerSubject limits the events kept per subject, that is per
	// entity and event type ($ES.<name>.<type>.<id>.<event-type>); 0
	// means no limit.
	MaxMsgsPerSubject int64

	// Discard says what a store at one of its limits (MaxMsgs, MaxBytes,
	// MaxMsgsPerSubject) does with a new event: jetstream.DiscardOld (the
	// zero value) removes the oldest events to make room;
	// jetstream.DiscardNew refuses the append with ErrStoreFull, for a
	// subject at MaxMsgsPerSubject too. MaxAge always removes old events.
	Discard jetstream.DiscardPolicy
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
		Name:              wire.StreamName(c.Name),
		Description:       c.Description,
		Metadata:          c.Metadata,
		Subjects:          []string{wire.StoreSubjects(c.Name)},
		Replicas:          c.Replicas,
		Storage:           c.Storage,
		Placement:         c.Placement,
		RePublish:         c.RePublish,
		MaxMsgs:           noLimitIfZero(c.MaxMsgs),
		MaxAge:            c.MaxAge,
		MaxBytes:          noLimitIfZero(c.MaxBytes),
		Duplicates:        c.Duplicates,
		MaxMsgsPerSubject: noLimitIfZero(c.MaxMsgsPerSubject),
		Discard:           c.Discard,
		// A subject at MaxMsgsPerSubject refuses a new event too.
		DiscardNewPerSubject: c.Discard == jetstream.DiscardNew && c.MaxMsgsPerSubject > 0,
		AllowAtomicPublish:   true,
		AllowDirect:          true,
	}, nil
}

// configDiff lists the fields in which want differs from have, the
// configuration of a store that exists, as "Field: have, asked want".
// Fields are compared as the stream has them: Replicas 0 is 1, Duplicates 0
// is two minutes.
func configDiff(have, want EventStoreConfig) []string {
	var diffs []string
	differ := func(field string, h, w any) {
		if !reflect.DeepEqual(h, w) {
			diffs = append(diffs, fmt.Sprintf("%s: %v, asked %v", field, show(h), show(w)))
		}
	}
	differ("Description", have.Description, want.Description)
	differ("Metadata", emptyIfNil(have.Metadata), emptyIfNil(want.Metadata))
	differ("Replicas", max(have.Replicas, 1), max(want.Replicas, 1))
	differ("Storage", have.Storage, want.Storage)
	differ("Placement", have.Placement, want.Placement)
	differ("RePublish", have.RePublish, want.RePublish)
	differ("MaxMsgs", have.MaxMsgs, want.MaxMsgs)
	differ("MaxAge", have.MaxAge, want.MaxAge)
	differ("MaxBytes", have.MaxBytes, want.MaxBytes)
	differ("Duplicates", cmp.Or(have.Duplicates, 2*time.Minute), cmp.Or(want.Duplicates, 2*time.Minute))
	differ("MaxMsgsPerSubject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	differ("Discard", have.Discard, want.Discard)
	if len(diffs) == 0 {
		// Something rita does not configure differs (the stream was changed
		// by hand).
		diffs = append(diffs, "a stream setting rita does not set")
	}
	return diffs
}

// show prints a config field's value for configDiff.
func show(v any) any {
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.Pointer && rv.IsNil():
		return "none"
	case rv.Kind() == reflect.Pointer:
		return fmt.Sprintf("%+v", rv.Elem().Interface())
	case rv.Kind() == reflect.String:
		return fmt.Sprintf("%q", v)
	}
	return v
}

// emptyIfNil treats a nil map as an empty one.
func emptyIfNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// noLimitIfZero maps the zero value ("no limit") to JetStream's -1.
func noLimitIfZero(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// zeroIfNoLimit maps JetStream's -1 ("no limit") to the zero value.
func zeroIfNoLimit(n int64) int64 { return max(n, 0) }

// validateStoreName checks that name can be used both as part of a JetStream
// stream name and as a subject token.
func validateStoreName(name string) error {
	if name == "" {
		return ErrEventStoreNameRequired
	}
	if len(name) > wire.MaxStoreNameLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrEventStoreNameInvalid, len(name), wire.MaxStoreNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrEventStoreNameInvalid, name)
	}
	for _, r := range name {
		switch {
		case r == '.', r == '*', r == '>', r == '/', r == '\\':
			return fmt.Errorf("%w: %q contains %q", ErrEventStoreNameInvalid, name, r)
		case unicode.IsSpace(r), unicode.IsControl(r):
			return fmt.Errorf("%w: %q contains whitespace or a control character", ErrEventStoreNameInvalid, name)
		}
	}
	return nil
}

// EventStore persists events to a JetStream stream and provides operations to
// append, evolve, and watch events.
//
// An EventStore is safe for concurrent use by multiple goroutines. The
// methods of a nil *EventStore fail with ErrInvalidArgument.
type EventStore struct {
	m      *Manager
	name   string
	stream jetstream.Stream
	src    *read.Source
	tel    *storeTelemetry
	ring   *keys.Ring // the entities' data keys; nil without WithEncryption

	// scope is what a permission refusal must concern to end a call on
	// the store (storeScope), made once.
	scope *jsapi.Scope
}

func (m *Manager) newEventStore(name string, stream jetstream.Stream) *EventStore {
	s := &EventStore{m: m, name: name, stream: stream, tel: newStoreTelemetry(m.tel, name, m.logger)}
	scope := storeScope(name)
	s.scope = scope
	s.src = &read.Source{
		Guard: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return m.guard(ctx, scope)
		},
		NC:     m.nc,
		JS:     m.js,
		Stream: wire.StreamName(name),
		Notify: func(what string, attempt int, err error) {
			m.logger.Debug("rita: read: retrying", "store", name, "waiting for", what, "attempt", attempt, "error", err)
			s.tel.readRetry.Add(context.Background(), s.tel.M.Retries, 1)
		},
	}
	replicas := 1
	if info := stream.CachedInfo(); info != nil {
		s.src.Replicated = info.Config.Replicas > 1
		s.src.Direct = info.Config.AllowDirect
		s.src.Memory = info.Config.Storage == jetstream.MemoryStorage
		s.src.MaxMsgSize = int64(info.Config.MaxMsgSize)
		replicas = info.Config.Replicas
	}
	s.ring = m.newRing(name, replicas)
	// The subscription of Append's acknowledgements, made with the first
	// store rather than by the first Append, so that it is there before
	// the calls (a failure here is tried again by the first Append).
	_ = m.acks.Subscribe()
	return s
}

// Name returns the name of the store.
func (s *EventStore) Name() string {
	if s == nil {
		return ""
	}
	return s.name
}

// EventStoreInfo is what a store holds and how it is configured, as
// EventStore.Info and Manager.EventStores report it.
type EventStoreInfo struct {
	// Config is the store's configuration as the server has it.
	Config EventStoreConfig

	// Created is when the store was created.
	Created time.Time

	// Events is the number of events stored; Bytes their size on the
	// server.
	Events uint64
	Bytes  uint64

	// FirstSequence and LastSequence are the sequences of the first and
	// last event stored, FirstTime and LastTime when they were stored
	// (zero with no event stored).
	FirstSequence, LastSequence uint64
	FirstTime, LastTime         time.Time
}

// Info returns what the store holds now, as the stream leader reports it.
// A store deleted since it was opened fails with an error matching
// jetstream.ErrStreamNotFound.
func (s *EventStore) Info(ctx context.Context) (*EventStoreInfo, error) {
	if s == nil {
		return nil, errNilStore
	}
	if ctx == nil {
		return nil, errNilContext
	}
	var si *jetstream.StreamInfo
	err := s.src.Do(ctx, "the store's info", func(ctx context.Context) (err error) {
		si, err = s.stream.Info(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rita: info of store %q: %w", s.name, err)
	}
	info, _ := storeInfo(si)
	return info, nil
}

// storeInfo reads the info of a store's stream; false for a stream that is
// not a store's.
func storeInfo(si *jetstream.StreamInfo) (*EventStoreInfo, bool) {
	c := si.Config
	name, ok := strings.CutPrefix(c.Name, wire.StreamPrefix)
	if !ok || name == "" || len(c.Subjects) != 1 || c.Subjects[0] != wire.StoreSubjects(name) {
		return nil, false
	}
	return &EventStoreInfo{
		Config: EventStoreConfig{
			Name:        name,
			Description: c.Description,
			Metadata:    userMetadata(c.Metadata),
			Replicas:    c.Replicas,
			Storage:     c.Storage,
			Placement:   c.Placement,
			RePublish:   c.RePublish,
			MaxMsgs:     zeroIfNoLimit(c.MaxMsgs),
			MaxAge:      c.MaxAge,
			MaxBytes:    zeroIfNoLimit(c.MaxBytes),
			Duplicates:  c.Duplicates,

			MaxMsgsPerSubject: zeroIfNoLimit(c.MaxMsgsPerSubject),
			Discard:           c.Discard,
		},
		Created:       si.Created,
		Events:        si.State.Msgs,
		Bytes:         si.State.Bytes,
		FirstSequence: si.State.FirstSeq,
		LastSequence:  si.State.LastSeq,
		FirstTime:     si.State.FirstTime,
		LastTime:      si.State.LastTime,
	}, true
}

// userMetadata leaves out the server's own entries (_nats.*).
func userMetadata(md map[string]string) map[string]string {
	var out map[string]string
	for k, v := range md {
		if !strings.HasPrefix(k, "_nats.") {
			if out == nil {
				out = make(map[string]string, len(md))
			}
			out[k] = v
		}
	}
	return out
}

// duplicateWindow is how long the store remembers an event ID.
func (s *EventStore) duplicateWindow() time.Duration {
	if info := s.stream.CachedInfo(); info != nil && info.Config.Duplicates > 0 {
		return info.Config.Duplicates
	}
	return 2 * time.Minute // JetStream's default
}

// check refuses a nil store or context.
func (s *EventStore) check(ctx context.Context) error {
	switch {
	case s == nil:
		return errNilStore
	case ctx == nil:
		return errNilContext
	}
	return nil
}

// begin checks what every operation checks first: the store and the
// context, the argument it cannot do without (named what; missing when it
// is nil), and the options of op.
func begin[O option](s *EventStore, ctx context.Context, op operation, what string, missing bool, opts []O) (*config, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if missing {
		return nil, fmt.Errorf("%w: nil %s", ErrInvalidArgument, what)
	}
	return configure(op, opts)
}
