package rita

import (
	"context"
	"testing"
	"time"
)

// A retried batch refused as a duplicate counts as stored only when all its
// IDs are stored, one after the other, in its order.
func TestStoredTogether(t *testing.T) {
	nc := internalTestConn(t)
	m, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "together"})
	if err != nil {
		t.Fatal(err)
	}
	event := func(id string) *Event {
		return &Event{ID: id, Entity: "order." + id, Type: "placed", Data: []byte(id)}
	}
	if _, err := s.Append(ctx, []*Event{event("a"), event("b"), event("c")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, []*Event{event("d")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ids  []string
		want uint64 // 0: not stored together
	}{
		{[]string{"a", "b", "c"}, 3},
		{[]string{"b", "c"}, 3},
		{[]string{"d"}, 4},
		{[]string{"c", "d"}, 4}, // stored one after the other, if by two appends
		{[]string{"a", "c"}, 0},
		{[]string{"c", "b", "a"}, 0},
		{[]string{"a", "b", "x"}, 0},
		{[]string{"x"}, 0},
	} {
		events := make([]*Event, len(tc.ids))
		for i, id := range tc.ids {
			events[i] = event(id)
		}
		msgs, _, err := s.prepare(events)
		if err != nil {
			t.Fatal(err)
		}
		seq, ok := s.storedTogether(ctx, events, msgs)
		if ok != (tc.want != 0) || seq != tc.want {
			t.Errorf("storedTogether(%v) = %d, %v; want %d", tc.ids, seq, ok, tc.want)
			continue
		}
	}
}
