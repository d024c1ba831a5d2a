package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/synadia-labs/rita"
)

// Environment variables the suite reads.
const (
	// envDir names a directory that keeps the server's file stores between
	// runs, so the large stores are built once, not once per process. Unset,
	// each process works in a temporary directory of its own.
	envDir = "RITA_BENCH_DIR"
	// envLarge set to 1 adds the 1M-event stores. CI leaves it unset: it
	// runs each benchmark once, on the small stores only.
	envLarge = "RITA_BENCH_LARGE"
	// envOrder set to "raw-first" runs the raw side of each pair before the
	// library side; the run script alternates it between rounds.
	envOrder = "RITA_BENCH_ORDER"
)

// fixtureVersion is kept in the metadata of each prebuilt store. Change it
// when the workload changes, so stores kept in RITA_BENCH_DIR are rebuilt.
const fixtureVersion = "4"

// suite is the one embedded server of a benchmark process (see
// startServer) and its clients.
type suite struct {
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
	dir string

	mu       sync.Mutex
	fixtures map[string]*fixtureOnce
}

type fixtureOnce struct {
	once sync.Once
	f    *fixture
	err  error
}

var the *suite

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir := os.Getenv(envDir)
	if dir == "" {
		tmp, err := os.MkdirTemp("", "rita-bench-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if os.Getenv(envServe) != "" {
		return 0, serve(dir)
	}
	url, stop, err := startServer(dir)
	if err != nil {
		return 0, err
	}
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	the = &suite{url: url, nc: nc, js: js, dir: dir, fixtures: map[string]*fixtureOnce{}}
	return m.Run(), nil
}

// connect returns a new connection to the suite's server, closed when b ends.
func connect(b testing.TB) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(the.url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// manager returns a Manager with the workload's registry on nc.
func manager(b testing.TB, nc *nats.Conn) *rita.Manager {
	b.Helper()
	reg, err := newRegistry()
	if err != nil {
		b.Fatal(err)
	}
	m, err := rita.New(nc, rita.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// storages are the two storage kinds every read benchmark runs on.
var storages = []struct {
	name string
	typ  jetstream.StorageType
}{
	{"file", jetstream.FileStorage},
	{"mem", jetstream.MemoryStorage},
}

// sizes are the store sizes of the read benchmarks: 1k entities of 100
// events, and (with RITA_BENCH_LARGE=1) 10k entities of 100 events.
func sizes() []int {
	if os.Getenv(envLarge) == "1" {
		return []int{100_000, 1_000_000}
	}
	return []int{100_000}
}

func sizeName(n int) string {
	if n >= 1_000_000 && n%1_000_000 == 0 {
		return strconv.Itoa(n/1_000_000) + "M"
	}
	return strconv.Itoa(n/1000) + "k"
}

// fixture is a prebuilt store of events: entities order.1 ... order.<entities>
// with eventsPerEntity events each, interleaved round robin, so that event j
// (0-based) belongs to order.(j%entities+1). Every entity's events span the
// whole store, the worst case for reading one of them. Each event carries the
// expectation Model.Decide would have stamped it with: the sequence of the
// entity's event before it.
type fixture struct {
	name     string // store name
	storage  jetstream.StorageType
	events   int
	entities int
}

// entitySeqs returns the stream sequences of the events of order n.
func (f *fixture) entitySeqs(n int) []uint64 {
	seqs := make([]uint64, eventsPerEntity)
	for k := range seqs {
		seqs[k] = uint64(k*f.entities + n)
	}
	return seqs
}

// getFixture returns the store of events events in storage typ, building
// it on first use in this process (or reusing one kept in RITA_BENCH_DIR).
func getFixture(b testing.TB, typ jetstream.StorageType, events int) *fixture {
	b.Helper()
	kind := "file"
	if typ == jetstream.MemoryStorage {
		kind = "mem"
	}
	name := "fx_" + kind + "_" + sizeName(events)
	the.mu.Lock()
	fo, ok := the.fixtures[name]
	if !ok {
		fo = &fixtureOnce{}
		the.fixtures[name] = fo
	}
	the.mu.Unlock()
	fo.once.Do(func() {
		f := &fixture{name: name, storage: typ, events: events, entities: events / eventsPerEntity}
		start := time.Now()
		built, err := f.ensure(context.Background())
		if err != nil {
			fo.err = err
			return
		}
		if built {
			fmt.Fprintf(os.Stderr, "bench: built store %s (%d events) in %v\n", name, events, time.Since(start).Round(time.Millisecond))
		}
		fo.f = f
	})
	if fo.err != nil {
		b.Fatalf("fixture %s: %v", name, fo.err)
	}
	return fo.f
}

// ensure makes sure the store exists and holds the fixture's events; it
// reports whether it had to build it.
func (f *fixture) ensure(ctx context.Context) (bool, error) {
	stream, err := the.js.Stream(ctx, "ES_"+f.name)
	if err == nil {
		info, err := stream.Info(ctx)
		if err != nil {
			return false, err
		}
		if info.Config.Metadata["rita-bench-fixture"] == fixtureVersion && info.State.Msgs == uint64(f.events) && info.State.FirstSeq == 1 {
			return false, nil
		}
		if err := the.js.DeleteStream(ctx, "ES_"+f.name); err != nil {
			return false, err
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, err
	}
	nc := the.nc
	m, err := rita.New(nc)
	if err != nil {
		return false, err
	}
	if _, err := m.CreateEventStore(ctx, rita.EventStoreConfig{
		Name:     f.name,
		Storage:  f.storage,
		Metadata: map[string]string{"rita-bench-fixture": fixtureVersion},
	}); err != nil {
		return false, err
	}
	return true, f.fill(ctx)
}

// fill publishes the fixture's events with the fastest raw publish there is:
// asynchronous, 256 in flight.
func (f *fixture) fill(ctx context.Context) error {
	js, err := jetstream.New(the.nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return err
	}
	now := time.Now()
	for j := 0; j < f.events; j++ {
		n, k := j%f.entities+1, j/f.entities
		typ, v := orderEvent(n, k)
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		entity := "order." + strconv.Itoa(n)
		// Each event expects the entity's event before it, as the events
		// Model.Decide stamps do.
		prev := 0
		if k > 0 {
			prev = j + 1 - f.entities
		}
		msg := &nats.Msg{
			Subject: "$ES." + f.name + "." + entity + "." + typ,
			Header: nats.Header{
				"Nats-Msg-Id":                         {nuid.Next()},
				"Rita-Type":                           {typ},
				"Rita-Entity":                         {entity},
				"Rita-Time":                           {now.Add(time.Duration(j) * time.Microsecond).Format(time.RFC3339Nano)},
				"Rita-Codec":                          {"json"},
				"Nats-Expected-Last-Subject-Sequence": {strconv.Itoa(prev)},
				"Nats-Expected-Last-Subject-Sequence-Subject": {"$ES." + f.name + "." + entity + ".*"},
			},
			Data: data,
		}
		// A busy machine can take longer than the default 200 ms to make room.
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second)); err != nil {
			return fmt.Errorf("event %d: %w", j, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		return errors.New("publish did not complete")
	}
	stream, err := the.js.Stream(ctx, "ES_"+f.name)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(f.events) || info.State.LastSeq != uint64(f.events) {
		return fmt.Errorf("built %d messages (last sequence %d), want %d", info.State.Msgs, info.State.LastSeq, f.events)
	}
	return nil
}
