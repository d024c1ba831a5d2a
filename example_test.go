package rita_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/types"
)

// The examples keep the accounts of a small bank. Each account is an entity,
// "account.<id>", and its history is the events below.

// AccountOpened is the first event of every account.
type AccountOpened struct {
	Owner string `json:"owner"`
}

// Deposited adds money to an account.
type Deposited struct {
	Amount int `json:"amount"`
}

// Withdrawn takes money out of an account.
type Withdrawn struct {
	Amount int `json:"amount"`
}

// The commands an account decides on. They are never stored, so they need
// no registration.
type (
	OpenAccount struct{ Account, Owner string }
	Deposit     struct {
		Account string
		Amount  int
	}
	Withdraw struct {
		Account string
		Amount  int
	}
)

// ErrInsufficientFunds is what Account.Decide says to a withdrawal larger
// than the balance.
var ErrInsufficientFunds = errors.New("insufficient funds")

// Account is the state of one account, rebuilt from its events.
type Account struct {
	Owner   string
	Balance int
}

// Evolve applies one event to the account.
func (a *Account) Evolve(e *rita.Event) error {
	switch d := e.Data.(type) {
	case *AccountOpened:
		a.Owner = d.Owner
	case *Deposited:
		a.Balance += d.Amount
	case *Withdrawn:
		a.Balance -= d.Amount
	default:
		return fmt.Errorf("unexpected event %q", e.Type)
	}
	return nil
}

// Decide turns a command into the events that record it, or refuses it.
func (a *Account) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	switch c := cmd.Data.(type) {
	case *OpenAccount:
		if a.Owner != "" {
			return nil, errors.New("account already open")
		}
		return []*rita.Event{{Entity: "account." + c.Account, Data: &AccountOpened{Owner: c.Owner}}}, nil
	case *Deposit:
		if a.Owner == "" {
			return nil, errors.New("no such account")
		}
		return []*rita.Event{{Entity: "account." + c.Account, Data: &Deposited{Amount: c.Amount}}}, nil
	case *Withdraw:
		if c.Amount > a.Balance {
			return nil, ErrInsufficientFunds
		}
		return []*rita.Event{{Entity: "account." + c.Account, Data: &Withdrawn{Amount: c.Amount}}}, nil
	default:
		return nil, fmt.Errorf("unknown command %T", cmd.Data)
	}
}

// bankRegistry names the event types. The name becomes the last token of
// the event's subject.
func bankRegistry() *types.Registry {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"account-opened": {Init: func() any { return &AccountOpened{} }},
		"deposited":      {Init: func() any { return &Deposited{} }},
		"withdrawn":      {Init: func() any { return &Withdrawn{} }},
	})
	if err != nil {
		log.Fatal(err)
	}
	return reg
}

// Balances is a read model of every account's balance, keyed by entity.
type Balances map[string]int

// Evolve applies one event to the balances.
func (b Balances) Evolve(e *rita.Event) error {
	switch d := e.Data.(type) {
	case *Deposited:
		b[e.Entity] += d.Amount
	case *Withdrawn:
		b[e.Entity] -= d.Amount
	}
	return nil
}

// evolverFunc lets a function be an Evolver.
type evolverFunc func(*rita.Event) error

func (f evolverFunc) Evolve(e *rita.Event) error { return f(e) }

// runServer starts an embedded nats-server with JetStream, on a random
// loopback port and storing in a new temporary directory, and connects to
// it. The returned function closes the connection, shuts the server down
// and removes the directory.
func runServer() (*nats.Conn, func()) {
	dir, err := os.MkdirTemp("", "rita-example-")
	if err != nil {
		log.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		log.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	return nc, func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
		os.RemoveAll(dir)
	}
}

