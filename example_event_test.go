package rita_test

import (
	"context"
	"fmt"
	"log"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/types"
)

// DepositedInCents is version 2 of the "deposited" event, which version 1
// (Deposited) stored in whole units.
type DepositedInCents struct {
	Cents int `json:"cents"`
}

// Events stored by an earlier version of a program are read as the current
// version of their type: the registry's upcasters bring them up to date.
func Example_upcasting() {
	nc, stop := runServer()
	defer stop()
	ctx := context.Background()

	// Years ago, the program stored deposits in whole units.
	then, err := types.NewRegistry(map[string]*types.Type{
		"deposited": {Init: func() any { return &Deposited{} }},
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := rita.New(nc, rita.WithRegistry(then))
	if err != nil {
		log.Fatal(err)
	}
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "bank"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, []*rita.Event{{Entity: "account.alice", Data: &Deposited{Amount: 12}}}); err != nil {
		log.Fatal(err)
	}

	// Today they are in cents: version 2 of "deposited", with an upcaster
	// from version 1.
	now, err := types.NewRegistry(map[string]*types.Type{
		"deposited": {Init: func() any { return &DepositedInCents{} }, Version: 2},
	}, types.UpcastValue("deposited", 1, func(old *Deposited) (*DepositedInCents, error) {
		return &DepositedInCents{Cents: old.Amount * 100}, nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	m, err = rita.New(nc, rita.WithRegistry(now))
	if err != nil {
		log.Fatal(err)
	}
	store, err = m.GetEventStore(ctx, "bank")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, []*rita.Event{{Entity: "account.alice", Data: &DepositedInCents{Cents: 250}}}); err != nil {
		log.Fatal(err)
	}
	_, err = store.Evolve(ctx, evolverFunc(func(e *rita.Event) error {
		fmt.Printf("%d %s %+v\n", e.Sequence(), e.Type, e.Data)
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1 deposited &{Cents:1200}
	// 2 deposited &{Cents:250}
}
