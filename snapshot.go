package rita

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/keys"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// Snapshots of models.
//
// Loading one entity costs a walk over the stretch of the stream its events
// span, which grows with the store. A snapshot is a model's state as of one
// of the entity's events; Evolve with WithSnapshot restores it and reads only
// the events after it, so that a load costs two indexed lookups (the
// snapshot and the entity's last sequence, in flight together) while the
// snapshot is current, and a short tail read after it otherwise.
//
// The snapshots of store NAME live in the JetStream key-value bucket
// "rita-snapshots-NAME", one key per entity and model (see package wire and
// DESIGN.md for the names and headers).
//
// Invariants: a snapshot is used only if its format, version and store all
// match, its sequence is not after the entity's last event, and its count of
// the entity's events plus the events read after it equals the entity's
// count now (so no event up to it was removed, by limits, a purge or a
// delete). A usable snapshot is only ever replaced by one of a later
// sequence (the write expects the revision that was read, so of two writers
// racing one wins and the other gives up); one that cannot be used any more
// is replaced by the next one saved. The count check cannot tell a removal
// from an append that race the lookups exactly: a removal of one of the
// entity's old events at the same moment as an append after its last one.

// SnapshotConfig names and versions the snapshots of one model.
type SnapshotConfig struct {
	// Name tells apart the snapshots of different models of the same
	// entity. Empty means "default".
	Name string

	// Version is the version of the model's state and of its Evolve. A
	// snapshot saved under another version is never used (and is replaced
	// by the next one saved), so change it whenever the model's encoding or
	// the way it evolves changes. Required.
	Version string

	// Every makes Evolve save a new snapshot when it has applied at least
	// Every events after the snapshot it started from (or from the start,
	// when there was none). 0 means Evolve never saves one; SaveSnapshot
	// does, on demand.
	Every int
}

func (cfg *SnapshotConfig) validate() error {
	switch {
	case cfg.Version == "":
		return fmt.Errorf("%w: snapshot: empty Version", ErrInvalidOption)
	case strings.ContainsAny(cfg.Version, "\r\n"):
		return fmt.Errorf("%w: snapshot: Version %q holds a line break", ErrInvalidOption, cfg.Version)
	case cfg.Every < 0:
		return fmt.Errorf("%w: snapshot: negative Every %d", ErrInvalidOption, cfg.Every)
	case cfg.Name != "" && !wire.ValidToken(cfg.Name):
		return fmt.Errorf("%w: snapshot: Name %q must be one token without wildcards or whitespace", ErrInvalidOption, cfg.Name)
	}
	return nil
}

func (cfg *SnapshotConfig) name() string {
	if cfg.Name == "" {
		return "default"
	}
	return cfg.Name
}

// EntitySnapshotter is implemented by a model state that holds several
// entities and can snapshot each of them on its own: MarshalEntity returns
// the part of the state that the events of entity made, and UnmarshalEntity
// replaces that part, and only that part, with data.
//
// With it, WithSnapshot loads several entities into one model (a command
// that writes an order and a stock item loads both), and a *Model[T] whose
// T implements it restores one entity without touching the others it holds.
// A state that implements only encoding.BinaryMarshaler and
// BinaryUnmarshaler is snapshotted as a whole, which serves a model of one
// entity.
type EntitySnapshotter interface {
	MarshalEntity(entity string) ([]byte, error)
	UnmarshalEntity(entity string, data []byte) error
}

// snapshotter is implemented by *Model[T], whose snapshots hold T's state
// and which keeps track of sequences itself.
type snapshotter interface {
	snapshotCapable(save bool, entities []string) error
	marshalSnapshot(entity string) ([]byte, error)
	restoreSnapshot(data []byte, entity string, seq uint64) error
}

// canSnapshot reports why model cannot be restored from (and, if save, saved
// to) snapshots of entities, or nil if it can.
func canSnapshot(model Evolver, save bool, entities []string) error {
	if m, ok := model.(snapshotter); ok {
		return m.snapshotCapable(save, entities)
	}
	return stateCanSnapshot(model, save, entities)
}

