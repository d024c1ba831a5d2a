package rita

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
// "rita-snapshots-NAME", one key per entity and model:
// "<entity-type>.<entity-id>.<name>". A value is the model's bytes
// (encoding.BinaryMarshaler) with these headers:
//
//	Rita-Snapshot-Format    snapshotFormat; another format is ignored
//	Rita-Snapshot-Version   SnapshotConfig.Version; another version is ignored
//	Rita-Snapshot-Sequence  the sequence of the entity's last event in it
//	Rita-Snapshot-Count     the number of the entity's events in it
//	Rita-Snapshot-Store     when the store's stream was created; a snapshot
//	                        of an earlier store of the same name is ignored
//
// Invariants: a snapshot is used only if its format, version and store all
// match, its sequence is not after the entity's last event, and its count of
// the entity's events plus the events read after it equals the entity's
// count now (so no event up to it was removed, by limits, a purge or a
// delete). A usable snapshot is only ever replaced by one of a later
// sequence (the write expects the revision that was read, so of two writers
// racing one wins and the other gives up); one that cannot be used any more
// is replaced by the next one saved. The count check cannot tell a removal from
// an append that race the lookups exactly: a removal of one of the entity's
// old events at the same moment as an append after its last one.

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

const (
	hdrSnapFormat   = "Rita-Snapshot-Format"
	hdrSnapVersion  = "Rita-Snapshot-Version"
	hdrSnapSequence = "Rita-Snapshot-Sequence"
	hdrSnapStore    = "Rita-Snapshot-Store"
	hdrSnapCount    = "Rita-Snapshot-Count"

	snapshotFormat = "1"
	snapshotBucket = "rita-snapshots-"
)

// WithSnapshot makes Evolve of one entity start from the latest snapshot of
// the model saved under cfg, if there is one it can trust, and read only the
// events after it; with cfg.Every it also saves a new snapshot when it has
// read enough events. Evolve then returns the sequence of the last event in
// the model's state, whether it came from the snapshot or was read.
//
// A snapshot is used only if it was saved under the same Version, for this
// store (not an earlier one of the same name), and no event of the entity up
// to it has been removed since (its count of events plus the events after it
// must be the entity's count); otherwise, and with a WithStopSequence before
// the entity's last event, the entity is read from the start. So the model
// ends in the state a replay of the entity's events gives.
//
// It needs exactly one filter naming the entity, "<entity-type>.<entity-id>",
// and a model that implements encoding.BinaryUnmarshaler (and, to save
// snapshots, encoding.BinaryMarshaler); a *Model[T] qualifies when T does.
// Restoring a snapshot replaces the model's state with it. Evolve refuses
// anything else, and WithAfterSequence, with ErrInvalidOption. A snapshot
// that cannot be saved does not fail Evolve: it is logged through the
// Manager's logger. It applies to Evolve only; Watch refuses it.
func WithSnapshot(cfg SnapshotConfig) EvolveOption {
	return evolveOnlyOption{name: "WithSnapshot", fn: func(c *evolveConfig) error {
		if err := cfg.validate(); err != nil {
			return err
		}
		c.snapshot = &cfg
		return nil
	}}
}

