package rita

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/keys"
	"github.com/synadia-labs/rita/internal/wire"
)

// Personal data: crypto-shredding.
//
// An event store never changes what it stored, and a person may ask that
// their data be erased. The answer rita gives is crypto-shredding: the
// payloads of the event types that hold personal data are stored encrypted
// (AES-256-GCM) under a data key of their entity, kept wrapped by the
// application's KeyProvider in the store's key bucket; Forget destroys the
// key, and the payloads can never be read again, while the events stay
// where they are. docs/personal-data.md has the whole story: what is
// protected and what is not, key rotation, backups.

// KeyProvider wraps the data keys rita makes for entities with a key of
// the application's (kept in a KMS, a vault, a file), so that the store
// holds no key that opens a payload. rita calls it when it makes an
// entity's key (the first personal event of the entity) and when a process
// first reads one (then at most once per key cache period); it must be
// safe for concurrent use.
type KeyProvider interface {
	// WrapKey encrypts a data key. keyID names the application's key
	// that did it, and is given back to UnwrapKey: a provider that
	// rotates its keys unwraps old data keys with old keys.
	WrapKey(ctx context.Context, key []byte) (wrapped []byte, keyID string, err error)

	// UnwrapKey decrypts a data key that WrapKey wrapped with keyID.
	UnwrapKey(ctx context.Context, wrapped []byte, keyID string) ([]byte, error)
}

// EncryptionConfig says which events hold personal data and how their keys
// are kept; WithEncryption takes it.
type EncryptionConfig struct {
	// Keys wraps the entities' data keys. Required.
	Keys KeyProvider

	// PersonalTypes are the event types whose payloads hold personal
	// data of their entity (the registered names, with a registry). Their
	// payloads are stored encrypted; every other event is stored as
	// before. The entity, the event type, the ID, the time and the
	// metadata are never encrypted: keep personal data out of them.
	PersonalTypes []string

	// KeyCacheTTL is how long a process uses an entity's data key, once
	// read, before it reads it again: the bound on how long a process
	// other than the one that called Forget still decrypts the entity's
	// events (the one that forgets stops at once). Default (and with
	// zero) 5 s.
	KeyCacheTTL time.Duration
}

// DefaultKeyCacheTTL is EncryptionConfig.KeyCacheTTL's default.
const DefaultKeyCacheTTL = 5 * time.Second

// WithEncryption stores the payloads of the event types cfg names as
// personal data: encrypted with a key of their entity, which Forget
// destroys. Every read path (Evolve, Watch, durable consumers, projections,
// snapshots) decrypts them; an event whose key was forgotten arrives with
// its payload unread (Event.Forgotten), never as an error.
//
// A Manager without this option reads an encrypted event's Data as the
// stored ciphertext bytes, never as plaintext.
func WithEncryption(cfg EncryptionConfig) ManagerOption {
	return managerOption(func(m *Manager) error {
		if cfg.Keys == nil {
			return fmt.Errorf("%w: WithEncryption needs a KeyProvider (EncryptionConfig.Keys)", ErrInvalidOption)
		}
		if cfg.KeyCacheTTL < 0 {
			return fmt.Errorf("%w: WithEncryption: negative KeyCacheTTL %v", ErrInvalidOption, cfg.KeyCacheTTL)
		}
		if cfg.KeyCacheTTL == 0 {
			cfg.KeyCacheTTL = DefaultKeyCacheTTL
		}
		personal := make(map[string]bool, len(cfg.PersonalTypes))
		for _, t := range cfg.PersonalTypes {
			if err := validateEventType(t); err != nil {
				return fmt.Errorf("%w: WithEncryption: personal type %q: %w", ErrInvalidOption, t, err)
			}
			personal[t] = true
		}
		m.enc = &encryption{keys: cfg.Keys, personal: personal, ttl: cfg.KeyCacheTTL}
		return nil
	})
}

// encryption is a Manager's WithEncryption.
type encryption struct {
	keys     KeyProvider
	personal map[string]bool
	ttl      time.Duration
}

// Forgotten reports whether the event's payload was personal data whose
// key has been destroyed (EventStore.Forget): its Data is nil, while its
// ID, entity, type, time and metadata are as stored. Models that see such
// an event keep going: it happened, what it said is gone.
func (e *Event) Forgotten() bool { return e != nil && e.forgotten }

// Forget destroys the data key of entity ("<type>.<id>") and the entity's
// snapshots, so that its personal payloads can never be read again: its
// events still replay, in order, with Event.Forgotten set on those. Other
// entities are untouched. This process stops decrypting the entity's
// events at once, others within their key cache period
// (EncryptionConfig.KeyCacheTTL).
//
// An entity that has no key (it has no personal events, or was forgotten)
// is forgotten without error. Events appended to the entity afterwards get
// a new key, which Forget destroys in turn; a process that still has the
// old key cached within its period encrypts with it, and those events are
// forgotten too.
//
// Forget needs a Manager with WithEncryption (ErrInvalidOption otherwise).
func (s *EventStore) Forget(ctx context.Context, entity string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := validateEntity(entity); err != nil {
		return err
	}
	if s.ring == nil {
		return fmt.Errorf("%w: Forget needs a Manager made WithEncryption", ErrInvalidOption)
	}
	return s.guarded(ctx, func(ctx context.Context) error {
		if err := s.ring.Forget(ctx, entity); err != nil {
			return fmt.Errorf("rita: forget %s in store %q: %w", entity, s.name, err)
		}
		if err := s.purgeSnapshots(ctx, entity); err != nil {
			return fmt.Errorf("rita: forget %s in store %q: its snapshots: %w", entity, s.name, err)
		}
		return nil
	})
}

