package rita

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"maps"

	"github.com/synadia-labs/rita/internal/keys"
)

// NewAESKeyProvider returns a KeyProvider that wraps data keys with
// AES-256-GCM under keys of the application's own, each 32 bytes, by name:
// current wraps new data keys, and every key in keys unwraps the data keys
// it wrapped, so rotating means adding a key, making it current, and
// keeping the old ones as long as data keys they wrapped exist. Keep the
// keys out of the store (a secret manager, the environment); with them,
// anyone who reads the store's key bucket can read every personal payload.
//
// It fails with ErrInvalidOption when current is not in keys or a key is
// not 32 bytes long.
func NewAESKeyProvider(current string, keys map[string][]byte) (KeyProvider, error) {
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("%w: NewAESKeyProvider: the current key %q is not among the keys", ErrInvalidOption, current)
	}
	p := &aesKeyProvider{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, k := range maps.All(keys) {
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: NewAESKeyProvider: key %q has %d bytes, want 32 (AES-256)", ErrInvalidOption, id, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: NewAESKeyProvider: key %q: %w", ErrInvalidOption, id, err)
		}
		if p.aeads[id], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("%w: NewAESKeyProvider: key %q: %w", ErrInvalidOption, id, err)
		}
	}
	return p, nil
}

// aesKeyProvider is NewAESKeyProvider's KeyProvider.
type aesKeyProvider struct {
	current string
	aeads   map[string]cipher.AEAD // read-only once made
}

// wrapAD binds a wrapped key to its use.
const wrapAD = "rita-data-key"

func (p *aesKeyProvider) WrapKey(_ context.Context, key []byte) ([]byte, string, error) {
	wrapped, err := keys.Seal(p.aeads[p.current], key, []byte(wrapAD))
	return wrapped, p.current, err
}

func (p *aesKeyProvider) UnwrapKey(_ context.Context, wrapped []byte, keyID string) ([]byte, error) {
	a, ok := p.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("no key %q to unwrap with (NewAESKeyProvider was given %d keys)", keyID, len(p.aeads))
	}
	return keys.Open(a, wrapped, []byte(wrapAD))
}
