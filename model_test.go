package rita_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

// Types that implement only part of Decider and Evolver.
type (
	stateOnly   struct{ N int }
	evolverOnly struct{ N int }
	deciderOnly struct{}
)

func (e *evolverOnly) Evolve(*rita.Event) error { e.N++; return nil }

func (deciderOnly) Decide(*rita.Command) ([]*rita.Event, error) {
	return []*rita.Event{{Entity: "account.1", Data: &depositedEvt{Amount: 1}}}, nil
}

// script decides the events its command carries and records what it is
// evolved with.
type script struct {
	applied []uint64
}

func (s *script) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	return cmd.Data.([]*rita.Event), nil
}

func (s *script) Evolve(e *rita.Event) error {
	s.applied = append(s.applied, e.Sequence())
	return nil
}

func TestModelNotImplemented(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	ctx := testCtx(t)

	state := rita.NewModel(&stateOnly{N: 3})
	_, err := state.Decide(&rita.Command{Data: &depositCmd{}})
	requireErrorIs(t, err, rita.ErrDeciderNotImplemented)
	err = state.Evolve(&rita.Event{Entity: "account.1", Data: &depositedEvt{}})
	requireErrorIs(t, err, rita.ErrEvolverNotImplemented)
	var n int
	requireNoError(t, state.View(func(s *stateOnly) error { n = s.N; return nil }))
	if n != 3 {
		t.Fatalf("View saw %d, want 3", n)
	}

	// Through the store: nothing is decided, so nothing is stored.
	evolver := rita.NewModel(&evolverOnly{})
	_, seq, err := s.DecideAndEvolve(ctx, evolver, &rita.Command{Data: &depositCmd{Account: "1", Amount: 1}})
	requireErrorIs(t, err, rita.ErrDeciderNotImplemented)
	_, _, err2 := s.Decide(ctx, evolver, &rita.Command{Data: &depositCmd{Account: "1", Amount: 1}})
	requireErrorIs(t, err2, rita.ErrDeciderNotImplemented)
	if seq != 0 || e.msgs(t, "bank") != 0 {
		t.Fatalf("seq %d, stored %d", seq, e.msgs(t, "bank"))
	}

	// A decider-only model decides and stores, but cannot evolve.
	decider := rita.NewModel(deciderOnly{})
	_, seq, err = s.DecideAndEvolve(ctx, decider, &rita.Command{Data: &depositCmd{}})
	requireErrorIs(t, err, rita.ErrEvolverNotImplemented)
	if seq != 1 || e.msgs(t, "bank") != 1 {
		t.Fatalf("seq %d, stored %d; want the event stored", seq, e.msgs(t, "bank"))
	}
	last, err := s.Evolve(ctx, decider)
	requireErrorIs(t, err, rita.ErrEvolverNotImplemented)
	if last != 0 {
		t.Fatalf("Evolve returned %d, want 0", last)
	}

	// An evolver-only model evolves.
	last, err = s.Evolve(ctx, evolver)
	requireNoError(t, err)
	requireNoError(t, evolver.View(func(v *evolverOnly) error { n = v.N; return nil }))
	if last != 1 || n != 1 || evolver.Sequence() != 1 {
		t.Fatalf("evolver-only: last %d, applied %d, Sequence %d", last, n, evolver.Sequence())
	}
}