// stateCanSnapshot reports why v cannot be restored from (and, if save,
// saved to) snapshots of entities.
func stateCanSnapshot(v any, save bool, entities []string) error {
	if _, ok := v.(EntitySnapshotter); ok {
		return nil
	}
	if len(entities) > 1 {
		return fmt.Errorf("%w: WithSnapshot of %d entities: model state %T does not implement rita.EntitySnapshotter", ErrInvalidOption, len(entities), v)
	}
	if _, ok := v.(encoding.BinaryUnmarshaler); !ok {
		return fmt.Errorf("%w: WithSnapshot: model state %T implements neither rita.EntitySnapshotter nor encoding.BinaryUnmarshaler", ErrInvalidOption, v)
	}
	if _, ok := v.(encoding.BinaryMarshaler); save && !ok {
		return fmt.Errorf("%w: WithSnapshot: model state %T does not implement encoding.BinaryMarshaler", ErrInvalidOption, v)
	}
	return nil
}

// marshalState returns the snapshot of entity in v.
func marshalState(v any, entity string) ([]byte, error) {
	if es, ok := v.(EntitySnapshotter); ok {
		return es.MarshalEntity(entity)
	}
	return v.(encoding.BinaryMarshaler).MarshalBinary()
}

// unmarshalState restores the snapshot of entity into v.
func unmarshalState(v any, entity string, data []byte) error {
	if es, ok := v.(EntitySnapshotter); ok {
		return es.UnmarshalEntity(entity, data)
	}
	return v.(encoding.BinaryUnmarshaler).UnmarshalBinary(data)
}

func marshalSnapshot(model Evolver, entity string) ([]byte, error) {
	if m, ok := model.(snapshotter); ok {
		return m.marshalSnapshot(entity)
	}
	return marshalState(model, entity)
}

func restoreSnapshot(model Evolver, data []byte, entity string, seq uint64) error {
	if m, ok := model.(snapshotter); ok {
		return m.restoreSnapshot(data, entity, seq)
	}
	return unmarshalState(model, entity, data)
}

func (m *Model[T]) snapshotCapable(save bool, entities []string) error {
	if err := stateCanSnapshot(m.t, save, entities); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.wholeStateLocked(entities[0])
}

// wholeStateLocked refuses to snapshot the whole state for entity while the
// model holds another entity: restoring would wipe it, and saving would
// store it under entity's key.
func (m *Model[T]) wholeStateLocked(entity string) error {
	if _, ok := any(m.t).(EntitySnapshotter); ok {
		return nil
	}
	for other, seq := range m.last {
		if other != entity && seq > 0 {
			return fmt.Errorf("%w: WithSnapshot of %s: the model holds entity %s too, and its state %T is snapshotted as a whole: implement rita.EntitySnapshotter to hold several entities",
				ErrInvalidOption, entity, other, m.t)
		}
	}
	return nil
}

func (m *Model[T]) marshalSnapshot(entity string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.wholeStateLocked(entity); err != nil {
		return nil, err
	}
	return marshalState(m.t, entity)
}

// restoreSnapshot restores data, the state of entity as of its event at
// seq, into the model: the entity's part of it with an EntitySnapshotter,
// else the whole state.
func (m *Model[T]) restoreSnapshot(data []byte, entity string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.wholeStateLocked(entity); err != nil {
		return err
	}
	if err := unmarshalState(m.t, entity, data); err != nil {
		return err
	}
	m.last[entity] = seq
	m.sequence = max(m.sequence, seq)
	return nil
}

