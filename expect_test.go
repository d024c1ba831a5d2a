package rita_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// warehouse is a command handler's model of one stock item and its orders,
// written as a newcomer would: a plain Decider and Evolver.
type warehouse struct {
	OnHand, Reserved int
}

// reserveCmd reserves one unit of stock.1 for an order.
type reserveCmd struct{ Order string }

func (w *warehouse) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	c := cmd.Data.(reserveCmd)
	if w.OnHand-w.Reserved < 1 {
		return nil, fmt.Errorf("order %s: out of stock", c.Order)
	}
	return []*rita.Event{
		{Entity: "order." + c.Order, Type: "placed", Data: []byte(c.Order)},
		{Entity: "stock.1", Type: "reserved", Data: []byte("1")},
	}, nil
}

func (w *warehouse) Evolve(e *rita.Event) error {
	switch e.Type {
	case "received":
		n, err := strconv.Atoi(string(e.Data.([]byte)))
		if err != nil {
			return err
		}
		w.OnHand += n
	case "reserved":
		w.Reserved++
	}
	return nil
}

// stockUp stores the arrival of n units of stock.1.
func stockUp(t *testing.T, s *rita.EventStore, n int) uint64 {
	t.Helper()
	seq, err := s.Append(testCtx(t), []*rita.Event{{
		Entity: "stock.1", Type: "received", Data: []byte(strconv.Itoa(n)), Expect: rita.ExpectSequence(0),
	}})
	requireNoError(t, err)
	return seq
}

// loadWarehouse loads stock.1 into w.
func loadWarehouse(t *testing.T, s *rita.EventStore, w rita.Evolver) {
	t.Helper()
	_, err := s.Evolve(testCtx(t), w, rita.WithFilters("stock.1"))
	requireNoError(t, err)
}

// A plain decider sets no Expect, so two copies that loaded the same state
// both reserve the last unit. That is the oversell the option prevents.
func TestPlainDeciderOversellsWithoutExpectRequired(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "wh")
	stockUp(t, s, 1)
	a, b := &warehouse{}, &warehouse{}
	loadWarehouse(t, s, a)
	loadWarehouse(t, s, b)
	for i, w := range []*warehouse{a, b} {
		_, _, err := s.Decide(testCtx(t), w, &rita.Command{Data: reserveCmd{Order: strconv.Itoa(i)}})
		requireNoError(t, err)
	}
	after := &warehouse{}
	loadWarehouse(t, s, after)
	if after.OnHand != 1 || after.Reserved != 2 {
		t.Fatalf("on hand %d, reserved %d; want the oversell 1, 2", after.OnHand, after.Reserved)
	}
}

func TestExpectRequiredRefusesPlainDecider(t *testing.T) {
	e := newEnv(t, rita.WithExpectRequired())
	s := e.store(t, "wh")
	stockUp(t, s, 1)
	w := &warehouse{}
	loadWarehouse(t, s, w)
	events, seq, err := s.Decide(testCtx(t), w, &rita.Command{Data: reserveCmd{Order: "1"}})
	requireErrorIs(t, err, rita.ErrExpectRequired)
	if seq != 0 || len(events) != 2 {
		t.Fatalf("seq %d, %d events; want 0 and the 2 decided events back", seq, len(events))
	}
	if !strings.Contains(err.Error(), `"order.1"`) || !strings.Contains(err.Error(), "rita.Model") {
		t.Errorf("error %q should name the entity and say what to do", err)
	}
	if n := e.msgs(t, "wh"); n != 1 {
		t.Fatalf("%d messages stored, want the 1 stock arrival", n)
	}
}

