package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/types"
)

// The bank's events. Each account is an entity, "account.<id>"; an event's
// registered name is the last token of its subject, for example
// $ES.bank.account.alice.deposited.
type (
	// AccountOpened is the first event of every account.
	AccountOpened struct {
		Owner string `json:"owner"`
	}
	// Deposited adds money to an account.
	Deposited struct {
		Amount int    `json:"amount"`
		Ref    string `json:"ref,omitempty"` // the transfer it is part of, if any
	}
	// Withdrawn takes money out of an account.
	Withdrawn struct {
		Amount int    `json:"amount"`
		Ref    string `json:"ref,omitempty"`
	}
)

// newRegistry names the event types, so that rita can encode them (as JSON)
// and decode them back into the right Go type.
func newRegistry() (*types.Registry, error) {
	return types.NewRegistry(map[string]*types.Type{
		"account-opened": {Init: func() any { return &AccountOpened{} }},
		"deposited":      {Init: func() any { return &Deposited{} }},
		"withdrawn":      {Init: func() any { return &Withdrawn{} }},
	})
}

// The commands the bank decides on. They are not stored.
type (
	Open struct {
		Account, Owner string
	}
	Deposit struct {
		Account string
		Amount  int
	}
	Withdraw struct {
		Account string
		Amount  int
	}
	Transfer struct {
		From, To string
		Amount   int
	}
)

// Errors of the bank's rules.
var (
	ErrNoAccount         = errors.New("no such account")
	ErrAccountExists     = errors.New("account exists")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrInvalidAmount     = errors.New("amount must be positive")
)

// Account is the state of one account.
type Account struct {
	Owner   string
	Balance int
}

// Bank is the state of the accounts it has seen events of. It decides on
// commands (Decide) and evolves with events (Evolve); wrapped in a
// rita.Model it is safe for concurrent use.
type Bank struct {
	accounts map[string]*Account // by account ID
}

// NewBank returns a bank that knows no account yet.
func NewBank() *Bank {
	return &Bank{accounts: make(map[string]*Account)}
}

func entity(account string) string { return "account." + account }

// Evolve applies one event.
func (b *Bank) Evolve(e *rita.Event) error {
	id := strings.TrimPrefix(e.Entity, "account.")
	if opened, ok := e.Data.(*AccountOpened); ok {
		b.accounts[id] = &Account{Owner: opened.Owner}
		return nil
	}
	a, ok := b.accounts[id]
	if !ok {
		return fmt.Errorf("%s event for %s: %w", e.Type, e.Entity, ErrNoAccount)
	}
	switch d := e.Data.(type) {
	case *Deposited:
		a.Balance += d.Amount
	case *Withdrawn:
		a.Balance -= d.Amount
	default:
		return fmt.Errorf("unexpected event %q", e.Type)
	}
	return nil
}

// Decide checks a command against the state and returns the events that
// record it. A transfer is two events, on two accounts, that rita appends
// as one atomic batch.
func (b *Bank) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	switch c := cmd.Data.(type) {
	case *Open:
		if _, ok := b.accounts[c.Account]; ok {
			return nil, fmt.Errorf("open %s: %w", c.Account, ErrAccountExists)
		}
		return []*rita.Event{{Entity: entity(c.Account), Data: &AccountOpened{Owner: c.Owner}}}, nil
	case *Deposit:
		if err := b.check(c.Account, 0, c.Amount); err != nil {
			return nil, fmt.Errorf("deposit to %s: %w", c.Account, err)
		}
		return []*rita.Event{{Entity: entity(c.Account), Data: &Deposited{Amount: c.Amount}}}, nil
	case *Withdraw:
		if err := b.check(c.Account, c.Amount, c.Amount); err != nil {
			return nil, fmt.Errorf("withdraw from %s: %w", c.Account, err)
		}
		return []*rita.Event{{Entity: entity(c.Account), Data: &Withdrawn{Amount: c.Amount}}}, nil
	case *Transfer:
		if err := b.check(c.From, c.Amount, c.Amount); err != nil {
			return nil, fmt.Errorf("transfer from %s: %w", c.From, err)
		}
		if err := b.check(c.To, 0, c.Amount); err != nil {
			return nil, fmt.Errorf("transfer to %s: %w", c.To, err)
		}
		return []*rita.Event{
			{Entity: entity(c.From), Data: &Withdrawn{Amount: c.Amount, Ref: cmd.ID}},
			{Entity: entity(c.To), Data: &Deposited{Amount: c.Amount, Ref: cmd.ID}},
		}, nil
	default:
		return nil, fmt.Errorf("unknown command %T", cmd.Data)
	}
}

// check says whether account exists, holds at least need, and amount is
// positive.
func (b *Bank) check(account string, need, amount int) error {
	a, ok := b.accounts[account]
	switch {
	case !ok:
		return ErrNoAccount
	case amount <= 0:
		return ErrInvalidAmount
	case a.Balance < need:
		return fmt.Errorf("%w: balance %d, need %d", ErrInsufficientFunds, a.Balance, need)
	}
	return nil
}

// Balance returns the balance of account and whether the bank knows it.
func (b *Bank) Balance(account string) (int, bool) {
	a, ok := b.accounts[account]
	if !ok {
		return 0, false
	}
	return a.Balance, true
}

// Balances is a read model: the balance of every account, by entity, kept
// current by a Watch. It only evolves, so it is an Evolver but not a
// Decider. Watch calls Evolve from its own goroutine, so it is wrapped in a
// rita.Model, which locks.
type Balances map[string]int

// Evolve applies one event.
func (b Balances) Evolve(e *rita.Event) error {
	switch d := e.Data.(type) {
	case *AccountOpened:
		b[e.Entity] = 0
	case *Deposited:
		b[e.Entity] += d.Amount
	case *Withdrawn:
		b[e.Entity] -= d.Amount
	}
	return nil
}
