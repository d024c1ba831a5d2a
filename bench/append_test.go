package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/synadia-labs/rita"
)

// Pairs 1 to 3: appending, each library call beside the raw JetStream
// publish that stores the same message with the same headers. Every
// sub-benchmark writes to a new, empty store of its own, deleted afterwards.

var storeSeq atomic.Int64

// newStore creates an empty store on be (with be's replicas, its leader
// placed) and deletes it when b ends.
func (be *backend) newStore(b *testing.B, m *rita.Manager, storage jetstream.StorageType) (string, *rita.EventStore) {
	b.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("append_%d_%d", time.Now().UnixNano()%1e6, storeSeq.Add(1))
	s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: name, Storage: storage, Replicas: be.replicas})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.DeleteEventStore(context.Background(), name) })
	if err := be.placeLeader(ctx, name); err != nil {
		b.Fatal(err)
	}
	return name, s
}

// rawMsg builds what a hand-written program publishes for the k-th event of
// order n on raw JetStream: the subject and headers of rita's wire format,
// and the payload encoded with encoding/json. expect < 0 means no
// expectation.
func rawMsg(store string, n, k int, expect int64) *nats.Msg {
	typ, v := orderEvent(n, k)
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	entity := "order." + strconv.Itoa(n)
	h := nats.Header{
		"Nats-Msg-Id": {nuid.Next()},
		"Rita-Type":   {typ},
		"Rita-Entity": {entity},
		"Rita-Time":   {time.Now().Format(time.RFC3339Nano)},
		"Rita-Codec":  {"json"},
	}
	if expect >= 0 {
		h["Nats-Expected-Last-Subject-Sequence"] = []string{strconv.FormatInt(expect, 10)}
		h["Nats-Expected-Last-Subject-Sequence-Subject"] = []string{"$ES." + store + "." + entity + ".*"}
	}
	return &nats.Msg{Subject: "$ES." + store + "." + entity + "." + typ, Header: h, Data: data}
}

// libEvent is the k-th event of order n as an application hands it to Append.
func libEvent(n, k int) *rita.Event {
	_, v := orderEvent(n, k)
	return &rita.Event{Entity: "order." + strconv.Itoa(n), Data: v}
}

