package main

import (
	"testing"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// The bank's rules as given/when/then specifications. Each one runs twice:
// on the Bank alone (Run, no server), and through a real event store
// (RunStore), which also proves that the events are registered, encode and
// read back as expected, and that the Bank evolves with them.
func TestBankSpecs(t *testing.T) {
	reg, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	opened := []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}},
	}
	specs := map[string]ritatest.Spec[*Bank]{
		"open": {
			When: &Open{Account: "carol", Owner: "Carol"},
			Then: []*rita.Event{{Entity: "account.carol", Data: &AccountOpened{Owner: "Carol"}}},
		},
		"open twice": {
			Given:     opened,
			When:      &Open{Account: "alice", Owner: "Alice"},
			ThenError: ErrAccountExists,
		},
		"withdraw": {
			Given: opened,
			When:  &Withdraw{Account: "alice", Amount: 30},
			Then:  []*rita.Event{{Entity: "account.alice", Data: &Withdrawn{Amount: 30}}},
		},
		"overdraw": {
			Given:     opened,
			When:      &Withdraw{Account: "alice", Amount: 101},
			ThenError: ErrInsufficientFunds,
		},
		"transfer": {
			Given: opened,
			// The events refer to the command's ID, so the spec sets it.
			When: &rita.Command{ID: "t-1", Data: &Transfer{From: "alice", To: "bob", Amount: 40}},
			Then: []*rita.Event{
				{Entity: "account.alice", Type: "withdrawn", Data: &Withdrawn{Amount: 40, Ref: "t-1"}},
				{Entity: "account.bob", Type: "deposited", Data: &Deposited{Amount: 40, Ref: "t-1"},
					Meta: map[string]string{rita.MetaCausationID: "t-1"}},
			},
		},
		"transfer to nobody": {
			Given:     opened,
			When:      &Transfer{From: "alice", To: "carol", Amount: 40},
			ThenError: ErrNoAccount,
		},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			spec.Run(t, NewBank)
			spec.RunStore(t, reg, NewBank)
		})
	}
}
