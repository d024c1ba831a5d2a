package ritatest_test

import (
	"errors"
	"fmt"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// Wallet is the state of a wallet, rebuilt from its events.
type Wallet struct{ Balance int }

// Credited and Debited are a wallet's events; Debit is a command.
type (
	Credited struct{ Amount int }
	Debited  struct{ Amount int }
	Debit    struct {
		Wallet string
		Amount int
	}
)

// ErrEmptyWallet refuses a debit larger than the balance.
var ErrEmptyWallet = errors.New("not enough in the wallet")

// Evolve applies one event to the wallet.
func (w *Wallet) Evolve(e *rita.Event) error {
	switch d := e.Data.(type) {
	case *Credited:
		w.Balance += d.Amount
	case *Debited:
		w.Balance -= d.Amount
	}
	return nil
}

// Decide turns a debit into an event, or refuses it.
func (w *Wallet) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	d := cmd.Data.(*Debit)
	if d.Amount > w.Balance {
		return nil, ErrEmptyWallet
	}
	return []*rita.Event{{Entity: "wallet." + d.Wallet, Data: &Debited{Amount: d.Amount}}}, nil
}

// A specification is checked without a server. In a test, spec.Run(t,
// newWallet) fails the test with the same message Check returns.
func ExampleSpec_Check() {
	newWallet := func() *Wallet { return &Wallet{} }
	given := []*rita.Event{{Entity: "wallet.w1", Data: &Credited{Amount: 10}}}

	holds := ritatest.Spec[*Wallet]{
		Given: given,
		When:  &Debit{Wallet: "w1", Amount: 4},
		Then:  []*rita.Event{{Entity: "wallet.w1", Data: &Debited{Amount: 4}}},
	}
	fmt.Println(holds.Check(newWallet))

	refused := ritatest.Spec[*Wallet]{
		Given:     given,
		When:      &Debit{Wallet: "w1", Amount: 11},
		ThenError: ErrEmptyWallet,
	}
	fmt.Println(refused.Check(newWallet))

	wrong := ritatest.Spec[*Wallet]{
		Given: given,
		When:  &Debit{Wallet: "w1", Amount: 4},
		Then:  []*rita.Event{{Entity: "wallet.w1", Data: &Debited{Amount: 5}}},
	}
	fmt.Println(wrong.Check(newWallet))
	// Output:
	// <nil>
	// <nil>
	// ritatest: given 1 event, when &ritatest_test.Debit{Wallet:"w1", Amount:4}:
	// want 1 event, got 1 event decided:
	//   event 1:
	//     want: wallet.w1 &ritatest_test.Debited{Amount:5}
	//     got:  wallet.w1 &ritatest_test.Debited{Amount:4}
	//     Data.Amount: want 5, got 4
}
