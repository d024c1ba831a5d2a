package rita_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// racer is a DeciderEvolver that lets a rival store events between the
// moment its model decides and the moment the decision is appended: on each
// of the first `races` calls to Decide, it appends the rival's events first.
type racer struct {
	rita.DeciderEvolver
	t      *testing.T
	store  *rita.EventStore
	races  int
	rival  func(call int) []*rita.Event
	calls  atomic.Int32
	stamps [][]*rita.Expect // the Expect of each decided event, per call
	mu     sync.Mutex
}

func (r *racer) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	call := int(r.calls.Add(1))
	events, err := r.DeciderEvolver.Decide(cmd)
	if call <= r.races {
		if _, aerr := r.store.Append(context.Background(), r.rival(call)); aerr != nil {
			r.t.Errorf("rival append: %v", aerr)
		}
	}
	var stamps []*rita.Expect
	for _, e := range events {
		if e.Expect != nil {
			cp := *e.Expect
			stamps = append(stamps, &cp)
		}
	}
	r.mu.Lock()
	r.stamps = append(r.stamps, stamps)
	r.mu.Unlock()
	return events, err
}

func deposit(account string, amount int) *rita.Event {
	return &rita.Event{Entity: accountEntity(account), Data: &depositedEvt{Amount: amount}}
}

func withdrawal(account string, amount int) *rita.Event {
	return &rita.Event{Entity: accountEntity(account), Data: &withdrawnEvt{Amount: amount}}
}

// fastRetry keeps the tests quick: no wait between attempts.
var fastRetry = rita.WithBackoff(0, 0)

