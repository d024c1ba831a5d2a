package rita_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/internal/wire"
)

// shop is a model state of several entities that snapshots each on its
// own: per entity, the number of its events and their data joined.
type shop struct {
	Entities map[string]*shopEntity
	// restored counts UnmarshalEntity calls by entity.
	restored map[string]int
}

type shopEntity struct {
	Events int
	Data   string
}

func newShop() *shop {
	return &shop{Entities: map[string]*shopEntity{}, restored: map[string]int{}}
}

func (s *shop) Evolve(e *rita.Event) error {
	x := s.Entities[e.Entity]
	if x == nil {
		x = &shopEntity{}
		s.Entities[e.Entity] = x
	}
	x.Events++
	x.Data += string(e.Data.([]byte))
	return nil
}

func (s *shop) MarshalEntity(entity string) ([]byte, error) {
	return json.Marshal(s.Entities[entity])
}

func (s *shop) UnmarshalEntity(entity string, data []byte) error {
	var x shopEntity
	if err := json.Unmarshal(data, &x); err != nil {
		return err
	}
	s.Entities[entity] = &x
	s.restored[entity]++
	return nil
}

// fillShop appends, interleaved, n events to order.1 and to stock.1, with
// the data "o<i>" and "s<i>".
func fillShop(t *testing.T, s *rita.EventStore, n int) {
	t.Helper()
	for i := range n {
		appendEach(t, s, rawEvent("order.1", "placed", "o"+strconv.Itoa(i)), rawEvent("stock.1", "counted", "s"+strconv.Itoa(i)))
	}
}

func shopState(t *testing.T, m *rita.Model[*shop]) map[string]shopEntity {
	t.Helper()
	got := map[string]shopEntity{}
	requireNoError(t, m.View(func(s *shop) error {
		for k, v := range s.Entities {
			got[k] = *v
		}
		return nil
	}))
	return got
}

// A command that touches an order and a stock item loads both into one
// model, each from its own snapshot.
func TestSnapshotSeveralEntities(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "shop")
	ctx := testCtx(t)
	fillShop(t, s, 4) // order.1: 1,3,5,7; stock.1: 2,4,6,8
	cfg := rita.SnapshotConfig{Version: "1", Every: 2}

	first := rita.NewModel(newShop())
	seq, err := s.Evolve(ctx, first, rita.WithFilters("order.1", "stock.1"), rita.WithSnapshot(cfg))
	requireNoError(t, err)
	if seq != 8 {
		t.Fatalf("Evolve = %d, want 8", seq)
	}
	want := map[string]shopEntity{"order.1": {4, "o0o1o2o3"}, "stock.1": {4, "s0s1s2s3"}}
	if got := shopState(t, first); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("state %v, want %v", got, want)
	}

	fillShop(t, s, 1) // order.1: 9, stock.1: 10
	second := rita.NewModel(newShop())
	seq, err = s.Evolve(ctx, second, rita.WithFilters("order.1", "stock.1"), rita.WithSnapshot(cfg))
	requireNoError(t, err)
	if seq != 10 {
		t.Fatalf("Evolve = %d, want 10", seq)
	}
	want = map[string]shopEntity{"order.1": {5, "o0o1o2o3o0"}, "stock.1": {5, "s0s1s2s3s0"}}
	if got := shopState(t, second); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("state %v, want %v", got, want)
	}
	requireNoError(t, second.View(func(s *shop) error {
		if s.restored["order.1"] != 1 || s.restored["stock.1"] != 1 {
			return fmt.Errorf("restored %v, want each entity once from its snapshot", s.restored)
		}
		return nil
	}))
	if second.EntitySequence("order.1") != 9 || second.EntitySequence("stock.1") != 10 {
		t.Fatalf("entity sequences %d, %d; want 9, 10", second.EntitySequence("order.1"), second.EntitySequence("stock.1"))
	}
}

// Restoring one entity's snapshot into a model that holds another leaves
// that one as it was.
func TestSnapshotRestoreKeepsOtherEntities(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "shop")
	ctx := testCtx(t)
	fillShop(t, s, 3)
	cfg := rita.SnapshotConfig{Version: "1"}
	saver := rita.NewModel(newShop())
	_, err := s.Evolve(ctx, saver, rita.WithFilters("stock.1"))
	requireNoError(t, err)
	requireNoError(t, s.SaveSnapshot(ctx, saver, "stock.1", 0, cfg))

	m := rita.NewModel(newShop())
	_, err = s.Evolve(ctx, m, rita.WithFilters("order.1"))
	requireNoError(t, err)
	_, err = s.Evolve(ctx, m, rita.WithFilters("stock.1"), rita.WithSnapshot(cfg))
	requireNoError(t, err)
	want := map[string]shopEntity{"order.1": {3, "o0o1o2"}, "stock.1": {3, "s0s1s2"}}
	if got := shopState(t, m); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("state %v, want %v", got, want)
	}
	if m.EntitySequence("order.1") != 5 || m.EntitySequence("stock.1") != 6 || m.Sequence() != 6 {
		t.Fatalf("sequences order.1 %d, stock.1 %d, model %d; want 5, 6, 6",
			m.EntitySequence("order.1"), m.EntitySequence("stock.1"), m.Sequence())
	}
}

