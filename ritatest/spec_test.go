package ritatest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
	"github.com/synadia-labs/rita/types"
)

// A small account domain for the specification tests. Names carry a "spec"
// prefix: other tests of this package define their own types.

type (
	specOpened struct {
		Owner string `json:"owner"`
	}
	specDeposited struct {
		Amount int    `json:"amount"`
		Note   string `json:"-"` // not stored: the store loses it
	}
	specWithdrawn struct {
		Amount int `json:"amount"`
	}
	specUnregistered struct{ X int }
	specUnknownEvent struct{}

	specOpen    struct{ Account, Owner string }
	specDeposit struct {
		Account string
		Amount  int
		Note    string
	}
	specWithdraw struct {
		Account string
		Amount  int
	}
	specBadEvent   struct{ Data any } // decides one event with Data
	specNoDecision struct{}
)

var errSpecFunds = errors.New("insufficient funds")

type specAccount struct {
	owner   string
	balance int
}

func newSpecAccount() *specAccount { return &specAccount{} }

func (a *specAccount) Evolve(e *rita.Event) error {
	switch d := e.Data.(type) {
	case *specOpened:
		a.owner = d.Owner
	case *specDeposited:
		a.balance += d.Amount
	case *specWithdrawn:
		a.balance -= d.Amount
	case *specUnregistered:
	default:
		return fmt.Errorf("unexpected event %T", e.Data)
	}
	return nil
}

func (a *specAccount) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	switch c := cmd.Data.(type) {
	case *specOpen:
		return []*rita.Event{{Entity: "account." + c.Account, Data: &specOpened{Owner: c.Owner}}}, nil
	case *specDeposit:
		return []*rita.Event{{Entity: "account." + c.Account, Data: &specDeposited{Amount: c.Amount, Note: c.Note}}}, nil
	case *specWithdraw:
		if c.Amount > a.balance {
			return nil, fmt.Errorf("withdraw %d: %w", c.Amount, errSpecFunds)
		}
		return []*rita.Event{{Entity: "account." + c.Account, Data: &specWithdrawn{Amount: c.Amount}}}, nil
	case *specBadEvent:
		return []*rita.Event{{Entity: "account.a", Data: c.Data}}, nil
	case *specNoDecision:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown command %T", cmd.Data)
}