func TestModelDecideStampsExpect(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	appendEach(t, s,
		&rita.Event{Entity: "account.1", Data: &depositedEvt{Amount: 1}},
		&rita.Event{Entity: "account.1", Data: &depositedEvt{Amount: 2}},
		&rita.Event{Entity: "account.3", Data: &depositedEvt{Amount: 3}},
	)
	m := rita.NewModel(&script{})
	last, err := s.Evolve(ctx, m)
	requireNoError(t, err)
	if last != 3 || m.Sequence() != 3 {
		t.Fatalf("Evolve returned %d, Sequence %d; want 3, 3", last, m.Sequence())
	}
	for entity, want := range map[string]uint64{"account.1": 2, "account.3": 3, "account.2": 0} {
		if got := m.EntitySequence(entity); got != want {
			t.Errorf("EntitySequence(%s) = %d, want %d", entity, got, want)
		}
	}

	own := rita.ExpectSequenceSubject(7, "account")
	events := []*rita.Event{
		{Entity: "account.1", Data: &depositedEvt{Amount: 1}},
		{Entity: "account.1", Data: &depositedEvt{Amount: 2}},
		{Entity: "account.2", Data: &depositedEvt{Amount: 3}},
		{Entity: "account.3", Data: &depositedEvt{Amount: 4}, Expect: own},
		{Entity: "account.3", Data: &depositedEvt{Amount: 5}},
	}
	got, err := m.Decide(&rita.Command{Data: events})
	requireNoError(t, err)
	if len(got) != 5 {
		t.Fatalf("Decide returned %d events", len(got))
	}
	check := func(i int, want *rita.Expect) {
		t.Helper()
		g := got[i].Expect
		switch {
		case want == nil && g != nil:
			t.Errorf("event %d Expect = %+v, want nil", i, *g)
		case want != nil && (g == nil || *g != *want):
			t.Errorf("event %d Expect = %+v, want %+v", i, g, *want)
		}
	}
	check(0, &rita.Expect{Sequence: 2})
	check(1, nil)
	check(2, &rita.Expect{Sequence: 0})
	check(3, &rita.Expect{Sequence: 7, Pattern: "account"})
	check(4, nil)
	if got[3].Expect != own {
		t.Errorf("the decider's own Expect was replaced")
	}

	// A decision stamped from current state is stored.
	events, seq, err := s.Decide(ctx, m, &rita.Command{Data: []*rita.Event{
		{Entity: "account.1", Data: &depositedEvt{Amount: 1}},
		{Entity: "account.1", Data: &depositedEvt{Amount: 1}},
		{Entity: "account.2", Data: &depositedEvt{Amount: 1}},
	}})
	requireNoError(t, err)
	if seq != 6 || events[0].Expect == nil || events[0].Expect.Sequence != 2 {
		t.Fatalf("seq %d, first Expect %+v", seq, events[0].Expect)
	}
}

