package rita_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/synadia-labs/rita"
)

// Statement is an account's balance, as a model that can be snapshotted: it
// implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler. read
// counts the events applied to this value, which a snapshot does not hold.
type Statement struct {
	Owner   string `json:"owner"`
	Balance int    `json:"balance"`
	read    int
}

// Evolve applies one event to the statement.
func (s *Statement) Evolve(e *rita.Event) error {
	switch d := e.Data.(type) {
	case *AccountOpened:
		s.Owner = d.Owner
	case *Deposited:
		s.Balance += d.Amount
	case *Withdrawn:
		s.Balance -= d.Amount
	}
	s.read++
	return nil
}

// MarshalBinary encodes the statement for a snapshot.
func (s *Statement) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary restores the statement from a snapshot.
func (s *Statement) UnmarshalBinary(data []byte) error {
	*s = Statement{}
	return json.Unmarshal(data, s)
}

// Loading an entity from its latest snapshot: only the events after it are
// read. Every: 1 saves a new snapshot whenever a load read at least one
// event, so the next load reads none.
func ExampleWithSnapshot() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	events := []*rita.Event{{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}}}
	for range 4 {
		events = append(events, &rita.Event{Entity: "account.alice", Data: &Deposited{Amount: 100}})
	}
	if _, err := store.Append(ctx, events); err != nil {
		log.Fatal(err)
	}
	snapshots := rita.SnapshotConfig{Version: "statement-v1", Every: 1}
	load := func() {
		s := &Statement{}
		seq, err := store.Evolve(ctx, s, rita.WithFilters("account.alice"), rita.WithSnapshot(snapshots))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s has %d at sequence %d; %d events read\n", s.Owner, s.Balance, seq, s.read)
	}
	load() // no snapshot yet: all 5 events are read, and a snapshot is saved
	load() // the snapshot is current: nothing is read
	if _, err := store.Append(ctx, []*rita.Event{{Entity: "account.alice", Data: &Withdrawn{Amount: 50}}}); err != nil {
		log.Fatal(err)
	}
	load() // the snapshot and the one event after it
	// Output:
	// Alice has 400 at sequence 5; 5 events read
	// Alice has 400 at sequence 5; 0 events read
	// Alice has 350 at sequence 6; 1 events read
}

// A snapshot saved on demand, for example after a command: the model holds
// the state as of the sequence DecideAndEvolve returned. A Model passes its
// own sequence for the entity when seq is 0.
func ExampleEventStore_SaveSnapshot() {
	store, stop := newBankStore()
	defer stop()
	ctx := context.Background()

	alice := rita.NewModel(&Statement{})
	events := []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
		{Entity: "account.alice", Data: &Deposited{Amount: 70}},
	}
	if _, err := store.Append(ctx, events); err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		if err := alice.Evolve(e); err != nil {
			log.Fatal(err)
		}
	}
	snapshots := rita.SnapshotConfig{Version: "statement-v1"}
	if err := store.SaveSnapshot(ctx, alice, "account.alice", 0, snapshots); err != nil {
		log.Fatal(err)
	}

	again := rita.NewModel(&Statement{})
	seq, err := store.Evolve(ctx, again, rita.WithFilters("account.alice"), rita.WithSnapshot(snapshots))
	if err != nil {
		log.Fatal(err)
	}
	again.View(func(s *Statement) error {
		fmt.Printf("%s has %d at sequence %d; %d events read\n", s.Owner, s.Balance, seq, s.read)
		return nil
	})
	// Output:
	// Alice has 70 at sequence 2; 0 events read
}