func specRegistry(t testing.TB) *types.Registry {
	t.Helper()
	reg, err := types.NewRegistry(map[string]*types.Type{
		"opened":    {Init: func() any { return new(specOpened) }},
		"deposited": {Init: func() any { return new(specDeposited) }},
		"withdrawn": {Init: func() any { return new(specWithdrawn) }},
		"unknown":   {Init: func() any { return new(specUnknownEvent) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// specStores makes a fresh store for each call on one embedded server.
func specStores(t *testing.T) func() *rita.EventStore {
	t.Helper()
	m, err := rita.New(ritatest.NewServer(t).Connect(t), rita.WithRegistry(specRegistry(t)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	return func() *rita.EventStore {
		t.Helper()
		n++
		s, err := m.CreateEventStore(t.Context(), rita.EventStoreConfig{Name: fmt.Sprintf("spec%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

var aliceWith100 = []*rita.Event{
	{Entity: "account.alice", Data: &specOpened{Owner: "Alice"}},
	{Entity: "account.alice", Data: &specDeposited{Amount: 100}},
}

func TestSpecHolds(t *testing.T) {
	stores := specStores(t)
	tests := []struct {
		name string
		spec ritatest.Spec[*specAccount]
	}{
		{"events", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 30},
			Then:  []*rita.Event{{Entity: "account.alice", Data: &specWithdrawn{Amount: 30}}},
		}},
		{"typed and valued", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 30},
			Then:  []*rita.Event{{Entity: "account.alice", Type: "withdrawn", Data: specWithdrawn{Amount: 30}}},
		}},
		{"no past", ritatest.Spec[*specAccount]{
			When: &specOpen{Account: "bob", Owner: "Bob"},
			Then: []*rita.Event{{Entity: "account.bob", Data: &specOpened{Owner: "Bob"}}},
		}},
		{"error", ritatest.Spec[*specAccount]{
			Given:     aliceWith100,
			When:      &specWithdraw{Account: "alice", Amount: 101},
			ThenError: errSpecFunds,
		}},
		{"no events", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specNoDecision{},
		}},
		{"metadata", ritatest.Spec[*specAccount]{
			When: &rita.Command{ID: "cmd-7", Data: &specOpen{Account: "bob", Owner: "Bob"}, Meta: map[string]string{rita.MetaCorrelationID: "req-1"}},
			Then: []*rita.Event{{Entity: "account.bob", Data: &specOpened{Owner: "Bob"},
				Meta: map[string]string{rita.MetaCausationID: "cmd-7", rita.MetaCorrelationID: "req-1"}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.spec.Check(newSpecAccount); err != nil {
				t.Errorf("Check: %v", err)
			}
			if err := tt.spec.CheckStore(t.Context(), stores(), newSpecAccount); err != nil {
				t.Errorf("CheckStore: %v", err)
			}
		})
	}
}

func TestSpecRun(t *testing.T) {
	spec := ritatest.Spec[*specAccount]{
		Given: aliceWith100,
		When:  &specWithdraw{Account: "alice", Amount: 30},
		Then:  []*rita.Event{{Entity: "account.alice", Data: &specWithdrawn{Amount: 30}}},
	}
	spec.Run(t, newSpecAccount)
	spec.RunStore(t, specRegistry(t), newSpecAccount)
	// Running a spec leaves it as it was: the Given events were not filled
	// in by Append.
	for i, e := range spec.Given {
		if e.ID != "" || e.Sequence() != 0 || e.Type != "" || !e.Time.IsZero() {
			t.Errorf("Given event %d was modified: %+v", i, e)
		}
	}
}

func TestSpecFails(t *testing.T) {
	stores := specStores(t)
	tests := []struct {
		name    string
		spec    ritatest.Spec[*specAccount]
		mention []string // in Check's error, in this order; nil: Check must hold
		inStore []string // in CheckStore's error, if not the same
	}{
		{"different data", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 30},
			Then:  []*rita.Event{{Entity: "account.alice", Data: &specWithdrawn{Amount: 40}}},
		}, []string{
			"ritatest: given 2 events, when &ritatest_test.specWithdraw{Account:\"alice\", Amount:30}:",
			"want 1 event, got 1 event decided:",
			"event 1:",
			"want: account.alice &ritatest_test.specWithdrawn{Amount:40}",
			"got:  account.alice &ritatest_test.specWithdrawn{Amount:30}",
			"Data.Amount: want 40, got 30",
		}, []string{
			"want 1 event, got 1 event decided:",
			"got:  account.alice withdrawn &ritatest_test.specWithdrawn{Amount:30}",
			"Data.Amount: want 40, got 30",
		}},
		{"different entity and type", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 30},
			Then:  []*rita.Event{{Entity: "account.bob", Type: "deposited", Data: &specWithdrawn{Amount: 30}}},
		}, []string{`Entity: want "account.bob", got "account.alice"`}, []string{`Entity: want "account.bob", got "account.alice"`, `Type: want "deposited", got "withdrawn"`}},
		{"different Go type", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 30},
			Then:  []*rita.Event{{Entity: "account.alice", Data: &specDeposited{Amount: 30}}},
		}, []string{"Data: want &ritatest_test.specDeposited{Amount:30, Note:\"\"}, got &ritatest_test.specWithdrawn{Amount:30}"}, nil},
		{"missing event", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 30},
			Then: []*rita.Event{
				{Entity: "account.alice", Data: &specWithdrawn{Amount: 30}},
				{Entity: "account.alice", Data: &specWithdrawn{Amount: 1}},
			},
		}, []string{"want 2 events, got 1 event decided:", "event 1: ok: account.alice", "event 2:", "want: account.alice &ritatest_test.specWithdrawn{Amount:1}", "got:  (none)"}, nil},
		{"unexpected event", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 30},
		}, []string{"want 0 events, got 1 event decided:", "want: (none)", "got:  account.alice &ritatest_test.specWithdrawn{Amount:30}"},
			[]string{"want 0 events, got 1 event decided:", "want: (none)", "got:  account.alice withdrawn &ritatest_test.specWithdrawn{Amount:30}"}},
		{"error instead of events", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specWithdraw{Account: "alice", Amount: 300},
			Then:  []*rita.Event{{Entity: "account.alice", Data: &specWithdrawn{Amount: 300}}},
		}, []string{"want 1 event, got error: withdraw 300: insufficient funds"}, nil},
		{"events instead of error", ritatest.Spec[*specAccount]{
			Given:     aliceWith100,
			When:      &specWithdraw{Account: "alice", Amount: 30},
			ThenError: errSpecFunds,
		}, []string{`want error "insufficient funds", got no error and 1 event decided:`, "event 1: account.alice &ritatest_test.specWithdrawn{Amount:30}"},
			[]string{`want error "insufficient funds", got no error and 1 event decided:`, "event 1: account.alice withdrawn &ritatest_test.specWithdrawn{Amount:30}"}},
		{"another error", ritatest.Spec[*specAccount]{
			Given:     aliceWith100,
			When:      &specWithdraw{Account: "alice", Amount: 300},
			ThenError: context.Canceled,
		}, []string{`want error "context canceled", got error "withdraw 300: insufficient funds"`}, nil},
		{"metadata", ritatest.Spec[*specAccount]{
			When: &rita.Command{ID: "cmd-7", Data: &specOpen{Account: "bob", Owner: "Bob"}},
			Then: []*rita.Event{{Entity: "account.bob", Data: &specOpened{Owner: "Bob"},
				Meta: map[string]string{rita.MetaCausationID: "cmd-8", "tenant": "t1"}}},
		}, []string{`Meta["causation-id"]: want "cmd-8", got "cmd-7"`, `Meta["tenant"]: want "t1", got none`}, nil},
		{"given event the state refuses", ritatest.Spec[*specAccount]{
			Given: []*rita.Event{{Entity: "account.alice", Type: "unknown", Data: &specUnknownEvent{}}},
			When:  &specNoDecision{},
		}, []string{"given event 1 (account.alice unknown &ritatest_test.specUnknownEvent{}): the state refused it: unexpected event"},
			[]string{"evolving the state with the Given events, as stored: rita: evolve event 1 (unknown): unexpected event"}},
		{"decided event the state refuses", ritatest.Spec[*specAccount]{
			When: &specBadEvent{Data: &specUnknownEvent{}},
			Then: []*rita.Event{{Entity: "account.a", Data: &specUnknownEvent{}}},
		}, []string{"decided event 1 (account.a", "the state refused it: unexpected event *ritatest_test.specUnknownEvent"}, nil},
		// Only the store shows these: the registry, the codec, the wire.
		{"type not registered", ritatest.Spec[*specAccount]{
			When: &specBadEvent{Data: &specUnregistered{X: 1}},
			Then: []*rita.Event{{Entity: "account.a", Data: &specUnregistered{X: 1}}},
		}, nil, []string{"want 1 event, got error: event 0: rita: event type invalid"}},
		{"field lost in encoding", ritatest.Spec[*specAccount]{
			Given: aliceWith100,
			When:  &specDeposit{Account: "alice", Amount: 5, Note: "gift"},
			Then:  []*rita.Event{{Entity: "account.alice", Data: &specDeposited{Amount: 5, Note: "gift"}}},
		}, nil, []string{"want 1 event, got 1 event stored (as read back):", `Data.Note: want "gift", got ""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, err error, mention []string) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: the spec held", how)
				}
				msg := err.Error()
				if prefix := map[string]string{"Check": "ritatest: given ", "CheckStore": "ritatest (through a store): given "}[how]; !strings.HasPrefix(msg, prefix) {
					t.Fatalf("%s: error %q does not start with %q", how, msg, prefix)
				}
				rest := msg
				for _, m := range mention {
					i := strings.Index(rest, m)
					if i < 0 {
						t.Fatalf("%s: error\n%s\ndoes not say, in order:\n%s", how, msg, m)
					}
					rest = rest[i+len(m):]
				}
			}
			err := tt.spec.Check(newSpecAccount)
			if tt.mention == nil {
				if err != nil {
					t.Fatalf("Check: %v; want it to hold without a store", err)
				}
			} else {
				check("Check", err, tt.mention)
			}
			inStore := tt.inStore
			if inStore == nil {
				inStore = tt.mention
			}
			check("CheckStore", tt.spec.CheckStore(t.Context(), stores(), newSpecAccount), inStore)
		})
	}
}

// The whole message of a failed spec, as a test would print it.
func TestSpecMessage(t *testing.T) {
	spec := ritatest.Spec[*specAccount]{
		Given: aliceWith100,
		When:  &specWithdraw{Account: "alice", Amount: 30},
		Then: []*rita.Event{
			{Entity: "account.alice", Data: &specWithdrawn{Amount: 20}},
			{Entity: "account.alice", Data: &specDeposited{Amount: 1}},
		},
	}
	want := `ritatest: given 2 events, when &ritatest_test.specWithdraw{Account:"alice", Amount:30}:
want 2 events, got 1 event decided:
  event 1:
    want: account.alice &ritatest_test.specWithdrawn{Amount:20}
    got:  account.alice &ritatest_test.specWithdrawn{Amount:30}
    Data.Amount: want 20, got 30
  event 2:
    want: account.alice &ritatest_test.specDeposited{Amount:1, Note:""}
    got:  (none)`
	err := spec.Check(newSpecAccount)
	if err == nil || err.Error() != want {
		t.Fatalf("message:\n%v\nwant:\n%s", err, want)
	}
}

func TestSpecInvalid(t *testing.T) {
	store := specStores(t)()
	tests := []struct {
		name     string
		spec     ritatest.Spec[*specAccount]
		newState func() *specAccount
		mention  string
	}{
		{"no command", ritatest.Spec[*specAccount]{}, newSpecAccount, "no When command"},
		{"events and error", ritatest.Spec[*specAccount]{When: &specNoDecision{}, Then: aliceWith100, ThenError: errSpecFunds}, newSpecAccount, "both"},
		{"nil given event", ritatest.Spec[*specAccount]{Given: []*rita.Event{nil}, When: &specNoDecision{}}, newSpecAccount, "Given event 1 is nil"},
		{"nil then event", ritatest.Spec[*specAccount]{When: &specNoDecision{}, Then: []*rita.Event{nil}}, newSpecAccount, "Then event 1 is nil"},
		{"nil state", ritatest.Spec[*specAccount]{When: &specNoDecision{}}, nil, "nil newState"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for how, err := range map[string]error{
				"Check":      tt.spec.Check(tt.newState),
				"CheckStore": tt.spec.CheckStore(t.Context(), store, tt.newState),
			} {
				if err == nil || !strings.Contains(err.Error(), "invalid spec") || !strings.Contains(err.Error(), tt.mention) {
					t.Errorf("%s: error %v, want an invalid spec: %s", how, err, tt.mention)
				}
			}
		})
	}
	var nilStore *rita.EventStore
	if err := (ritatest.Spec[*specAccount]{When: &specNoDecision{}}).CheckStore(t.Context(), nilStore, newSpecAccount); err == nil {
		t.Error("CheckStore with a nil store held")
	}
}

// A command given as a *rita.Command keeps its ID and Time, and the spec's
// command is not modified.
func TestSpecCommand(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cmd := &rita.Command{ID: "c1", Time: when, Data: &specOpen{Account: "a", Owner: "A"}}
	spec := ritatest.Spec[*specAccount]{
		When: cmd,
		Then: []*rita.Event{{Entity: "account.a", Data: &specOpened{Owner: "A"}, Meta: map[string]string{rita.MetaCausationID: "c1"}}},
	}
	spec.Run(t, newSpecAccount)
	spec.RunStore(t, specRegistry(t), newSpecAccount)
	if cmd.ID != "c1" || !cmd.Time.Equal(when) || cmd.Meta != nil {
		t.Fatalf("command modified: %+v", cmd)
	}
}
