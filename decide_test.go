package rita_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/clock"
)

func TestDecide(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	bank := newLedger()

	events, seq, err := s.Decide(ctx, bank, &rita.Command{Data: &depositCmd{Account: "1", Amount: 100}})
	requireNoError(t, err)
	if seq != 1 || len(events) != 1 {
		t.Fatalf("Decide = %d events, seq %d; want 1, 1", len(events), seq)
	}
	if ev := events[0]; ev.Sequence() != 1 || ev.Subject() != "$ES.bank.account.1.deposited" || ev.Type != "deposited" || ev.ID == "" {
		t.Fatalf("decided event: Sequence %d Subject %q Type %q ID %q", ev.Sequence(), ev.Subject(), ev.Type, ev.ID)
	}
	// Decide does not evolve the model.
	if bank.Balances[accountEntity("1")] != 0 || len(bank.Applied) != 0 {
		t.Fatalf("Decide evolved the model: %v", bank.Balances)
	}
	if n := e.msgs(t, "bank"); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}

	// The model learns of it through Evolve.
	last, err := s.Evolve(ctx, bank)
	requireNoError(t, err)
	if last != 1 || bank.Balances[accountEntity("1")] != 100 {
		t.Fatalf("after Evolve: last %d, balance %d", last, bank.Balances[accountEntity("1")])
	}

	// A transfer decides two events, stored as one batch.
	events, seq, err = s.Decide(ctx, bank, &rita.Command{Data: &transferCmd{From: "1", To: "2", Amount: 30}})
	requireNoError(t, err)
	if seq != 3 || len(events) != 2 || events[0].Sequence() != 2 || events[1].Sequence() != 3 {
		t.Fatalf("transfer: seq %d, %d events", seq, len(events))
	}
	if n := e.msgs(t, "bank"); n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}
}

func TestDecideErrors(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	bank := newLedger()

	for _, decide := range []struct {
		name string
		fn   func(cmd *rita.Command) ([]*rita.Event, uint64, error)
	}{
		{"Decide", func(cmd *rita.Command) ([]*rita.Event, uint64, error) { return s.Decide(ctx, bank, cmd) }},
		{"DecideAndEvolve", func(cmd *rita.Command) ([]*rita.Event, uint64, error) { return s.DecideAndEvolve(ctx, bank, cmd) }},
	} {
		t.Run(decide.name, func(t *testing.T) {
			// The decider's error comes back as is; nothing is stored.
			events, seq, err := decide.fn(&rita.Command{Data: &withdrawCmd{Account: "1", Amount: 10}})
			requireErrorIs(t, err, errOverdraft)
			if seq != 0 || len(events) != 0 {
				t.Fatalf("failed decision returned %d events, seq %d", len(events), seq)
			}
			if n := e.msgs(t, "bank"); n != 0 {
				t.Fatalf("a refused decision stored %d", n)
			}

			// No events is not an error, and stores nothing.
			events, seq, err = decide.fn(&rita.Command{Data: &depositCmd{Account: "1", Amount: 0}})
			requireNoError(t, err)
			if seq != 0 || len(events) != 0 {
				t.Fatalf("empty decision returned %d events, seq %d", len(events), seq)
			}
			if n := e.msgs(t, "bank"); n != 0 {
				t.Fatalf("an empty decision stored %d", n)
			}
			if len(bank.Applied) != 0 {
				t.Fatalf("model evolved: %v", bank.Applied)
			}

			// A decided event Append refuses fails the decision; nothing stored.
			_, seq, err = decide.fn(&rita.Command{Data: badEventCmd{}})
			requireErrorIs(t, err, rita.ErrEventEntityInvalid)
			if seq != 0 || e.msgs(t, "bank") != 0 {
				t.Fatalf("invalid decision: seq %d, %d stored", seq, e.msgs(t, "bank"))
			}
		})
	}

	_, _, err := s.Decide(ctx, nil, &rita.Command{})
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	if n := e.msgs(t, "bank"); n != 0 {
		t.Fatalf("stored %d", n)
	}
}