// BenchmarkAppend is pair 1: Append of one event with Expect, against a raw
// synchronous publish of the same message. One goroutine appends to one
// entity, each event expecting the sequence of the one before.
func BenchmarkAppend(b *testing.B) {
	for _, be := range backends(b) {
		for _, st := range storages {
			b.Run(be.prefix+"storage="+st.name, func(b *testing.B) {
				pair(b, func(b *testing.B) {
					m := manager(b, be.connect(b))
					_, s := be.newStore(b, m, st.typ)
					ctx := context.Background()
					var lat latencies
					var last uint64
					b.ReportAllocs()
					k := 0
					for b.Loop() {
						e := libEvent(1, k%eventsPerEntity)
						e.Expect = rita.ExpectSequence(last)
						start := time.Now()
						seq, err := s.Append(ctx, []*rita.Event{e})
						lat.add(time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
						last = seq
						k++
					}
					rate(b, b.N)
					lat.report(b, "")
				}, func(b *testing.B) {
					nc := be.connect(b)
					js, err := jetstream.New(nc)
					if err != nil {
						b.Fatal(err)
					}
					name, _ := be.newStore(b, manager(b, nc), st.typ)
					ctx := context.Background()
					var lat latencies
					var last uint64
					b.ReportAllocs()
					k := 0
					for b.Loop() {
						msg := rawMsg(name, 1, k%eventsPerEntity, int64(last))
						start := time.Now()
						ack, err := js.PublishMsg(ctx, msg)
						lat.add(time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
						last = ack.Sequence
						k++
					}
					rate(b, b.N)
					lat.report(b, "")
				})
			})
		}
	}
}

// concurrency and window of pair 2.
const (
	appenders   = 64
	asyncWindow = 256
	// stallWait is how long an asynchronous publish waits for room in the
	// window: the default 200 ms is too short for a busy machine running
	// a replicated store, and a publish that gives up fails the benchmark.
	stallWait = 30 * time.Second
)

// BenchmarkAppendConcurrent is pair 2: 64 goroutines calling Append, each on
// an entity of its own, against one raw asynchronous publisher keeping 256
// publishes in flight. b.N is the number of events in all.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, be := range backends(b) {
		for _, st := range storages {
			b.Run(be.prefix+"storage="+st.name, func(b *testing.B) {
				pair(b, func(b *testing.B) {
					m := manager(b, be.connect(b))
					_, s := be.newStore(b, m, st.typ)
					ctx := context.Background()
					var next atomic.Int64
					var failed atomic.Value
					b.ReportAllocs()
					b.ResetTimer()
					var wg sync.WaitGroup
					for g := range appenders {
						wg.Go(func() {
							for k := 0; ; k++ {
								if next.Add(1) > int64(b.N) {
									return
								}
								if _, err := s.Append(ctx, []*rita.Event{libEvent(g+1, k%eventsPerEntity)}); err != nil {
									failed.Store(err)
									return
								}
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					if err, _ := failed.Load().(error); err != nil {
						b.Fatal(err)
					}
					rate(b, b.N)
				}, func(b *testing.B) {
					rawAsync(b, be, st.typ, asyncWindow)
				})
			})
		}
	}
}

// BenchmarkAppendAsync is pair 2's bulk form: one goroutine keeping 256
// events in flight with AppendAsync, each on one of 64 entities, waiting
// for the oldest when the window is full, against the same raw
// asynchronous publisher as pair 2.
func BenchmarkAppendAsync(b *testing.B) {
	for _, be := range backends(b) {
		for _, st := range storages {
			b.Run(be.prefix+"storage="+st.name, func(b *testing.B) {
				pair(b, func(b *testing.B) {
					m := manager(b, be.connect(b))
					_, s := be.newStore(b, m, st.typ)
					ctx := context.Background()
					window := make([]*rita.PendingAppend, 0, asyncWindow)
					b.ReportAllocs()
					b.ResetTimer()
					for i := range b.N {
						if len(window) == asyncWindow {
							if _, err := window[0].Wait(ctx); err != nil {
								b.Fatal(err)
							}
							window = window[1:]
						}
						p, err := s.AppendAsync(ctx, libEvent(i%appenders+1, (i/appenders)%eventsPerEntity))
						if err != nil {
							b.Fatal(err)
						}
						window = append(window, p)
					}
					for _, p := range window {
						if _, err := p.Wait(ctx); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					rate(b, b.N)
				}, func(b *testing.B) {
					rawAsync(b, be, st.typ, asyncWindow)
				})
			})
		}
	}
}

// rawAsync is the raw side of pair 2 and of BenchmarkAppendAsync: one
// asynchronous publisher keeping window publishes in flight, on 64
// entities.
func rawAsync(b *testing.B, be *backend, storage jetstream.StorageType, window int) {
	nc := be.connect(b)
	var errs atomic.Int64
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { errs.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	name, _ := be.newStore(b, manager(b, nc), storage)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		msg := rawMsg(name, i%appenders+1, (i/appenders)%eventsPerEntity, -1)
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(stallWait)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("async publishes not acknowledged within a minute")
	}
	b.StopTimer()
	if n := errs.Load(); n > 0 {
		b.Fatalf("%d async publishes failed", n)
	}
	rate(b, b.N)
}

// BenchmarkAppendBatch is pair 3: Append of 10 and of 100 events of one
// entity, the first with Expect (as Model.Decide stamps them), against the
// raw atomic batch publish of the same messages: the staged messages
// published, the last one a request carrying the commit.
func BenchmarkAppendBatch(b *testing.B) {
	for _, be := range backends(b) {
		for _, st := range storages {
			for _, size := range []int{10, 100} {
				b.Run(fmt.Sprintf("%sstorage=%s/events=%d", be.prefix, st.name, size), func(b *testing.B) {
					pair(b, func(b *testing.B) {
						m := manager(b, be.connect(b))
						_, s := be.newStore(b, m, st.typ)
						ctx := context.Background()
						var lat latencies
						var last uint64
						b.ReportAllocs()
						for b.Loop() {
							events := make([]*rita.Event, size)
							for k := range events {
								events[k] = libEvent(1, k)
							}
							events[0].Expect = rita.ExpectSequence(last)
							start := time.Now()
							seq, err := s.Append(ctx, events)
							lat.add(time.Since(start))
							if err != nil {
								b.Fatal(err)
							}
							last = seq
						}
						rate(b, b.N*size)
						lat.report(b, "")
					}, func(b *testing.B) {
						nc := be.connect(b)
						name, _ := be.newStore(b, manager(b, nc), st.typ)
						var lat latencies
						var last uint64
						b.ReportAllocs()
						for b.Loop() {
							msgs := make([]*nats.Msg, size)
							for k := range msgs {
								expect := int64(-1)
								if k == 0 {
									expect = int64(last)
								}
								msgs[k] = rawMsg(name, 1, k, expect)
							}
							start := time.Now()
							seq, err := rawBatch(nc, msgs)
							lat.add(time.Since(start))
							if err != nil {
								b.Fatal(err)
							}
							last = seq
						}
						rate(b, b.N*size)
						lat.report(b, "")
					})
				})
			}
		}
	}
}

// rawBatch publishes msgs as one atomic batch and returns the sequence of
// the last one. Like jetstream's synchronous publish, it tries again for a
// while when nobody answers: a stream that has just been created, or whose
// leader has just changed, may not have the interest of the connected
// server yet, and then nothing of the batch was received.
func rawBatch(nc *nats.Conn, msgs []*nats.Msg) (uint64, error) {
	for attempt := 1; ; attempt++ {
		seq, err := rawBatchOnce(nc, msgs)
		if !errors.Is(err, nats.ErrNoResponders) || attempt == 20 {
			return seq, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawBatchOnce sends msgs as one atomic batch, under a new batch ID.
func rawBatchOnce(nc *nats.Conn, msgs []*nats.Msg) (uint64, error) {
	id := nuid.Next()
	for i, m := range msgs {
		m.Header["Nats-Batch-Id"] = []string{id}
		m.Header["Nats-Batch-Sequence"] = []string{strconv.Itoa(i + 1)}
	}
	last := msgs[len(msgs)-1]
	last.Header["Nats-Batch-Commit"] = []string{"1"}
	for _, m := range msgs[:len(msgs)-1] {
		if err := nc.PublishMsg(m); err != nil {
			return 0, err
		}
	}
	resp, err := nc.RequestMsg(last, 5*time.Second)
	if err != nil {
		return 0, err
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
		Seq   uint64              `json:"seq"`
		Count int                 `json:"count"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, err
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.Count != len(msgs) {
		return 0, fmt.Errorf("batch of %d acknowledged with count %d", len(msgs), ack.Count)
	}
	return ack.Seq, nil
}

// BenchmarkAppendConcurrentOptions puts pair 2 in context: 64 goroutines
// each publishing synchronously on raw JetStream (what Append does); one
// asynchronous publisher limited to 64 in flight; and 64 goroutines each
// publishing asynchronously and waiting for its acknowledgement (what Append
// could do instead, see BENCHMARKS.md).
func BenchmarkAppendConcurrentOptions(b *testing.B) {
	be := the
	for _, st := range storages {
		b.Run("storage="+st.name+"/method=raw-sync-64", func(b *testing.B) {
			nc := be.connect(b)
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			name, _ := be.newStore(b, manager(b, nc), st.typ)
			ctx := context.Background()
			var next atomic.Int64
			var failed atomic.Value
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range appenders {
				wg.Go(func() {
					for k := 0; ; k++ {
						if next.Add(1) > int64(b.N) {
							return
						}
						if _, err := js.PublishMsg(ctx, rawMsg(name, g+1, k%eventsPerEntity, -1)); err != nil {
							failed.Store(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			rate(b, b.N)
		})
		b.Run("storage="+st.name+"/method=raw-async-64", func(b *testing.B) {
			rawAsync(b, be, st.typ, appenders)
		})
		b.Run("storage="+st.name+"/method=raw-async-wait-64", func(b *testing.B) {
			nc := be.connect(b)
			js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncWindow))
			if err != nil {
				b.Fatal(err)
			}
			name, _ := be.newStore(b, manager(b, nc), st.typ)
			var next atomic.Int64
			var failed atomic.Value
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range appenders {
				wg.Go(func() {
					for k := 0; ; k++ {
						if next.Add(1) > int64(b.N) {
							return
						}
						f, err := js.PublishMsgAsync(rawMsg(name, g+1, k%eventsPerEntity, -1))
						if err != nil {
							failed.Store(err)
							return
						}
						select {
						case <-f.Ok():
						case err := <-f.Err():
							failed.Store(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			rate(b, b.N)
		})
	}
}
