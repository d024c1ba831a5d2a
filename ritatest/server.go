// Package ritatest starts embedded NATS servers with JetStream for tests of
// code that uses rita, so that no server has to be installed or run, and
// checks given/when/then specifications of deciders (Spec), with or without
// a server.
//
// NewServer starts one server; NewCluster starts a JetStream cluster of
// several on loopback. Both are shut down, and their stores removed, when the
// test ends. A test can stop and restart any server (on the same port and
// store directory) to see how its code copes with a server that goes away,
// and find the server that leads a store's stream.
package ritatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita/embedded"
)

// readyTimeout bounds how long a server may take to accept connections.
const readyTimeout = 10 * time.Second

// Server is an embedded nats-server with JetStream enabled, storing in a
// temporary directory, listening on a random loopback port.
//
// Stop and Restart replace the embedded *server.Server: they must not run
// concurrently with other calls on the same Server. Connections made with
// Connect (or any connection to ClientURL) reach the restarted server, since
// it listens on the same port.
type Server struct {
	*server.Server

	t    testing.TB
	opts embedded.Options // of the next start; Port is fixed after the first
	srv  *embedded.Server // the running server, or nil
}

// NewServer starts a server for t. It is shut down, and its store removed,
// when t ends. It fails t if the server cannot start.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: embedded.Options{
		Name:         "rita-test",
		Dir:          storeDir(t),
		ReadyTimeout: readyTimeout,
	}}
	if err := s.start(); err != nil {
		t.Fatalf("ritatest: %v", err)
	}
	t.Cleanup(s.shutdown)
	return s
}

// start starts a server with s.opts and, the first time, fixes the port it
// got so that a restart listens on the same one.
func (s *Server) start() error {
	srv, err := embedded.Start(context.Background(), s.opts)
	if err != nil {
		return fmt.Errorf("server %s: %w", s.opts.Name, err)
	}
	s.opts.Port = srv.Port()
	s.srv, s.Server = srv, srv.NATS()
	return nil
}

func (s *Server) shutdown() {
	if s.srv != nil {
		s.srv.Shutdown()
	}
}

// Stop shuts the server down and waits until it has stopped. Clients stay
// disconnected (and reconnecting, if they were made to) until Restart. A
// server in a cluster hands over the leadership of its streams first, as
// nats-server does on shutdown. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.shutdown()
}

// Restart stops the server if it runs, then starts it again on the same
// client (and cluster) port and the same store directory, so it recovers
// every stream it stored. It returns once the server accepts connections;
// in a cluster, use Cluster.WaitReady to wait until it has caught up. It
// fails the test (so it must be called from the test's goroutine) if the
// server cannot start.
func (s *Server) Restart() {
	s.t.Helper()
	s.shutdown()
	if err := s.start(); err != nil {
		s.t.Fatalf("ritatest: restart: %v", err)
	}
}

// Connect returns a connection to the server that is closed when t ends.
// Add Reconnecting() to opts for a connection that rides out a Stop and
// Restart.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("ritatest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Reconnecting is a connection option for tests that stop and restart
// servers: the connection reconnects forever, trying every 50 ms without
// jitter, and buffers what is published meanwhile (up to the default 8 MB).
// It makes a connection's own recovery quick, so a test measures the
// recovery of the code under test.
func Reconnecting() nats.Option {
	return func(o *nats.Options) error {
		o.AllowReconnect = true
		o.MaxReconnect = -1
		o.ReconnectWait = 50 * time.Millisecond
		o.ReconnectJitter = 0
		o.ReconnectJitterTLS = 0
		return nil
	}
}
