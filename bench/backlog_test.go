package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/synadia-labs/rita"
)

// BenchmarkBacklog measures the memory of a durable consumer that starts far
// behind: a durable Watch and a reactor, each new, catch up on a whole store
// (100k events; 1M with RITA_BENCH_LARGE=1). live-heap-MB is the peak of the
// live heap above where it started (see heapPeak; the server's own share is
// in it too): it should be the same for both sizes, since the consumer keeps
// at most its MaxAckPending events (1000) in the client, however long the
// backlog. No raw side: it is a bound, not a ratio.
func BenchmarkBacklog(b *testing.B) {
	for _, n := range the.sizes() {
		for _, kind := range []string{"durable-watch", "react"} {
			b.Run("events="+sizeName(n)+"/"+kind, func(b *testing.B) {
				f := getFixture(b, jetstream.FileStorage, n)
				m := manager(b, the.connect(b))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				s, err := m.GetEventStore(ctx, f.name)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					d := s.Durable("backlog-" + nuid.Next())
					var seen atomic.Int64
					count := func(*rita.Event) error { seen.Add(1); return nil }
					h := startHeapPeak()
					start := time.Now()
					var sub *rita.Subscription
					if kind == "durable-watch" {
						sub, err = d.Watch(ctx, rita.EvolverFunc(count))
					} else {
						sub, err = d.React(ctx, func(_ context.Context, e *rita.Event) error { return count(e) })
					}
					if err == nil {
						err = d.WaitCaughtUp(ctx)
					}
					if err != nil {
						b.Fatal(err)
					}
					took := time.Since(start)
					h.report(b)
					b.ReportMetric(float64(n)/took.Seconds(), "events/s")
					if got := seen.Load(); got < int64(n) {
						b.Fatalf("%d events handled, want %d", got, n)
					}
					b.StopTimer()
					if err := sub.Stop(ctx); err != nil {
						b.Fatal(err)
					}
					if err := d.Delete(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}