func TestModelStaleDecisionConflicts(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	_, _, err := s.Decide(ctx, newLedger(), &rita.Command{Data: &depositCmd{Account: "1", Amount: 100}})
	requireNoError(t, err)

	m1 := rita.NewModel(newLedger())
	m2 := rita.NewModel(newLedger())
	for _, m := range []*rita.Model[*ledger]{m1, m2} {
		_, err := s.Evolve(ctx, m)
		requireNoError(t, err)
	}

	// Both models decide from the same state; the first one wins.
	_, seq, err := s.DecideAndEvolve(ctx, m1, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 60}})
	requireNoError(t, err)
	if seq != 2 || balance(t, m1, "1") != 40 {
		t.Fatalf("m1: seq %d, balance %d", seq, balance(t, m1, "1"))
	}
	_, _, err = s.DecideAndEvolve(ctx, m2, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 60}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	if n := e.msgs(t, "bank"); n != 2 {
		t.Fatalf("the stale decision stored something: %d messages", n)
	}
	if balance(t, m2, "1") != 100 || m2.EntitySequence("account.1") != 1 {
		t.Fatalf("m2 changed by a refused decision: balance %d, sequence %d", balance(t, m2, "1"), m2.EntitySequence("account.1"))
	}

	// The stale model may still decide for another entity.
	_, seq, err = s.DecideAndEvolve(ctx, m2, &rita.Command{Data: &depositCmd{Account: "2", Amount: 5}})
	requireNoError(t, err)
	if seq != 3 {
		t.Fatalf("deposit to account 2: seq %d, want 3", seq)
	}

	// Caught up, it sees the overdraft.
	last, err := s.Evolve(ctx, m2, rita.WithAfterSequence(m2.EntitySequence("account.1")))
	requireNoError(t, err)
	if last != 3 || balance(t, m2, "1") != 40 || balance(t, m2, "2") != 5 {
		t.Fatalf("m2 caught up: last %d, balances %d %d", last, balance(t, m2, "1"), balance(t, m2, "2"))
	}
	_, _, err = s.DecideAndEvolve(ctx, m2, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 60}})
	requireErrorIs(t, err, errOverdraft)
	_, seq, err = s.DecideAndEvolve(ctx, m2, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 40}})
	requireNoError(t, err)
	if seq != 4 || balance(t, m2, "1") != 0 {
		t.Fatalf("m2 withdraw: seq %d, balance %d", seq, balance(t, m2, "1"))
	}

	// A model that never saw account.1 expects it to be empty.
	m3 := rita.NewModel(newLedger())
	_, _, err = s.DecideAndEvolve(ctx, m3, &rita.Command{Data: &depositCmd{Account: "1", Amount: 1}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	if n := e.msgs(t, "bank"); n != 4 {
		t.Fatalf("stored %d, want 4", n)
	}
}

func TestModelEvolveSkipsApplied(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	appendEach(t, s,
		&rita.Event{Entity: "account.1", Data: &depositedEvt{Amount: 10}},
		&rita.Event{Entity: "account.2", Data: &depositedEvt{Amount: 20}},
		&rita.Event{Entity: "account.1", Data: &withdrawnEvt{Amount: 3}},
		&rita.Event{Entity: "account.2", Data: &depositedEvt{Amount: 1}},
	)
	bank := newLedger()
	m := rita.NewModel(bank)
	for range 3 {
		last, err := s.Evolve(ctx, m)
		requireNoError(t, err)
		if last != 4 {
			t.Fatalf("Evolve returned %d", last)
		}
	}
	for seq := uint64(1); seq <= 4; seq++ {
		if bank.Applied[seq] != 1 {
			t.Fatalf("sequence %d applied %d times, want once (%v)", seq, bank.Applied[seq], bank.Applied)
		}
	}
	if balance(t, m, "1") != 7 || balance(t, m, "2") != 21 {
		t.Fatalf("balances %d %d", balance(t, m, "1"), balance(t, m, "2"))
	}
	if m.Sequence() != 4 || m.EntitySequence("account.1") != 3 || m.EntitySequence("account.2") != 4 {
		t.Fatalf("Sequence %d, account.1 %d, account.2 %d", m.Sequence(), m.EntitySequence("account.1"), m.EntitySequence("account.2"))
	}

	// Skipping is per entity: an event of another entity with a lower
	// sequence than the model's highest is still applied.
	var r recorder
	_, err := s.Evolve(ctx, &r)
	requireNoError(t, err)
	read := r.all()
	bank2 := newLedger()
	m2 := rita.NewModel(bank2)
	for _, i := range []int{0, 2, 1, 2, 3, 1, 3} { // sequences 1, 3, 2, 3, 4, 2, 4
		requireNoError(t, m2.Evolve(read[i]))
	}
	want := map[uint64]int{1: 1, 2: 1, 3: 1, 4: 1}
	for seq, n := range want {
		if bank2.Applied[seq] != n {
			t.Errorf("sequence %d applied %d times, want %d", seq, bank2.Applied[seq], n)
		}
	}
	if m2.Sequence() != 4 {
		t.Errorf("Sequence = %d, want 4", m2.Sequence())
	}

	// An event that was never stored has no sequence and is always applied.
	unsaved := &rita.Event{Entity: "account.9", Data: &depositedEvt{Amount: 5}}
	requireNoError(t, m.Evolve(unsaved))
	requireNoError(t, m.Evolve(unsaved))
	if balance(t, m, "9") != 10 {
		t.Fatalf("unsaved events applied to balance %d, want 10", balance(t, m, "9"))
	}
	if m.Sequence() != 4 {
		t.Fatalf("an unsaved event moved Sequence to %d", m.Sequence())
	}
	requireErrorIs(t, m.Evolve(nil), rita.ErrEventNil)
}

func TestModelEvolveError(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	appendEach(t, s,
		&rita.Event{Entity: "account.1", Data: &depositedEvt{Amount: 10}},
		&rita.Event{Entity: "account.1", Data: &depositedEvt{Amount: 20}},
		&rita.Event{Entity: "account.1", Data: &depositedEvt{Amount: 30}},
	)
	bank := newLedger()
	bank.failOn = 2
	m := rita.NewModel(bank)
	last, err := s.Evolve(ctx, m)
	requireErrorIs(t, err, errEvolve)
	if last != 1 || m.Sequence() != 1 || m.EntitySequence("account.1") != 1 || balance(t, m, "1") != 10 {
		t.Fatalf("after a refused event: last %d, Sequence %d, EntitySequence %d, balance %d",
			last, m.Sequence(), m.EntitySequence("account.1"), balance(t, m, "1"))
	}
	// Once the model accepts it, the refused event is applied on the next pass.
	bank.failOn = 0
	last, err = s.Evolve(ctx, m, rita.WithAfterSequence(m.Sequence()))
	requireNoError(t, err)
	if last != 3 || balance(t, m, "1") != 60 {
		t.Fatalf("after retry: last %d, balance %d", last, balance(t, m, "1"))
	}
}

func TestModelView(t *testing.T) {
	m := rita.NewModel(newLedger())
	requireNoError(t, m.Evolve(&rita.Event{Entity: "account.1", Data: &depositedEvt{Amount: 7}}))
	var seen int
	requireNoError(t, m.View(func(b *ledger) error { seen = b.Balances["account.1"]; return nil }))
	if seen != 7 {
		t.Fatalf("View saw %d, want 7", seen)
	}
	errView := errors.New("view failed")
	requireErrorIs(t, m.View(func(*ledger) error { return errView }), errView)
	requireErrorIs(t, m.View(nil), rita.ErrInvalidArgument)

	// Model is a Viewer, a Decider and an Evolver.
	var _ rita.Viewer[*ledger] = m
	var _ rita.DeciderEvolver = m
}

func TestModelConcurrent(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	bank := newLedger()
	m := rita.NewModel(bank)

	w, err := s.Watch(ctx, m)
	requireNoError(t, err)
	defer w.Stop()

	const (
		accounts = 4
		deposits = 15
	)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	done := make(chan struct{})
	// Writers: each account is decided by one goroutine.
	var writers sync.WaitGroup
	for a := range accounts {
		writers.Go(func() {
			for i := range deposits {
				_, _, err := s.DecideAndEvolve(ctx, m, &rita.Command{Data: &depositCmd{Account: fmt.Sprint(a), Amount: i + 1}})
				if err != nil {
					errs <- fmt.Errorf("account %d deposit %d: %w", a, i, err)
					return
				}
			}
		})
	}
	// Readers: View, Sequence, EntitySequence and Decide without storing.
	for r := range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				_ = m.View(func(b *ledger) error {
					total := 0
					for _, v := range b.Balances {
						total += v
					}
					if total < 0 {
						return errors.New("negative total")
					}
					return nil
				})
				_ = m.Sequence()
				_ = m.EntitySequence(accountEntity(fmt.Sprint(r)))
				if _, err := m.Decide(&rita.Command{Data: &withdrawCmd{Account: fmt.Sprint(r), Amount: 1 << 30}}); !errors.Is(err, errOverdraft) {
					errs <- fmt.Errorf("Decide overdraft: %v", err)
					return
				}
			}
		})
	}
	// Re-deliverers: Evolve the whole store into the model again and again.
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Evolve(ctx, m); err != nil {
					errs <- fmt.Errorf("Evolve: %w", err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	const total = accounts * deposits
	eventually(t, 5*time.Second, func() bool { return m.Sequence() == total }, "model sequence %d, want %d", m.Sequence(), total)
	w.Stop()
	requireNoError(t, m.View(func(b *ledger) error {
		for seq := uint64(1); seq <= total; seq++ {
			if b.Applied[seq] != 1 {
				return fmt.Errorf("sequence %d applied %d times", seq, b.Applied[seq])
			}
		}
		if len(b.Applied) != total {
			return fmt.Errorf("applied %d sequences, want %d", len(b.Applied), total)
		}
		for a := range accounts {
			if got, want := b.Balances[accountEntity(fmt.Sprint(a))], deposits*(deposits+1)/2; got != want {
				return fmt.Errorf("account %d balance %d, want %d", a, got, want)
			}
		}
		return nil
	}))
}

func TestModelDecideNilEvent(t *testing.T) {
	m := rita.NewModel(&script{})
	_, err := m.Decide(&rita.Command{Data: []*rita.Event{{Entity: "account.1", Data: []byte("x")}, nil}})
	requireErrorIs(t, err, rita.ErrEventNil)
}

// stateless decides without state: its methods work on a nil pointer.
type stateless struct{}

func (*stateless) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	return []*rita.Event{{Entity: "ping.1", Type: "pinged", Data: []byte("x")}}, nil
}

// A Model of a nil pointer calls its methods on it, as the first rita did:
// a decider without state works; a method that needs its state panics in
// its own code, not in rita's.
func TestModelOfNilPointer(t *testing.T) {
	m := rita.NewModel[*stateless](nil)
	events, err := m.Decide(nil)
	requireNoError(t, err)
	if len(events) != 1 || events[0].Expect == nil || events[0].Expect.Sequence != 0 {
		t.Fatalf("events %+v", events)
	}
	called := false
	requireNoError(t, m.View(func(s *stateless) error { called = s == nil; return nil }))
	if !called {
		t.Fatal("View did not get the nil pointer")
	}
}
