package embedded_test

import (
	"context"
	"fmt"
	"log"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
)

// A program with its own NATS server: start it, connect, and use rita as
// with any other server. The store is in a temporary directory, removed
// by Shutdown; set Options.Dir to keep it.
func Example() {
	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	m, err := rita.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	orders, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	seq, err := orders.Append(ctx, []*rita.Event{
		{Entity: "order.1", Type: "order-placed", Data: []byte(`{"sku":"tea"}`)},
		{Entity: "order.1", Type: "order-shipped", Data: []byte(`{}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("last sequence:", seq)
	// Output: last sequence: 2
}