func (cfg *SnapshotConfig) validate() error {
	switch {
	case cfg.Version == "":
		return fmt.Errorf("%w: snapshot: empty Version", ErrInvalidOption)
	case strings.ContainsAny(cfg.Version, "\r\n"):
		return fmt.Errorf("%w: snapshot: Version %q holds a line break", ErrInvalidOption, cfg.Version)
	case cfg.Every < 0:
		return fmt.Errorf("%w: snapshot: negative Every %d", ErrInvalidOption, cfg.Every)
	case cfg.Name != "" && !validLiteralToken(cfg.Name):
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

// snapshotter is implemented by *Model[T], whose snapshots hold T's state
// and which keeps track of sequences itself.
type snapshotter interface {
	marshalSnapshot() ([]byte, error)
	restoreSnapshot(data []byte, entity string, seq uint64) error
}

func marshalSnapshot(model Evolver) ([]byte, error) {
	switch m := model.(type) {
	case snapshotter:
		return m.marshalSnapshot()
	case encoding.BinaryMarshaler:
		return m.MarshalBinary()
	}
	return nil, fmt.Errorf("%w: model %T does not implement encoding.BinaryMarshaler", ErrInvalidOption, model)
}

func restoreSnapshot(model Evolver, data []byte, entity string, seq uint64) error {
	switch m := model.(type) {
	case snapshotter:
		return m.restoreSnapshot(data, entity, seq)
	case encoding.BinaryUnmarshaler:
		return m.UnmarshalBinary(data)
	}
	return fmt.Errorf("%w: model %T does not implement encoding.BinaryUnmarshaler", ErrInvalidOption, model)
}

// canSnapshot reports why model cannot be restored from (and, if save, saved
// to) a snapshot, or nil if it can.
func canSnapshot(model Evolver, save bool) error {
	if m, ok := model.(snapshotCapable); ok {
		return m.snapshotCapable(save)
	}
	if _, ok := model.(encoding.BinaryUnmarshaler); !ok {
		return fmt.Errorf("%w: WithSnapshot: model %T does not implement encoding.BinaryUnmarshaler", ErrInvalidOption, model)
	}
	if _, ok := model.(encoding.BinaryMarshaler); save && !ok {
		return fmt.Errorf("%w: WithSnapshot: model %T does not implement encoding.BinaryMarshaler", ErrInvalidOption, model)
	}
	return nil
}

// snapshotCapable is implemented by *Model[T] to say whether T can be
// snapshotted.
type snapshotCapable interface {
	snapshotCapable(save bool) error
}

// snapshotBucketName is the key-value bucket of the store's snapshots.
func snapshotBucketName(store string) string { return snapshotBucket + escapeToken(store) }

// snapshotKey is the key of the snapshots of the named model of entity.
func snapshotKey(entity, name string) string {
	typ, id, _ := strings.Cut(entity, ".")
	return escapeToken(typ) + "." + escapeToken(id) + "." + escapeToken(name)
}

// snapshotSubject is the subject the snapshot is stored on.
func snapshotSubject(store, entity, name string) string {
	return "$KV." + snapshotBucketName(store) + "." + snapshotKey(entity, name)
}

// escapeToken makes s usable in a bucket name and as a key token: ASCII
// letters, digits and '-' stay, every other byte becomes '_' and two hex
// digits. Distinct strings stay distinct.
func escapeToken(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if !isPlainByte(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPlainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

func isPlainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
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
	usable   bool // format, version and store match
}

// snapshotRequest asks for the snapshot of entity under cfg; the answer
// arrives on inbox.snap.
func (r *directReader) snapshotRequest(entity string, cfg *SnapshotConfig) error {
	subject := "$JS.API.DIRECT.GET.KV_" + snapshotBucketName(r.s.name) + "." + snapshotSubject(r.s.name, entity, cfg.name())
	return r.s.m.nc.PublishRequest(subject, r.inbox+".snap", nil)
}

// parseSnapshot reads the answer to snapshotRequest, which next returned
// with err.
func (s *EventStore) parseSnapshot(msg *nats.Msg, err error, cfg *SnapshotConfig) (snapshot, error) {
	if errors.Is(err, nats.ErrNoResponders) {
		return snapshot{}, nil // no bucket yet
	}
	if len(msg.Data) == 0 {
		switch msg.Header.Get("Status") {
		case "404": // no snapshot
			return snapshot{}, nil
		case "":
		default:
			return snapshot{}, fmt.Errorf("rita: snapshot of store %q: %s %s", s.name, msg.Header.Get("Status"), msg.Header.Get("Description"))
		}
	}
	rev, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return snapshot{}, fmt.Errorf("rita: snapshot of store %q: revision: %w", s.name, err)
	}
	snap := snapshot{revision: rev, data: msg.Data}
	if op := msg.Header.Get("KV-Operation"); op != "" {
		return snap, nil // deleted or purged
	}
	seq, err := strconv.ParseUint(msg.Header.Get(hdrSnapSequence), 10, 64)
	count, cerr := strconv.ParseUint(msg.Header.Get(hdrSnapCount), 10, 64)
	snap.seq, snap.count = seq, count
	snap.usable = err == nil && cerr == nil && seq > 0 && count > 0 &&
		msg.Header.Get(hdrSnapFormat) == snapshotFormat &&
		msg.Header.Get(hdrSnapVersion) == cfg.Version &&
		msg.Header.Get(hdrSnapStore) == s.storeStamp()
	return snap, nil
}

// snapshotEntity returns the entity WithSnapshot may load: the one filter,
// naming one entity.
func snapshotEntity(cfg *evolveConfig) (string, error) {
	if len(cfg.filters) != 1 {
		return "", fmt.Errorf("%w: WithSnapshot needs exactly one filter naming an entity, got %d", ErrInvalidOption, len(cfg.filters))
	}
	f := cfg.filters[0]
	if validateEntity(f) != nil || strings.Count(f, ".") != 1 {
		return "", fmt.Errorf("%w: WithSnapshot needs a filter naming one entity, <entity-type>.<entity-id>, not %q", ErrInvalidOption, f)
	}
	if cfg.afterSeq != 0 {
		return "", fmt.Errorf("%w: WithSnapshot does not go with WithAfterSequence", ErrInvalidOption)
	}
	return f, nil
}

// evolveSnapshot is Evolve with WithSnapshot.
func (s *EventStore) evolveSnapshot(ctx context.Context, model Evolver, cfg *evolveConfig) (uint64, error) {
	snapCfg := cfg.snapshot
	entity, err := snapshotEntity(cfg)
	if err != nil {
		return 0, err
	}
	if err := canSnapshot(model, snapCfg.Every > 0); err != nil {
		return 0, err
	}
	filter := entityPattern(s.name, entity)

	// The snapshot, the entity's last event and its number of events, all
	// in flight together.
	r, err := s.newDirectReader(ctx)
	if err != nil {
		return 0, err
	}
	defer r.close()
	if err := r.snapshotRequest(entity, snapCfg); err != nil {
		return 0, fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	if err := r.lastRequest(filter); err != nil {
		return 0, fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	if err := r.countRequest(filter); err != nil {
		return 0, fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	var (
		snap    snapshot
		lastMsg *directMsg
		counts  *subjectCounts
	)
	for range 3 {
		msg, err := r.next()
		if msg != nil && strings.HasSuffix(msg.Subject, ".snap") {
			if snap, err = s.parseSnapshot(msg, err, snapCfg); err != nil {
				// A snapshot that cannot be read is not used; the events are.
				s.m.logger.Warn("rita: snapshot not read", "store", s.name, "entity", entity, "error", err)
				snap = snapshot{}
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		if strings.HasSuffix(msg.Subject, ".count") {
			counts, err = parseCount(s.name, msg)
		} else {
			lastMsg, err = parseLast(s.name, msg)
		}
		if err != nil {
			return 0, err
		}
	}
	if lastMsg == nil {
		return 0, nil // no events
	}
	L, count := lastMsg.seq, counts.total

	// From the snapshot, when the events after it can be had and nothing
	// before it was removed: it held count events, and with the tail that
	// must be all there are.
	if snap.usable && snap.seq <= L && (cfg.stopSeq == 0 || cfg.stopSeq >= L) {
		tail, err := s.snapshotTail(ctx, entity, snap.seq, lastMsg)
		if err != nil {
			return 0, err
		}
		if tail != nil && snap.count+uint64(len(tail)) == count {
			if err := restoreSnapshot(model, snap.data, entity, snap.seq); err != nil {
				return 0, fmt.Errorf("rita: restore snapshot of %s at sequence %d: %w", entity, snap.seq, err)
			}
			last := snap.seq
			for _, m := range tail {
				e, err := decodeDirect(s, m)
				if err != nil {
					return last, err
				}
				if err := model.Evolve(e); err != nil {
					return last, fmt.Errorf("rita: evolve event %d (%s): %w", e.sequence, e.Type, err)
				}
				last = e.sequence
			}
			if snapCfg.Every > 0 && len(tail) >= snapCfg.Every {
				s.saveSnapshot(ctx, model, entity, last, snap.count+uint64(len(tail)), snap.revision, snapCfg)
			}
			return last, nil
		}
	}

	// From the start.
	var last, applied uint64
	err = s.readDirect(ctx, filter, 0, cfg.stopSeq, L, counts, func(m directMsg) error {
		e, err := decodeDirect(s, m)
		if err != nil {
			return err
		}
		if err := model.Evolve(e); err != nil {
			return fmt.Errorf("rita: evolve event %d (%s): %w", e.sequence, e.Type, err)
		}
		last = e.sequence
		applied++
		return nil
	})
	if err != nil {
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
	data, err := marshalSnapshot(model)
	if err != nil {
		return err
	}
	msg := &nats.Msg{
		Subject: snapshotSubject(s.name, entity, cfg.name()),
		Header: nats.Header{
			hdrSnapFormat:                       {snapshotFormat},
			hdrSnapVersion:                      {cfg.Version},
			hdrSnapSequence:                     {strconv.FormatUint(seq, 10)},
			hdrSnapCount:                        {strconv.FormatUint(count, 10)},
			hdrSnapStore:                        {s.storeStamp()},
			jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(revision, 10)},
		},
		Data: data,
	}
	_, err = s.m.js.PublishMsg(ctx, msg)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		if err = s.createSnapshotBucket(ctx); err == nil {
			_, err = s.m.js.PublishMsg(ctx, msg)
		}
	}
	if hasErrorCode(err, errCodeWrongLastSequence) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rita: save snapshot of %s in store %q: %w", entity, s.name, err)
	}
	return nil
}

// createSnapshotBucket creates the store's snapshot bucket, with the store's
// storage and replicas, keeping one value per key.
func (s *EventStore) createSnapshotBucket(ctx context.Context) error {
	cfg := jetstream.KeyValueConfig{
		Bucket:      snapshotBucketName(s.name),
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
// with ErrInvalidOption for an invalid cfg or a model that does not
// implement encoding.BinaryMarshaler, and with ErrInvalidArgument if seq is
// not the sequence of one of the entity's events.
func (s *EventStore) SaveSnapshot(ctx context.Context, model Evolver, entity string, seq uint64, cfg SnapshotConfig) error {
	if ctx == nil {
		return errNilContext
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
	if err := canSnapshot(model, true); err != nil {
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
	// number of events are needed too: all in flight together.
	filter := entityPattern(s.name, entity)
	r, err := s.newDirectReader(ctx)
	if err != nil {
		return err
	}
	defer r.close()
	err = r.snapshotRequest(entity, &cfg)
	if err == nil {
		err = s.m.nc.PublishRequest(directGetSubject(s.name), r.inbox+".event", fmt.Appendf(nil, `{"seq":%d}`, seq))
	}
	if err == nil {
		err = r.lastRequest(filter)
	}
	if err == nil {
		err = r.countRequest(filter)
	}
	if err != nil {
		return fmt.Errorf("rita: save snapshot of %s in store %q: %w", entity, s.name, err)
	}
	var (
		snap    snapshot
		event   *nats.Msg
		lastMsg *directMsg
		count   uint64
	)
	for range 4 {
		msg, err := r.next()
		if msg != nil && strings.HasSuffix(msg.Subject, ".snap") {
			if snap, err = s.parseSnapshot(msg, err, &cfg); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("rita: save snapshot of %s in store %q: %w", entity, s.name, err)
		}
		switch {
		case strings.HasSuffix(msg.Subject, ".event"):
			event = msg
		case strings.HasSuffix(msg.Subject, ".count"):
			var c *subjectCounts
			if c, err = parseCount(s.name, msg); err == nil {
				count = c.total
			}
		default:
			lastMsg, err = parseLast(s.name, msg)
		}
		if err != nil {
			return err
		}
	}
	if subject := event.Header.Get(jetstream.SubjectHeader); !subjectMatches(filter, subject) || lastMsg == nil {
		return fmt.Errorf("%w: snapshot of %s: sequence %d is not one of its events", ErrInvalidArgument, entity, seq)
	}
	if snap.usable && snap.seq >= seq {
		return nil
	}
	// The snapshot holds the events up to seq: all but those after it.
	if lastMsg.seq > seq {
		var after uint64
		err := s.readDirect(ctx, filter, seq, 0, lastMsg.seq, nil, func(directMsg) error {
			after++
			return nil
		})
		if err != nil {
			return err
		}
		if after >= count {
			return fmt.Errorf("%w: snapshot of %s: sequence %d is not one of its events", ErrInvalidArgument, entity, seq)
		}
		count -= after
	}
	return s.putSnapshot(ctx, model, entity, seq, count, snap.revision, &cfg)
}

// decodeDirect decodes a message read by readDirect.
func decodeDirect(s *EventStore, m directMsg) (*Event, error) {
	var ts time.Time
	if m.header.Get(hdrTime) == "" {
		t, err := m.timestamp()
		if err != nil {
			return nil, fmt.Errorf("%w: sequence %d: time stamp: %w", ErrEventDecode, m.seq, err)
		}
		ts = t
	}
	return decodeEvent(s.m.types, m.subject, m.header, m.data, m.seq, ts)
}

// deleteSnapshots removes the store's snapshot bucket, if there is one.
func (m *Manager) deleteSnapshots(ctx context.Context, store string) error {
	err := m.js.DeleteKeyValue(ctx, snapshotBucketName(store))
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("rita: delete snapshots of store %q: %w", store, err)
	}
	return nil
}