// newBankStore returns a store named "bank" on a fresh embedded server,
// with the bank's types registered, and a function that stops the server.
func newBankStore() (*rita.EventStore, func()) {
	nc, stop := runServer()
	m, err := rita.New(nc, rita.WithRegistry(bankRegistry()))
	if err != nil {
		log.Fatal(err)
	}
	store, err := m.CreateEventStore(context.Background(), rita.EventStoreConfig{Name: "bank"})
	if err != nil {
		log.Fatal(err)
	}
	return store, stop
}

// The quick start: register the event types, create a store, decide on
// commands, and rebuild the state from the stored events.
func Example() {
	nc, stop := runServer() // or nats.Connect(os.Getenv("NATS_URL"))
	defer stop()
	ctx := context.Background()

	reg, err := types.NewRegistry(map[string]*types.Type{
		"account-opened": {Init: func() any { return &AccountOpened{} }},
		"deposited":      {Init: func() any { return &Deposited{} }},
		"withdrawn":      {Init: func() any { return &Withdrawn{} }},
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := rita.New(nc, rita.WithRegistry(reg))
	if err != nil {
		log.Fatal(err)
	}
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "bank"})
	if err != nil {
		log.Fatal(err)
	}

	// Decide on commands: each one is checked against the account's state,
	// its events are stored, and the state evolves with them.
	alice := rita.NewModel(&Account{})
	for _, cmd := range []any{
		&OpenAccount{Account: "alice", Owner: "Alice"},
		&Deposit{Account: "alice", Amount: 100},
		&Withdraw{Account: "alice", Amount: 30},
	} {
		if _, _, err := store.DecideAndEvolve(ctx, alice, &rita.Command{Data: cmd}); err != nil {
			log.Fatal(err)
		}
	}
	_, _, err = store.DecideAndEvolve(ctx, alice, &rita.Command{Data: &Withdraw{Account: "alice", Amount: 500}})
	fmt.Println("withdraw 500:", err)

	// Later, or in another process: rebuild the account from its events.
	again := rita.NewModel(&Account{})
	seq, err := store.Evolve(ctx, again, rita.WithFilters("account.alice"))
	if err != nil {
		log.Fatal(err)
	}
	again.View(func(a *Account) error {
		fmt.Printf("%s has %d (up to sequence %d)\n", a.Owner, a.Balance, seq)
		return nil
	})
	// Output:
	// withdraw 500: insufficient funds
	// Alice has 70 (up to sequence 3)
}

// Several events are appended as one atomic batch: all are stored, with
// consecutive sequences, or none is.
func ExampleEventStore_Append() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	events := []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}},
	}
	seq, err := store.Append(ctx, events)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("last sequence:", seq)
	for _, e := range events {
		fmt.Println(e.Sequence(), e.Subject())
	}
	// Output:
	// last sequence: 3
	// 1 $ES.bank.account.alice.account-opened
	// 2 $ES.bank.account.alice.deposited
	// 3 $ES.bank.account.bob.account-opened
}

