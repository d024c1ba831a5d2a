package rita_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"sync"

	"github.com/synadia-labs/rita"
)

// WithPartitions spreads a reactor's entities over partitions that the
// processes running it share: run this in as many processes as you like,
// and each handles the events of its share of the accounts, each account's
// in order. Here one process runs it, over four partitions.
func ExampleWithPartitions() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	_, err := store.Append(ctx, []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
		{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}},
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.carol", Data: &AccountOpened{Owner: "Carol"}},
	})
	if err != nil {
		log.Fatal(err)
	}

	var mu sync.Mutex
	var handled []string
	notify := func(ctx context.Context, e *rita.Event) error {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, fmt.Sprintf("%s %s (event %d)", e.Entity, e.Type, e.Sequence()))
		return nil
	}
	notifier := store.Durable("notifier")
	r, err := notifier.React(ctx, notify,
		rita.WithPartitions(4),  // the same in every process
		rita.WithConcurrency(8), // in this process, over its partitions
	)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop(ctx)
	if err := notifier.WaitCaughtUp(ctx); err != nil {
		log.Fatal(err)
	}
	p, err := notifier.Progress(ctx)
	if err != nil {
		log.Fatal(err)
	}
	mu.Lock()
	slices.Sort(handled)
	for _, h := range handled {
		fmt.Println(h)
	}
	mu.Unlock()
	fmt.Printf("%d partitions, applied up to %d, lag %d\n", len(p.Partitions), p.Applied, p.Lag())
	// Output:
	// account.alice account-opened (event 1)
	// account.alice deposited (event 3)
	// account.bob account-opened (event 2)
	// account.carol account-opened (event 4)
	// 4 partitions, applied up to 4, lag 0
}
