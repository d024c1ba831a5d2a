package rita_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/synadia-labs/rita"
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
