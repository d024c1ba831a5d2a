package rita_test

import (
	"context"
	"fmt"
	"log"

	"github.com/synadia-labs/rita"
)

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
