package rita

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Looking after a store's snapshots: what is saved, and removing what is
// not wanted. (snapshot.go saves and uses them.)

// SnapshotInfo is a snapshot saved in a store, as Snapshots lists it.
type SnapshotInfo struct {
	// Entity ("<type>.<id>") and Name (SnapshotConfig.Name; "default" for
	// an empty one) say whose snapshot it is.
	Entity string
	Name   string

	// Version is the SnapshotConfig.Version it was saved under.
	Version string

	// Sequence is the sequence of the entity's last event in it, Count the
	// number of the entity's events in it.
	Sequence uint64
	Count    uint64

	// Saved is when it was saved.
	Saved time.Time

	// Stale reports a snapshot that Evolve never uses whatever the model's
	// Version: one saved for an earlier store of the same name, or in a
	// format this rita does not read.
	Stale bool

	// Data is the model's state as its MarshalBinary (or MarshalEntity)
	// returned it.
	Data []byte
}

// Snapshots returns an iterator over the snapshots saved in the store, of
// every entity ("" ) or of one ("<type>.<id>"), ordered by when they were
// saved. A store that has none yields nothing. A failure is yielded once and
// ends the iteration; an entity that is not two tokens fails with
// ErrEventEntityInvalid. Each SnapshotInfo is the caller's.
func (s *EventStore) Snapshots(ctx context.Context, entity string) iter.Seq2[*SnapshotInfo, error] {
	return func(yield func(*SnapshotInfo, error) bool) {
		if err := s.check(ctx); err != nil {
			yield(nil, err)
			return
		}
		filter := "$KV." + wire.SnapshotBucket(s.name) + ".>"
		if entity != "" {
			if err := validateEntity(entity); err != nil {
				yield(nil, err)
				return
			}
			filter = wire.SnapshotSubject(s.name, entity, "*")
			filter = filter[:len(filter)-len(wire.EscapeToken("*"))] + "*"
		}
		fail := func(err error) {
			yield(nil, fmt.Errorf("rita: list the snapshots of store %q: %w", s.name, err))
		}
		var cons jetstream.Consumer
		err := s.src.Do(ctx, "the snapshot bucket", func(ctx context.Context) (err error) {
			cons, err = s.m.js.OrderedConsumer(ctx, wire.SnapshotStream(s.name), jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{filter},
				DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
			})
			return err
		})
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return // no snapshot was ever saved
		}
		if err != nil {
			fail(err)
			return
		}
		info := cons.CachedInfo()
		if info == nil || info.NumPending == 0 {
			return
		}
		it, err := cons.Messages()
		if err != nil {
			fail(err)
			return
		}
		defer func() {
			it.Stop()
			// Ask the server to remove the consumer now rather than
			// when it has been inactive long enough; no need to wait.
			_ = s.m.nc.Publish(jsapi.ConsumerDeleteSubject(wire.SnapshotStream(s.name), info.Name), nil)
		}()
		stamp := s.storeStamp()
		for {
			msg, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				fail(err)
				return
			}
			md, err := msg.Metadata()
			if err != nil {
				fail(err)
				return
			}
			if snap, ok := snapshotInfo(s.name, stamp, msg, md); ok && !yield(snap, nil) {
				return
			}
			if md.NumPending == 0 {
				return
			}
		}
	}
}

// snapshotInfo reads one value of the snapshot bucket; false for a deleted
// one, or a key that is not a snapshot's.
func snapshotInfo(store, stamp string, msg jetstream.Msg, md *jetstream.MsgMetadata) (*SnapshotInfo, bool) {
	h := msg.Headers()
	if h.Get("KV-Operation") != "" {
		return nil, false
	}
	entity, name, ok := wire.SplitSnapshotSubject(store, msg.Subject())
	if !ok {
		return nil, false
	}
	snap := &SnapshotInfo{
		Entity:  entity,
		Name:    name,
		Version: h.Get(wire.HdrSnapVersion),
		Saved:   md.Timestamp,
		Stale:   h.Get(wire.HdrSnapFormat) != wire.SnapshotFormat || h.Get(wire.HdrSnapStore) != stamp,
		Data:    msg.Data(),
	}
	snap.Sequence, _ = strconv.ParseUint(h.Get(wire.HdrSnapSequence), 10, 64)
	snap.Count, _ = strconv.ParseUint(h.Get(wire.HdrSnapCount), 10, 64)
	return snap, true
}

// DeleteSnapshot removes the snapshot of entity ("<type>.<id>") saved
// under the model name name ("" means "default"); the next Evolve
// WithSnapshot of the entity reads its events from the start (and saves a
// new one if it is told to). It fails with ErrEventEntityInvalid for an
// entity that is not two tokens, and with an error matching
// jetstream.ErrKeyNotFound when there is no such snapshot.
func (s *EventStore) DeleteSnapshot(ctx context.Context, entity, name string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := validateEntity(entity); err != nil {
		return err
	}
	cfg := SnapshotConfig{Name: name}
	if name != "" && !wire.ValidToken(name) {
		return fmt.Errorf("%w: snapshot name %q must be one token without wildcards or whitespace", ErrInvalidOption, name)
	}
	subject := wire.SnapshotSubject(s.name, entity, cfg.name())
	err := s.src.Do(ctx, "the snapshot to be deleted", func(ctx context.Context) error {
		msg, err := s.m.js.Stream(ctx, wire.SnapshotStream(s.name))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return jetstream.ErrKeyNotFound
		}
		if err != nil {
			return err
		}
		last, err := msg.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && last.Header.Get("KV-Operation") != "" {
			return jetstream.ErrKeyNotFound
		}
		if err != nil {
			return err
		}
		// The bucket keeps one value per key: purging the key's subject
		// removes the snapshot and leaves no marker behind.
		return msg.Purge(ctx, jetstream.WithPurgeSubject(subject))
	})
	if err != nil {
		return fmt.Errorf("rita: delete snapshot %q of %s in store %q: %w", cfg.name(), entity, s.name, err)
	}
	return nil
}