// The scenario: buyers racing for the last unit through rita.Model
// on a Manager that requires expectations. One wins; the other gets a
// ConflictError naming the stock item, and nothing of it is stored.
func TestExpectRequiredModelRefusesOversell(t *testing.T) {
	e := newEnv(t, rita.WithExpectRequired())
	s := e.store(t, "wh")
	stocked := stockUp(t, s, 1)
	a, b := rita.NewModel(&warehouse{}), rita.NewModel(&warehouse{})
	loadWarehouse(t, s, a)
	loadWarehouse(t, s, b)
	_, won, err := s.Decide(testCtx(t), a, &rita.Command{Data: reserveCmd{Order: "a"}})
	requireNoError(t, err)
	_, _, err = s.Decide(testCtx(t), b, &rita.Command{Data: reserveCmd{Order: "b"}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	var conflict *rita.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("error %v is no *ConflictError", err)
	}
	if conflict.Entity != "stock.1" || conflict.Expected != stocked || conflict.Actual != won {
		t.Fatalf("conflict on %q, expected %d, actual %d; want stock.1, %d, %d",
			conflict.Entity, conflict.Expected, conflict.Actual, stocked, won)
	}
	after := &warehouse{}
	loadWarehouse(t, s, after)
	if after.OnHand != 1 || after.Reserved != 1 {
		t.Fatalf("on hand %d, reserved %d; want 1, 1", after.OnHand, after.Reserved)
	}
	if n := e.msgs(t, "wh"); n != 3 {
		t.Fatalf("%d messages stored, want 3 (arrival, a's order and reservation)", n)
	}
}

func TestExpectRequiredCoverage(t *testing.T) {
	tests := []struct {
		name   string
		events func() []*rita.Event
		want   error
	}{
		{"every event expects", func() []*rita.Event {
			return []*rita.Event{
				{Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)},
				{Entity: "stock.1", Type: "reserved", Data: []byte("x"), Expect: rita.ExpectSequence(0)},
			}
		}, nil},
		{"an entity's first event expects for the rest", func() []*rita.Event {
			return []*rita.Event{
				{Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)},
				{Entity: "order.1", Type: "paid", Data: []byte("x")},
			}
		}, nil},
		{"a pattern covers other entities", func() []*rita.Event {
			return []*rita.Event{
				{Entity: "stock.1", Type: "reserved", Data: []byte("x"), Expect: rita.ExpectSequenceSubject(0, "stock.*")},
				{Entity: "stock.2", Type: "reserved", Data: []byte("x")},
			}
		}, nil},
		{"one event without", func() []*rita.Event {
			return []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte("x")}}
		}, rita.ErrExpectRequired},
		{"a second entity without", func() []*rita.Event {
			return []*rita.Event{
				{Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)},
				{Entity: "stock.1", Type: "reserved", Data: []byte("x")},
			}
		}, rita.ErrExpectRequired},
		{"an expect on another event type does not cover", func() []*rita.Event {
			return []*rita.Event{
				{Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequenceSubject(0, "order.1.placed")},
				{Entity: "order.1", Type: "paid", Data: []byte("x")},
			}
		}, rita.ErrExpectRequired},
	}
	e := newEnv(t, rita.WithExpectRequired())
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "cov" + strconv.Itoa(i)
			s := e.store(t, name)
			_, err := s.Append(testCtx(t), tt.events())
			if tt.want == nil {
				requireNoError(t, err)
				return
			}
			requireErrorIs(t, err, tt.want)
			if n := e.msgs(t, name); n != 0 {
				t.Fatalf("refused append stored %d messages", n)
			}
		})
	}
	// Without the option, the same events are stored.
	s := createStore(t, e.manager(t), "free")
	_, err := s.Append(testCtx(t), tests[3].events())
	requireNoError(t, err)
}

