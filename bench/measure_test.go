package bench

import (
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"
)

// pair runs the library side and the raw side of one comparison as the
// sub-benchmarks impl=lib and impl=raw, in the order RITA_BENCH_ORDER asks
// for (the run script alternates it between rounds, so that neither side
// always runs on a warmer or cooler machine).
func pair(b *testing.B, lib, raw func(b *testing.B)) {
	first, second := named{"impl=lib", lib}, named{"impl=raw", raw}
	if os.Getenv(envOrder) == "raw-first" {
		first, second = second, first
	}
	b.Run(first.name, first.fn)
	b.Run(second.name, second.fn)
}

type named struct {
	name string
	fn   func(b *testing.B)
}

// latencies collects the duration of each operation of a benchmark.
type latencies struct {
	d []time.Duration
}

func (l *latencies) add(d time.Duration) { l.d = append(l.d, d) }

// report adds the 50th and 99th percentiles, in µs, as metrics named
// prefix+"p50-µs" and prefix+"p99-µs".
func (l *latencies) report(b *testing.B, prefix string) {
	if len(l.d) == 0 {
		return
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), prefix+"p50-µs")
	b.ReportMetric(at(0.99), prefix+"p99-µs")
}

// rate reports events/s for n events done in the benchmark's time.
func rate(b *testing.B, n int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, "events/s")
	}
}

// allocCounter measures the allocations of a stretch of a benchmark, and
// the CPU time the process spent on it (the embedded server's included).
// On a busy machine the CPU time per event varies much less than the time
// per event: it shows what a change costs when other processes make the
// wall clock unreliable.
type allocCounter struct {
	start runtime.MemStats
	cpu   time.Duration
}

func (a *allocCounter) begin() {
	runtime.ReadMemStats(&a.start)
	a.cpu = processCPU()
}

// report adds allocs/event, B/event and cpu-ns/event over n events since
// begin.
func (a *allocCounter) report(b *testing.B, n int) {
	cpu := processCPU() - a.cpu
	var end runtime.MemStats
	runtime.ReadMemStats(&end)
	if n == 0 {
		return
	}
	b.ReportMetric(float64(end.Mallocs-a.start.Mallocs)/float64(n), "allocs/event")
	b.ReportMetric(float64(end.TotalAlloc-a.start.TotalAlloc)/float64(n), "B/event")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/event")
	}
}

// heapPeak samples the live heap (as of the last garbage collection) every
// few milliseconds and keeps the largest, to show whether reading a store
// buffers it (the peak grows with the store) or streams it (it stays flat).
// The server runs in the same process, so the peak includes what it holds
// (block caches of file stores): what tells is the library's peak against
// the raw side's, in the same store. (The bytes of all heap objects, live or
// not yet collected, would mostly show the collector's pacing: with a 1M-event
// memory store in the heap it lets garbage grow to about as much again.)
type heapPeak struct {
	stop chan struct{}
	done sync.WaitGroup
	base uint64
	max  uint64
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{})}
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	h.base = sample[0].Value.Uint64()
	h.done.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			h.max = max(h.max, sample[0].Value.Uint64())
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

// report stops sampling and adds the peak live heap, above the live heap at
// the start, as live-heap-MB.
func (h *heapPeak) report(b *testing.B) {
	close(h.stop)
	h.done.Wait()
	b.ReportMetric(float64(h.max-min(h.max, h.base))/(1<<20), "live-heap-MB")
}