// wholeShop snapshots as a whole: it serves one entity only.
type wholeShop struct{ N int }

func (w *wholeShop) Evolve(*rita.Event) error { w.N++; return nil }

func (w *wholeShop) MarshalBinary() ([]byte, error) { return []byte(strconv.Itoa(w.N)), nil }

func (w *wholeShop) UnmarshalBinary(data []byte) (err error) {
	w.N, err = strconv.Atoi(string(data))
	return err
}

func TestSnapshotWholeStateRefusals(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "shop")
	ctx := testCtx(t)
	fillShop(t, s, 2)
	cfg := rita.SnapshotConfig{Version: "1"}

	// Several entities need an EntitySnapshotter.
	_, err := s.Evolve(ctx, rita.NewModel(&wholeShop{}), rita.WithFilters("order.1", "stock.1"), rita.WithSnapshot(cfg))
	requireErrorIs(t, err, rita.ErrInvalidOption)

	// A whole-state snapshot would wipe the entity the model holds.
	m := rita.NewModel(&wholeShop{})
	_, err = s.Evolve(ctx, m, rita.WithFilters("order.1"))
	requireNoError(t, err)
	_, err = s.Evolve(ctx, m, rita.WithFilters("stock.1"), rita.WithSnapshot(cfg))
	requireErrorIs(t, err, rita.ErrInvalidOption)
	err = s.SaveSnapshot(ctx, m, "order.1", 0, cfg)
	requireNoError(t, err) // it holds order.1 alone
	_, err = s.Evolve(ctx, m, rita.WithFilters("stock.1"))
	requireNoError(t, err)
	err = s.SaveSnapshot(ctx, m, "stock.1", 0, cfg)
	requireErrorIs(t, err, rita.ErrInvalidOption)
	var n int
	_ = m.View(func(w *wholeShop) error { n = w.N; return nil })
	if n != 4 {
		t.Fatalf("state %d, want the 4 events applied, none wiped", n)
	}

	// A model of one entity restores as before.
	one := rita.NewModel(&wholeShop{})
	seq, err := s.Evolve(ctx, one, rita.WithFilters("order.1"), rita.WithSnapshot(cfg))
	requireNoError(t, err)
	_ = one.View(func(w *wholeShop) error { n = w.N; return nil })
	if seq != 3 || n != 2 {
		t.Fatalf("Evolve = %d with state %d, want 3 and 2", seq, n)
	}
}

// snapState records the events applied to it; its snapshots hold that
// record, and calls counts the events applied since it was made (or
// restored), which a snapshot does not hold.
type snapState struct {
	IDs   []string `json:"ids"`
	Seqs  []uint64 `json:"seqs"`
	calls int
}

