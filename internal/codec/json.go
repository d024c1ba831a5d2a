package codec

import (
	"encoding/json"
	"fmt"
)

// jsonCodec encodes values with encoding/json.
type jsonCodec struct{}

func (jsonCodec) Name() string { return JSON }

func (jsonCodec) Marshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: json: marshal %T: %w", v, err)
	}
	return data, nil
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := checkTarget(JSON, v); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: json: unmarshal into %T: %w", v, err)
	}
	return nil
}
