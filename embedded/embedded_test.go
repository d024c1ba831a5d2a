package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
)

// TestMain checks that no test leaves a goroutine behind: a server that is
// shut down, or that failed to start, stops everything it ran.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, opts embedded.Options) *embedded.Server {
	t.Helper()
	s, err := embedded.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, s *embedded.Server) *nats.Conn {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// appendN creates store name, if it does not exist, and appends n events.
func appendN(t *testing.T, nc *nats.Conn, name string, n int) {
	t.Helper()
	m, err := rita.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := m.CreateEventStore(t.Context(), rita.EventStoreConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := &rita.Event{Entity: "order.1", Type: "placed", Data: []byte(fmt.Sprint(i))}
		if _, err := store.Append(t.Context(), []*rita.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
}

// count returns how many events store name holds.
func count(t *testing.T, nc *nats.Conn, name string) int {
	t.Helper()
	m, err := rita.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := m.GetEventStore(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if _, err := store.Evolve(t.Context(), rita.EvolverFunc(func(*rita.Event) error { n++; return nil })); err != nil {
		t.Fatal(err)
	}
	return n
}

// The zero Options run a server on a free loopback port with its store in
// a temporary directory, which Shutdown removes. Shutdown twice is fine.
func TestStartTemporary(t *testing.T) {
	s, err := embedded.Start(t.Context(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if s.Port() <= 0 {
		t.Errorf("Port() = %d, want a port", s.Port())
	}
	if want := fmt.Sprintf("nats://127.0.0.1:%d", s.Port()); s.ClientURL() != want {
		t.Errorf("ClientURL() = %q, want %q", s.ClientURL(), want)
	}
	if !s.NATS().JetStreamEnabled() {
		t.Error("JetStream is not enabled")
	}
	dir := s.Dir()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("store directory %q: %v", dir, err)
	}
	nc := connect(t, s)
	appendN(t, nc, "orders", 3)
	if n := count(t, nc, "orders"); n != 3 {
		t.Errorf("store holds %d events, want 3", n)
	}
	nc.Close()

	s.Shutdown()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Shutdown, the temporary store directory: %v, want it removed", err)
	}
	s.Shutdown() // again: nothing happens
	if _, err := nats.Connect(s.ClientURL(), nats.Timeout(time.Second)); err == nil {
		t.Error("a connection to a server that was shut down succeeded")
	}
}

// A store in Options.Dir is kept by Shutdown and found again by a server
// started on the same directory (and port).
func TestStartDirKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store") // Start makes it
	first := start(t, embedded.Options{Dir: dir, Name: "first"})
	port := first.Port()
	appendN(t, connect(t, first), "orders", 5)
	first.Shutdown()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("after Shutdown, the store directory: %v, want it kept", err)
	}

	second := start(t, embedded.Options{Dir: dir, Port: port, Name: "second"})
	if second.Port() != port {
		t.Errorf("Port() = %d, want %d", second.Port(), port)
	}
	if second.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", second.Dir(), dir)
	}
	nc := connect(t, second)
	if n := count(t, nc, "orders"); n != 5 {
		t.Errorf("the restarted server's store holds %d events, want 5", n)
	}
	if got := nc.ConnectedServerName(); got != "second" {
		t.Errorf("server name = %q, want %q", got, "second")
	}
}

// Configure sees the options Start set, can change any of them, and cannot
// turn JetStream off.
func TestStartConfigure(t *testing.T) {
	var seen server.Options
	s := start(t, embedded.Options{
		Name: "configured",
		Configure: func(o *server.Options) {
			seen = *o
			o.MaxPayload = 4096
			o.JetStream = false
		},
	})
	if seen.ServerName != "configured" || seen.Host != "127.0.0.1" || seen.StoreDir != s.Dir() || !seen.JetStream {
		t.Errorf("Configure saw name %q, host %q, store %q, JetStream %v; want configured, 127.0.0.1, %q, true",
			seen.ServerName, seen.Host, seen.StoreDir, seen.JetStream, s.Dir())
	}
	nc := connect(t, s)
	if got := nc.MaxPayload(); got != 4096 {
		t.Errorf("MaxPayload = %d, want 4096 as Configure set it", got)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Errorf("JetStream: %v, want it enabled", err)
	}
}

// A port in use fails Start at once, naming the port, and leaves nothing
// behind: no goroutine (TestMain checks) and no temporary directory.
func TestStartPortInUse(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	began := time.Now()
	_, err = embedded.Start(t.Context(), embedded.Options{Port: port})
	took := time.Since(began)
	if err == nil {
		t.Fatal("Start on a port in use succeeded")
	}
	if !strings.Contains(err.Error(), fmt.Sprint(port)) || !strings.HasPrefix(err.Error(), "embedded: start nats-server: ") {
		t.Errorf("error %q does not name the operation and the port %d", err, port)
	}
	if took > 5*time.Second {
		t.Errorf("Start took %v to fail, want it at once", took)
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("Start left %d entries in the temporary directory: %v", len(left), left[0].Name())
	}
}

// Options that cannot work are refused before anything starts.
func TestStartRefused(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		opts embedded.Options
		want error // matched with errors.Is, when set
		text string
	}{
		{"negative ReadyTimeout", t.Context(), embedded.Options{ReadyTimeout: -time.Second}, nil, "ReadyTimeout -1s is negative"},
		{"ended context", cancelled, embedded.Options{}, context.Canceled, "waiting for the server to accept connections"},
		{"a file as Dir", t.Context(), embedded.Options{Dir: writeFile(t)}, nil, "store directory"},
		{"options nats-server refuses", t.Context(), embedded.Options{Configure: func(o *server.Options) { o.MaxPending = 1 << 20; o.MaxPayload = 8 << 20 }}, nil, "max_payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := embedded.Start(tt.ctx, tt.opts)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v does not match %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

func writeFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The server's log goes to Options.Logger, marked as the server's.
func TestStartLogger(t *testing.T) {
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	h := slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil)
	s := start(t, embedded.Options{Logger: slog.New(h)})
	s.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	for _, want := range []string{"level=INFO", "component=nats-server", "Server is ready", "Server Exiting"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not hold %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
