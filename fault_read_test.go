package rita_test

// Fault tests of reads (issue 16): Evolve of one entity, of the whole store
// and from a snapshot, and the catch-up of Watch, on a store with Replicas: 3
// while a node restarts or the stream leader steps down. Three readers, each
// connected to another server, call the read in a loop, each call with a
// 20 s deadline, while a writer keeps appending. The cluster keeps a quorum
// throughout (one node of three is down at most), so every call must
// succeed, and every read must return exactly what a fresh read after the
// fault holds up to the sequence it reported: the same events, in order,
// none twice, and every event acknowledged before it began. Each test logs
// its figures: calls made, calls that needed retries (the reads'
// "rita: read: retrying" log records), the longest call.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

const (
	readCallTimeout = 20 * time.Second // the deadline of each read call
	readReaders     = 3                // one per server
	readProgress    = 2                // calls each reader finishes per phase of a fault
	readPrefill     = 400              // events stored before the readers start
	readWritePace   = 20 * time.Millisecond
	readEntity      = "account.A" // the entity the one-entity reads load
)

// readEntities are the entities the events are spread over.
var readEntities = []string{"account.A", "account.B", "account.C", "account.D"}

// readKind is one kind of read under test.
type readKind struct {
	name     string
	entity   string // the entity it reads; "" for the whole store
	snapshot bool   // it saves snapshots of entity
	// read makes one call within ctx and returns the sequences of the
	// events it applied, in the order applied, the sequence it reported
	// (Evolve's result; for Watch the last event applied before Stop), and
	// the last sequence applied when the call returned (for Watch, when it
	// had caught up).
	read func(ctx context.Context, s *rita.EventStore) (seqs []uint64, result, returned uint64, err error)
}

var (
	readEntityEvolve = readKind{name: "one-entity Evolve", entity: readEntity,
		read: func(ctx context.Context, s *rita.EventStore) ([]uint64, uint64, uint64, error) {
			var m seqModel
			last, err := s.Evolve(ctx, &m, rita.WithFilters(readEntity))
			return m.Seqs, last, last, err
		}}
	readStoreEvolve = readKind{name: "whole-store Evolve",
		read: func(ctx context.Context, s *rita.EventStore) ([]uint64, uint64, uint64, error) {
			var m seqModel
			last, err := s.Evolve(ctx, &m)
			return m.Seqs, last, last, err
		}}
	// The snapshot holds the sequences applied before it, so a call that
	// starts from one returns them too: what it returns is the entity's
	// whole history only if the snapshot and the tail after it are right.
	readSnapshotEvolve = readKind{name: "snapshot Evolve", entity: readEntity, snapshot: true,
		read: func(ctx context.Context, s *rita.EventStore) ([]uint64, uint64, uint64, error) {
			var m seqModel
			last, err := s.Evolve(ctx, &m, rita.WithFilters(readEntity), rita.WithSnapshot(rita.SnapshotConfig{Version: "1", Every: 5}))
			return m.Seqs, last, last, err
		}}
	readWatchSetup = readKind{name: "Watch setup", entity: readEntity,
		read: func(ctx context.Context, s *rita.EventStore) ([]uint64, uint64, uint64, error) {
			var r recorder
			w, err := s.Watch(ctx, &r, rita.WithFilters(readEntity))
			if err != nil {
				return nil, 0, 0, err
			}
			caughtUp := r.seqs()
			w.Stop()
			seqs := r.seqs()
			return seqs, lastOf(seqs), lastOf(caughtUp), nil
		}}
)

func lastOf(seqs []uint64) uint64 {
	if len(seqs) == 0 {
		return 0
	}
	return seqs[len(seqs)-1]
}

// seqModel records the sequences of the events it applies. It can be
// snapshotted: its state is that list.
type seqModel struct {
	Seqs []uint64 `json:"seqs"`
}

