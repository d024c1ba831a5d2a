package rita

import (
	"encoding"
	"fmt"
)

// Snapshots of a Model hold the state of its T, which must implement
// encoding.BinaryMarshaler (to save one) and encoding.BinaryUnmarshaler (to
// restore one). Restoring also sets the model's sequences: the entity's to
// the snapshot's, and no other entity's.

func (m *Model[T]) snapshotCapable(save bool) error {
	if _, ok := any(m.t).(encoding.BinaryUnmarshaler); !ok {
		return fmt.Errorf("%w: WithSnapshot: model state %T does not implement encoding.BinaryUnmarshaler", ErrInvalidOption, m.t)
	}
	if _, ok := any(m.t).(encoding.BinaryMarshaler); save && !ok {
		return fmt.Errorf("%w: WithSnapshot: model state %T does not implement encoding.BinaryMarshaler", ErrInvalidOption, m.t)
	}
	return nil
}

func (m *Model[T]) marshalSnapshot() ([]byte, error) {
	bm, ok := any(m.t).(encoding.BinaryMarshaler)
	if !ok {
		return nil, fmt.Errorf("%w: model state %T does not implement encoding.BinaryMarshaler", ErrInvalidOption, m.t)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bm.MarshalBinary()
}

func (m *Model[T]) restoreSnapshot(data []byte, entity string, seq uint64) error {
	bu, ok := any(m.t).(encoding.BinaryUnmarshaler)
	if !ok {
		return fmt.Errorf("%w: model state %T does not implement encoding.BinaryUnmarshaler", ErrInvalidOption, m.t)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := bu.UnmarshalBinary(data); err != nil {
		return err
	}
	clear(m.last)
	m.last[entity] = seq
	m.sequence = seq
	return nil
}
