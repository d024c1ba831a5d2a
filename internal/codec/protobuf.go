package codec

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// protobufCodec encodes values that implement proto.Message.
type protobufCodec struct{}

func (protobufCodec) Name() string { return Protobuf }

func (protobufCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%w: protobuf cannot marshal %T: not a proto.Message", ErrUnsupportedValue, v)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("codec: protobuf: marshal %T: %w", v, err)
	}
	return data, nil
}

func (protobufCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%w: protobuf cannot unmarshal into %T: not a proto.Message", ErrUnsupportedValue, v)
	}
	if err := checkTarget(Protobuf, v); err != nil {
		return err
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("codec: protobuf: unmarshal into %T: %w", v, err)
	}
	return nil
}
