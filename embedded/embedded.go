// Package embedded runs a nats-server with JetStream inside a Go program, so
// that a program using rita needs no NATS server installed or running: a
// demo, a command-line tool with a local store, a service that keeps its
// events on its own disk, or a development build of a service that runs
// against a cluster in production.
//
// It is a package of its own so that the server is compiled into a program
// only when the program imports it; the rita package itself only needs a
// connection. For tests, the ritatest package starts servers and clusters
// that are shut down and removed with the test.
//
// Start a server, connect to it and use the connection as with any other
// NATS server:
//
//	srv, err := embedded.Start(ctx, embedded.Options{Dir: "data"})
//	if err != nil {
//		return err
//	}
//	defer srv.Shutdown()
//	nc, err := srv.Connect()
//	if err != nil {
//		return err
//	}
//	defer nc.Close()
//	m, err := rita.New(nc)
//
// Without a Dir, the store lives in a temporary directory that Shutdown
// removes; with one, the store is kept there and a later Start on the same
// Dir finds every stream again. Without a Port the server listens on a free
// loopback port; give Host and Port to let other processes (the nats CLI, a
// second instance of the program) connect to it.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultReadyTimeout is how long Start waits for a server to accept
// connections when Options.ReadyTimeout is zero.
const DefaultReadyTimeout = 10 * time.Second

// Options says how to run a server. The zero value runs one with JetStream
// on a free loopback port, storing in a temporary directory.
type Options struct {
	// Dir is the directory of the JetStream store. It is made if it does
	// not exist, and kept by Shutdown, so that a server started again on
	// it finds its streams. Empty means a new temporary directory, which
	// Shutdown removes.
	Dir string

	// Host is the address the server listens on for clients. Empty means
	// 127.0.0.1: only processes on this machine can connect.
	Host string

	// Port is the port the server listens on for clients. Zero means a
	// free port chosen when the server starts (Server.Port tells which).
	Port int

	// Name is the server's name, as the nats CLI and the monitoring
	// endpoints show it. Empty lets the server make one up.
	Name string

	// ReadyTimeout bounds how long Start waits for the server to accept
	// connections. Zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration

	// Logger, if set, receives the server's log: its notices and warnings
	// at slog.LevelInfo and slog.LevelWarn, its errors at slog.LevelError,
	// and, when Configure turns on Debug or Trace, those lines at
	// slog.LevelDebug. Nil means the server logs nothing.
	Logger *slog.Logger

	// Configure, if set, is called with the server's options once the
	// fields above are applied and before the server starts, to set
	// anything else nats-server offers: authorization, TLS, limits,
	// clustering, monitoring, leaf nodes. It may change the fields set
	// above too. JetStream stays enabled.
	Configure func(*server.Options)
}

// Server is a nats-server running in this process. Its methods may be
// called from several goroutines.
type Server struct {
	srv      *server.Server
	dir      string
	removeIt bool // dir is a temporary directory of this Server
	once     sync.Once
}

// Start starts a server with opts and returns once it accepts connections.
// It fails if the options are refused, the server cannot listen (the port
// is in use, say), or it is not ready within opts.ReadyTimeout or before ctx
// ends; then nothing is left running and a temporary directory it made is
// removed.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s, err := start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: start nats-server: %w", err)
	}
	return s, nil
}

func start(ctx context.Context, opts Options) (*Server, error) {
	if opts.ReadyTimeout < 0 {
		return nil, fmt.Errorf("ReadyTimeout %v is negative", opts.ReadyTimeout)
	}
	s := &Server{dir: opts.Dir}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "rita-nats-*")
		if err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
		s.dir, s.removeIt = dir, true
	} else if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	so := &server.Options{
		ServerName: opts.Name,
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoSigs:     true,
		NoLog:      opts.Logger == nil,
	}
	if so.Host == "" {
		so.Host = "127.0.0.1"
	}
	if so.Port == 0 {
		so.Port = server.RANDOM_PORT
	}
	if opts.Configure != nil {
		opts.Configure(so)
		so.JetStream = true
	}
	srv, err := server.NewServer(so)
	if err != nil {
		s.removeDir()
		return nil, err
	}
	s.srv = srv
	// The server reports a listener it cannot open through its logger's
	// Fatalf and goes on without it; the logger tells Start, which stops
	// waiting.
	log := &logger{out: opts.Logger, fatal: make(chan string, 1)}
	srv.SetLoggerV2(log, so.Debug, so.Trace, so.TraceVerbose)
	srv.Start()
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	if err := s.waitReady(ctx, timeout, log.fatal); err != nil {
		s.Shutdown()
		return nil, err
	}
	return s, nil
}

// waitReady waits until the server accepts connections, fails to listen,
// timeout passes or ctx ends.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration, fatal <-chan string) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case msg := <-fatal:
			return errors.New(msg)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server to accept connections: %w", context.Cause(ctx))
		default:
		}
		// ReadyForConnections polls the server's listeners itself; ask in
		// short slices so that a failure or ctx is noticed soon.
		if s.srv.ReadyForConnections(20 * time.Millisecond) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections within %v (Options.ReadyTimeout)", timeout)
		}
	}
}

// ClientURL returns the URL clients connect to, as nats.Connect takes it.
func (s *Server) ClientURL() string {
	return s.srv.ClientURL()
}

// Port returns the port the server listens on for clients.
func (s *Server) Port() int {
	if addr, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return addr.Port
	}
	return 0
}

// Dir returns the directory of the server's JetStream store.
func (s *Server) Dir() string {
	return s.dir
}

// Connect returns a new connection to the server, made with opts. The
// caller closes it. A connection made with nats.InProcessServer(s.NATS())
// in opts skips the network.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded: connect to %s: %w", s.ClientURL(), err)
	}
	return nc, nil
}

// NATS returns the nats-server itself, for what this package does not
// wrap: its monitoring, its accounts, JetStream's state.
func (s *Server) NATS() *server.Server {
	return s.srv
}

// Shutdown stops the server and waits until it has stopped; clients are
// disconnected. A store in a temporary directory is removed; a store in
// Options.Dir is kept. Calling Shutdown again does nothing.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.removeDir()
	})
}

// removeDir removes a temporary store directory. A file store may still
// be closing files for a moment after its server stopped, so the removal
// is tried again for a while before the directory is left to the system.
func (s *Server) removeDir() {
	if !s.removeIt {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for os.RemoveAll(s.dir) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // a pause between removals, not synchronisation
	}
}
