package keys

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Wrapper wraps and unwraps data keys: the application's key provider.
type Wrapper interface {
	WrapKey(ctx context.Context, key []byte) (wrapped []byte, keyID string, err error)
	UnwrapKey(ctx context.Context, wrapped []byte, keyID string) ([]byte, error)
}

// ErrWrap is the error of a key the provider could not wrap or unwrap.
var ErrWrap = errors.New("key provider")

// Ring is the data keys of one store's entities: where they are kept, and
// those this process has read, for at most TTL each.
//
// A key's version is the time it was made, in nanoseconds since 1970,
// kept in its entry (so that it survives a copy of the bucket): a key made
// after the entity was forgotten has another one, so events sealed with a
// forgotten key never open with its successor.
type Ring struct {
	js       jetstream.JetStream
	bucket   string
	replicas int
	w        Wrapper
	ttl      time.Duration

	mu    sync.Mutex
	kv    jetstream.KeyValue // nil until opened
	cache map[string]cached  // by entity
}

// cached is what the ring knows of an entity's key: its current version
// and cipher, or that it has none (version 0), as read at a time; and the
// highest version known to be gone. A key that is gone never comes back
// (a new one has a higher version), so that holds for good, while the
// rest is read again after TTL.
type cached struct {
	version uint64
	aead    cipher.AEAD
	at      time.Time
	gone    uint64
}

// NewRing returns the ring of store, whose bucket has replicas replicas.
func NewRing(js jetstream.JetStream, store string, replicas int, w Wrapper, ttl time.Duration) *Ring {
	return &Ring{js: js, bucket: wire.KeyBucket(store), replicas: max(replicas, 1), w: w, ttl: ttl, cache: map[string]cached{}}
}

// stored is an entry of the bucket: a data key wrapped by the provider's
// key KeyID.
type stored struct {
	Version uint64 `json:"v"`
	KeyID   string `json:"kid"`
	Wrapped []byte `json:"key"`
}

// Current returns the entity's current key and its version, making one if
// the entity has none.
func (r *Ring) Current(ctx context.Context, entity string) (uint64, cipher.AEAD, error) {
	if c, ok := r.fresh(entity); ok && c.version != 0 {
		return c.version, c.aead, nil
	}
	for range 3 {
		c, err := r.read(ctx, entity)
		if err != nil {
			return 0, nil, err
		}
		if c.version != 0 {
			return c.version, c.aead, nil
		}
		c, err = r.create(ctx, entity)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // made by another process meanwhile: read it
		}
		if err != nil {
			return 0, nil, err
		}
		return c.version, c.aead, nil
	}
	return 0, nil, fmt.Errorf("key of %s: made and forgotten by other processes while making it", entity)
}

// Version returns the entity's key of version, or false when there is
// none: the key was forgotten (or replaced, which only follows forgetting).
func (r *Ring) Version(ctx context.Context, entity string, version uint64) (cipher.AEAD, bool, error) {
	c, ok := r.fresh(entity)
	switch {
	case version <= c.gone:
		return nil, false, nil
	case ok && c.version == version:
		return c.aead, true, nil
	}
	c, err := r.read(ctx, entity)
	if err != nil {
		return nil, false, err
	}
	if c.version != version {
		// Older than the current key, or no key at all: either way
		// forgotten. (A version newer than the current key cannot be
		// read: it was made after this read began.)
		if c.version == 0 || version < c.version {
			r.markGone(entity, version)
		}
		return nil, false, nil
	}
	return c.aead, true, nil
}

// markGone records that the entity's key of version is gone.
func (r *Ring) markGone(entity string, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cache[entity]
	c.gone = max(c.gone, version)
	r.cache[entity] = c
}

// Existing returns the entity's current key and version, or false when it
// has none; it makes none.
func (r *Ring) Existing(ctx context.Context, entity string) (uint64, cipher.AEAD, bool, error) {
	c, ok := r.fresh(entity)
	if !ok {
		var err error
		if c, err = r.read(ctx, entity); err != nil {
			return 0, nil, false, err
		}
	}
	return c.version, c.aead, c.version != 0, nil
}

