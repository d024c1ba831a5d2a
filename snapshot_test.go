package rita

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// snapState records the events applied to it; its snapshots hold that
// record, and calls counts the events applied since it was made (or
// restored), which a snapshot does not hold.
type snapState struct {
	IDs   []string `json:"ids"`
	Seqs  []uint64 `json:"seqs"`
	calls int
}

func (s *snapState) Evolve(e *Event) error {
	s.IDs = append(s.IDs, e.ID)
	s.Seqs = append(s.Seqs, e.Sequence())
	s.calls++
	return nil
}

func (s *snapState) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

func (s *snapState) UnmarshalBinary(data []byte) error {
	*s = snapState{}
	return json.Unmarshal(data, s)
}

// plainEvolver has no snapshot methods.
type plainEvolver struct{}

func (plainEvolver) Evolve(*Event) error { return nil }

func newSnapshotStore(t *testing.T, name string) (*Manager, *EventStore) {
	t.Helper()
	m := newDirectTestManager(t)
	s, err := m.CreateEventStore(t.Context(), EventStoreConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func appendTo(t *testing.T, s *EventStore, entity string, n int) uint64 {
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

// replay is the reference: the entity's events read by the consumer path.
func replay(t *testing.T, s *EventStore, entity string, stop uint64) *snapState {
	t.Helper()
	var want snapState
	opts := []EvolveOption{WithFilters(entity)}
	if stop > 0 {
		opts = append(opts, WithStopSequence(stop))
	}
	if _, err := consumerEvolve(t.Context(), s, &want, opts...); err != nil {
		t.Fatal(err)
	}
	return &want
}

func requireSameState(t *testing.T, got, want *snapState) {
	t.Helper()
	if !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Seqs, want.Seqs) {
		t.Fatalf("state has events %v, want %v", got.Seqs, want.Seqs)
	}
}

func TestSnapshotEvolve(t *testing.T) {
	_, s := newSnapshotStore(t, "snap")
	ctx := t.Context()
	cfg := SnapshotConfig{Version: "v1", Every: 5}
	appendTo(t, s, "order.1", 12)

	// No snapshot yet: everything is read, and a snapshot is saved.
	first := &snapState{}
	last, err := s.Evolve(ctx, first, WithFilters("order.1"), WithSnapshot(cfg))
	if err != nil {
		t.Fatal(err)
	}
	requireSameState(t, first, replay(t, s, "order.1", 0))
	if first.calls != 12 || last != first.Seqs[11] {
		t.Fatalf("applied %d up to %d, want 12 up to %d", first.calls, last, first.Seqs[11])
	}

	// The snapshot is current: nothing is read.
	again := &snapState{}
	last2, err := s.Evolve(ctx, again, WithFilters("order.1"), WithSnapshot(cfg))
	if err != nil {
		t.Fatal(err)
	}
	requireSameState(t, again, first)
	if again.calls != 0 || last2 != last {
		t.Fatalf("with a current snapshot applied %d events and returned %d, want 0 and %d", again.calls, last2, last)
	}

	// Three more events: only they are read; fewer than Every, so the
	// snapshot stays where it was.
	appendTo(t, s, "order.1", 3)
	tail := &snapState{}
	if _, err := s.Evolve(ctx, tail, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, tail, replay(t, s, "order.1", 0))
	if tail.calls != 3 {
		t.Fatalf("read %d events after the snapshot, want 3", tail.calls)
	}
	tail2 := &snapState{}
	if _, err := s.Evolve(ctx, tail2, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if tail2.calls != 3 {
		t.Fatalf("read %d events after the snapshot, want 3 (no snapshot saved for fewer than Every)", tail2.calls)
	}

	// Five more: eight after the snapshot, so a new one is saved.
	appendTo(t, s, "order.1", 5)
	if _, err := s.Evolve(ctx, &snapState{}, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	current := &snapState{}
	if _, err := s.Evolve(ctx, current, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, current, replay(t, s, "order.1", 0))
	if current.calls != 0 || len(current.IDs) != 20 {
		t.Fatalf("applied %d events, state has %d; want 0 and 20", current.calls, len(current.IDs))
	}

	// A stop before the snapshot: the snapshot is not used.
	stop := current.Seqs[9]
	old := &snapState{}
	last, err = s.Evolve(ctx, old, WithFilters("order.1"), WithSnapshot(cfg), WithStopSequence(stop))
	if err != nil {
		t.Fatal(err)
	}
	requireSameState(t, old, replay(t, s, "order.1", stop))
	if last != stop || old.calls != 10 {
		t.Fatalf("up to %d: returned %d after %d events", stop, last, old.calls)
	}
	// A stop after it: it is.
	stop = current.Seqs[19] + 1
	late := &snapState{}
	if _, err := s.Evolve(ctx, late, WithFilters("order.1"), WithSnapshot(cfg), WithStopSequence(stop)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, late, current)
	if late.calls != 0 {
		t.Fatalf("applied %d events after a current snapshot", late.calls)
	}

	// An entity without events.
	none := &snapState{}
	last, err = s.Evolve(ctx, none, WithFilters("order.2"), WithSnapshot(cfg))
	if err != nil || last != 0 || none.calls != 0 {
		t.Fatalf("Evolve of an entity without events = %d, %v after %d events", last, err, none.calls)
	}
}

func TestSnapshotVersion(t *testing.T) {
	_, s := newSnapshotStore(t, "version")
	ctx := t.Context()
	appendTo(t, s, "order.1", 4)
	if _, err := s.Evolve(ctx, &snapState{}, WithFilters("order.1"), WithSnapshot(SnapshotConfig{Version: "v1", Every: 1})); err != nil {
		t.Fatal(err)
	}
	// Another version ignores it, and replaces it.
	v2 := SnapshotConfig{Version: "v2", Every: 1}
	st := &snapState{}
	if _, err := s.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(v2)); err != nil {
		t.Fatal(err)
	}
	if st.calls != 4 {
		t.Fatalf("version v2 applied %d events, want all 4", st.calls)
	}
	st = &snapState{}
	if _, err := s.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(v2)); err != nil {
		t.Fatal(err)
	}
	if st.calls != 0 {
		t.Fatalf("version v2's own snapshot was not used: %d events applied", st.calls)
	}
	// Names keep models apart.
	st = &snapState{}
	if _, err := s.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(SnapshotConfig{Name: "summary", Version: "v2"})); err != nil {
		t.Fatal(err)
	}
	if st.calls != 4 {
		t.Fatalf("model \"summary\" used another model's snapshot: %d events applied", st.calls)
	}
}

// A store deleted and created again under the same name does not trust the
// snapshots of the old one, even if they survived (here: the stream is
// deleted behind rita's back, so the bucket stays).
func TestSnapshotOfEarlierStore(t *testing.T) {
	m, s := newSnapshotStore(t, "again")
	ctx := t.Context()
	cfg := SnapshotConfig{Version: "v1", Every: 1}
	appendTo(t, s, "order.1", 5)
	if _, err := s.Evolve(ctx, &snapState{}, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if err := m.js.DeleteStream(ctx, streamName("again")); err != nil {
		t.Fatal(err)
	}
	s2, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "again"})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, s2, "order.1", 7)
	st := &snapState{}
	if _, err := s2.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, st, replay(t, s2, "order.1", 0))
	if st.calls != 7 {
		t.Fatalf("applied %d events, want all 7 of the new store", st.calls)
	}
}

