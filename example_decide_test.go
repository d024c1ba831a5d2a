package rita_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/synadia-labs/rita"
)

// A decision taken on stale state is retried: after the conflict the model
// catches up with the events it missed, and decides the command again on the
// fresh state.
func ExampleEventStore_DecideAndEvolveWithRetry() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	_, err := store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
	})
	if err != nil {
		log.Fatal(err)
	}
	teller1, teller2 := rita.NewModel(&Account{}), rita.NewModel(&Account{})
	for _, t := range []*rita.Model[*Account]{teller1, teller2} {
		if _, err := store.Evolve(ctx, t, rita.WithFilters("account.alice")); err != nil {
			log.Fatal(err)
		}
	}
	withdraw := func() *rita.Command { return &rita.Command{Data: &Withdraw{Account: "alice", Amount: 40}} }

	_, seq, err := store.DecideAndEvolve(ctx, teller1, withdraw())
	fmt.Println("teller 1:", seq, err)

	// Teller 2 has not seen teller 1's withdrawal. Its first attempt
	// conflicts; it catches up and decides again.
	_, seq, err = store.DecideAndEvolveWithRetry(ctx, teller2, withdraw(),
		rita.WithMaxAttempts(5),
		rita.WithBackoff(5*time.Millisecond, 100*time.Millisecond),
		rita.WithRetryNotify(func(attempt int, err error) {
			fmt.Printf("teller 2: attempt %d: conflict: %v\n", attempt, errors.Is(err, rita.ErrSequenceConflict))
		}),
	)
	fmt.Println("teller 2:", seq, err)
	teller2.View(func(a *Account) error {
		fmt.Println("balance:", a.Balance)
		return nil
	})
	// Output:
	// teller 1: 3 <nil>
	// teller 2: attempt 1: conflict: true
	// teller 2: 4 <nil>
	// balance: 20
}

// Every event a command produces carries the command's ID as its causation,
// and the correlation ID the command came with (or the command's ID, which
// then starts the correlation). They are stored as metadata.
func ExampleEventStore_Decide_correlation() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	alice := rita.NewModel(&Account{})
	open := &rita.Command{
		ID:   "cmd-1",
		Data: &OpenAccount{Account: "alice", Owner: "Alice"},
		Meta: map[string]string{rita.MetaCorrelationID: "signup-42"},
	}
	events, _, err := store.DecideAndEvolve(ctx, alice, open)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("caused by", events[0].Meta[rita.MetaCausationID], "in", events[0].Meta[rita.MetaCorrelationID])

	// A command without a correlation ID starts one.
	events, _, err = store.DecideAndEvolve(ctx, alice, &rita.Command{ID: "cmd-2", Data: &Deposit{Account: "alice", Amount: 10}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("caused by", events[0].Meta[rita.MetaCausationID], "in", events[0].Meta[rita.MetaCorrelationID])

	// Read back, the events carry the same metadata.
	_, err = store.Evolve(ctx, evolverFunc(func(e *rita.Event) error {
		fmt.Println(e.Sequence(), e.Type, e.Meta)
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// caused by cmd-1 in signup-42
	// caused by cmd-2 in cmd-2
	// 1 account-opened map[causation-id:cmd-1 correlation-id:signup-42]
	// 2 deposited map[causation-id:cmd-2 correlation-id:cmd-2]
}
