package codec

import (
	"encoding"
	"fmt"
)

// binaryCodec passes bytes through, or delegates to the value's own
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler methods.
type binaryCodec struct{}

func (binaryCodec) Name() string { return Binary }

// Marshal returns a []byte unchanged (not copied); any other value must
// implement encoding.BinaryMarshaler.
func (binaryCodec) Marshal(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case encoding.BinaryMarshaler:
		if isNilPointer(v) {
			return nil, fmt.Errorf("%w: binary cannot marshal nil %T", ErrUnsupportedValue, v)
		}
		data, err := x.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("codec: binary: marshal %T: %w", v, err)
		}
		return data, nil
	default:
		return nil, fmt.Errorf("%w: binary cannot marshal %T: neither []byte nor encoding.BinaryMarshaler", ErrUnsupportedValue, v)
	}
}

// Unmarshal copies data into a *[]byte; any other target must implement
// encoding.BinaryUnmarshaler.
func (binaryCodec) Unmarshal(data []byte, v any) error {
	switch x := v.(type) {
	case *[]byte:
		if x == nil {
			return fmt.Errorf("%w: binary cannot unmarshal into nil %T", ErrUnsupportedValue, v)
		}
		*x = append([]byte(nil), data...)
		return nil
	case encoding.BinaryUnmarshaler:
		if isNilPointer(v) {
			return fmt.Errorf("%w: binary cannot unmarshal into nil %T", ErrUnsupportedValue, v)
		}
		if err := x.UnmarshalBinary(data); err != nil {
			return fmt.Errorf("codec: binary: unmarshal into %T: %w", v, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: binary cannot unmarshal into %T: neither *[]byte nor encoding.BinaryUnmarshaler", ErrUnsupportedValue, v)
	}
}
