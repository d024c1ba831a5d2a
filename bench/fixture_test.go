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
	"github.com/synadia-labs/rita/ritatest"
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

// backend is a deployment the benchmarks run on, and its clients: the one
// embedded server of the process (the), or a JetStream cluster of three
// embedded servers on loopback whose stores have three replicas
// (replicated).
type backend struct {
	// prefix starts the names of the sub-benchmarks run on this backend:
	// empty for the single server (so the names of the figures measured
	// before clusters were added stay the same), "replicas=3/" for the
	// cluster.
	prefix   string
	replicas int
	url      string // what clients connect to
	nc       *nats.Conn
	js       jetstream.JetStream

	// Of a cluster: every stream leader is kept off avoid, the server
	// clients connect to (see placeLeader).
	cluster *ritatest.Cluster
	avoid   string

	mu       sync.Mutex
	fixtures map[string]*fixtureOnce
}

type fixtureOnce struct {
	once sync.Once
	f    *fixture
	err  error
}

// the is the single server of the process.
var the *backend

// cleanups are run, last first, when the process ends: they stop the
// cluster, if one was started.
var cleanups []func()

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
	the = &backend{replicas: 1, url: url, nc: nc, js: js, fixtures: map[string]*fixtureOnce{}}
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	return m.Run(), nil
}

// connect returns a new connection to the backend, closed when b ends.
func (be *backend) connect(b testing.TB) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(be.url)
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

