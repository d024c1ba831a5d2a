// Package ritatest starts embedded NATS servers with JetStream for tests of
// code that uses rita, so that no server has to be installed or run, and
// checks given/when/then specifications of deciders (Spec), with or without
// a server.
package ritatest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an embedded nats-server with JetStream enabled, storing in a
// temporary directory, listening on a random loopback port.
type Server struct {
	*server.Server
}

// NewServer starts a server for t. It is shut down, and its store removed,
// when t ends. It fails t if the server cannot start.
func NewServer(t testing.TB) *Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "rita-test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   t.TempDir(),
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("ritatest: new server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("ritatest: server not ready for connections")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Server{Server: s}
}

// Connect returns a connection to the server that is closed when t ends.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("ritatest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
