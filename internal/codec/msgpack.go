package codec

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// msgpackCodec encodes values with MessagePack.
type msgpackCodec struct{}

func (msgpackCodec) Name() string { return MsgPack }

func (msgpackCodec) Marshal(v any) ([]byte, error) {
	data, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: msgpack: marshal %T: %w", v, err)
	}
	return data, nil
}

func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkTarget(MsgPack, v); err != nil {
		return err
	}
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: msgpack: unmarshal into %T: %w", v, err)
	}
	return nil
}
