// Command bank keeps the accounts of a small bank with rita: it appends
// events, rebuilds state with Evolve and filters, decides on commands with a
// rita.Model, catches a concurrency conflict and retries, and keeps a read
// model of every balance current with Watch.
//
// It starts a nats-server in the process (package rita/embedded), with
// JetStream storing in a temporary directory that is removed at exit,
// unless NATS_URL is set: then it uses that server, in a store of its own
// that it deletes before it exits.
//
//	go run ./examples/bank
//	NATS_URL=nats://127.0.0.1:4222 go run ./examples/bank
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
	"github.com/synadia-labs/rita/id"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// run connects to NATS (embedded or NATS_URL), runs the demo and cleans up.
func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	store := "bank"
	url := os.Getenv("NATS_URL")
	if url == "" {
		s, err := embedded.Start(ctx, embedded.Options{})
		if err != nil {
			return err
		}
		defer s.Shutdown()
		url = s.ClientURL()
		fmt.Fprintln(out, "nats: started an embedded nats-server with JetStream")
	} else {
		// A store of our own, so that nothing else on the server is touched.
		store = "bank_" + id.NUID.New()
		fmt.Fprintln(out, "nats: using the server at NATS_URL")
	}
	nc, err := nats.Connect(url, nats.Name("rita bank example"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()

	m, err := demo(ctx, nc, store, out)
	if os.Getenv("NATS_URL") != "" && m != nil {
		if derr := m.DeleteEventStore(ctx, store); derr != nil {
			return errors.Join(err, derr)
		}
		fmt.Fprintf(out, "cleanup: deleted store %s\n", store)
	}
	return err
}

// demo runs the bank on a new store named name. It returns the manager, once
// the store exists, so that the caller can delete it.
func demo(ctx context.Context, nc *nats.Conn, name string, out io.Writer) (*rita.Manager, error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	reg, err := newRegistry()
	if err != nil {
		return nil, err
	}
	m, err := rita.New(nc, rita.WithRegistry(reg))
	if err != nil {
		return nil, err
	}
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: name})
	if err != nil {
		return nil, err
	}
	say("store: created %s (stream ES_%s, subjects $ES.%s.>)", name, name, name)

	// Append: two accounts opened and funded in one atomic batch. Each
	// account's first event expects the account to have no events yet.
	events := []*rita.Event{
		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}, Expect: rita.ExpectSequence(0)},
		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
		{Entity: "account.bob", Data: &AccountOpened{Owner: "Bob"}, Expect: rita.ExpectSequence(0)},
		{Entity: "account.bob", Data: &Deposited{Amount: 50}},
	}
	seq, err := store.Append(ctx, events)
	if err != nil {
		return m, err
	}
	say("append: opened alice (100) and bob (50) in one atomic batch, sequences %d-%d", events[0].Sequence(), seq)
	say("append: the first event's subject is %s", events[0].Subject())

	// Watch: a read model of every balance, caught up when Watch returns and
	// kept current from then on.
	balances := rita.NewModel(Balances{})
	w, err := store.Watch(ctx, balances,
		rita.WithFilters("account"),
		rita.WithErrHandler(func(err error, e *rita.Event, _ jetstream.Msg) {
			fmt.Fprintf(os.Stderr, "bank: read model: event %d: %v\n", e.Sequence(), err)
		}),
	)
	if err != nil {
		return m, err
	}
	defer w.Stop()
	say("watch: read model caught up to sequence %d: %s", balances.Sequence(), show(balances))

	// Evolve with filters: teller 1 loads the two accounts it works with.
	teller1 := rita.NewModel(NewBank())
	seq, err = store.Evolve(ctx, teller1, rita.WithFilters("account.alice", "account.bob"))
	if err != nil {
		return m, err
	}
	say("evolve: teller 1 loaded alice and bob up to sequence %d", seq)

	// DecideAndEvolve: a transfer is two events on two accounts, stored
	// atomically, each expecting its account to be as teller 1 saw it.
	events, seq, err = store.DecideAndEvolve(ctx, teller1, &rita.Command{Data: &Transfer{From: "alice", To: "bob", Amount: 30}})
	if err != nil {
		return m, err
	}
	say("decide: transfer of 30 from alice to bob stored as %d events, sequences %d-%d", len(events), events[0].Sequence(), seq)

	// A command the bank's rules refuse stores nothing.
	_, _, err = store.DecideAndEvolve(ctx, teller1, &rita.Command{Data: &Withdraw{Account: "bob", Amount: 1000}})
	if !errors.Is(err, ErrInsufficientFunds) {
		return m, fmt.Errorf("withdrawing 1000 from bob: want ErrInsufficientFunds, got %v", err)
	}
	say("decide: refused: %v", err)

	// A conflict: teller 2 loads alice too, then teller 1 withdraws, and
	// teller 2 decides on what is now stale state.
	teller2 := rita.NewModel(NewBank())
	if _, err := store.Evolve(ctx, teller2, rita.WithFilters("account.alice")); err != nil {
		return m, err
	}
	if _, seq, err = store.DecideAndEvolve(ctx, teller1, &rita.Command{Data: &Withdraw{Account: "alice", Amount: 20}}); err != nil {
		return m, err
	}
	say("decide: teller 1 withdrew 20 from alice at sequence %d", seq)
	withdraw := &rita.Command{Data: &Withdraw{Account: "alice", Amount: 40}}
	_, _, err = store.DecideAndEvolve(ctx, teller2, withdraw)
	if !errors.Is(err, rita.ErrSequenceConflict) {
		return m, fmt.Errorf("teller 2 on stale state: want ErrSequenceConflict, got %v", err)
	}
	say("conflict: teller 2 decided on stale state and was refused: %v", err)
	seq, err = store.Evolve(ctx, teller2, rita.WithFilters("account.alice"), rita.WithAfterSequence(teller2.EntitySequence("account.alice")))
	if err != nil {
		return m, err
	}
	say("conflict: teller 2 caught up to sequence %d and retries", seq)
	if _, seq, err = store.Decide(ctx, teller2, withdraw); err != nil {
		return m, err
	}
	say("decide: teller 2 withdrew 40 from alice at sequence %d", seq)
	last := seq

	// Evolve with other filters: the past, and one event type.
	past := rita.NewModel(NewBank())
	if _, err := store.Evolve(ctx, past, rita.WithFilters("account.alice"), rita.WithStopSequence(4)); err != nil {
		return m, err
	}
	past.View(func(b *Bank) error {
		balance, _ := b.Balance("alice")
		say("evolve: alice's balance as of sequence 4 was %d", balance)
		return nil
	})
	var count, total int
	_, err = store.Evolve(ctx, rita.EvolverFunc(func(e *rita.Event) error {
		count++
		total += e.Data.(*Deposited).Amount
		return nil
	}), rita.WithFilters("account.*.deposited"))
	if err != nil {
		return m, err
	}
	say("evolve: %d deposits, %d in total (filter account.*.deposited)", count, total)

	// The read model follows on its own goroutine: wait, with a deadline,
	// until it has applied the last event.
	deadline := time.Now().Add(10 * time.Second)
	for balances.Sequence() < last {
		if time.Now().After(deadline) {
			return m, fmt.Errorf("read model stuck at sequence %d, want %d", balances.Sequence(), last)
		}
		time.Sleep(5 * time.Millisecond)
	}
	say("watch: read model at sequence %d: %s", balances.Sequence(), show(balances))

	// It agrees with a full replay.
	replay := rita.NewModel(Balances{})
	if _, err := store.Evolve(ctx, replay); err != nil {
		return m, err
	}
	if got, want := show(balances), show(replay); got != want {
		return m, fmt.Errorf("read model %s, replay %s", got, want)
	}
	say("check: the read model matches a replay of the whole store")
	return m, nil
}

// show formats balances in account order, such as "alice=10 bob=80".
func show(m *rita.Model[Balances]) string {
	var parts []string
	m.View(func(b Balances) error {
		for entity, balance := range b {
			parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(entity, "account."), balance))
		}
		return nil
	})
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
