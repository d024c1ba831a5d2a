package ritatest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/ritatest"
)

// A cluster forms, holds a replicated stream, elects a new leader when the
// leader stops, and brings the stopped server back up to date.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := ritatest.NewCluster(t, 3)
	t.Logf("cluster ready in %v", time.Since(start))
	if len(c.Servers) != 3 {
		t.Fatalf("%d servers, want 3", len(c.Servers))
	}
	nc := c.Connect(t, ritatest.Reconnecting())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ES_orders", Subjects: []string{"$ES.orders.>"}, Replicas: 3}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	leader := c.WaitStoreLeader("orders")
	if got := c.StreamLeader("ES_orders"); got != leader {
		t.Fatalf("StreamLeader = %v, StoreLeader = %v", got, leader)
	}
	if _, err := js.Publish(ctx, "$ES.orders.order.1.placed", []byte("x")); err != nil {
		t.Fatalf("publish: %v", err)
	}

	start = time.Now()
	leader.Stop()
	next := c.WaitStoreLeader("orders")
	t.Logf("new leader after %v", time.Since(start))
	if next == leader {
		t.Fatalf("the stopped server still leads")
	}
	if _, err := js.Publish(ctx, "$ES.orders.order.1.shipped", []byte("x")); err != nil {
		t.Fatalf("publish without the old leader: %v", err)
	}

	start = time.Now()
	leader.Restart()
	c.WaitReady()
	c.WaitStoreCurrent("orders")
	t.Logf("restarted server current after %v", time.Since(start))
	if !leader.Running() {
		t.Fatalf("restarted server does not run")
	}

	start = time.Now()
	c.Restart()
	c.WaitStoreCurrent("orders")
	t.Logf("whole cluster restarted in %v", time.Since(start))
	info, err := js.Stream(ctx, "ES_orders")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	if n := info.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("%d messages after restart, want 2", n)
	}
}

// A single server restarts on its port and store: a reconnecting client
// finds its stream again.
func TestServerRestart(t *testing.T) {
	s := ritatest.NewServer(t)
	url := s.ClientURL()
	nc := s.Connect(t, ritatest.Reconnecting())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop() // a second Stop does nothing
	if s.Running() {
		t.Fatalf("server runs after Stop")
	}
	s.Restart()
	if s.ClientURL() != url {
		t.Fatalf("restarted on %s, want %s", s.ClientURL(), url)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A request sent while the client reconnects may get no answer:
		// ask again rather than wait.
		actx, acancel := context.WithTimeout(ctx, time.Second)
		info, err := js.Stream(actx, "S")
		acancel()
		if err == nil {
			if n := info.CachedInfo().State.Msgs; n != 1 {
				t.Fatalf("%d messages after restart, want 1", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
