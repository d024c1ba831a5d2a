package main

// End-to-end tests: the command is built once (TestMain) and run as a
// separate process against embedded servers the tests start, and what it
// prints is checked against what the store holds, read with the library.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/internal/pb"
	"github.com/synadia-labs/rita/ritatest"
	"github.com/synadia-labs/rita/types"
)

// ritaBin is the command built for the tests.
var ritaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rita-command-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ritaBin = filepath.Join(dir, "rita")
	build := exec.Command("go", "build", "-o", ritaBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the command:", err)
		os.Exit(1)
	}
	code := m.Run()
	benchCleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the command did.
type result struct {
	stdout, stderr string
	code           int
}

// env is one embedded server, a connection and a Manager on it, and a home
// of the command's own (no nats contexts unless a test saves some).
type env struct {
	srv  *ritatest.Server
	nc   *nats.Conn
	m    *rita.Manager
	home string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t)
	m, err := rita.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, nc: nc, m: m, home: t.TempDir()}
}

// url is where the command connects.
func (e *env) url() string { return e.srv.ClientURL() }

// cmd makes the command with args, connected to e's server through NATS_URL.
func (e *env) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, ritaBin, args...)
	c.Env = append(os.Environ(), "NATS_URL="+e.url(), "HOME="+e.home, "XDG_CONFIG_HOME="+filepath.Join(e.home, ".config"), "NATS_CONTEXT=")
	return c
}

// run runs the command with args and stdin to its end.
func (e *env) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := e.cmd(ctx, args...)
	c.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	res := result{stdout: out.String(), stderr: errOut.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("rita %s: %v", strings.Join(args, " "), err)
		}
		res.code = ee.ExitCode()
	}
	return res
}

// ok runs the command and fails t unless it succeeds.
func (e *env) ok(t *testing.T, args ...string) result {
	t.Helper()
	res := e.run(t, "", args...)
	if res.code != 0 {
		t.Fatalf("rita %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// fails runs the command and fails t unless it exits with code.
func (e *env) fails(t *testing.T, code int, args ...string) result {
	t.Helper()
	res := e.run(t, "", args...)
	if res.code != code {
		t.Fatalf("rita %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	return res
}

// jsonLines decodes every line of out into a T.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var list []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		list = append(list, v)
	}
	return list
}

// tableRows returns the rows of a table as their cells, the header first.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		rows = append(rows, splitCells(line))
	}
	return rows
}

// splitCells splits a table line at runs of two or more spaces.
func splitCells(line string) []string {
	var cells []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			cells = append(cells, c)
		}
	}
	return cells
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Test types of the fixture store, one per codec.
type (
	opened struct {
		Owner string `json:"owner" msgpack:"owner"`
	}
	deposited struct {
		Amount int `json:"amount" msgpack:"amount"`
	}
)

// fixture fills store "bank" with events of every codec and none:
// account.alice (json: opened, deposited, deposited), account.bob (msgpack:
// opened), order.o1 (protobuf: pb-order-placed), note.n1 (raw bytes), and
// returns the store (without a registry) and its events as stored.
func (e *env) fixture(t *testing.T) (*rita.EventStore, []*rita.RawEvent) {
	t.Helper()
	ctx := testCtx(t)
	reg := func(codec string, typs map[string]*types.Type) *rita.EventStore {
		r, err := types.NewRegistry(typs, types.Codec(codec))
		if err != nil {
			t.Fatal(err)
		}
		m, err := rita.New(e.nc, rita.WithRegistry(r))
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "bank"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	bankTypes := map[string]*types.Type{
		"opened":    {Init: func() any { return &opened{} }},
		"deposited": {Init: func() any { return &deposited{} }},
	}
	js := reg("json", bankTypes)
	mp := reg("msgpack", bankTypes)
	pbs := reg("protobuf", map[string]*types.Type{"pb-order-placed": {Init: func() any { return &pb.OrderPlaced{} }}})
	appendOK := func(s *rita.EventStore, evs ...*rita.Event) {
		t.Helper()
		if _, err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	appendOK(js, &rita.Event{Entity: "account.alice", Data: &opened{Owner: "Alice"}, Meta: map[string]string{"by": "teller-1"}})
	appendOK(js, &rita.Event{Entity: "account.alice", Data: &deposited{Amount: 100}})
	appendOK(mp, &rita.Event{Entity: "account.bob", Data: &opened{Owner: "Bob"}})
	appendOK(pbs, &rita.Event{Entity: "order.o1", Data: &pb.OrderPlaced{OrderId: "o1", Amount: 42, Items: []string{"tea"}}})
	raw, err := e.m.GetEventStore(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	appendOK(raw, &rita.Event{Entity: "note.n1", Type: "written", Data: []byte{0xff, 0x00, 0x01}})
	appendOK(js, &rita.Event{Entity: "account.alice", Data: &deposited{Amount: 30}})
	var all []*rita.RawEvent
	for ev, err := range raw.RawEvents(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ev)
	}
	return raw, all
}

// protoSet writes the descriptor set of the test messages to a file.
func protoSet(t *testing.T) string {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(pb.File_events_proto)}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "events.pb")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