func TestDecideAndEvolveWithRetry(t *testing.T) {
	tests := []struct {
		name      string
		cmd       any
		rival     *rita.Event
		wantErr   error
		wantSeq   uint64
		wantBal   int
		wantCalls int32
	}{
		// The rival deposits 5 while we withdraw 30: decided again on 105.
		{"succeeds on fresh state", &withdrawCmd{Account: "1", Amount: 30}, deposit("1", 5), nil, 3, 75, 2},
		// The rival withdraws 50 while we withdraw 80: on fresh state (50)
		// the decider refuses, and its error comes back as is.
		{"decided again and refused", &withdrawCmd{Account: "1", Amount: 80}, withdrawal("1", 50), errOverdraft, 0, 50, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, s := newBankEnv(t, "bank")
			ctx := testCtx(t)
			model := rita.NewModel(newLedger())
			_, _, err := s.DecideAndEvolve(ctx, model, &rita.Command{Data: &depositCmd{Account: "1", Amount: 100}})
			requireNoError(t, err)

			r := &racer{DeciderEvolver: model, t: t, store: s, races: 1, rival: func(int) []*rita.Event { return []*rita.Event{tt.rival} }}
			var notified []int
			events, seq, err := s.DecideAndEvolveWithRetry(ctx, r, &rita.Command{Data: tt.cmd}, fastRetry,
				rita.WithRetryNotify(func(attempt int, err error) {
					if !errors.Is(err, rita.ErrSequenceConflict) {
						t.Errorf("notified of %v, want a sequence conflict", err)
					}
					notified = append(notified, attempt)
				}))
			if tt.wantErr != nil {
				requireErrorIs(t, err, tt.wantErr)
			} else {
				requireNoError(t, err)
			}
			if seq != tt.wantSeq {
				t.Fatalf("seq %d, want %d", seq, tt.wantSeq)
			}
			if got := r.calls.Load(); got != tt.wantCalls {
				t.Fatalf("decided %d times, want %d", got, tt.wantCalls)
			}
			if len(notified) != 1 || notified[0] != 1 {
				t.Fatalf("notified of attempts %v, want [1]", notified)
			}
			// The first decision expected the model's sequence (1), the
			// second the rival's event (2), which the model caught up with.
			if len(r.stamps) < 1 || len(r.stamps[0]) != 1 || r.stamps[0][0].Sequence != 1 {
				t.Fatalf("first attempt's expectations: %+v", r.stamps)
			}
			if tt.wantErr == nil {
				if len(r.stamps) != 2 || len(r.stamps[1]) != 1 || r.stamps[1][0].Sequence != 2 {
					t.Fatalf("second attempt's expectations: %+v", r.stamps)
				}
				if len(events) != 1 || events[0].Sequence() != seq {
					t.Fatalf("events %v", events)
				}
			}
			if got := balance(t, model, "1"); got != tt.wantBal {
				t.Fatalf("balance %d, want %d", got, tt.wantBal)
			}
			if err := model.View(func(l *ledger) error {
				for seq, n := range l.Applied {
					if n != 1 {
						t.Errorf("sequence %d applied %d times", seq, n)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n := e.msgs(t, "bank"); n != tt.wantSeq && tt.wantErr == nil {
				t.Fatalf("stored %d", n)
			}
			if model.Sequence() != max(tt.wantSeq, 2) {
				t.Fatalf("model at sequence %d", model.Sequence())
			}
		})
	}
}

func TestDecideWithRetryDoesNotEvolveResult(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	model := rita.NewModel(newLedger())
	_, _, err := s.DecideAndEvolve(ctx, model, &rita.Command{Data: &depositCmd{Account: "1", Amount: 100}})
	requireNoError(t, err)
	r := &racer{DeciderEvolver: model, t: t, store: s, races: 1, rival: func(int) []*rita.Event { return []*rita.Event{deposit("1", 1)} }}
	events, seq, err := s.DecideWithRetry(ctx, r, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 10}}, fastRetry)
	requireNoError(t, err)
	if seq != 3 || len(events) != 1 || events[0].Sequence() != 3 {
		t.Fatalf("seq %d, events %v", seq, events)
	}
	// The model caught up with the rival (sequence 2) but, as with Decide,
	// not with its own decision.
	if model.Sequence() != 2 || balance(t, model, "1") != 101 {
		t.Fatalf("model at %d, balance %d", model.Sequence(), balance(t, model, "1"))
	}
}

func TestDecideWithRetryGivesUp(t *testing.T) {
	for _, attempts := range []int{1, 3} {
		t.Run(attemptsName(attempts), func(t *testing.T) {
			e, s := newBankEnv(t, "bank")
			ctx := testCtx(t)
			model := rita.NewModel(newLedger())
			r := &racer{DeciderEvolver: model, t: t, store: s, races: attempts, rival: func(int) []*rita.Event { return []*rita.Event{deposit("1", 1)} }}
			notified := 0
			_, seq, err := s.DecideAndEvolveWithRetry(ctx, r, &rita.Command{Data: &depositCmd{Account: "1", Amount: 10}},
				fastRetry, rita.WithMaxAttempts(attempts), rita.WithRetryNotify(func(int, error) { notified++ }))
			requireErrorIs(t, err, rita.ErrSequenceConflict)
			if want := "after " + attemptsName(attempts); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
			if seq != 0 || int(r.calls.Load()) != attempts || notified != attempts-1 {
				t.Fatalf("seq %d, %d decisions, %d notified; want 0, %d, %d", seq, r.calls.Load(), notified, attempts, attempts-1)
			}
			// Only the rival's events are stored, and the model has seen all
			// but the last, which came after its last catch-up.
			if n := e.msgs(t, "bank"); n != uint64(attempts) {
				t.Fatalf("stored %d, want %d", n, attempts)
			}
			if model.Sequence() != uint64(attempts-1) {
				t.Fatalf("model at sequence %d, want %d", model.Sequence(), attempts-1)
			}
		})
	}
}

func attemptsName(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func TestDecideWithRetryContextEndsWhileWaiting(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	model := rita.NewModel(newLedger())
	r := &racer{DeciderEvolver: model, t: t, store: s, races: 5, rival: func(int) []*rita.Event { return []*rita.Event{deposit("1", 1)} }}
	start := time.Now()
	_, _, err := s.DecideWithRetry(ctx, r, &rita.Command{Data: &depositCmd{Account: "1", Amount: 10}},
		rita.WithBackoff(time.Hour, time.Hour),
		rita.WithRetryNotify(func(int, error) { cancel() }))
	requireErrorIs(t, err, context.Canceled)
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	if r.calls.Load() != 1 {
		t.Fatalf("decided %d times, want 1", r.calls.Load())
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("took %v: the wait did not end with the context", d)
	}

	// A context that has already ended fails the append, which is not retried.
	_, _, err = s.DecideWithRetry(ctx, model, &rita.Command{Data: &depositCmd{Account: "1", Amount: 10}})
	requireErrorIs(t, err, context.Canceled)
}

// selfTracking is a DeciderEvolver that is not a Model: it tracks the last
// sequence of each entity itself, sets Expect on what it decides, and counts
// how often each sequence is applied. It checks that a retry applies only
// what the failed Expects say the model has not seen.
type selfTracking struct {
	*ledger
	last map[string]uint64
}

func (m *selfTracking) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	events, err := m.ledger.Decide(cmd)
	for _, e := range events {
		e.Expect = rita.ExpectSequence(m.last[e.Entity])
	}
	return events, err
}

func (m *selfTracking) Evolve(e *rita.Event) error {
	if err := m.ledger.Evolve(e); err != nil {
		return err
	}
	m.last[e.Entity] = e.Sequence()
	return nil
}

func TestDecideWithRetryAppliesOnlyMissedEvents(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	// 1: account 1, 2 and 3: account 2; the model sees all three.
	appendEach(t, s, deposit("1", 100), deposit("2", 10), deposit("2", 10))
	model := &selfTracking{ledger: newLedger(), last: map[string]uint64{}}
	_, err := s.Evolve(ctx, model)
	requireNoError(t, err)

	// The transfer expects account 1 at 1 and account 2 at 3; the rival
	// stores 4 on account 1. The catch-up reads both accounts after 1 and
	// must apply only 4: 2 and 3 are at or before account 2's expectation.
	r := &racer{DeciderEvolver: model, t: t, store: s, races: 1, rival: func(int) []*rita.Event { return []*rita.Event{deposit("1", 1)} }}
	_, seq, err := s.DecideAndEvolveWithRetry(ctx, r, &rita.Command{Data: &transferCmd{From: "1", To: "2", Amount: 50}}, fastRetry)
	requireNoError(t, err)
	if seq != 6 {
		t.Fatalf("seq %d, want 6", seq)
	}
	for seq := uint64(1); seq <= 6; seq++ {
		if n := model.Applied[seq]; n != 1 {
			t.Errorf("sequence %d applied %d times, want once", seq, n)
		}
	}
	if model.Balances[accountEntity("1")] != 51 || model.Balances[accountEntity("2")] != 70 {
		t.Fatalf("balances %v", model.Balances)
	}
}

func TestDecideWithRetryFilters(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    []rita.DecideOption
		wantBal int // of account 3 in the model
	}{
		{"derived from the expectations", nil, 10},
		{"given", []rita.DecideOption{rita.WithRetryFilters("account")}, 17},
		{"whole store", []rita.DecideOption{rita.WithRetryFilters(">")}, 17},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, s := newBankEnv(t, "bank")
			ctx := testCtx(t)
			appendEach(t, s, deposit("1", 100), deposit("3", 10))
			model := rita.NewModel(newLedger())
			_, err := s.Evolve(ctx, model, rita.WithFilters("account"))
			requireNoError(t, err)
			// The rival touches account 3 and then account 1.
			r := &racer{DeciderEvolver: model, t: t, store: s, races: 1, rival: func(int) []*rita.Event {
				return []*rita.Event{deposit("3", 7), deposit("1", 1)}
			}}
			_, seq, err := s.DecideAndEvolveWithRetry(ctx, r, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 20}},
				append([]rita.DecideOption{fastRetry}, tt.opts...)...)
			requireNoError(t, err)
			if seq != 5 || balance(t, model, "1") != 81 {
				t.Fatalf("seq %d, balance of 1: %d", seq, balance(t, model, "1"))
			}
			if got := balance(t, model, "3"); got != tt.wantBal {
				t.Fatalf("balance of 3: %d, want %d", got, tt.wantBal)
			}
		})
	}
}

