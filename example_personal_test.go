package rita_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/synadia-labs/rita"
)

// Personal data is stored encrypted with a key of its entity; forgetting
// the entity destroys the key, and its events replay without it.
func ExampleEventStore_Forget() {
	nc, stop := runServer()
	defer stop()
	ctx := context.Background()

	// In production the key comes from a secret manager (or the provider
	// is a KMS); never from the store.
	keys, err := rita.NewAESKeyProvider("2026", map[string][]byte{"2026": bytes.Repeat([]byte{42}, 32)})
	if err != nil {
		log.Fatal(err)
	}
	m, err := rita.New(nc, rita.WithEncryption(rita.EncryptionConfig{
		Keys:          keys,
		PersonalTypes: []string{"registered"},
	}))
	if err != nil {
		log.Fatal(err)
	}
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "crm"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Append(ctx, []*rita.Event{
		{Entity: "customer.1", Type: "registered", Data: []byte(`{"email":"ada@example.com"}`)},
		{Entity: "customer.1", Type: "ordered", Data: []byte(`{"item":"tea"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}

	show := func() {
		_, err := store.Evolve(ctx, rita.EvolverFunc(func(e *rita.Event) error {
			if e.Forgotten() {
				fmt.Printf("%d %s: forgotten\n", e.Sequence(), e.Type)
			} else {
				fmt.Printf("%d %s: %s\n", e.Sequence(), e.Type, e.Data)
			}
			return nil
		}))
		if err != nil {
			log.Fatal(err)
		}
	}
	show()
	if err := store.Forget(ctx, "customer.1"); err != nil {
		log.Fatal(err)
	}
	show()
	// Output:
	// 1 registered: {"email":"ada@example.com"}
	// 2 ordered: {"item":"tea"}
	// 1 registered: forgotten
	// 2 ordered: {"item":"tea"}
}