// A snapshot after the entity's last event (its events were purged) is not
// used.
func TestSnapshotAfterPurge(t *testing.T) {
	_, s := newSnapshotStore(t, "purged")
	ctx := t.Context()
	cfg := SnapshotConfig{Version: "v1", Every: 1}
	appendTo(t, s, "order.1", 5)
	if _, err := s.Evolve(ctx, &snapState{}, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(entityPattern("purged", "order.1"))); err != nil {
		t.Fatal(err)
	}
	st := &snapState{}
	last, err := s.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(cfg))
	if err != nil || last != 0 || len(st.IDs) != 0 {
		t.Fatalf("after a purge Evolve = %d, %v with %d events, want nothing", last, err, len(st.IDs))
	}
	appendTo(t, s, "order.1", 2)
	st = &snapState{}
	if _, err := s.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, st, replay(t, s, "order.1", 0))
}

// Whatever snapshot a load starts from, the state is the one a replay of
// all the entity's events gives.
func TestSnapshotMatchesReplay(t *testing.T) {
	_, s := newSnapshotStore(t, "random")
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(7, 11))
	entities := []string{"order.1", "order.2", "order.x_y"}
	for range 150 {
		n := 1 + rng.IntN(3)
		events := make([]*Event, n)
		for i := range events {
			events[i] = &Event{Entity: entities[rng.IntN(len(entities))], Type: "t" + strconv.Itoa(rng.IntN(3)), Data: []byte("d")}
		}
		if _, err := s.Append(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	for _, entity := range entities {
		all := replay(t, s, entity, 0)
		for i, at := range all.Seqs {
			if i%7 != 0 && i != len(all.Seqs)-1 {
				continue
			}
			cfg := SnapshotConfig{Version: "at-" + strconv.Itoa(i)}
			// A snapshot as of event i, saved on demand.
			base := &snapState{}
			if _, err := s.Evolve(ctx, base, WithFilters(entity), WithStopSequence(at)); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveSnapshot(ctx, base, entity, at, cfg); err != nil {
				t.Fatal(err)
			}
			for _, stop := range []uint64{0, at, at + 1, all.Seqs[len(all.Seqs)-1]} {
				got := &snapState{}
				opts := []EvolveOption{WithFilters(entity), WithSnapshot(cfg)}
				if stop > 0 {
					opts = append(opts, WithStopSequence(stop))
				}
				last, err := s.Evolve(ctx, got, opts...)
				if err != nil {
					t.Fatal(err)
				}
				want := replay(t, s, entity, stop)
				requireSameState(t, got, want)
				if last != want.Seqs[len(want.Seqs)-1] {
					t.Fatalf("returned %d, want %d", last, want.Seqs[len(want.Seqs)-1])
				}
				// The snapshot is used unless the stop is before the last event.
				wantCalls := len(want.Seqs) - (i + 1)
				if stop != 0 && stop < all.Seqs[len(all.Seqs)-1] {
					wantCalls = len(want.Seqs)
				}
				if got.calls != wantCalls {
					t.Fatalf("%s from snapshot at event %d, stop %d: applied %d events, want %d", entity, i, stop, got.calls, wantCalls)
				}
			}
		}
	}
}

func TestSnapshotModel(t *testing.T) {
	_, s := newSnapshotStore(t, "model")
	ctx := t.Context()
	cfg := SnapshotConfig{Version: "v1", Every: 1}
	last := appendTo(t, s, "order.1", 6)
	m := NewModel(&snapState{})
	if _, err := s.Evolve(ctx, m, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	restored := NewModel(&snapState{})
	seq, err := s.Evolve(ctx, restored, WithFilters("order.1"), WithSnapshot(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if seq != last || restored.EntitySequence("order.1") != last || restored.Sequence() != last {
		t.Fatalf("restored model at %d/%d, Evolve returned %d; want %d", restored.EntitySequence("order.1"), restored.Sequence(), seq, last)
	}
	_ = restored.View(func(st *snapState) error {
		if st.calls != 0 || len(st.IDs) != 6 {
			t.Errorf("restored state has %d events after %d calls, want 6 after 0", len(st.IDs), st.calls)
		}
		return nil
	})
	// The restored model decides with the right expectation.
	if err := restored.Evolve(&Event{ID: "dup", Entity: "order.1", Type: "line", sequence: last}); err != nil {
		t.Fatal(err)
	}
	_ = restored.View(func(st *snapState) error {
		if len(st.IDs) != 6 {
			t.Errorf("an event already in the snapshot was applied again")
		}
		return nil
	})
	// SaveSnapshot takes the sequence from a Model.
	appendTo(t, s, "order.1", 2)
	if _, err := s.Evolve(ctx, restored, WithFilters("order.1"), WithAfterSequence(restored.Sequence())); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, restored, "order.1", 0, SnapshotConfig{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	fresh := NewModel(&snapState{})
	if _, err := s.Evolve(ctx, fresh, WithFilters("order.1"), WithSnapshot(SnapshotConfig{Version: "v1"})); err != nil {
		t.Fatal(err)
	}
	_ = fresh.View(func(st *snapState) error {
		if st.calls != 0 || len(st.IDs) != 8 {
			t.Errorf("snapshot saved on demand: %d events after %d calls, want 8 after 0", len(st.IDs), st.calls)
		}
		return nil
	})
}

func TestSnapshotInvalid(t *testing.T) {
	_, s := newSnapshotStore(t, "invalid")
	ctx := t.Context()
	appendTo(t, s, "order.1", 2)
	cfg := SnapshotConfig{Version: "v1"}
	tests := []struct {
		name  string
		model Evolver
		opts  []EvolveOption
	}{
		{"no filter", &snapState{}, []EvolveOption{WithSnapshot(cfg)}},
		{"two filters", &snapState{}, []EvolveOption{WithFilters("order.1", "order.2"), WithSnapshot(cfg)}},
		{"entity type", &snapState{}, []EvolveOption{WithFilters("order"), WithSnapshot(cfg)}},
		{"wildcard", &snapState{}, []EvolveOption{WithFilters("order.*"), WithSnapshot(cfg)}},
		{"event type", &snapState{}, []EvolveOption{WithFilters("order.1.line"), WithSnapshot(cfg)}},
		{"after", &snapState{}, []EvolveOption{WithFilters("order.1"), WithAfterSequence(1), WithSnapshot(cfg)}},
		{"no version", &snapState{}, []EvolveOption{WithFilters("order.1"), WithSnapshot(SnapshotConfig{})}},
		{"bad name", &snapState{}, []EvolveOption{WithFilters("order.1"), WithSnapshot(SnapshotConfig{Name: "a.b", Version: "1"})}},
		{"negative every", &snapState{}, []EvolveOption{WithFilters("order.1"), WithSnapshot(SnapshotConfig{Version: "1", Every: -1})}},
		{"plain model", plainEvolver{}, []EvolveOption{WithFilters("order.1"), WithSnapshot(cfg)}},
		{"model of plain state", NewModel(&struct{ plainEvolver }{}), []EvolveOption{WithFilters("order.1"), WithSnapshot(cfg)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Evolve(ctx, tc.model, tc.opts...); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("Evolve = %v, want ErrInvalidOption", err)
			}
		})
	}
	if _, err := s.Watch(ctx, &snapState{}, WithSnapshot(cfg)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("Watch with WithSnapshot = %v, want ErrInvalidOption", err)
	}
	// SaveSnapshot checks the sequence belongs to the entity.
	other, err := s.Append(ctx, []*Event{{Entity: "order.2", Type: "line", Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{other, 999, 0} {
		if err := s.SaveSnapshot(ctx, &snapState{}, "order.1", seq, cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("SaveSnapshot at %d = %v, want ErrInvalidArgument", seq, err)
		}
	}
	if err := s.SaveSnapshot(ctx, plainEvolver{}, "order.1", 1, cfg); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("SaveSnapshot of a plain model = %v, want ErrInvalidOption", err)
	}
	if err := s.SaveSnapshot(ctx, &snapState{}, "order", 1, cfg); !errors.Is(err, ErrEventEntityInvalid) {
		t.Fatalf("SaveSnapshot of entity \"order\" = %v, want ErrEventEntityInvalid", err)
	}
}

// A snapshot is never replaced by an older one.
func TestSnapshotNotReplacedByOlder(t *testing.T) {
	_, s := newSnapshotStore(t, "older")
	ctx := t.Context()
	cfg := SnapshotConfig{Version: "v1"}
	appendTo(t, s, "order.1", 6)
	all := replay(t, s, "order.1", 0)
	if err := s.SaveSnapshot(ctx, all, "order.1", all.Seqs[5], cfg); err != nil {
		t.Fatal(err)
	}
	older := replay(t, s, "order.1", all.Seqs[2])
	if err := s.SaveSnapshot(ctx, older, "order.1", all.Seqs[2], cfg); err != nil {
		t.Fatal(err)
	}
	st := &snapState{}
	if _, err := s.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if st.calls != 0 || len(st.IDs) != 6 {
		t.Fatalf("the later snapshot was replaced: %d events, %d applied", len(st.IDs), st.calls)
	}
}

func TestSnapshotsDeletedWithStore(t *testing.T) {
	m, s := newSnapshotStore(t, "gone")
	ctx := t.Context()
	appendTo(t, s, "order.1", 2)
	if _, err := s.Evolve(ctx, &snapState{}, WithFilters("order.1"), WithSnapshot(SnapshotConfig{Version: "v1", Every: 1})); err != nil {
		t.Fatal(err)
	}
	if _, err := m.js.KeyValue(ctx, snapshotBucketName("gone")); err != nil {
		t.Fatalf("no snapshot bucket: %v", err)
	}
	if err := m.DeleteEventStore(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.js.KeyValue(ctx, snapshotBucketName("gone")); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("snapshot bucket after DeleteEventStore: %v", err)
	}
}

func TestEscapeToken(t *testing.T) {
	seen := map[string]string{}
	for _, in := range []string{"orders", "a-b", "a_b", "a_5Fb", "a.b", "ä", "x y", "A9"} {
		out := escapeToken(in)
		for i := 0; i < len(out); i++ {
			if !isPlainByte(out[i]) && out[i] != '_' {
				t.Fatalf("escapeToken(%q) = %q holds %q", in, out, out[i])
			}
		}
		if prev, dup := seen[out]; dup {
			t.Fatalf("escapeToken(%q) = escapeToken(%q) = %q", in, prev, out)
		}
		seen[out] = in
	}
	if got := snapshotKey("order.x y", "default"); got != "order.x_20y.default" {
		t.Fatalf("snapshotKey = %q", got)
	}
}

// The tail after a snapshot is found by following the expectations events
// carry, through atomic batches too; where the chain breaks, there is none.
func TestSnapshotChainTail(t *testing.T) {
	_, s := newSnapshotStore(t, "chain")
	ctx := t.Context()
	ev := func(entity string, expect *Expect) *Event {
		return &Event{Entity: entity, Type: "line", Data: []byte("x"), Expect: expect}
	}
	var seqs []uint64 // of order.1
	add := func(events ...*Event) {
		t.Helper()
		if _, err := s.Append(ctx, events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Entity == "order.1" {
				seqs = append(seqs, e.Sequence())
			}
		}
	}
	lastOf := func() uint64 {
		if len(seqs) == 0 {
			return 0
		}
		return seqs[len(seqs)-1]
	}
	add(ev("order.1", ExpectSequence(0)))
	add(ev("order.2", nil), ev("order.1", ExpectSequence(lastOf())))
	add(ev("order.1", ExpectSequence(lastOf())), ev("order.2", nil), ev("order.1", nil), ev("order.1", nil))
	add(ev("order.1", ExpectSequenceSubject(lastOf(), "order")))   // a pattern covering the entity
	add(ev("order.1", ExpectSequenceSubject(lastOf(), "order.1"))) // the entity itself
	chained := len(seqs)
	add(ev("order.1", nil)) // breaks the chain
	add(ev("order.1", ExpectSequence(lastOf())))

	last := func(upTo int) *directMsg {
		t.Helper()
		r, err := s.newDirectReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		m, err := r.getSeq("x", seqs[upTo])
		if err != nil || m == nil {
			t.Fatalf("get %d: %v", seqs[upTo], err)
		}
		return m
	}
	for from := range chained - 1 {
		for to := from + 1; to < chained; to++ {
			tail, err := s.chainTail(ctx, "order.1", seqs[from], last(to))
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, m := range tail {
				got = append(got, m.seq)
			}
			if want := seqs[from+1 : to+1]; !slices.Equal(got, want) {
				t.Fatalf("tail after %d up to %d: %v, want %v", seqs[from], seqs[to], got, want)
			}
		}
	}
	// Across the event without an expectation there is no chain, but the
	// tail is still found, by a read.
	tail, err := s.chainTail(ctx, "order.1", seqs[0], last(len(seqs)-1))
	if err != nil || tail != nil {
		t.Fatalf("chain across a broken link: %v, %v", tail, err)
	}
	tail, err = s.snapshotTail(ctx, "order.1", seqs[0], last(len(seqs)-1))
	if err != nil || len(tail) != len(seqs)-1 {
		t.Fatalf("snapshot tail: %d events, %v; want %d", len(tail), err, len(seqs)-1)
	}
	// An expectation on the event's own subject only does not say what came
	// before on the entity's other subjects.
	add(&Event{Entity: "order.1", Type: "paid", Data: []byte("x"), Expect: ExpectSequenceSubject(0, "order.1.paid")})
	if tail, err := s.chainTail(ctx, "order.1", seqs[len(seqs)-2], last(len(seqs)-1)); err != nil || tail != nil {
		t.Fatalf("chain through a narrower expectation: %v, %v", tail, err)
	}
}