func TestDecideWithRetryExpectPattern(t *testing.T) {
	// A decider that expects a pattern (every account) rather than its
	// entity catches up on that pattern.
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	appendEach(t, s, deposit("1", 100))
	model := rita.NewModel(newLedger())
	_, err := s.Evolve(ctx, model)
	requireNoError(t, err)
	global := deciderEvolverFunc{
		decide: func(cmd *rita.Command) ([]*rita.Event, error) {
			return []*rita.Event{{
				Entity: accountEntity("9"),
				Data:   &depositedEvt{Amount: 1},
				Expect: rita.ExpectSequenceSubject(model.Sequence(), "account"),
			}}, nil
		},
		evolve: model.Evolve,
	}
	r := &racer{DeciderEvolver: global, t: t, store: s, races: 2, rival: func(call int) []*rita.Event {
		return []*rita.Event{deposit(strconv.Itoa(call+1), call)}
	}}
	_, seq, err := s.DecideWithRetry(ctx, r, &rita.Command{}, fastRetry)
	requireNoError(t, err)
	if seq != 4 || model.Sequence() != 3 || balance(t, model, "2") != 1 || balance(t, model, "3") != 2 {
		t.Fatalf("seq %d, model at %d, balances 2: %d, 3: %d", seq, model.Sequence(), balance(t, model, "2"), balance(t, model, "3"))
	}
	if r.stamps[2][0].Sequence != 3 {
		t.Fatalf("third attempt expected %d, want 3", r.stamps[2][0].Sequence)
	}
}