// Without a type registry, Data is bytes the application has encoded and
// Type must be set.
func ExampleEventStore_Append_bytes() {
	nc, stop := runServer()
	defer stop()
	ctx := context.Background()

	m, err := rita.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "sensors"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Append(ctx, []*rita.Event{{
		Entity: "sensor.s1",
		Type:   "reading",
		Data:   []byte(`{"celsius":21.5}`),
		Meta:   map[string]string{"unit": "celsius"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Evolve(ctx, evolverFunc(func(e *rita.Event) error {
		fmt.Printf("%s %s %s unit=%s\n", e.Entity, e.Type, e.Data.([]byte), e.Meta["unit"])
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// sensor.s1 reading {"celsius":21.5} unit=celsius
}

// An event's ID de-duplicates it: appending an event whose ID is stored
// already stores nothing and returns the sequence it was stored at.
func ExampleEventStore_Append_deduplication() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	deposit := func() *rita.Event {
		return &rita.Event{ID: "deposit-7f3a", Entity: "account.alice", Data: &Deposited{Amount: 100}}
	}
	first, err := store.Append(ctx, []*rita.Event{deposit()})
	if err != nil {
		log.Fatal(err)
	}
	retry, err := store.Append(ctx, []*rita.Event{deposit()}) // say, after a timeout
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first, retry)
	// Output:
	// 1 1
}

// Filters select what Evolve reads: an entity type, one entity, one event
// type, with wildcards, several at once; sequences bound it.
func ExampleEventStore_Evolve() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	_, err := store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}}, // 1
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},        // 2
		{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}},     // 3
		{Entity: "account.bob", Data: &Deposited{Amount: 20}},           // 4
		{Entity: "account.alice", Data: &Withdrawn{Amount: 30}},         // 5
	})
	if err != nil {
		log.Fatal(err)
	}
	show := func(title string, opts ...rita.EvolveOption) {
		fmt.Printf("%s:", title)
		last, err := store.Evolve(ctx, evolverFunc(func(e *rita.Event) error {
			fmt.Printf(" %d %s", e.Sequence(), e.Type)
			return nil
		}), opts...)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf(" (last %d)\n", last)
	}
	show("all")
	show("bob", rita.WithFilters("account.bob"))
	show("deposits", rita.WithFilters("account.*.deposited"))
	show("alice's withdrawals and all deposits", rita.WithFilters("account.alice.withdrawn", "*.*.deposited"))
	show("after 2 up to 4", rita.WithAfterSequence(2), rita.WithStopSequence(4))
	show("none", rita.WithFilters("order"))
	// Output:
	// all: 1 account-opened 2 deposited 3 account-opened 4 deposited 5 withdrawn (last 5)
	// bob: 3 account-opened 4 deposited (last 4)
	// deposits: 2 deposited 4 deposited (last 4)
	// alice's withdrawals and all deposits: 2 deposited 4 deposited 5 withdrawn (last 5)
	// after 2 up to 4: 3 account-opened 4 deposited (last 4)
	// none: (last 0)
}

// DecideAndEvolve asks the model to decide, appends the events and evolves
// the model with them. A refused command stores nothing.
func ExampleEventStore_DecideAndEvolve() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	alice := rita.NewModel(&Account{})
	for _, cmd := range []any{
		&OpenAccount{Account: "alice", Owner: "Alice"},
		&Deposit{Account: "alice", Amount: 100},
		&Withdraw{Account: "alice", Amount: 250},
		&Withdraw{Account: "alice", Amount: 40},
	} {
		events, seq, err := store.DecideAndEvolve(ctx, alice, &rita.Command{Data: cmd})
		if errors.Is(err, ErrInsufficientFunds) {
			fmt.Println("refused:", err)
			continue
		} else if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("stored %s at %d\n", events[0].Type, seq)
	}
	alice.View(func(a *Account) error {
		fmt.Println("balance:", a.Balance)
		return nil
	})
	// Output:
	// stored account-opened at 1
	// stored deposited at 2
	// refused: insufficient funds
	// stored withdrawn at 3
	// balance: 60
}