func TestConflictErrorSaysWhatCollided(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "c")
	ctx := testCtx(t)
	appendEach(t, s,
		rawEvent("stock.1", "received", "5"), // 1
		rawEvent("order.7", "placed", "x"),   // 2
		rawEvent("stock.1", "reserved", "1"), // 3
		rawEvent("stock.2", "received", "1"), // 4
	)
	tests := []struct {
		name   string
		events []*rita.Event
		want   rita.ConflictError
	}{
		{"one event", []*rita.Event{
			{ID: "e1", Entity: "stock.1", Type: "reserved", Data: []byte("1"), Expect: rita.ExpectSequence(1)},
		}, rita.ConflictError{Store: "c", EventID: "e1", Entity: "stock.1", Pattern: "stock.1", Expected: 1, Actual: 3}},
		{"a new entity that exists", []*rita.Event{
			{ID: "e2", Entity: "order.7", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)},
		}, rita.ConflictError{Store: "c", EventID: "e2", Entity: "order.7", Pattern: "order.7", Expected: 0, Actual: 2}},
		{"a batch whose second expectation fails", []*rita.Event{
			{ID: "e3", Entity: "order.8", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)},
			{ID: "e4", Entity: "stock.1", Type: "reserved", Data: []byte("1"), Expect: rita.ExpectSequence(1)},
		}, rita.ConflictError{Store: "c", EventID: "e4", Entity: "stock.1", Pattern: "stock.1", Expected: 1, Actual: 3}},
		{"a pattern", []*rita.Event{
			{ID: "e5", Entity: "stock.3", Type: "received", Data: []byte("1"), Expect: rita.ExpectSequenceSubject(3, "stock.*")},
		}, rita.ConflictError{Store: "c", EventID: "e5", Entity: "stock.3", Pattern: "stock.*", Expected: 3, Actual: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(ctx, tt.events)
			requireErrorIs(t, err, rita.ErrSequenceConflict)
			var got *rita.ConflictError
			if !errors.As(err, &got) {
				t.Fatalf("error %v is no *ConflictError", err)
			}
			g := rita.ConflictError{Store: got.Store, EventID: got.EventID, Entity: got.Entity, Pattern: got.Pattern, Expected: got.Expected, Actual: got.Actual}
			if g != tt.want {
				t.Fatalf("conflict %+v, want %+v", g, tt.want)
			}
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) {
				t.Errorf("the server's refusal is not reachable: %v", err)
			}
			for _, part := range []string{`store "c"`, tt.want.EventID, strconv.Quote(tt.want.Entity), strconv.Quote(tt.want.Pattern),
				"sequence " + strconv.FormatUint(tt.want.Expected, 10), "at " + strconv.FormatUint(tt.want.Actual, 10)} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("message %q lacks %q", err, part)
				}
			}
		})
	}
	if n := e.msgs(t, "c"); n != 4 {
		t.Fatalf("%d messages stored, want the 4 before the conflicts", n)
	}
}

// A retry after a conflict reads, for each subject the decision expected,
// what was stored after the sequence it expected: the missed events reach
// the model once, in stream order, and a new entity's expectation of 0
// does not make it read the other entity's history.
func TestDecideWithRetryCatchesUpEachSubject(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "r")
	stockUp(t, s, 10)
	appendN(t, s, "other.1", "noise", 20)
	m := rita.NewModel(&warehouse{})
	loadWarehouse(t, s, m)
	// Two reservations by others after the model loaded.
	for _, order := range []string{"x", "y"} {
		other := rita.NewModel(&warehouse{})
		loadWarehouse(t, s, other)
		_, _, err := s.Decide(testCtx(t), other, &rita.Command{Data: reserveCmd{Order: order}})
		requireNoError(t, err)
	}
	var applied []uint64
	spy := &spyModel{Model: m, applied: &applied}
	notified := 0
	_, _, err := s.DecideAndEvolveWithRetry(testCtx(t), spy, &rita.Command{Data: reserveCmd{Order: "z"}},
		rita.WithRetryNotify(func(int, error) { notified++ }))
	requireNoError(t, err)
	if notified != 1 {
		t.Fatalf("%d conflicts, want 1", notified)
	}
	// Caught up: the two reservations (sequences 23 and 25); then its own
	// order and reservation (26, 27).
	requireSeqs(t, applied, []uint64{23, 25, 26, 27})
	var w warehouse
	_ = m.View(func(x *warehouse) error { w = *x; return nil })
	if w.OnHand != 10 || w.Reserved != 3 {
		t.Fatalf("on hand %d, reserved %d; want 10, 3", w.OnHand, w.Reserved)
	}
}

// spyModel records the sequences that reach a Model.
type spyModel struct {
	*rita.Model[*warehouse]
	applied *[]uint64
}

func (s *spyModel) Evolve(e *rita.Event) error {
	*s.applied = append(*s.applied, e.Sequence())
	return s.Model.Evolve(e)
}
