package rita_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// BenchmarkPartitioned measures the events a partitioned reactor handles
// per second when its handler takes 5 ms (a call to a slow service), run
// by 1, 2, 4 and 8 processes (a connection and Manager each) sharing 16
// partitions, each process handling up to 8 events at once; the events
// (b.N, over 200 entities) are appended once every process holds its
// share; "plain" is one process of a plain reactor, for comparison. Run
// with a fixed count, e.g. -benchtime=4000x: each op is one event, and
// events/s is the figure to compare.
func BenchmarkPartitioned(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchPartitioned(b, 1, 0, 5*time.Millisecond) })
	for _, procs := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("processes=%d", procs), func(b *testing.B) {
			benchPartitioned(b, procs, 16, 5*time.Millisecond)
		})
	}
}

// BenchmarkPartitionedCost is the cost per event of partitioning, with a
// handler that does nothing: one process running a plain reactor, and one
// running a reactor of 16 partitions, each with concurrency 8.
func BenchmarkPartitionedCost(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchPartitioned(b, 1, 0, 0) })
	b.Run("partitions=1", func(b *testing.B) { benchPartitioned(b, 1, 1, 0) })
	b.Run("partitions=16", func(b *testing.B) { benchPartitioned(b, 1, 16, 0) })
}

// benchPartitioned runs procs processes of a reactor with partitions
// partitions (0: a plain one) and a handler taking work per event.
func benchPartitioned(b *testing.B, procs, partitions int, work time.Duration) {
	srv := ritatest.NewServer(b)
	ctx := context.Background()
	var handled atomic.Int64
	byProc := make([]atomic.Int64, procs)
	handlerOf := func(proc int) func(context.Context, *rita.Event) error {
		return func(context.Context, *rita.Event) error {
			if work > 0 {
				time.Sleep(work)
			}
			byProc[proc].Add(1)
			handled.Add(1)
			return nil
		}
	}
	opts := []rita.DurableOption{rita.WithConcurrency(8)}
	if partitions > 0 {
		opts = append(opts, rita.WithPartitions(partitions))
	}
	var store *rita.EventStore
	var subs []*rita.Subscription
	for i := range procs {
		nc := srv.Connect(b, nats.Name(fmt.Sprintf("p%d", i)))
		m, err := rita.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		store = s
		r, err := s.Durable("bench").React(ctx, handlerOf(i), opts...)
		if err != nil {
			b.Fatal(err)
		}
		subs = append(subs, r)
	}
	ents := entities(200)
	appendAll := func(n int) {
		for done := 0; done < n; {
			k := min(n-done, rita.MaxBatchSize)
			batch := make([]*rita.Event, k)
			for i := range batch {
				batch[i] = rawEvent(ents[(done+i)%len(ents)], "placed", "x")
			}
			if _, err := store.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			done += k
		}
	}
	// Rounds of one event per entity until every process takes part in
	// one (the group has settled), and one more.
	for settled := 0; settled < 2; {
		for i := range byProc {
			byProc[i].Store(0)
		}
		handled.Store(0)
		appendAll(len(ents))
		waitCount(b, &handled, int64(len(ents)))
		all := true
		for i := range byProc {
			all = all && byProc[i].Load() > 0
		}
		if all || settled > 0 {
			settled++
		}
	}
	handled.Store(0)
	b.ResetTimer()
	start := time.Now()
	appendAll(b.N)
	waitCount(b, &handled, int64(b.N))
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	for _, r := range subs {
		if err := r.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
