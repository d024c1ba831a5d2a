package ritatest_test

import (
	"context"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// The README's failover test: a store with three replicas keeps every
// acknowledged event, and keeps taking new ones, while the leader of its
// stream is stopped and restarted.
func TestFailover(t *testing.T) {
	c := ritatest.NewCluster(t, 3)
	nc := c.Connect(t, ritatest.Reconnecting())
	m, err := rita.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "orders", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	placed := &rita.Event{Entity: "order.1", Type: "placed", Data: []byte("{}")}
	if _, err := store.Append(ctx, []*rita.Event{placed}); err != nil {
		t.Fatal(err)
	}

	leader := c.WaitStoreLeader("orders")
	leader.Stop() // a new leader takes over; Append rides out the election
	shipped := &rita.Event{Entity: "order.1", Type: "shipped", Data: []byte("{}"),
		Expect: rita.ExpectSequence(placed.Sequence())}
	if _, err := store.Append(ctx, []*rita.Event{shipped}); err != nil {
		t.Fatal(err)
	}
	leader.Restart() // same port, same store directory
	c.WaitStoreCurrent("orders")

	var events []string
	_, err = store.Evolve(ctx, evolverFunc(func(e *rita.Event) error {
		events = append(events, e.Type)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0] != "placed" || events[1] != "shipped" {
		t.Fatalf("events = %v, want [placed shipped]", events)
	}
}

type evolverFunc func(*rita.Event) error

func (f evolverFunc) Evolve(e *rita.Event) error { return f(e) }
