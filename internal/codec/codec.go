// Package codec encodes and decodes values with one of a fixed set of wire
// formats: JSON, MessagePack, Protocol Buffers and raw binary.
//
// Every codec is a stateless value and is safe for concurrent use by
// multiple goroutines. Codecs never panic on a nil or otherwise unsuitable
// value: they return an error instead, wrapping ErrUnsupportedValue when the
// value is of a kind the codec cannot handle at all.
package codec

import (
	"errors"
	"fmt"
	"reflect"
)

// Names of the codecs known to Lookup.
const (
	// JSON is the name of the codec backed by encoding/json.
	JSON = "json"
	// MsgPack is the name of the codec backed by github.com/vmihailenco/msgpack/v5.
	MsgPack = "msgpack"
	// Protobuf is the name of the codec backed by google.golang.org/protobuf/proto.
	// It only handles values that implement proto.Message.
	Protobuf = "protobuf"
	// Binary is the name of the codec that uses encoding.BinaryMarshaler and
	// encoding.BinaryUnmarshaler, or passes a []byte through unchanged.
	Binary = "binary"
)

// ErrUnknown is returned, wrapped, by Lookup for a codec name it does not know.
var ErrUnknown = errors.New("codec: unknown codec")

// ErrUnsupportedValue is returned, wrapped, when a codec is asked to encode a
// value, or decode into a target, of a kind it cannot handle.
var ErrUnsupportedValue = errors.New("codec: value not supported by codec")

// Codec encodes and decodes values.
type Codec interface {
	// Name returns the codec's name, one of the constants of this package.
	Name() string
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, which must be a non-nil pointer or,
	// for some codecs, another type that knows how to decode itself.
	Unmarshal(data []byte, v any) error
}

// Lookup returns the codec with the given name. An unknown name returns an
// error wrapping ErrUnknown that names it.
func Lookup(name string) (Codec, error) {
	switch name {
	case JSON:
		return jsonCodec{}, nil
	case MsgPack:
		return msgpackCodec{}, nil
	case Protobuf:
		return protobufCodec{}, nil
	case Binary:
		return binaryCodec{}, nil
	default:
		return nil, fmt.Errorf("%w %q (known: %s, %s, %s, %s)", ErrUnknown, name, JSON, MsgPack, Protobuf, Binary)
	}
}

// checkTarget returns an error wrapping ErrUnsupportedValue unless v is a
// non-nil pointer, the only kind of target a decoder can fill in.
func checkTarget(codec string, v any) error {
	if v == nil {
		return fmt.Errorf("%w: %s cannot decode into nil", ErrUnsupportedValue, codec)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return fmt.Errorf("%w: %s cannot decode into non-pointer %T", ErrUnsupportedValue, codec, v)
	}
	if rv.IsNil() {
		return fmt.Errorf("%w: %s cannot decode into nil %T", ErrUnsupportedValue, codec, v)
	}
	return nil
}

// isNilPointer reports whether v is a typed nil pointer.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