// storeStamp identifies this incarnation of the store: when its stream was
// created.
func (s *EventStore) storeStamp() string {
	if info := s.stream.CachedInfo(); info != nil {
		return info.Created.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// snapshot is a stored snapshot as read.
type snapshot struct {
	revision uint64 // its sequence in the bucket's stream; 0: none stored
	seq      uint64 // the entity's last event in it
	count    uint64 // the number of the entity's events in it
	data     []byte
	usable   bool   // format, version and store match
	key      string // Rita-Encrypted: sealed with this version of the entity's key
}

// snapshotRequest asks for the snapshot of entity under cfg; the answer
// comes with tag.
func (s *EventStore) snapshotRequest(c *jsapi.Collector, tag, entity string, cfg *SnapshotConfig) error {
	subject := jsapi.DirectGetSubject(wire.SnapshotStream(s.name)) + "." + wire.SnapshotSubject(s.name, entity, cfg.name())
	return c.Request(subject, tag, nil)
}

// parseSnapshot reads the answer to snapshotRequest.
func (s *EventStore) parseSnapshot(msg *nats.Msg, cfg *SnapshotConfig) (snapshot, error) {
	if len(msg.Data) == 0 {
		switch msg.Header.Get("Status") {
		case "404", "503": // no snapshot, no bucket yet
			return snapshot{}, nil
		case "":
		default:
			return snapshot{}, fmt.Errorf("snapshot: status %s %s", msg.Header.Get("Status"), msg.Header.Get("Description"))
		}
	}
	rev, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return snapshot{}, fmt.Errorf("snapshot: revision: %w", err)
	}
	snap := snapshot{revision: rev, data: msg.Data}
	if op := msg.Header.Get("KV-Operation"); op != "" {
		return snap, nil // deleted or purged
	}
	seq, err := strconv.ParseUint(msg.Header.Get(wire.HdrSnapSequence), 10, 64)
	count, cerr := strconv.ParseUint(msg.Header.Get(wire.HdrSnapCount), 10, 64)
	snap.seq, snap.count = seq, count
	snap.key = msg.Header.Get(wire.HdrEncrypted)
	snap.usable = err == nil && cerr == nil && seq > 0 && count > 0 &&
		msg.Header.Get(wire.HdrSnapFormat) == wire.SnapshotFormat &&
		msg.Header.Get(wire.HdrSnapVersion) == cfg.Version &&
		msg.Header.Get(wire.HdrSnapStore) == s.storeStamp()
	return snap, nil
}

// snapshotEntities returns the entities WithSnapshot loads: each filter
// must name one, <entity-type>.<entity-id>.
func snapshotEntities(cfg *config) ([]string, error) {
	if len(cfg.filters) == 0 {
		return nil, fmt.Errorf("%w: WithSnapshot needs a filter naming an entity", ErrInvalidOption)
	}
	for _, f := range cfg.filters {
		if !wire.ValidEntity(f) {
			return nil, fmt.Errorf("%w: WithSnapshot needs filters naming entities, <entity-type>.<entity-id>, not %q", ErrInvalidOption, f)
		}
	}
	if cfg.after != 0 {
		return nil, fmt.Errorf("%w: WithSnapshot does not go with WithAfterSequence", ErrInvalidOption)
	}
	var entities []string
	for _, f := range cfg.filters {
		if !slices.Contains(entities, f) {
			entities = append(entities, f)
		}
	}
	return entities, nil
}

// entityState is what the lookups before a snapshot load or save found.
type entityState struct {
	snap   snapshot
	last   *jsapi.Msg // the entity's last event; nil: none
	counts *jsapi.Counts
	event  *jsapi.Msg // the event at the sequence asked for, if asked

	snapErr error // why the snapshot could not be read
}

// lookUpEntity asks, in one round trip, for the snapshot of entity under
// cfg, the entity's last event and its number of events (and, with at > 0,
// the event at sequence at), trying again after transient failures.
func (s *EventStore) lookUpEntity(ctx context.Context, entity string, cfg *SnapshotConfig, at uint64) (*entityState, error) {
	filter := wire.EntityPattern(s.name, entity)
	var st *entityState
	err := s.src.Do(ctx, "the snapshot and the entity's last event", func(ctx context.Context) error {
		c, err := jsapi.NewCollector(ctx, s.m.nc, 0)
		if err != nil {
			return err
		}
		defer c.Close()
		tags := []string{"snap", "last", "count"}
		err = errors.Join(
			s.snapshotRequest(c, "snap", entity, cfg),
			c.Request(jsapi.MsgGetSubject(s.src.Stream), "last", jsapi.LastBody(filter, false)),
			c.Request(jsapi.StreamInfoSubject(s.src.Stream), "count", jsapi.CountBody(filter)),
		)
		if err == nil && at > 0 {
			tags = append(tags, "event")
			err = c.Request(jsapi.DirectGetSubject(s.src.Stream), "event", jsapi.SeqBody(at))
		}
		if err != nil {
			return err
		}
		answers, err := c.Gather(tags...)
		if err != nil {
			return err
		}
		st = &entityState{}
		if st.last, err = jsapi.ParseLast(answers["last"]); err != nil {
			return err
		}
		if st.counts, err = jsapi.ParseCount(answers["count"]); err != nil {
			return err
		}
		if msg := answers["event"]; msg != nil {
			if st.event, err = jsapi.ParseOne(msg); err != nil {
				return err
			}
		}
		st.snap, st.snapErr = s.parseSnapshot(answers["snap"], cfg)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	if st.snap.usable && st.snap.key != "" {
		st.snapErr = s.openSnapshot(ctx, entity, cfg, &st.snap)
	}
	return st, nil
}

// openSnapshot decrypts a snapshot sealed with its entity's key. One that
// cannot be opened (the key was forgotten, or this Manager has no keys) is
// not usable: the entity is read from its events.
func (s *EventStore) openSnapshot(ctx context.Context, entity string, cfg *SnapshotConfig, snap *snapshot) error {
	snap.usable = false
	if s.ring == nil {
		return fmt.Errorf("snapshot is encrypted, and this Manager has no keys (WithEncryption)")
	}
	v, err := strconv.ParseUint(snap.key, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: snapshot: %s %q is not a key version", ErrEncryptionKey, wire.HdrEncrypted, snap.key)
	}
	aead, ok, err := s.ring.Version(ctx, entity, v)
	if err != nil || !ok {
		return err // forgotten: nothing to report
	}
	plain, err := keys.Open(aead, snap.data, keys.SnapshotAD(entity, cfg.name()))
	if err != nil {
		return fmt.Errorf("%w: snapshot: %w", ErrEncryptionKey, err)
	}
	snap.data, snap.usable = plain, true
	return nil
}

// evolveSnapshot is Evolve with WithSnapshot.
func (s *EventStore) evolveSnapshot(ctx context.Context, model Evolver, cfg *config, out *evolveOutcome) (uint64, error) {
	entities, err := snapshotEntities(cfg)
	if err != nil {
		return 0, err
	}
	if err := canSnapshot(model, cfg.snapshot.Every > 0, entities); err != nil {
		return 0, err
	}
	var last uint64
	for _, entity := range entities {
		seq, err := s.evolveEntity(ctx, model, entity, cfg, out)
		last = max(last, seq)
		if err != nil {
			return last, err
		}
	}
	return last, nil
}

// evolveEntity evolves model with one entity, from its snapshot when there
// is a usable one, and returns the sequence of the entity's last event in
// the model's state.
func (s *EventStore) evolveEntity(ctx context.Context, model Evolver, entity string, cfg *config, out *evolveOutcome) (uint64, error) {
	snapCfg := cfg.snapshot
	st, err := s.lookUpEntity(ctx, entity, snapCfg, 0)
	if err != nil {
		return 0, err
	}
	if st.snapErr != nil {
		// A snapshot that cannot be read is not used; the events are.
		s.m.logger.Warn("rita: snapshot not read", "store", s.name, "entity", entity, "error", st.snapErr)
	}
	if st.last == nil {
		return 0, nil // no events
	}
	L, count, snap := st.last.Seq, st.counts.Total, st.snap
	filter := wire.EntityPattern(s.name, entity)
	apply := func(m *jsapi.Msg) error {
		e, err := decodeEvent(ctx, s.m.types, s.ring, m)
		if err != nil {
			return err
		}
		if err := model.Evolve(e); err != nil {
			return fmt.Errorf("rita: evolve event %d (%s): %w", e.sequence, e.Type, err)
		}
		out.applied++
		return nil
	}

	// From the snapshot, when the events after it can be had and nothing
	// before it was removed: it held count events, and with the tail that
	// must be all there are.
	if snap.usable && snap.seq <= L && (cfg.stop == 0 || cfg.stop >= L) {
		tail, err := read.Tail(ctx, s.src, filter, snap.seq, st.last)
		if err != nil {
			return 0, fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		if tail != nil && snap.count+uint64(len(tail)) == count {
			if err := restoreSnapshot(model, snap.data, entity, snap.seq); err != nil {
				return 0, fmt.Errorf("rita: restore snapshot of %s at sequence %d: %w", entity, snap.seq, err)
			}
			out.snapshots++
			last := snap.seq
			for i := range tail {
				if err := apply(&tail[i]); err != nil {
					return last, err
				}
				last = tail[i].Seq
			}
			if snapCfg.Every > 0 && len(tail) >= snapCfg.Every {
				s.saveSnapshot(ctx, model, entity, last, snap.count+uint64(len(tail)), snap.revision, snapCfg)
			}
			return last, nil
		}
	}

	// From the start.
	out.misses++
	var last, applied uint64
	var applyErr error
	err = read.Entity(ctx, s.src, filter, 0, cfg.stop, read.Known{Last: st.last, Counts: st.counts}, func(m *read.Msg) error {
		if applyErr = apply(&m.Msg); applyErr != nil {
			return applyErr
		}
		last = m.Seq
		applied++
		return nil
	})
	if err != nil {
		if applyErr == nil {
			err = fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		return last, err
	}
	if snapCfg.Every > 0 && applied >= uint64(snapCfg.Every) && last == L && applied == count {
		s.saveSnapshot(ctx, model, entity, last, applied, snap.revision, snapCfg)
	}
	return last, nil
}

// saveSnapshot is putSnapshot for Evolve, which logs a failure instead of
// failing.
func (s *EventStore) saveSnapshot(ctx context.Context, model Evolver, entity string, seq, count, revision uint64, cfg *SnapshotConfig) {
	if err := s.putSnapshot(ctx, model, entity, seq, count, revision, cfg); err != nil {
		s.m.logger.Warn("rita: snapshot not saved", "store", s.name, "entity", entity, "sequence", seq, "error", err)
	}
}

// putSnapshot stores model's state as the snapshot of entity at seq,
// expecting the snapshot's current revision to be revision (0: none). It
// creates the bucket when it is missing. Losing a race to another writer is
// not an error.
func (s *EventStore) putSnapshot(ctx context.Context, model Evolver, entity string, seq, count, revision uint64, cfg *SnapshotConfig) error {
	data, err := marshalSnapshot(model, entity)
	if err != nil {
		return err
	}
	scope := s.scope
	ctx, release := s.m.guard(ctx, scope) // a refused request ends it at once
	defer release()
	var key string
	if s.ring != nil {
		// An entity with a data key has personal events: its state is
		// sealed with that key, and forgotten with it.
		version, aead, ok, err := s.ring.Existing(ctx, entity)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrEncryptionKey, err)
		}
		if ok {
			if data, err = keys.Seal(aead, data, keys.SnapshotAD(entity, cfg.name())); err != nil {
				return fmt.Errorf("%w: %w", ErrEncryptionKey, err)
			}
			key = strconv.FormatUint(version, 10)
		}
	}
	msg := &nats.Msg{
		Subject: wire.SnapshotSubject(s.name, entity, cfg.name()),
		Header: nats.Header{
			wire.HdrSnapFormat:                  {wire.SnapshotFormat},
			wire.HdrSnapVersion:                 {cfg.Version},
			wire.HdrSnapSequence:                {strconv.FormatUint(seq, 10)},
			wire.HdrSnapCount:                   {strconv.FormatUint(count, 10)},
			wire.HdrSnapStore:                   {s.storeStamp()},
			jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(revision, 10)},
		},
		Data: data,
	}
	if key != "" {
		msg.Header[wire.HdrEncrypted] = []string{key}
	}
	// No retries on "no responders": it means the bucket is missing, and
	// is made at once.
	_, err = s.m.js.PublishMsg(ctx, msg, jetstream.WithRetryAttempts(0))
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		if err = s.createSnapshotBucket(ctx); err == nil {
			_, err = s.m.js.PublishMsg(ctx, msg)
		}
	}
	if jsapi.HasCode(err, jsapi.CodeWrongLastSequence) {
		return nil
	}
	err = s.denied(ctx, scope, err)
	if err != nil {
		return fmt.Errorf("rita: save snapshot of %s in store %q: %w", entity, s.name, err)
	}
	return nil
}

// createSnapshotBucket creates the store's snapshot bucket, with the store's
// storage and replicas, keeping one value per key.
func (s *EventStore) createSnapshotBucket(ctx context.Context) error {
	cfg := jetstream.KeyValueConfig{
		Bucket:      wire.SnapshotBucket(s.name),
		Description: fmt.Sprintf("rita: snapshots of the models of event store %q", s.name),
		History:     1,
	}
	if info := s.stream.CachedInfo(); info != nil {
		cfg.Storage = info.Config.Storage
		cfg.Replicas = info.Config.Replicas
	}
	_, err := s.m.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return nil
	}
	return err
}