// Forget destroys the entity's key: its entry and the entry's history,
// then the bucket's own record of the purge, so nothing of it is left on
// the server. This process stops using it at once.
func (r *Ring) Forget(ctx context.Context, entity string) error {
	r.forgetCached(entity)
	kv, err := r.open(ctx, false)
	if err != nil || kv == nil {
		return err // no bucket: no key
	}
	key := wire.KeyName(entity)
	err = jsapi.Do(ctx, "the entity's key to be purged", nil, func(ctx context.Context) error {
		err := kv.Purge(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	stream, err := r.js.Stream(ctx, wire.KeyStream(r.bucket))
	if err != nil {
		return err
	}
	err = jsapi.Do(ctx, "the entity's key's subject to be purged", nil, func(ctx context.Context) error {
		return stream.Purge(ctx, jetstream.WithPurgeSubject(wire.KeySubject(r.bucket, entity)))
	})
	r.forgetCached(entity)
	return err
}

// forgetCached drops the cached key of entity, marking it gone.
func (r *Ring) forgetCached(entity string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cache[entity]
	r.cache[entity] = cached{gone: max(c.gone, c.version)}
}

// fresh returns what the cache knows of entity, and whether its key (or
// the lack of one) was read less than TTL ago; the versions known to be
// gone hold either way.
func (r *Ring) fresh(entity string) (cached, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cache[entity]
	return c, ok && !c.at.IsZero() && time.Since(c.at) < r.ttl
}

// remember caches what was read of entity's key, keeping what is known to
// be gone (and, when the key was replaced, marking the old one gone).
func (r *Ring) remember(entity string, c cached) {
	c.at = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cache[entity]
	c.gone = old.gone
	if old.version != 0 && old.version < c.version {
		c.gone = max(c.gone, old.version)
	}
	r.cache[entity] = c
}

// read reads the entity's key from the bucket and caches it (or that
// there is none).
func (r *Ring) read(ctx context.Context, entity string) (cached, error) {
	kv, err := r.open(ctx, false)
	if err != nil {
		return cached{}, err
	}
	if kv == nil {
		r.remember(entity, cached{})
		return cached{}, nil
	}
	var entry jetstream.KeyValueEntry
	err = jsapi.Do(ctx, "the entity's key", nil, func(ctx context.Context) error {
		var err error
		entry, err = kv.Get(ctx, wire.KeyName(entity))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			entry, err = nil, nil
		}
		return err
	})
	if err != nil {
		return cached{}, err
	}
	if entry == nil {
		r.remember(entity, cached{})
		return cached{}, nil
	}
	var s stored
	if err := json.Unmarshal(entry.Value(), &s); err != nil || s.Version == 0 {
		return cached{}, fmt.Errorf("key of %s: not a key entry (%q): %v", entity, entry.Value(), err)
	}
	key, err := r.w.UnwrapKey(ctx, s.Wrapped, s.KeyID)
	if err != nil {
		return cached{}, fmt.Errorf("%w: unwrap the key of %s (wrapped by key %q): %w", ErrWrap, entity, s.KeyID, err)
	}
	a, err := aead(key)
	if err != nil {
		return cached{}, fmt.Errorf("%w: the key of %s, as unwrapped: %w", ErrWrap, entity, err)
	}
	c := cached{version: s.Version, aead: a}
	r.remember(entity, c)
	return c, nil
}

// create makes the entity's key, wraps it and stores it, failing with
// jetstream.ErrKeyExists if another process stored one first.
func (r *Ring) create(ctx context.Context, entity string) (cached, error) {
	key, err := NewKey()
	if err != nil {
		return cached{}, err
	}
	wrapped, keyID, err := r.w.WrapKey(ctx, key)
	if err != nil {
		return cached{}, fmt.Errorf("%w: wrap a new key for %s: %w", ErrWrap, entity, err)
	}
	a, err := aead(key)
	if err != nil {
		return cached{}, err
	}
	version := uint64(time.Now().UnixNano())
	value, err := json.Marshal(stored{Version: version, KeyID: keyID, Wrapped: wrapped})
	if err != nil {
		return cached{}, err
	}
	kv, err := r.open(ctx, true)
	if err != nil {
		return cached{}, err
	}
	// If an attempt whose answer was lost stored the key, the next one
	// fails with ErrKeyExists, and Current reads the key back.
	err = jsapi.Do(ctx, "the entity's new key to be stored", nil, func(ctx context.Context) error {
		_, err := kv.Create(ctx, wire.KeyName(entity), value)
		return err
	})
	if err != nil {
		return cached{}, err
	}
	c := cached{version: version, aead: a}
	r.remember(entity, c)
	return c, nil
}

// open returns the bucket, creating it if create is set; nil (and no
// error) if it does not exist and create is not set.
func (r *Ring) open(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	r.mu.Lock()
	kv := r.kv
	r.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	err := jsapi.Do(ctx, "the store's key bucket", nil, func(ctx context.Context) error {
		var err error
		if create {
			kv, err = r.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:      r.bucket,
				Description: "rita: the data keys of the entities of store " + strings.TrimPrefix(r.bucket, "rita-keys-"),
				History:     1,
				Replicas:    r.replicas,
			})
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = r.js.KeyValue(ctx, r.bucket) // made otherwise: use it as it is
			}
			return err
		}
		kv, err = r.js.KeyValue(ctx, r.bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = nil, nil
		}
		return err
	})
	if err != nil || kv == nil {
		return nil, err
	}
	r.mu.Lock()
	r.kv = kv
	r.mu.Unlock()
	return kv, nil
}