type deciderEvolverFunc struct {
	decide func(*rita.Command) ([]*rita.Event, error)
	evolve func(*rita.Event) error
}

func (f deciderEvolverFunc) Decide(cmd *rita.Command) ([]*rita.Event, error) { return f.decide(cmd) }
func (f deciderEvolverFunc) Evolve(e *rita.Event) error                      { return f.evolve(e) }

func TestDecideWithRetryOtherErrors(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	model := rita.NewModel(newLedger())
	for _, tt := range []struct {
		name  string
		model rita.DeciderEvolver
		cmd   *rita.Command
		opts  []rita.DecideOption
		want  error
	}{
		{"nil model", nil, &rita.Command{}, nil, rita.ErrInvalidArgument},
		{"no attempts", model, &rita.Command{}, []rita.DecideOption{rita.WithMaxAttempts(0)}, rita.ErrInvalidOption},
		{"negative backoff", model, &rita.Command{}, []rita.DecideOption{rita.WithBackoff(-1, 0)}, rita.ErrInvalidOption},
		{"max below initial", model, &rita.Command{}, []rita.DecideOption{rita.WithBackoff(time.Second, time.Millisecond)}, rita.ErrInvalidOption},
		{"no filters", model, &rita.Command{}, []rita.DecideOption{rita.WithRetryFilters()}, rita.ErrInvalidOption},
		{"bad filter", model, &rita.Command{}, []rita.DecideOption{rita.WithRetryFilters("a.b.c.d")}, rita.ErrSubjectTooManyTokens},
		{"nil notify", model, &rita.Command{}, []rita.DecideOption{rita.WithRetryNotify(nil)}, rita.ErrInvalidOption},
		{"nil option", model, &rita.Command{}, []rita.DecideOption{nil}, rita.ErrInvalidOption},
		{"decider error", model, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 1}}, nil, errOverdraft},
		{"invalid event", model, &rita.Command{Data: badEventCmd{}}, nil, rita.ErrEventEntityInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.DecideWithRetry(ctx, tt.model, tt.cmd, tt.opts...)
			requireErrorIs(t, err, tt.want)
			_, _, err = s.DecideAndEvolveWithRetry(ctx, tt.model, tt.cmd, tt.opts...)
			requireErrorIs(t, err, tt.want)
		})
	}
	_, _, err := s.DecideWithRetry(nilCtx(), model, &rita.Command{})
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	if n := e.msgs(t, "bank"); n != 0 {
		t.Fatalf("stored %d", n)
	}
	// No events decided: nothing stored, no error.
	events, seq, err := s.DecideAndEvolveWithRetry(ctx, model, &rita.Command{Data: &depositCmd{Account: "1"}})
	if err != nil || seq != 0 || len(events) != 0 {
		t.Fatalf("empty decision: %v %d %v", events, seq, err)
	}
}

