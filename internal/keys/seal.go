// Package keys keeps the data keys of a store's entities and seals and
// opens payloads with them: AES-256-GCM from the standard library, one key
// per entity, kept wrapped by the application's key provider in a
// key-value bucket of the store, and cached for a bounded time.
//
// A sealed payload is the 12-byte nonce followed by the GCM ciphertext and
// tag. The additional data binds it to where it belongs (an event's entity
// and type, a snapshot's entity and name), so that a payload copied
// elsewhere does not open.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the size of a data key: AES-256.
const KeySize = 32

// ErrOpen is the error of a payload that does not open with its key: it
// was changed, or sealed with another key or for another place.
var ErrOpen = errors.New("payload does not open with its key")

// NewKey makes a random data key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	return k, nil
}

// aead is an AES-256-GCM of key.
func aead(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext with a, bound to ad, under a random nonce.
func Seal(a cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("random nonce: %w", err)
	}
	return a.Seal(out, out, plaintext, ad), nil
}

// Open decrypts what Seal made with a and ad.
func Open(a cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	n := a.NonceSize()
	if len(sealed) < n+a.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrOpen, len(sealed))
	}
	out, err := a.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// EventAD is the additional data of an event's payload: its entity and
// type.
func EventAD(entity, typ string) []byte {
	return []byte("rita-event\x00" + entity + "\x00" + typ)
}

// SnapshotAD is the additional data of a snapshot: its entity and model
// name.
func SnapshotAD(entity, name string) []byte {
	return []byte("rita-snapshot\x00" + entity + "\x00" + name)
}