func TestDecideAndEvolve(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	bank := newLedger()

	events, seq, err := s.DecideAndEvolve(ctx, bank, &rita.Command{Data: &depositCmd{Account: "1", Amount: 100}})
	requireNoError(t, err)
	if seq != 1 || len(events) != 1 || events[0].Sequence() != 1 {
		t.Fatalf("deposit: seq %d, %d events", seq, len(events))
	}
	if bank.Balances[accountEntity("1")] != 100 || bank.Applied[1] != 1 {
		t.Fatalf("model after deposit: %v %v", bank.Balances, bank.Applied)
	}

	// A batch: consecutive sequences, set before the model sees them.
	events, seq, err = s.DecideAndEvolve(ctx, bank, &rita.Command{Data: &transferCmd{From: "1", To: "2", Amount: 40}})
	requireNoError(t, err)
	if seq != 3 || len(events) != 2 || events[0].Sequence() != 2 || events[1].Sequence() != 3 {
		t.Fatalf("transfer: seq %d, events %d", seq, len(events))
	}
	if bank.Applied[2] != 1 || bank.Applied[3] != 1 {
		t.Fatalf("model applied %v, want sequences 2 and 3 once", bank.Applied)
	}
	if bank.Balances[accountEntity("1")] != 60 || bank.Balances[accountEntity("2")] != 40 {
		t.Fatalf("balances %v", bank.Balances)
	}

	// The overdraft is refused from the evolved state.
	_, _, err = s.DecideAndEvolve(ctx, bank, &rita.Command{Data: &withdrawCmd{Account: "2", Amount: 41}})
	requireErrorIs(t, err, errOverdraft)
	if n := e.msgs(t, "bank"); n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}

	// The store agrees with the model.
	fresh := newLedger()
	last, err := s.Evolve(ctx, fresh)
	requireNoError(t, err)
	if last != 3 || fresh.Balances[accountEntity("1")] != 60 || fresh.Balances[accountEntity("2")] != 40 {
		t.Fatalf("replayed: last %d balances %v", last, fresh.Balances)
	}
}

func TestDecideAndEvolveModelError(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	bank := newLedger()
	bank.failOn = 1
	events, seq, err := s.DecideAndEvolve(testCtx(t), bank, &rita.Command{Data: &depositCmd{Account: "1", Amount: 5}})
	requireErrorIs(t, err, errEvolve)
	// The events are stored all the same.
	if seq != 1 || len(events) != 1 || events[0].Sequence() != 1 {
		t.Fatalf("seq %d, %d events", seq, len(events))
	}
	if n := e.msgs(t, "bank"); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
}

func TestDecideFillsCommand(t *testing.T) {
	now := time.Date(2022, 3, 4, 5, 6, 7, 8, time.UTC)
	e := newEnv(t, rita.WithRegistry(newRegistry(t, bankTypes())), rita.WithIDer(&countingIDer{}), rita.WithClock(clock.Fixed(now)))
	s := e.store(t, "bank")
	var seen *rita.Command
	d := deciderFunc(func(cmd *rita.Command) ([]*rita.Event, error) {
		seen = cmd
		return []*rita.Event{{Entity: "account.1", Data: &depositedEvt{Amount: 1}}}, nil
	})
	events, _, err := s.Decide(testCtx(t), d, &rita.Command{Type: "deposit", Data: []byte("x"), Meta: map[string]string{"k": "v"}})
	requireNoError(t, err)
	if seen == nil || seen.Type != "deposit" || seen.Meta["k"] != "v" {
		t.Fatalf("decider saw %+v", seen)
	}
	if events[0].ID == "" || !events[0].Time.Equal(now) {
		t.Fatalf("event ID %q Time %v", events[0].ID, events[0].Time)
	}
}

type deciderFunc func(*rita.Command) ([]*rita.Event, error)

func (f deciderFunc) Decide(cmd *rita.Command) ([]*rita.Event, error) { return f(cmd) }

// A nil command is handed to the decider as it is (a decider may ignore its
// command), as the first rita did; its events are stored without causation
// or correlation, and a Model stamps them as usual.
func TestDecideNilCommand(t *testing.T) {
	e := newEnv(t, rita.WithRegistry(newRegistry(t, bankTypes())))
	s := e.store(t, "nilcmd")
	calls := 0
	d := deciderFunc(func(cmd *rita.Command) ([]*rita.Event, error) {
		calls++
		if cmd != nil {
			t.Errorf("decider got %+v, want nil", cmd)
		}
		return []*rita.Event{{Entity: fmt.Sprintf("account.%d", calls), Data: &depositedEvt{Amount: 1}}}, nil
	})
	for name, decide := range map[string]func() ([]*rita.Event, uint64, error){
		"Decide":       func() ([]*rita.Event, uint64, error) { return s.Decide(testCtx(t), d, nil) },
		"Model.Decide": func() ([]*rita.Event, uint64, error) { return s.Decide(testCtx(t), rita.NewModel(d), nil) },
	} {
		t.Run(name, func(t *testing.T) {
			events, seq, err := decide()
			requireNoError(t, err)
			if seq == 0 || len(events) != 1 || events[0].Meta[rita.MetaCausationID] != "" {
				t.Fatalf("events %+v at %d", events, seq)
			}
		})
	}
	if calls != 2 {
		t.Fatalf("decider called %d times, want 2", calls)
	}
}
