package rita_test

import (
	"context"
	"fmt"
	"log"

	"github.com/synadia-labs/rita"
)

// Bulk ingestion from one goroutine: AppendAsync keeps many events in
// flight, and each is waited for once the window is full, oldest first.
func ExampleEventStore_AppendAsync() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	const window = 256
	var inFlight []*rita.PendingAppend
	var last uint64
	for i := range 1000 {
		if len(inFlight) == window {
			seq, err := inFlight[0].Wait(ctx)
			if err != nil {
				log.Fatal(err)
			}
			last, inFlight = seq, inFlight[1:]
		}
		p, err := store.AppendAsync(ctx, &rita.Event{
			Entity: fmt.Sprintf("account.%d", i%10),
			Data:   &Deposited{Amount: i},
		})
		if err != nil {
			log.Fatal(err) // an invalid event: nothing was sent
		}
		inFlight = append(inFlight, p)
	}
	for _, p := range inFlight {
		seq, err := p.Wait(ctx)
		if err != nil {
			log.Fatal(err)
		}
		last = seq
	}
	fmt.Println("last sequence:", last)
	// Output:
	// last sequence: 1000
}
