package types

import (
	"fmt"

	"github.com/synadia-labs/rita/internal/codec"
)

// registryConfig collects the settings of NewRegistry's options.
type registryConfig struct {
	codec     codec.Codec // nil until an option sets it; NewRegistry defaults to JSON
	upcasters map[upcastKey]UpcastFunc
}

// RegistryOption configures a Registry built by NewRegistry.
type RegistryOption func(*registryConfig) error

// Codec selects the codec the registry uses to encode and decode values by
// name: "json" (the default), "msgpack", "protobuf" or "binary".
//
// With "protobuf" every registered type must implement proto.Message; with
// "binary" every registered type's pointer must implement
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler. NewRegistry
// returns an error wrapping ErrCodecUnknown for any other name, and one
// wrapping ErrOptionInvalid if Codec is given twice with different names.
func Codec(name string) RegistryOption {
	return func(cfg *registryConfig) error {
		c, err := codec.Lookup(name)
		if err != nil {
			return fmt.Errorf("%w %q (known: %s, %s, %s, %s)", ErrCodecUnknown, name,
				codec.JSON, codec.MsgPack, codec.Protobuf, codec.Binary)
		}
		if cfg.codec != nil && cfg.codec.Name() != name {
			return fmt.Errorf("%w: codec %q conflicts with codec %q given earlier", ErrOptionInvalid, name, cfg.codec.Name())
		}
		cfg.codec = c
		return nil
	}
}