// Concurrent deciders on one account, each with a model of its own, all
// get their deposits stored exactly once: conflicts are retried on fresh
// state until each wins.
func TestDecideWithRetryConcurrent(t *testing.T) {
	_, s := newBankEnv(t, "bank")
	ctx := testCtx(t)
	const workers, deposits = 4, 5
	var wg sync.WaitGroup
	var conflicts atomic.Int32
	seqs := make(chan uint64, workers*deposits)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model := rita.NewModel(newLedger())
			for i := range deposits {
				_, seq, err := s.DecideAndEvolveWithRetry(ctx, model,
					&rita.Command{Data: &depositCmd{Account: "1", Amount: w*100 + i + 1}},
					rita.WithMaxAttempts(100), rita.WithBackoff(time.Millisecond, 20*time.Millisecond),
					rita.WithRetryNotify(func(int, error) { conflicts.Add(1) }))
				if err != nil {
					t.Errorf("worker %d deposit %d: %v", w, i, err)
					return
				}
				seqs <- seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for seq := range seqs {
		if seen[seq] {
			t.Fatalf("sequence %d returned twice", seq)
		}
		seen[seq] = true
	}
	if len(seen) != workers*deposits {
		t.Fatalf("%d deposits stored, want %d", len(seen), workers*deposits)
	}
	replay := rita.NewModel(newLedger())
	last, err := s.Evolve(ctx, replay)
	requireNoError(t, err)
	want := 0
	for w := range workers {
		for i := range deposits {
			want += w*100 + i + 1
		}
	}
	if last != workers*deposits || balance(t, replay, "1") != want {
		t.Fatalf("replay: last %d, balance %d; want %d, %d", last, balance(t, replay, "1"), workers*deposits, want)
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}

func TestDecideCorrelates(t *testing.T) {
	type decideFunc func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error)
	decides := []struct {
		name string
		fn   decideFunc
	}{
		{"Decide", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.Decide(ctx, m, cmd)
		}},
		{"DecideAndEvolve", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.DecideAndEvolve(ctx, m, cmd)
		}},
		{"DecideWithRetry", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.DecideWithRetry(ctx, m, cmd)
		}},
		{"DecideAndEvolveWithRetry", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.DecideAndEvolveWithRetry(ctx, m, cmd)
		}},
	}
	shared := map[string]string{"source": "test"} // one map shared by the decided events
	tests := []struct {
		name     string
		cmd      *rita.Command
		meta     map[string]string // what the decider sets on each event
		wantMeta map[string]string
	}{
		{"command ID starts the correlation", &rita.Command{ID: "cmd-1"}, nil,
			map[string]string{rita.MetaCausationID: "cmd-1", rita.MetaCorrelationID: "cmd-1"}},
		{"correlation flows from the command", &rita.Command{ID: "cmd-2", Meta: map[string]string{rita.MetaCorrelationID: "req-9", "other": "x"}}, nil,
			map[string]string{rita.MetaCausationID: "cmd-2", rita.MetaCorrelationID: "req-9"}},
		{"decider's values are kept", &rita.Command{ID: "cmd-3", Meta: map[string]string{rita.MetaCorrelationID: "req-9"}},
			map[string]string{rita.MetaCausationID: "mine", rita.MetaCorrelationID: "mine too", "k": "v"},
			map[string]string{rita.MetaCausationID: "mine", rita.MetaCorrelationID: "mine too", "k": "v"}},
		{"decider's causation kept, correlation added", &rita.Command{ID: "cmd-4"},
			map[string]string{rita.MetaCausationID: "mine"},
			map[string]string{rita.MetaCausationID: "mine", rita.MetaCorrelationID: "cmd-4"}},
		{"a shared map is not written to", &rita.Command{ID: "cmd-5"}, shared,
			map[string]string{rita.MetaCausationID: "cmd-5", rita.MetaCorrelationID: "cmd-5", "source": "test"}},
	}
	for _, d := range decides {
		t.Run(d.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, s := newBankEnv(t, "bank")
					ctx := testCtx(t)
					model := rita.NewModel(&script{})
					decided := []*rita.Event{
						{Entity: "account.1", Data: &depositedEvt{Amount: 1}, Meta: tt.meta},
						{Entity: "account.2", Data: &depositedEvt{Amount: 2}, Meta: tt.meta},
					}
					cmd := *tt.cmd
					cmd.Data = decided
					events, _, err := d.fn(ctx, s, model, &cmd)
					requireNoError(t, err)
					for i, e := range events {
						if !maps.Equal(e.Meta, tt.wantMeta) {
							t.Errorf("decided event %d: Meta %v, want %v", i, e.Meta, tt.wantMeta)
						}
					}
					// The metadata is stored: read it back.
					stored := &recorder{}
					_, err = s.Evolve(ctx, stored)
					requireNoError(t, err)
					for i, e := range stored.all() {
						if !maps.Equal(e.Meta, tt.wantMeta) {
							t.Errorf("stored event %d: Meta %v, want %v", i, e.Meta, tt.wantMeta)
						}
					}
					if len(stored.all()) != 2 {
						t.Fatalf("stored %d events", len(stored.all()))
					}
				})
			}
			if len(shared) != 1 {
				t.Fatalf("the decider's shared map was written to: %v", shared)
			}
		})
	}
}

func TestDecideCorrelatesFilledCommandID(t *testing.T) {
	e := newEnv(t, rita.WithRegistry(newRegistry(t, bankTypes())), rita.WithIDer(&countingIDer{}))
	s := e.store(t, "bank")
	events, _, err := s.Decide(testCtx(t), rita.NewModel(newLedger()), &rita.Command{Data: &depositCmd{Account: "1", Amount: 5}})
	requireNoError(t, err)
	// id-1 is the command's, filled before the decider ran; id-2 the event's.
	if got := events[0].Meta; got[rita.MetaCausationID] != "id-1" || got[rita.MetaCorrelationID] != "id-1" || events[0].ID != "id-2" {
		t.Fatalf("event %s: Meta %v", events[0].ID, got)
	}
}

func TestDecideRefusesInvalidCommandID(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	// The command ID becomes a header value, where a line break cannot go.
	_, _, err := s.Decide(testCtx(t), rita.NewModel(newLedger()), &rita.Command{ID: "a\r\nb", Data: &depositCmd{Account: "1", Amount: 5}})
	requireErrorIs(t, err, rita.ErrEventMetaInvalid)
	if n := e.msgs(t, "bank"); n != 0 {
		t.Fatalf("stored %d", n)
	}
}