func (m *seqModel) Evolve(e *rita.Event) error {
	m.Seqs = append(m.Seqs, e.Sequence())
	return nil
}

func (m *seqModel) MarshalBinary() ([]byte, error) { return json.Marshal(m) }

func (m *seqModel) UnmarshalBinary(data []byte) error {
	*m = seqModel{}
	return json.Unmarshal(data, m)
}

// readFault is a fault done to the cluster while the readers read. It calls
// progressed between its steps, which returns once every reader has
// finished a few more calls.
type readFault struct {
	name string
	run  func(t *testing.T, f *faultEnv, admin *nats.Conn, store string, progressed func(what string))
}

var readFaults = []readFault{
	{"restart", func(t *testing.T, f *faultEnv, _ *nats.Conn, store string, progressed func(string)) {
		progressed("the readers read")
		leader := f.c.WaitStoreLeader(store)
		follower := f.c.Servers[0]
		if follower == leader {
			follower = f.c.Servers[1]
		}
		follower.Stop()
		progressed("the readers read without a follower")
		follower.Restart()
		f.c.WaitReady()
		f.c.WaitStoreCurrent(store)
		progressed("the readers read after the follower returned")
		leader = f.c.WaitStoreLeader(store)
		leader.Stop()
		f.c.WaitStoreLeader(store)
		progressed("the readers read without the leader")
		leader.Restart()
		f.c.WaitReady()
		f.c.WaitStoreCurrent(store)
		progressed("the readers read after the leader returned")
	}},
	{"stepdown", func(t *testing.T, f *faultEnv, admin *nats.Conn, store string, progressed func(string)) {
		progressed("the readers read")
		for i := range 2 {
			old := f.c.WaitStoreLeader(store)
			stepDown(t, admin, store)
			asked := time.Now()
			// A leader that stepped down may be elected again when no
			// other replica was current: ask again until another leads.
			waitFault(t, "another leader", func() bool {
				if l := f.c.StoreLeader(store); l != nil && l != old {
					return true
				}
				if time.Since(asked) > 5*time.Second {
					t.Logf("step-down %d: %s still leads after %v; asking again", i+1, old.Name(), time.Since(asked).Round(time.Millisecond))
					stepDown(t, admin, store)
					asked = time.Now()
				}
				return false
			})
			progressed(fmt.Sprintf("the readers read after step-down %d", i+1))
		}
	}},
}

// stepDown asks the leader of store's stream to step down, through nc, until
// it answers that it did.
func stepDown(t *testing.T, nc *nats.Conn, store string) {
	t.Helper()
	waitFault(t, "the stream leader steps down", func() bool {
		msg, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN.ES_"+store, nil, 5*time.Second)
		if err != nil {
			t.Logf("step-down request: %v", err)
			return false
		}
		var resp struct {
			Success bool                `json:"success"`
			Error   *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			t.Fatalf("step-down answer %q: %v", msg.Data, err)
		}
		if !resp.Success {
			t.Logf("step-down refused: %v", resp.Error)
		}
		return resp.Success
	})
}

// readCall is one successful call of a reader.
type readCall struct {
	reader   int
	seqs     []uint64
	result   uint64
	returned uint64
	acked    uint64 // the last matching sequence acknowledged before the call
}

// readerFigures are what one reader counts.
type readerFigures struct {
	calls   atomic.Int64 // finished, successful or not
	retried int          // calls during which the reader's Manager logged a read retry
	longest time.Duration
	failed  []string // errors, with how long the call took
	ok      []readCall
	retries retryCounter
}

func TestFaultReadEntityEvolve(t *testing.T)   { testReadFaults(t, readEntityEvolve) }
func TestFaultReadStoreEvolve(t *testing.T)    { testReadFaults(t, readStoreEvolve) }
func TestFaultReadSnapshotEvolve(t *testing.T) { testReadFaults(t, readSnapshotEvolve) }
func TestFaultReadWatchSetup(t *testing.T)     { testReadFaults(t, readWatchSetup) }