// Watch keeps a read model current: it returns once the events stored so far
// are applied, then applies new ones as they are stored, until Stop.
func ExampleEventStore_Watch() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	_, err := store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.bob", Data: &Deposited{Amount: 50}},
	})
	if err != nil {
		log.Fatal(err)
	}

	balances := rita.NewModel(Balances{}) // a Model is safe for the watcher's goroutine
	w, err := store.Watch(ctx, balances, rita.WithFilters("account"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	show := func() {
		balances.View(func(b Balances) error {
			fmt.Printf("alice %d, bob %d\n", b["account.alice"], b["account.bob"])
			return nil
		})
	}
	show() // caught up already

	seq, err := store.Append(ctx, []*rita.Event{{Entity: "account.bob", Data: &Withdrawn{Amount: 20}}})
	if err != nil {
		log.Fatal(err)
	}
	// The watcher applies the new event on its own goroutine: wait for it.
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := w.WaitFor(wait, seq); err != nil {
		log.Fatal(err)
	}
	show()
	// Output:
	// alice 100, bob 50
	// alice 100, bob 30
}

// A Model remembers the last sequence it has seen of each entity, and
// Decide makes every append expect it. A decision taken on a stale model
// fails with ErrSequenceConflict; reload and decide again.
func ExampleModel() {
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

	// Two tellers load the same account.
	teller1, teller2 := rita.NewModel(&Account{}), rita.NewModel(&Account{})
	for _, t := range []*rita.Model[*Account]{teller1, teller2} {
		if _, err := store.Evolve(ctx, t, rita.WithFilters("account.alice")); err != nil {
			log.Fatal(err)
		}
	}
	withdraw := &rita.Command{Data: &Withdraw{Account: "alice", Amount: 40}}

	_, seq, err := store.DecideAndEvolve(ctx, teller1, withdraw)
	fmt.Println("teller 1:", seq, err)

	// Teller 2 has not seen that withdrawal: its decision is refused.
	_, _, err = store.DecideAndEvolve(ctx, teller2, withdraw)
	fmt.Println("teller 2 conflict:", errors.Is(err, rita.ErrSequenceConflict))

	// Catch up with what was stored since, and decide again.
	_, err = store.Evolve(ctx, teller2, rita.WithFilters("account.alice"), rita.WithAfterSequence(teller2.EntitySequence("account.alice")))
	if err != nil {
		log.Fatal(err)
	}
	_, seq, err = store.DecideAndEvolve(ctx, teller2, withdraw)
	fmt.Println("teller 2 retry:", seq, err)
	teller2.View(func(a *Account) error {
		fmt.Println("balance:", a.Balance)
		return nil
	})
	// Output:
	// teller 1: 3 <nil>
	// teller 2 conflict: true
	// teller 2 retry: 4 <nil>
	// balance: 20
}

// Expect makes an append conditional on the last sequence stored for the
// event's entity: ExpectSequence(0) means "no event yet".
func ExampleExpectSequence() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	open := func(owner string) error {
		_, err := store.Append(ctx, []*rita.Event{{
			Entity: "account.42",
			Data:   &AccountOpened{Owner: owner},
			Expect: rita.ExpectSequence(0), // only if account.42 has no events
		}})
		return err
	}
	fmt.Println("Alice:", open("Alice"))
	err := open("Mallory")
	fmt.Println("Mallory:", errors.Is(err, rita.ErrSequenceConflict))

	_, err = store.Append(ctx, []*rita.Event{{
		Entity: "account.42",
		Data:   &Deposited{Amount: 10},
		Expect: rita.ExpectSequence(1), // account.42's last event is at 1
	}})
	fmt.Println("deposit:", err)
	// Output:
	// Alice: <nil>
	// Mallory: true
	// deposit: <nil>
}

// ExpectSequenceSubject checks another pattern than the event's entity, here
// every account: the append holds only if no account changed since.
func ExampleExpectSequenceSubject() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	seq, err := store.Append(ctx, []*rita.Event{{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, []*rita.Event{{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}}}); err != nil {
		log.Fatal(err)
	}
	_, err = store.Append(ctx, []*rita.Event{{
		Entity: "account.carol",
		Data:   &AccountOpened{Owner: "Carol"},
		Expect: rita.ExpectSequenceSubject(seq, "account"), // bob's account came since
	}})
	fmt.Println(errors.Is(err, rita.ErrSequenceConflict))
	// Output:
	// true
}

// A store on a three-node JetStream cluster keeps three replicas of every
// event. (This example needs a cluster, so it is compiled but not run.)
func ExampleManager_CreateEventStore_replicated() {
	nc, err := nats.Connect(os.Getenv("NATS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	m, err := rita.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	store, err := m.CreateEventStore(context.Background(), rita.EventStoreConfig{
		Name:     "orders",
		Replicas: 3,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Name())
}
