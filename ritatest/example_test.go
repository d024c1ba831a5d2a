package ritatest_test

import (
	"testing"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// A test of code that uses rita, against one embedded server that stops
// and comes back. (ritatest works within a test, so this example is
// compiled but not run; see TestFailover for a complete one.)
func ExampleNewServer() {
	_ = func(t *testing.T) {
		srv := ritatest.NewServer(t)
		nc := srv.Connect(t, ritatest.Reconnecting())
		m, err := rita.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		store, err := m.CreateEventStore(t.Context(), rita.EventStoreConfig{Name: "orders"})
		if err != nil {
			t.Fatal(err)
		}
		srv.Stop()
		// ... calls on store fail within their context's deadline ...
		srv.Restart() // same port, same store directory: the store is back
		_ = store
	}
}

// A failover test on a three-node cluster: stop the server that leads a
// store's stream, let a new leader take over, and bring the old one back.
// (Compiled but not run; see TestFailover for a complete one.)
func ExampleNewCluster() {
	_ = func(t *testing.T) {
		c := ritatest.NewCluster(t, 3)
		nc := c.Connect(t, ritatest.Reconnecting())
		m, err := rita.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.CreateEventStore(t.Context(), rita.EventStoreConfig{Name: "orders", Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		leader := c.WaitStoreLeader("orders")
		leader.Stop()
		c.WaitStoreLeader("orders") // another server leads now
		leader.Restart()
		c.WaitReady()
		c.WaitStoreCurrent("orders") // and it has caught up
	}
}

// Every server of a cluster stops and starts again on its store directory.
// (Compiled but not run.)
func ExampleCluster_Restart() {
	_ = func(t *testing.T) {
		c := ritatest.NewCluster(t, 3)
		c.Restart()
		c.WaitStoreCurrent("orders")
	}
}