// guarded runs f so that a request the server's permissions refuse ends it
// at once, with an error matching ErrPermissionDenied.
func (s *EventStore) guarded(ctx context.Context, f func(context.Context) error) error {
	scope := s.scope
	ctx, release := s.m.guard(ctx, scope)
	defer release()
	if err := f(ctx); err != nil {
		return s.denied(ctx, scope, err)
	}
	return nil
}

// PurgeEntity removes every event of entity ("<type>.<id>") from the store,
// its snapshots and, with WithEncryption, its data key: the data is gone
// from the server, not only unreadable. It is the tool for when the law or
// a contract says the bytes must go; prefer Forget, which keeps the
// history's shape.
//
// What it changes, for good:
//   - the events' sequences are not reused: the store has gaps where they
//     were, and Evolve, Watch and durable consumers read on past them;
//   - an Expect on the entity (or on a pattern that covered it) now sees
//     the sequence of the entity's last event before the purge, or 0 for
//     an entity purged whole: a decider holding the old state conflicts,
//     one that reloads starts the entity anew;
//   - read models and projections that applied the events keep what they
//     made of them: purge those yourself, or rebuild them (Durable.Rebuild,
//     or a projection from sequence 0) to have them forget;
//   - a durable consumer that had not yet handled the events never will;
//     its parked events of the entity stay until deleted.
//
// It needs the permission to purge the store's stream.
func (s *EventStore) PurgeEntity(ctx context.Context, entity string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := validateEntity(entity); err != nil {
		return err
	}
	return s.guarded(ctx, func(ctx context.Context) error {
		if s.ring != nil {
			if err := s.ring.Forget(ctx, entity); err != nil {
				return fmt.Errorf("rita: purge %s in store %q: its key: %w", entity, s.name, err)
			}
		}
		err := s.src.Do(ctx, "the entity's events to be purged", func(ctx context.Context) error {
			return s.stream.Purge(ctx, jetstream.WithPurgeSubject(wire.EntityPattern(s.name, entity)))
		})
		if err != nil {
			return fmt.Errorf("rita: purge %s in store %q: %w", entity, s.name, err)
		}
		if err := s.purgeSnapshots(ctx, entity); err != nil {
			return fmt.Errorf("rita: purge %s in store %q: its snapshots: %w", entity, s.name, err)
		}
		return nil
	})
}

// purgeSnapshots removes every snapshot of entity, of every model.
func (s *EventStore) purgeSnapshots(ctx context.Context, entity string) error {
	stream, err := s.m.js.Stream(ctx, wire.SnapshotStream(s.name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // no snapshots at all
	}
	if err != nil {
		return err
	}
	return s.src.Do(ctx, "the entity's snapshots to be purged", func(ctx context.Context) error {
		return stream.Purge(ctx, jetstream.WithPurgeSubject(wire.SnapshotsOf(s.name, entity)))
	})
}

// newRing returns the key ring of a store of m, nil without WithEncryption.
func (m *Manager) newRing(store string, replicas int) *keys.Ring {
	if m.enc == nil {
		return nil
	}
	return keys.NewRing(m.js, store, replicas, m.enc.keys, m.enc.ttl)
}

// seal encrypts the payloads of the personal events among events, each
// with its entity's key (made if the entity has none), and checks their
// sizes again. It changes msgs only if it succeeds for all of them.
func (s *EventStore) seal(ctx context.Context, events []*Event, msgs []*nats.Msg) error {
	var sealed [][]byte // made at the first personal event
	var versions []uint64
	for i, e := range events {
		if !s.m.enc.personal[e.Type] {
			continue
		}
		version, aead, err := s.ring.Current(ctx, e.Entity)
		if err != nil {
			return fmt.Errorf("%w: event %d (entity %s): %w", ErrEncryptionKey, i, e.Entity, err)
		}
		if sealed == nil {
			sealed, versions = make([][]byte, len(msgs)), make([]uint64, len(msgs))
		}
		if sealed[i], err = keys.Seal(aead, msgs[i].Data, keys.EventAD(e.Entity, e.Type)); err != nil {
			return fmt.Errorf("%w: event %d (entity %s): %w", ErrEncryptionKey, i, e.Entity, err)
		}
		versions[i] = version
	}
	if sealed == nil {
		return nil
	}
	maxPayload := s.m.nc.MaxPayload()
	for i, m := range msgs {
		if sealed[i] == nil {
			continue
		}
		m.Data = sealed[i]
		m.Header[wire.HdrEncrypted] = []string{strconv.FormatUint(versions[i], 10)}
		if err := checkSize(m, maxPayload); err != nil {
			return fmt.Errorf("event %d, encrypted: %w", i, err)
		}
	}
	return nil
}

// openPayload decrypts the payload of an event stored encrypted with version of
// its entity's key. forgotten says the key is gone. Without a key ring (no
// WithEncryption) it returns the payload as stored.
func openPayload(ctx context.Context, ring *keys.Ring, entity, typ, version string, data []byte) (plain []byte, forgotten bool, err error) {
	if ring == nil {
		return data, false, nil
	}
	v, err := strconv.ParseUint(version, 10, 64)
	if err != nil || v == 0 {
		return nil, false, fmt.Errorf("%w %s: %q is not a key version", ErrEncryptionKey, wire.HdrEncrypted, version)
	}
	aead, ok, err := ring.Version(ctx, entity, v)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrEncryptionKey, err)
	}
	if !ok {
		return nil, true, nil
	}
	plain, err = keys.Open(aead, data, keys.EventAD(entity, typ))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrEncryptionKey, err)
	}
	return plain, false, nil
}