// SaveSnapshot saves model's state as the snapshot of entity under cfg, as
// of seq, the sequence of the entity's last event in that state (what
// Evolve returned, or Model.EntitySequence; 0 takes it from a *Model).
// Evolve with WithSnapshot(cfg) then starts from it. A snapshot of a later
// sequence is not replaced.
//
// It fails with ErrEventEntityInvalid for an entity that is not two tokens,
// with ErrInvalidOption for an invalid cfg or a model whose state
// implements neither EntitySnapshotter nor encoding.BinaryMarshaler (or a
// *Model that snapshots as a whole but holds other entities too), and
// with ErrInvalidArgument if seq is
// not the sequence of one of the entity's events.
func (s *EventStore) SaveSnapshot(ctx context.Context, model Evolver, entity string, seq uint64, cfg SnapshotConfig) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if model == nil {
		return fmt.Errorf("%w: nil model", ErrInvalidArgument)
	}
	if err := validateEntity(entity); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := canSnapshot(model, true, []string{entity}); err != nil {
		return err
	}
	if seq == 0 {
		if m, ok := model.(interface{ EntitySequence(string) uint64 }); ok {
			seq = m.EntitySequence(entity)
		}
	}
	if seq == 0 {
		return fmt.Errorf("%w: snapshot of %s: no sequence", ErrInvalidArgument, entity)
	}
	// The event at seq must be the entity's; the current snapshot (its
	// revision, and whether it is later), the entity's last event and its
	// number of events are needed too.
	st, err := s.lookUpEntity(ctx, entity, &cfg, seq)
	if err != nil {
		return err
	}
	if st.snapErr != nil {
		return fmt.Errorf("rita: save snapshot of %s in store %q: %w", entity, s.name, st.snapErr)
	}
	filter := wire.EntityPattern(s.name, entity)
	if st.event == nil || !wire.Matches(filter, st.event.Subject) || st.last == nil {
		return fmt.Errorf("%w: snapshot of %s: sequence %d is not one of its events", ErrInvalidArgument, entity, seq)
	}
	if st.snap.usable && st.snap.seq >= seq {
		return nil
	}
	// The snapshot holds the events up to seq: all but those after it.
	count := st.counts.Total
	if st.last.Seq > seq {
		var after uint64
		err := read.Entity(ctx, s.src, filter, seq, 0, read.Known{Last: st.last}, func(*read.Msg) error {
			after++
			return nil
		})
		if err != nil {
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		if after >= count {
			return fmt.Errorf("%w: snapshot of %s: sequence %d is not one of its events", ErrInvalidArgument, entity, seq)
		}
		count -= after
	}
	return s.putSnapshot(ctx, model, entity, seq, count, st.snap.revision, &cfg)
}