// testReadFaults runs kind through each fault of readFaults, on one cluster,
// each on a store of its own.
func testReadFaults(t *testing.T, kind readKind) {
	c := newFaultCluster(t).c
	for _, fault := range readFaults {
		t.Run(fault.name, func(t *testing.T) {
			runReadFault(t, &faultEnv{c: c}, kind, fault)
		})
	}
}

func runReadFault(t *testing.T, f *faultEnv, kind readKind, fault readFault) {
	store := fault.name
	admin := f.conn(t, 0)
	writer := createReplicated(t, f.manager(t, admin), store)

	var (
		fig   faultFigures
		mu    sync.Mutex
		acked = map[string]uint64{}
		last  = map[string]uint64{} // entity ("" for all) → its last acknowledged sequence
	)
	record := func(events []*rita.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			acked[e.ID] = e.Sequence()
			last[e.Entity] = max(last[e.Entity], e.Sequence())
			last[""] = max(last[""], e.Sequence())
		}
	}
	lastAcked := func(entity string) uint64 {
		mu.Lock()
		defer mu.Unlock()
		return last[entity]
	}
	for i := 0; i < readPrefill; i += 100 {
		batch := make([]*rita.Event, 100)
		for j := range batch {
			batch[j] = rawEvent(readEntities[j%len(readEntities)], "deposited", "x")
		}
		if _, err := appendSure(writer, batch, &fig); err != nil {
			t.Fatalf("prefill: %v", err)
		}
		record(batch)
	}

	bg := newBackground(t)
	// The writer appends one event every readWritePace, to each entity in
	// turn, until the readers are done.
	bg.Go(func() {
		tick := time.NewTicker(readWritePace)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-bg.stop:
				return
			case <-tick.C:
			}
			events := []*rita.Event{rawEvent(readEntities[i%len(readEntities)], "deposited", "x")}
			if _, err := appendSure(writer, events, &fig); err != nil {
				t.Errorf("writer: append: %v", err)
				return
			}
			record(events)
		}
	})

	readers := make([]*readerFigures, readReaders)
	for i := range readers {
		rf := &readerFigures{}
		readers[i] = rf
		nc := f.conn(t, i%len(f.c.Servers))
		m, err := rita.New(nc, rita.WithLogger(slog.New(&rf.retries)))
		requireNoError(t, err)
		s := openExisting(t, m, store)
		bg.Go(func() {
			for {
				select {
				case <-bg.stop:
					return
				default:
				}
				before := lastAcked(kind.entity)
				retries := rf.retries.reads.Load()
				ctx, cancel := context.WithTimeout(context.Background(), readCallTimeout)
				start := time.Now()
				seqs, result, returned, err := kind.read(ctx, s)
				took := time.Since(start)
				cancel()
				rf.longest = max(rf.longest, took)
				if rf.retries.reads.Load() > retries {
					rf.retried++
				}
				if err != nil {
					rf.failed = append(rf.failed, fmt.Sprintf("after %v: %v", took.Round(time.Millisecond), err))
				} else {
					rf.ok = append(rf.ok, readCall{reader: i, seqs: seqs, result: result, returned: returned, acked: before})
				}
				rf.calls.Add(1)
			}
		})
	}
	// progressed waits until every reader has finished readProgress more
	// calls.
	progressed := func(what string) {
		t.Helper()
		from := make([]int64, len(readers))
		for i, rf := range readers {
			from[i] = rf.calls.Load()
		}
		waitFault(t, what, func() bool {
			for i, rf := range readers {
				if rf.calls.Load() < from[i]+readProgress {
					return false
				}
			}
			return true
		})
	}

	began := time.Now()
	fault.run(t, f, admin, store, progressed)
	bg.halt()
	elapsed := time.Since(began)

	// The fresh read: every stored message, with raw JetStream.
	f.c.WaitStoreCurrent(store)
	msgs := readStored(t, admin, store)
	checkStored(t, msgs, acked, &fig)
	prefix := "$ES." + store + "."
	if kind.entity != "" {
		prefix += kind.entity + "."
	}
	var want []uint64 // the sequences the read matches, in stream order
	for _, m := range msgs {
		if strings.HasPrefix(m.subject, prefix) {
			want = append(want, m.seq)
		}
	}

	var (
		calls, retried, retries int64
		longest                 time.Duration
		failures                = map[string]int{}
		causes                  = map[string]int{}
		wrong                   int
	)
	for i, rf := range readers {
		calls += rf.calls.Load()
		retried += int64(rf.retried)
		retries += rf.retries.reads.Load()
		longest = max(longest, rf.longest)
		for cause, n := range rf.retries.readRetryCauses() {
			causes[cause] += n
		}
		for _, failure := range rf.failed {
			t.Errorf("%s, reader %d (server %d): call failed %s", kind.name, i, i+1, failure)
			_, err, _ := strings.Cut(failure, ": ")
			failures[err]++
		}
		for _, call := range rf.ok {
			if msg := checkReadCall(call, want); msg != "" {
				if wrong++; wrong <= 5 {
					t.Errorf("%s, reader %d: %s", kind.name, call.reader, msg)
				}
			}
		}
	}
	failed := 0
	for _, n := range failures {
		failed += n
	}
	t.Logf("%s, %s: %d calls in %v (%d stored events, %d matching), %d failed, %d wrong, %d needed retries (%d read retries logged), longest call %v",
		kind.name, fault.name, calls, elapsed.Round(time.Millisecond), len(msgs), len(want), failed, wrong, retried, retries, longest.Round(time.Millisecond))
	if failed > 0 {
		t.Logf("failures: %v", failures)
	}
	if len(causes) > 0 {
		t.Logf("reads retried after: %v", causes)
	}
	if wrong > 5 {
		t.Errorf("%s: %d calls returned wrong events (first 5 shown)", kind.name, wrong)
	}
	if kind.snapshot {
		// The bucket keeps one value per key: the revision of the
		// entity's one key counts the snapshots saved.
		js, err := jetstream.New(admin)
		requireNoError(t, err)
		var entry jetstream.KeyValueEntry
		err = askFault(t, "the snapshot", func(ctx context.Context) error {
			kv, err := js.KeyValue(ctx, "rita-snapshots-"+store)
			if err == nil {
				entry, err = kv.Get(ctx, readEntity+".default")
			}
			return err
		})
		if err != nil {
			t.Errorf("the snapshot of %s: %v; no call saved one", readEntity, err)
		} else {
			t.Logf("snapshots of %s saved: %d", readEntity, entry.Revision())
		}
	}
	fig.report(t, &f.retries)
}

// checkReadCall returns what is wrong with call, given the sequences a
// fresh read matches (want, in stream order), or "".
func checkReadCall(call readCall, want []uint64) string {
	n := sort.Search(len(want), func(i int) bool { return want[i] > call.result })
	expected := want[:n]
	switch {
	case call.result != lastOf(call.seqs):
		return fmt.Sprintf("reported sequence %d, but the last event applied is %d", call.result, lastOf(call.seqs))
	case call.returned < call.acked:
		return fmt.Sprintf("returned at %d, before event %d, acknowledged before the call began", call.returned, call.acked)
	case !slices.Equal(call.seqs, expected):
		i := firstSeqDiff(call.seqs, expected)
		return fmt.Sprintf("applied %d events up to %d, the store holds %d; first difference at %d: %v, want %v",
			len(call.seqs), call.result, len(expected), i, window(call.seqs, i), window(expected, i))
	}
	return ""
}

// window returns a few sequences of s around i.
func window(s []uint64, i int) []uint64 {
	return s[max(0, i-2):min(len(s), i+3)]
}
