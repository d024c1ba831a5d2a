package rita_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// React runs a handler for side effects with a durable consumer: here a
// welcome mail for every opened account. Run again with the same name (after
// a restart, or in several processes), it goes on after the last event
// handled.
func ExampleDurable_React() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	_, err := store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}},
	})
	if err != nil {
		log.Fatal(err)
	}

	var mu sync.Mutex
	var sent []string
	welcome := func(ctx context.Context, e *rita.Event) error {
		opened := e.Data.(*AccountOpened)
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, fmt.Sprintf("welcome, %s (event %d)", opened.Owner, e.Sequence()))
		return nil // the mail is sent: the event is done
	}
	mail := store.Durable("welcome-mail")
	r, err := mail.React(ctx, welcome,
		rita.WithFilters("account.*.account-opened"),
		rita.WithConcurrency(4), // accounts in parallel, each in order
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := mail.WaitCaughtUp(ctx); err != nil {
		log.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	slices.Sort(sent)
	for _, s := range sent {
		fmt.Println(s)
	}

	// Later: only what is new is handled.
	if _, err := store.Append(ctx, []*rita.Event{{Entity: "account.carol", Data: &AccountOpened{Owner: "Carol"}}}); err != nil {
		log.Fatal(err)
	}
	sent = nil
	r, err = mail.React(ctx, welcome, rita.WithFilters("account.*.account-opened"))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop(ctx)
	if err := mail.WaitCaughtUp(ctx); err != nil {
		log.Fatal(err)
	}
	mu.Lock()
	fmt.Println(sent)
	mu.Unlock()
	// Output:
	// welcome, Alice (event 1)
	// welcome, Bob (event 3)
	// [welcome, Carol (event 4)]
}

// A handler error is retried with a backoff; after the last attempt the
// event is parked, with the reason, for a person to look at and send back.
// The later events of its entity are parked behind it, so that they are
// still handled in order when retried.
func ExampleDurable_RetryParked() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	var mu sync.Mutex
	ledgerDown := true
	var booked []uint64
	book := func(ctx context.Context, e *rita.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if ledgerDown {
			return errors.New("ledger unavailable")
		}
		booked = append(booked, e.Sequence())
		return nil
	}
	ledger := store.Durable("ledger")
	r, err := ledger.React(ctx, book,
		rita.WithMaxAttempts(3), rita.WithBackoff(10*time.Millisecond, 10*time.Millisecond),
		rita.WithErrHandler(func(err error, e *rita.Event, _ jetstream.Msg) {}), // parked events are listed below
	)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop(ctx)
	_, err = store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.alice", Data: &Withdrawn{Amount: 30}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := ledger.WaitCaughtUp(ctx); err != nil {
		log.Fatal(err)
	}

	parked, err := ledger.Parked(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range parked {
		fmt.Printf("parked: event %d %s by %s after %d attempts: %s\n", p.Event.Sequence(), p.Event.Type, p.Consumer, p.Attempts, p.Reason)
	}

	// The ledger is back: send the events back for another try.
	mu.Lock()
	ledgerDown = false
	mu.Unlock()
	if err := ledger.RetryParked(ctx, parked[0].Event.Sequence()); err != nil {
		log.Fatal(err)
	}
	for {
		left, err := ledger.Parked(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	fmt.Println("booked:", booked)
	mu.Unlock()
	// Output:
	// parked: event 1 deposited by ledger after 3 attempts: ledger unavailable
	// parked: event 2 withdrawn by ledger after 0 attempts: waiting for event 1 of account.alice, which is parked
	// booked: [1 2]
}

// A durable Watch keeps a read model that outlives the process: a watch
// started again goes on after the last event applied.
func ExampleDurable_Watch() {
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
	// A read model that is kept elsewhere, say in a database; here a map.
	balances := rita.NewModel(Balances{})
	view := store.Durable("balances")
	w, err := view.Watch(ctx, balances, rita.WithFilters("account"))
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		log.Fatal(err)
	}

	// While it is stopped.
	if _, err := store.Append(ctx, []*rita.Event{{Entity: "account.bob", Data: &Withdrawn{Amount: 20}}}); err != nil {
		log.Fatal(err)
	}
	w, err = view.Watch(ctx, balances, rita.WithFilters("account"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)
	p, err := view.Progress(ctx)
	if err != nil {
		log.Fatal(err)
	}
	balances.View(func(b Balances) error {
		fmt.Printf("alice %d, bob %d\n", b["account.alice"], b["account.bob"])
		return nil
	})
	fmt.Printf("applied up to %d of %d, caught up: %v\n", p.Applied, p.StoreSequence, p.CaughtUp())
	// Output:
	// alice 100, bob 30
	// applied up to 3 of 3, caught up: true
}

// accountCount is a read model that keeps its checkpoint with its rows; a
// real one keeps both in a database and writes them in one transaction (see
// examples/sqlite-projection).
type accountCount struct {
	mu         sync.Mutex
	accounts   int
	checkpoint uint64
}

func (a *accountCount) LastSequence(context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.checkpoint, nil
}

func (a *accountCount) Apply(_ context.Context, e *rita.Event) error {
	a.mu.Lock() // BEGIN
	defer a.mu.Unlock()
	if e.Sequence() <= a.checkpoint {
		return nil // applied already
	}
	if _, ok := e.Data.(*AccountOpened); ok {
		a.accounts++
	}
	a.checkpoint = e.Sequence()
	return nil // COMMIT
}

// Project keeps a read model that stores its own checkpoint, without a
// durable consumer: each run starts after the checkpoint.
func ExampleEventStore_Project() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	_, err := store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
		{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	count := &accountCount{}
	w, err := store.Project(ctx, count) // returns once caught up
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, []*rita.Event{{Entity: "account.carol", Data: &AccountOpened{Owner: "Carol"}}}); err != nil {
		log.Fatal(err)
	}
	w, err = store.Project(ctx, count) // goes on after its checkpoint
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)
	cp, _ := count.LastSequence(ctx)
	fmt.Printf("%d accounts, checkpoint %d\n", count.accounts, cp)
	// Output:
	// 3 accounts, checkpoint 3
}

// Rebuild starts a durable consumer again from the beginning: stop it,
// reset its read model, rebuild, and run it again.
func ExampleDurable_Rebuild() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	_, err := store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.alice", Data: &Withdrawn{Amount: 30}},
	})
	if err != nil {
		log.Fatal(err)
	}
	balances := rita.NewModel(Balances{})
	view := store.Durable("balances")
	w, err := view.Watch(ctx, balances)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		log.Fatal(err)
	}

	if err := view.Rebuild(ctx, 0); err != nil {
		log.Fatal(err)
	}
	balances = rita.NewModel(Balances{}) // the reset read model
	w, err = view.Watch(ctx, balances)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)
	balances.View(func(b Balances) error {
		fmt.Println("alice", b["account.alice"])
		return nil
	})
	// Output:
	// alice 70
}