// sizes are the store sizes of the read benchmarks on be. On the single
// server: 1k entities of 100 events, and (with RITA_BENCH_LARGE=1) 10k
// entities of 100 events. On the cluster, which holds every event three
// times and rebuilds its stores in every process: 100 entities, and 1k with
// RITA_BENCH_LARGE=1.
func (be *backend) sizes() []int {
	large := os.Getenv(envLarge) == "1"
	switch {
	case be.replicas > 1 && large:
		return []int{100_000}
	case be.replicas > 1:
		return []int{10_000}
	case large:
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

// shape is what the events of each entity of a fixture look like.
type shape struct {
	name string
	// types is the number of event types of an entity's 100 events: 4 (an
	// order-placed, then item-added and item-removed in turn, an
	// order-shipped last), 2 (item-added and item-removed in turn) or 1
	// (all item-added). Each event type of an entity is a subject of its
	// own.
	types int
	// expect: each event carries the expectation Model.Decide would have
	// stamped it with, the sequence of the entity's event before it.
	expect bool
}

// The shapes of the fixtures. shapeOrders is the workload of the pairs;
// the others are what a new user's entities may look like
// (BenchmarkLoadEntityShapes).
var (
	shapeOrders         = shape{name: "types=4/expect=yes", types: 4, expect: true}
	shapeOrdersNoExpect = shape{name: "types=4/expect=no", types: 4}
	shapeTwo            = shape{name: "types=2/expect=yes", types: 2, expect: true}
	shapeOne            = shape{name: "types=1/expect=yes", types: 1, expect: true}
	shapeOneNoExpect    = shape{name: "types=1/expect=no", types: 1}
	shapes              = []shape{shapeOrders, shapeOrdersNoExpect, shapeTwo, shapeOne, shapeOneNoExpect}
)

// suffix tells the store of a shape from the others; empty for
// shapeOrders, whose stores keep the names they had before shapes.
func (s shape) suffix() string {
	if s == shapeOrders {
		return ""
	}
	suf := "_t" + strconv.Itoa(s.types)
	if !s.expect {
		suf += "_noexp"
	}
	return suf
}

// event returns the k-th event (0-based) of order n in this shape.
func (s shape) event(n, k int) (string, any) {
	switch s.types {
	case 1:
		return typeAdded, pad(&ItemAdded{SKU: "sku-" + strconv.Itoa(k), Qty: 1 + k%5, Price: 100 * k})
	case 2:
		if k%2 == 0 {
			return typeAdded, pad(&ItemAdded{SKU: "sku-" + strconv.Itoa(k), Qty: 1 + k%5, Price: 100 * k})
		}
		return typeRemoved, pad(&ItemRemoved{SKU: "sku-" + strconv.Itoa(k-1), Qty: 1})
	}
	return orderEvent(n, k)
}

// fixture is a prebuilt store of events: entities order.1 ... order.<entities>
// with eventsPerEntity events each, interleaved round robin, so that event j
// (0-based) belongs to order.(j%entities+1). Every entity's events span the
// whole store, the worst case for reading one of them.
type fixture struct {
	be       *backend
	name     string // store name
	storage  jetstream.StorageType
	shape    shape
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

// getFixture returns the store of events events of shapeOrders in storage
// typ on the single server.
func getFixture(b testing.TB, typ jetstream.StorageType, events int) *fixture {
	b.Helper()
	return the.fixture(b, typ, events, shapeOrders)
}

// fixture returns the store of events events of shape sh in storage typ,
// building it on first use in this process (or reusing one kept in
// RITA_BENCH_DIR, on the single server).
func (be *backend) fixture(b testing.TB, typ jetstream.StorageType, events int, sh shape) *fixture {
	b.Helper()
	kind := "file"
	if typ == jetstream.MemoryStorage {
		kind = "mem"
	}
	name := "fx_" + kind + "_" + sizeName(events) + sh.suffix()
	if be.replicas > 1 {
		name = "fx" + strconv.Itoa(be.replicas) + name[2:]
	}
	be.mu.Lock()
	fo, ok := be.fixtures[name]
	if !ok {
		fo = &fixtureOnce{}
		be.fixtures[name] = fo
	}
	be.mu.Unlock()
	fo.once.Do(func() {
		f := &fixture{be: be, name: name, storage: typ, shape: sh, events: events, entities: events / eventsPerEntity}
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
	js := f.be.js
	stream, err := js.Stream(ctx, "ES_"+f.name)
	if err == nil {
		info, err := stream.Info(ctx)
		if err != nil {
			return false, err
		}
		if info.Config.Metadata["rita-bench-fixture"] == fixtureVersion && info.State.Msgs == uint64(f.events) && info.State.FirstSeq == 1 {
			return false, nil
		}
		if err := js.DeleteStream(ctx, "ES_"+f.name); err != nil {
			return false, err
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, err
	}
	m, err := rita.New(f.be.nc)
	if err != nil {
		return false, err
	}
	// A replicated store is filled with one replica, then given the others:
	// a clustered stream refuses asynchronous publishes that carry
	// expectations on a subject with publishes in flight, and one at a time
	// takes minutes.
	if _, err := m.CreateEventStore(ctx, rita.EventStoreConfig{
		Name:     f.name,
		Storage:  f.storage,
		Metadata: map[string]string{"rita-bench-fixture": fixtureVersion},
	}); err != nil {
		return false, err
	}
	if err := f.fill(ctx); err != nil {
		return false, err
	}
	if f.be.replicas > 1 {
		info, err := f.be.streamInfo(ctx, "ES_"+f.name)
		if err != nil {
			return false, err
		}
		cfg := info.Config
		cfg.Replicas = f.be.replicas
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return false, fmt.Errorf("add replicas: %w", err)
		}
	}
	// Every replica holds every event before the benchmarks read.
	if err := f.be.placeLeader(ctx, f.name); err != nil {
		return false, fmt.Errorf("place the leader: %w", err)
	}
	return true, nil
}

// fill publishes the fixture's events with the fastest raw publish there is:
// asynchronous, 256 in flight.
func (f *fixture) fill(ctx context.Context) error {
	js, err := jetstream.New(f.be.nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return err
	}
	now := time.Now()
	for j := 0; j < f.events; j++ {
		n, k := j%f.entities+1, j/f.entities
		typ, v := f.shape.event(n, k)
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
				"Nats-Msg-Id": {nuid.Next()},
				"Rita-Type":   {typ},
				"Rita-Entity": {entity},
				"Rita-Time":   {now.Add(time.Duration(j) * time.Microsecond).Format(time.RFC3339Nano)},
				"Rita-Codec":  {"json"},
			},
			Data: data,
		}
		if f.shape.expect {
			msg.Header["Nats-Expected-Last-Subject-Sequence"] = []string{strconv.Itoa(prev)}
			msg.Header["Nats-Expected-Last-Subject-Sequence-Subject"] = []string{"$ES." + f.name + "." + entity + ".*"}
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
	stream, err := f.be.js.Stream(ctx, "ES_"+f.name)
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
