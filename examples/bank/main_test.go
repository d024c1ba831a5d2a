package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// TestTransfer tests the bank's rules against a real store, on an embedded
// server that ritatest starts and stops.
func TestTransfer(t *testing.T) {
	nc := ritatest.NewServer(t).Connect(t)
	reg, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	m, err := rita.New(nc, rita.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	store, err := m.CreateEventStore(t.Context(), rita.EventStoreConfig{Name: "bank"})
	if err != nil {
		t.Fatal(err)
	}

	bank := rita.NewModel(NewBank())
	for _, cmd := range []any{
		&Open{Account: "alice", Owner: "Alice"},
		&Open{Account: "bob", Owner: "Bob"},
		&Deposit{Account: "alice", Amount: 100},
		&Transfer{From: "alice", To: "bob", Amount: 30},
	} {
		if _, _, err := store.DecideAndEvolve(t.Context(), bank, &rita.Command{Data: cmd}); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	_, _, err = store.DecideAndEvolve(t.Context(), bank, &rita.Command{Data: &Transfer{From: "bob", To: "alice", Amount: 31}})
	if !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("overdrawing transfer: got %v, want ErrInsufficientFunds", err)
	}

	// A replay from the store agrees with the model.
	replay := rita.NewModel(NewBank())
	if _, err := store.Evolve(t.Context(), replay, rita.WithFilters("account")); err != nil {
		t.Fatal(err)
	}
	replay.View(func(b *Bank) error {
		for account, want := range map[string]int{"alice": 70, "bob": 30} {
			if got, _ := b.Balance(account); got != want {
				t.Errorf("%s: balance %d, want %d", account, got, want)
			}
		}
		return nil
	})
}

// TestRun runs the whole program on an embedded server.
func TestRun(t *testing.T) {
	t.Setenv("NATS_URL", "")
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkOutput(t, out.String())
}

// TestRunNATSURL runs the program against the server at NATS_URL and checks
// that it deletes its store.
func TestRunNATSURL(t *testing.T) {
	srv := ritatest.NewServer(t)
	t.Setenv("NATS_URL", srv.ClientURL())
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkOutput(t, out.String())
	if !strings.Contains(out.String(), "cleanup: deleted store bank_") {
		t.Errorf("no cleanup line in:\n%s", out.String())
	}

	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(t.Context())
	for name := range names.Name() {
		t.Errorf("stream %s left behind", name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
}

func checkOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"conflict: teller 2 decided on stale state and was refused",
		"decide: teller 2 withdrew 40 from alice at sequence 8",
		"watch: read model at sequence 8: alice=10 bob=80",
		"check: the read model matches a replay of the whole store",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