func (s *snapState) Evolve(e *rita.Event) error {
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

func (plainEvolver) Evolve(*rita.Event) error { return nil }

func newSnapshotStore(t *testing.T, name string) (*env, *rita.EventStore) {
	t.Helper()
	e := newEnv(t)
	return e, e.store(t, name)
}

// appendTo appends n events to entity, each in a batch with an event of
// other.1, and returns the sequence of the last one of entity.
func appendTo(t *testing.T, s *rita.EventStore, entity string, n int) uint64 {
	t.Helper()
	var last uint64
	for i := range n {
		seq, err := s.Append(testCtx(t), []*rita.Event{
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

// replay is the reference: the entity's events, up to stop (0: all), as a
// read of the whole store delivers them. Without filters Evolve reads with
// an ordered consumer, not with the direct gets of one entity's read.
func replay(t *testing.T, s *rita.EventStore, entity string, stop uint64) *snapState {
	t.Helper()
	var want snapState
	var opts []rita.EvolveOption
	if stop > 0 {
		opts = append(opts, rita.WithStopSequence(stop))
	}
	_, err := s.Evolve(testCtx(t), rita.EvolverFunc(func(e *rita.Event) error {
		if e.Entity != entity {
			return nil
		}
		return want.Evolve(e)
	}), opts...)
	if err != nil {
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
	ctx := testCtx(t)
	cfg := rita.SnapshotConfig{Version: "v1", Every: 5}
	appendTo(t, s, "order.1", 12)

	// No snapshot yet: everything is read, and a snapshot is saved.
	first := &snapState{}
	last, err := s.Evolve(ctx, first, rita.WithFilters("order.1"), rita.WithSnapshot(cfg))
	if err != nil {
		t.Fatal(err)
	}
	requireSameState(t, first, replay(t, s, "order.1", 0))
	if first.calls != 12 || last != first.Seqs[11] {
		t.Fatalf("applied %d up to %d, want 12 up to %d", first.calls, last, first.Seqs[11])
	}

	// The snapshot is current: nothing is read.
	again := &snapState{}
	last2, err := s.Evolve(ctx, again, rita.WithFilters("order.1"), rita.WithSnapshot(cfg))
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
	if _, err := s.Evolve(ctx, tail, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, tail, replay(t, s, "order.1", 0))
	if tail.calls != 3 {
		t.Fatalf("read %d events after the snapshot, want 3", tail.calls)
	}
	tail2 := &snapState{}
	if _, err := s.Evolve(ctx, tail2, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if tail2.calls != 3 {
		t.Fatalf("read %d events after the snapshot, want 3 (no snapshot saved for fewer than Every)", tail2.calls)
	}

	// Five more: eight after the snapshot, so a new one is saved.
	appendTo(t, s, "order.1", 5)
	if _, err := s.Evolve(ctx, &snapState{}, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	current := &snapState{}
	if _, err := s.Evolve(ctx, current, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, current, replay(t, s, "order.1", 0))
	if current.calls != 0 || len(current.IDs) != 20 {
		t.Fatalf("applied %d events, state has %d; want 0 and 20", current.calls, len(current.IDs))
	}

	// A stop before the snapshot: the snapshot is not used.
	stop := current.Seqs[9]
	old := &snapState{}
	last, err = s.Evolve(ctx, old, rita.WithFilters("order.1"), rita.WithSnapshot(cfg), rita.WithStopSequence(stop))
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
	if _, err := s.Evolve(ctx, late, rita.WithFilters("order.1"), rita.WithSnapshot(cfg), rita.WithStopSequence(stop)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, late, current)
	if late.calls != 0 {
		t.Fatalf("applied %d events after a current snapshot", late.calls)
	}

	// An entity without events.
	none := &snapState{}
	last, err = s.Evolve(ctx, none, rita.WithFilters("order.2"), rita.WithSnapshot(cfg))
	if err != nil || last != 0 || none.calls != 0 {
		t.Fatalf("Evolve of an entity without events = %d, %v after %d events", last, err, none.calls)
	}
}

func TestSnapshotVersion(t *testing.T) {
	_, s := newSnapshotStore(t, "version")
	ctx := testCtx(t)
	appendTo(t, s, "order.1", 4)
	if _, err := s.Evolve(ctx, &snapState{}, rita.WithFilters("order.1"), rita.WithSnapshot(rita.SnapshotConfig{Version: "v1", Every: 1})); err != nil {
		t.Fatal(err)
	}
	// Another version ignores it, and replaces it.
	v2 := rita.SnapshotConfig{Version: "v2", Every: 1}
	st := &snapState{}
	if _, err := s.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(v2)); err != nil {
		t.Fatal(err)
	}
	if st.calls != 4 {
		t.Fatalf("version v2 applied %d events, want all 4", st.calls)
	}
	st = &snapState{}
	if _, err := s.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(v2)); err != nil {
		t.Fatal(err)
	}
	if st.calls != 0 {
		t.Fatalf("version v2's own snapshot was not used: %d events applied", st.calls)
	}
	// Names keep models apart.
	st = &snapState{}
	if _, err := s.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(rita.SnapshotConfig{Name: "summary", Version: "v2"})); err != nil {
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
	e, s := newSnapshotStore(t, "again")
	ctx := testCtx(t)
	cfg := rita.SnapshotConfig{Version: "v1", Every: 1}
	appendTo(t, s, "order.1", 5)
	if _, err := s.Evolve(ctx, &snapState{}, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if err := e.js.DeleteStream(ctx, wire.StreamName("again")); err != nil {
		t.Fatal(err)
	}
	s2, err := e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "again"})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, s2, "order.1", 7)
	st := &snapState{}
	if _, err := s2.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
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
	e, s := newSnapshotStore(t, "purged")
	ctx := testCtx(t)
	cfg := rita.SnapshotConfig{Version: "v1", Every: 1}
	appendTo(t, s, "order.1", 5)
	if _, err := s.Evolve(ctx, &snapState{}, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if err := e.stream(t, "purged").Purge(ctx, jetstream.WithPurgeSubject(wire.EntityPattern("purged", "order.1"))); err != nil {
		t.Fatal(err)
	}
	st := &snapState{}
	last, err := s.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(cfg))
	if err != nil || last != 0 || len(st.IDs) != 0 {
		t.Fatalf("after a purge Evolve = %d, %v with %d events, want nothing", last, err, len(st.IDs))
	}
	appendTo(t, s, "order.1", 2)
	st = &snapState{}
	if _, err := s.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	requireSameState(t, st, replay(t, s, "order.1", 0))
}

// Whatever snapshot a load starts from, the state is the one a replay of
// all the entity's events gives.
func TestSnapshotMatchesReplay(t *testing.T) {
	_, s := newSnapshotStore(t, "random")
	rng := rand.New(rand.NewPCG(7, 11))
	entities := []string{"order.1", "order.2", "order.x_y"}
	for range 150 {
		n := 1 + rng.IntN(3)
		events := make([]*rita.Event, n)
		for i := range events {
			events[i] = &rita.Event{Entity: entities[rng.IntN(len(entities))], Type: "t" + strconv.Itoa(rng.IntN(3)), Data: []byte("d")}
		}
		if _, err := s.Append(testCtx(t), events); err != nil {
			t.Fatal(err)
		}
	}
	for _, entity := range entities {
		all := replay(t, s, entity, 0)
		for i, at := range all.Seqs {
			if i%7 != 0 && i != len(all.Seqs)-1 {
				continue
			}
			ctx := testCtx(t) // bounds the loads from this snapshot, not the whole test
			cfg := rita.SnapshotConfig{Version: "at-" + strconv.Itoa(i)}
			// A snapshot as of event i, saved on demand.
			base := &snapState{}
			if _, err := s.Evolve(ctx, base, rita.WithFilters(entity), rita.WithStopSequence(at)); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveSnapshot(ctx, base, entity, at, cfg); err != nil {
				t.Fatal(err)
			}
			for _, stop := range []uint64{0, at, at + 1, all.Seqs[len(all.Seqs)-1]} {
				got := &snapState{}
				opts := []rita.EvolveOption{rita.WithFilters(entity), rita.WithSnapshot(cfg)}
				if stop > 0 {
					opts = append(opts, rita.WithStopSequence(stop))
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

func TestSnapshotInvalid(t *testing.T) {
	_, s := newSnapshotStore(t, "invalid")
	ctx := testCtx(t)
	appendTo(t, s, "order.1", 2)
	cfg := rita.SnapshotConfig{Version: "v1"}

	// A Model whose state is snapshotted as a whole and that already holds
	// another entity (other.1, which appendTo writes too).
	holder := rita.NewModel(&snapState{})
	if _, err := s.Evolve(ctx, holder, rita.WithFilters("other.1")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		model rita.Evolver
		opts  []rita.EvolveOption
	}{
		{"no filter", &snapState{}, []rita.EvolveOption{rita.WithSnapshot(cfg)}},
		// Several entities are loaded only into a state that snapshots each
		// of them on its own (rita.EntitySnapshotter; see below).
		{"two entities, whole state", &snapState{}, []rita.EvolveOption{rita.WithFilters("order.1", "order.2"), rita.WithSnapshot(cfg)}},
		{"two entities, model of whole state", rita.NewModel(&snapState{}), []rita.EvolveOption{rita.WithFilters("order.1", "order.2"), rita.WithSnapshot(cfg)}},
		{"model holding another entity", holder, []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithSnapshot(cfg)}},
		{"entity type", &snapState{}, []rita.EvolveOption{rita.WithFilters("order"), rita.WithSnapshot(cfg)}},
		{"wildcard", &snapState{}, []rita.EvolveOption{rita.WithFilters("order.*"), rita.WithSnapshot(cfg)}},
		{"wildcard among entities", newShop(), []rita.EvolveOption{rita.WithFilters("order.1", "order.*"), rita.WithSnapshot(cfg)}},
		{"entity type among entities", newShop(), []rita.EvolveOption{rita.WithFilters("order.1", "order"), rita.WithSnapshot(cfg)}},
		{"event type", &snapState{}, []rita.EvolveOption{rita.WithFilters("order.1.line"), rita.WithSnapshot(cfg)}},
		{"after", &snapState{}, []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithAfterSequence(1), rita.WithSnapshot(cfg)}},
		{"no version", &snapState{}, []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithSnapshot(rita.SnapshotConfig{})}},
		{"bad name", &snapState{}, []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithSnapshot(rita.SnapshotConfig{Name: "a.b", Version: "1"})}},
		{"negative every", &snapState{}, []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithSnapshot(rita.SnapshotConfig{Version: "1", Every: -1})}},
		{"plain model", plainEvolver{}, []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithSnapshot(cfg)}},
		{"model of plain state", rita.NewModel(&struct{ plainEvolver }{}), []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithSnapshot(cfg)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Evolve(ctx, tc.model, tc.opts...)
			requireErrorIs(t, err, rita.ErrInvalidOption)
		})
	}
	// The refusal left the holder as it was: other.1's two events, nothing
	// of order.1 applied or restored over them.
	var held []uint64
	requireNoError(t, holder.View(func(st *snapState) error {
		held = slices.Clone(st.Seqs)
		return nil
	}))
	if !slices.Equal(held, []uint64{2, 4}) || holder.EntitySequence("order.1") != 0 {
		t.Fatalf("holder has events %v and order.1 at %d after a refused load, want other.1's [2 4] only", held, holder.EntitySequence("order.1"))
	}

	// What is no longer refused: several entities, for a state that
	// snapshots each on its own, and one entity named twice.
	for _, ok := range []struct {
		name    string
		model   rita.Evolver
		filters []string
	}{
		{"two entities, EntitySnapshotter", newShop(), []string{"order.1", "order.2"}},
		{"two entities, model of EntitySnapshotter", rita.NewModel(newShop()), []string{"order.1", "order.2"}},
		{"one entity twice", &snapState{}, []string{"order.1", "order.1"}},
	} {
		seq, err := s.Evolve(ctx, ok.model, rita.WithFilters(ok.filters...), rita.WithSnapshot(cfg))
		if err != nil || seq != 3 {
			t.Fatalf("%s: Evolve = %d, %v; want 3, nil", ok.name, seq, err)
		}
	}

	_, err := s.Watch(ctx, &snapState{}, rita.WithSnapshot(cfg))
	requireErrorIs(t, err, rita.ErrInvalidOption)
	// SaveSnapshot checks the sequence belongs to the entity.
	other, err := s.Append(ctx, []*rita.Event{{Entity: "order.2", Type: "line", Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{other, 999, 0} {
		if err := s.SaveSnapshot(ctx, &snapState{}, "order.1", seq, cfg); !errors.Is(err, rita.ErrInvalidArgument) {
			t.Fatalf("SaveSnapshot at %d = %v, want ErrInvalidArgument", seq, err)
		}
	}
	if err := s.SaveSnapshot(ctx, plainEvolver{}, "order.1", 1, cfg); !errors.Is(err, rita.ErrInvalidOption) {
		t.Fatalf("SaveSnapshot of a plain model = %v, want ErrInvalidOption", err)
	}
	if err := s.SaveSnapshot(ctx, &snapState{}, "order", 1, cfg); !errors.Is(err, rita.ErrEventEntityInvalid) {
		t.Fatalf("SaveSnapshot of entity \"order\" = %v, want ErrEventEntityInvalid", err)
	}
}

// A snapshot is never replaced by an older one.
func TestSnapshotNotReplacedByOlder(t *testing.T) {
	_, s := newSnapshotStore(t, "older")
	ctx := testCtx(t)
	cfg := rita.SnapshotConfig{Version: "v1"}
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
	if _, err := s.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(cfg)); err != nil {
		t.Fatal(err)
	}
	if st.calls != 0 || len(st.IDs) != 6 {
		t.Fatalf("the later snapshot was replaced: %d events, %d applied", len(st.IDs), st.calls)
	}
}

func TestSnapshotsDeletedWithStore(t *testing.T) {
	e, s := newSnapshotStore(t, "gone")
	ctx := testCtx(t)
	appendTo(t, s, "order.1", 2)
	if _, err := s.Evolve(ctx, &snapState{}, rita.WithFilters("order.1"), rita.WithSnapshot(rita.SnapshotConfig{Version: "v1", Every: 1})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.KeyValue(ctx, wire.SnapshotBucket("gone")); err != nil {
		t.Fatalf("no snapshot bucket: %v", err)
	}
	if err := e.m.DeleteEventStore(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.KeyValue(ctx, wire.SnapshotBucket("gone")); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("snapshot bucket after DeleteEventStore: %v", err)
	}
}
