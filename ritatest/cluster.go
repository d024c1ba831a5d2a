package ritatest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita/embedded"
)

// clusterTimeout bounds how long a cluster may take to elect leaders and
// catch up, on a slow machine running tests with the race detector.
const clusterTimeout = 60 * time.Second

// Cluster is a JetStream cluster of embedded servers on loopback, one store
// directory and one client and cluster port per server, each server routed to
// all the others.
//
// Its methods that wait poll with a deadline and fail the test if the
// cluster does not get there; like Server.Restart they must be called from
// the test's goroutine.
type Cluster struct {
	// Servers are the nodes, in the order they were started. Stop and
	// Restart each one on its own to take it out of the cluster and bring it
	// back.
	Servers []*Server

	t testing.TB
}

// NewCluster starts a JetStream cluster of n servers for t (n = 3 makes
// stores with Replicas: 3 possible) and returns once a meta leader is
// elected and every server is current. The servers are shut down, and their
// stores removed, when t ends. It fails t if n < 1 or the cluster does not
// form.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("ritatest: a cluster needs at least one server, not %d", n)
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatalf("ritatest: %v", err)
	}
	clientPorts, clusterPorts := ports[:n], ports[n:]
	routes := make([]*url.URL, n)
	for i, p := range clusterPorts {
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)}
	}
	c := &Cluster{t: t}
	t.Cleanup(c.shutdown)
	for i := range n {
		opts := embedded.Options{
			Name:         fmt.Sprintf("rita-%d", i+1),
			Port:         clientPorts[i],
			Dir:          storeDir(t),
			ReadyTimeout: readyTimeout,
			Configure: func(o *server.Options) {
				o.Cluster = server.ClusterOpts{
					Name: "rita-test",
					Host: "127.0.0.1",
					Port: clusterPorts[i],
				}
				o.Routes = routes
			},
		}
		s := &Server{t: t, opts: opts}
		if err := s.start(); err != nil {
			t.Fatalf("ritatest: cluster: %v", err)
		}
		c.Servers = append(c.Servers, s)
	}
	c.WaitReady()
	return c
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago. They are held open together, so none is returned twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// shutdown stops every server at once, so that none waits for the others
// to take over its leaderships.
func (c *Cluster) shutdown() {
	var wg sync.WaitGroup
	for _, s := range c.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.shutdown()
		}()
	}
	wg.Wait()
}

// ClientURLs returns the client URLs of all servers, comma-separated, as
// nats.Connect takes them.
func (c *Cluster) ClientURLs() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port)
	}
	return strings.Join(urls, ",")
}

// Connect returns a connection to one of the servers that is closed when t
// ends; it knows all of them, so with Reconnecting() among opts it moves to
// another one when its server stops.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.ClientURLs(), opts...)
	if err != nil {
		t.Fatalf("ritatest: connect to cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Stop stops every server.
func (c *Cluster) Stop() {
	c.t.Helper()
	c.shutdown()
}

// Restart stops every server that runs, starts all of them again on their
// ports and store directories, and waits until the cluster is ready.
func (c *Cluster) Restart() {
	c.t.Helper()
	c.shutdown()
	for _, s := range c.Servers {
		if err := s.start(); err != nil {
			c.t.Fatalf("ritatest: cluster restart: %v", err)
		}
	}
	c.WaitReady()
}

// running returns the servers that run now.
func (c *Cluster) running() []*Server {
	var up []*Server
	for _, s := range c.Servers {
		if s.Server != nil && s.Running() {
			up = append(up, s)
		}
	}
	return up
}

// WaitReady waits until the running servers have elected a meta leader that
// counts all of them as peers and every one of them is current.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	c.waitFor("the meta leader and all running peers", func() bool {
		up := c.running()
		var leader *Server
		for _, s := range up {
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leader = s
			}
		}
		return leader != nil && len(leader.JetStreamClusterPeers()) == len(up)
	})
}

// StreamLeader returns the server that leads JetStream stream, or nil if
// none does at the moment (there is an election, or the stream does not
// exist).
func (c *Cluster) StreamLeader(stream string) *Server {
	for _, s := range c.running() {
		if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s
		}
	}
	return nil
}

// StoreLeader returns the server that leads the stream of the rita event
// store named store, or nil if none does at the moment.
func (c *Cluster) StoreLeader(store string) *Server {
	return c.StreamLeader(storeStream(store))
}

// WaitStoreLeader waits until the stream of the event store named store has
// a leader, and returns it.
func (c *Cluster) WaitStoreLeader(store string) *Server {
	c.t.Helper()
	var leader *Server
	c.waitFor("a leader of store "+store, func() bool {
		leader = c.StoreLeader(store)
		return leader != nil
	})
	return leader
}

// WaitStoreCurrent waits until the stream of the event store named store has
// a leader and every running server that holds a replica of it is current:
// it has caught up with the leader, after a restart say.
func (c *Cluster) WaitStoreCurrent(store string) {
	c.t.Helper()
	stream := storeStream(store)
	c.waitFor("all replicas of store "+store, func() bool {
		if c.StreamLeader(stream) == nil {
			return false
		}
		for _, s := range c.running() {
			if s.JetStreamIsStreamAssigned(server.DEFAULT_GLOBAL_ACCOUNT, stream) &&
				!s.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return false
			}
		}
		return true
	})
}

// storeStream is the stream of rita event store name.
func storeStream(name string) string { return "ES_" + name }

// waitFor polls cond until it holds, failing the test after clusterTimeout.
func (c *Cluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("ritatest: cluster: no %s within %v", what, clusterTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
