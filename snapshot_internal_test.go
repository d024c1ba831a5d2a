package rita

import (
	"encoding/json"
	"strconv"
	"testing"
)

// The snapshot tests that need what the package does not export. The others
// are in snapshot_test.go.

// modelState records the events applied to it, like snapState of
// snapshot_test.go: its snapshots hold that record, and calls counts the
// events applied since it was made (or restored).
type modelState struct {
	IDs   []string `json:"ids"`
	Seqs  []uint64 `json:"seqs"`
	calls int
}

func (s *modelState) Evolve(e *Event) error {
	s.IDs = append(s.IDs, e.ID)
	s.Seqs = append(s.Seqs, e.Sequence())
	s.calls++
	return nil
}

func (s *modelState) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

func (s *modelState) UnmarshalBinary(data []byte) error {
	*s = modelState{}
	return json.Unmarshal(data, s)
}

// newInternalStore creates store name on a server of its own.
func newInternalStore(t *testing.T, name string) *EventStore {
	t.Helper()
	m, err := New(internalTestConn(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.CreateEventStore(t.Context(), EventStoreConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// appendLines appends n events to entity, each in a batch with an event of
// other.1, and returns the sequence of the last one of entity.
func appendLines(t *testing.T, s *EventStore, entity string, n int) uint64 {
	t.Helper()
	var last uint64
	for i := range n {
		seq, err := s.Append(t.Context(), []*Event{
			{Entity: entity, Type: "line", Data: []byte(strconv.Itoa(i))},
			{Entity: "other.1", Type: "noise", Data: []byte("x")},
		})
		if err != nil {
			t.Fatal(err)
		}
		last = seq - 1
	}
	return last
}

// A Model restored from a snapshot knows the entity's sequence: it skips an
// event the snapshot holds, and SaveSnapshot takes the sequence from it.
// (Internal for the event with a sequence of its own making.)
func TestSnapshotModel(t *testing.T) {
	s := newInternalStore(t, "model")
	ctx := t.Context()
	cfg := SnapshotConfig{Version: "v1", Every: 1}
	last := appendLines(t, s, "order.1", 6)
	m := NewModel(&modelState{})
	if _, err := s.Evolve(ctx, m, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	restored := NewModel(&modelState{})
	seq, err := s.Evolve(ctx, restored, WithFilters("order.1"), WithSnapshot(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if seq != last || restored.EntitySequence("order.1") != last || restored.Sequence() != last {
		t.Fatalf("restored model at %d/%d, Evolve returned %d; want %d", restored.EntitySequence("order.1"), restored.Sequence(), seq, last)
	}
	_ = restored.View(func(st *modelState) error {
		if st.calls != 0 || len(st.IDs) != 6 {
			t.Errorf("restored state has %d events after %d calls, want 6 after 0", len(st.IDs), st.calls)
		}
		return nil
	})
	// The restored model decides with the right expectation.
	if err := restored.Evolve(&Event{ID: "dup", Entity: "order.1", Type: "line", sequence: last}); err != nil {
		t.Fatal(err)
	}
	_ = restored.View(func(st *modelState) error {
		if len(st.IDs) != 6 {
			t.Errorf("an event already in the snapshot was applied again")
		}
		return nil
	})
	// SaveSnapshot takes the sequence from a Model.
	appendLines(t, s, "order.1", 2)
	if _, err := s.Evolve(ctx, restored, WithFilters("order.1"), WithAfterSequence(restored.Sequence())); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, restored, "order.1", 0, SnapshotConfig{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	fresh := NewModel(&modelState{})
	if _, err := s.Evolve(ctx, fresh, WithFilters("order.1"), WithSnapshot(SnapshotConfig{Version: "v1"})); err != nil {
		t.Fatal(err)
	}
	_ = fresh.View(func(st *modelState) error {
		if st.calls != 0 || len(st.IDs) != 8 {
			t.Errorf("snapshot saved on demand: %d events after %d calls, want 8 after 0", len(st.IDs), st.calls)
		}
		return nil
	})
}
