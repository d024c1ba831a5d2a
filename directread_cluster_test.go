package rita

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startCluster starts three embedded servers with JetStream, routed to each
// other on loopback, and returns their client URLs once JetStream has a
// leader. They are shut down when t ends.
func startCluster(t *testing.T) []string {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	var urls []string
	for i, p := range ports {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("rita-%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			NoLog:      true,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "rita", Host: "127.0.0.1", Port: p},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		urls = append(urls, s.ClientURL())
	}
	return urls
}

// On a replicated store, an Evolve of one entity that begins after an
// acknowledged Append sees it, whichever server answers the direct gets,
// and a load from a snapshot does too.
func TestDirectReadReplicated(t *testing.T) {
	urls := startCluster(t)
	managers := make([]*Manager, len(urls))
	for i, u := range urls {
		nc, err := nats.Connect(u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if managers[i], err = New(nc); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	var writer *EventStore
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := managers[0].CreateEventStore(ctx, EventStoreConfig{Name: "replicated", Replicas: 3})
		if err == nil {
			writer = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replicated store within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the cluster is electing its meta leader
	}
	readers := make([]*EventStore, 0, 2)
	for _, m := range managers[1:] {
		s, err := m.GetEventStore(ctx, "replicated")
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, s)
	}
	cfg := SnapshotConfig{Version: "v1", Every: 3}
	for i := range 40 {
		seq, err := writer.Append(ctx, []*Event{{Entity: "order.1", Type: "line", Data: []byte(strconv.Itoa(i))}})
		if err != nil {
			t.Fatal(err)
		}
		r := readers[i%len(readers)]
		var rec seenRecorder
		last, err := r.Evolve(ctx, &rec, WithFilters("order.1"))
		if err != nil {
			t.Fatal(err)
		}
		if last != seq || len(rec.events) != i+1 {
			t.Fatalf("after append %d at %d: Evolve read %d events up to %d", i, seq, len(rec.events), last)
		}
		st := &snapState{}
		last, err = r.Evolve(ctx, st, WithFilters("order.1"), WithSnapshot(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if last != seq || len(st.IDs) != i+1 {
			t.Fatalf("after append %d at %d: Evolve from a snapshot has %d events up to %d", i, seq, len(st.IDs), last)
		}
	}
}
