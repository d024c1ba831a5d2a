package main

// Benchmarks of what rita export and rita import do (the library's Export
// and Import), each against the plainest JetStream way to move the same
// messages on the same server: an ordered consumer that reads them, an
// asynchronous publish that stores them. Each reports the time per event of
// both, their ratio (x-raw), and the peak of the heap in use above where
// it started while rita's side ran (peak-heap-MB), for stores of 10k and
// 100k events: flat memory shows as the same peak for both sizes. (The
// server runs in the same process, so its own memory is in the peak too.)
//
//	cd cmd/rita && go test -run '^$' -bench . -benchtime 3x

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
)

// benchServer is one embedded server for the benchmarks, with a store of
// each size.
type benchServer struct {
	srv *embedded.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	m   *rita.Manager
}

var (
	benchOnce sync.Once
	bench     *benchServer
	benchErr  error
	benchSize = []int{10_000, 100_000}

	// benchCleanup stops the server and removes its stores (TestMain).
	benchCleanup = func() {}
)

func benchEnv(b *testing.B) *benchServer {
	b.Helper()
	benchOnce.Do(func() {
		ctx := context.Background()
		// Not b.TempDir: that goes when the benchmark that made it ends,
		// and the server (and its stores) serve every benchmark.
		dir, err := os.MkdirTemp("", "rita-bench")
		if err != nil {
			benchErr = err
			return
		}
		benchCleanup = func() {
			bench.nc.Close()
			bench.srv.Shutdown()
			os.RemoveAll(dir)
		}
		srv, err := embedded.Start(ctx, embedded.Options{Dir: dir})
		if err != nil {
			benchErr = err
			return
		}
		nc, err := srv.Connect()
		if err != nil {
			benchErr = err
			return
		}
		js, _ := jetstream.New(nc)
		m, _ := rita.New(nc)
		bench = &benchServer{srv: srv, nc: nc, js: js, m: m}
		for _, n := range benchSize {
			s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: fmt.Sprintf("src%d", n)})
			if err != nil {
				benchErr = err
				return
			}
			fill(b, s, n)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

// peakHeap samples the heap in use while fn runs and returns its peak
// above the heap in use before, after a collection.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	fn()
	close(done)
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// rawRead reads every message of stream with an ordered consumer.
func rawRead(b *testing.B, js jetstream.JetStream, stream string, n int) {
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	var sum int
	for range n {
		msg, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		sum += len(msg.Data())
	}
	if sum == 0 {
		b.Fatal("read nothing")
	}
}

// BenchmarkExport: rita's Export to io.Discard against an ordered consumer
// that reads the same messages.
func BenchmarkExport(b *testing.B) {
	env := benchEnv(b)
	for _, n := range benchSize {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			name := fmt.Sprintf("src%d", n)
			s, err := env.m.GetEventStore(context.Background(), name)
			if err != nil {
				b.Fatal(err)
			}
			var raw, ours time.Duration
			var peak uint64
			for b.Loop() {
				start := time.Now()
				rawRead(b, env.js, "ES_"+name, n)
				raw += time.Since(start)
				start = time.Now()
				peak = max(peak, peakHeap(func() {
					res, err := s.Export(context.Background(), io.Discard)
					if err != nil || res.Events != uint64(n) {
						b.Fatalf("Export = %+v, %v", res, err)
					}
				}))
				ours += time.Since(start)
			}
			report(b, n, raw, ours, peak)
		})
	}
}

// BenchmarkImport: rita's Import of an export into a new store against an
// asynchronous publish of the same messages into a new stream.
func BenchmarkImport(b *testing.B) {
	env := benchEnv(b)
	ctx := context.Background()
	for _, n := range benchSize {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			src, err := env.m.GetEventStore(ctx, fmt.Sprintf("src%d", n))
			if err != nil {
				b.Fatal(err)
			}
			var export bytes.Buffer
			if res, err := src.Export(ctx, &export); err != nil || res.Events != uint64(n) {
				b.Fatalf("Export = %+v, %v", res, err)
			}
			msgs := make([]*nats.Msg, 0, n)
			for ev, err := range src.RawEvents(ctx) {
				if err != nil {
					b.Fatal(err)
				}
				m := nats.NewMsg("$ES.raw." + ev.Entity + "." + ev.Type)
				m.Header.Set("Nats-Msg-Id", ev.ID)
				m.Header.Set("Rita-Type", ev.Type)
				m.Header.Set("Rita-Entity", ev.Entity)
				m.Header.Set("Rita-Time", ev.Time.Format(time.RFC3339Nano))
				for k, v := range ev.Meta {
					m.Header["Rita-Meta-"+k] = []string{v}
				}
				m.Data = ev.Data
				msgs = append(msgs, m)
			}
			var raw, ours time.Duration
			var peak uint64
			round := 0
			for b.Loop() {
				round++
				b.StopTimer()
				_ = env.js.DeleteStream(ctx, "ES_raw")
				if _, err := env.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ES_raw", Subjects: []string{"$ES.raw.>"}, AllowDirect: true, AllowAtomicPublish: true}); err != nil {
					b.Fatal(err)
				}
				dst, err := env.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: fmt.Sprintf("dst%d_%d", n, round)})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()

				start := time.Now()
				for _, m := range msgs {
					if _, err := env.js.PublishMsgAsync(m); err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-env.js.PublishAsyncComplete():
				case <-time.After(time.Minute):
					b.Fatal("async publish did not complete")
				}
				raw += time.Since(start)

				start = time.Now()
				peak = max(peak, peakHeap(func() {
					res, err := dst.Import(ctx, bytes.NewReader(export.Bytes()))
					if err != nil || res.Stored != uint64(n) {
						b.Fatalf("Import = %+v, %v", res, err)
					}
				}))
				ours += time.Since(start)

				b.StopTimer()
				_ = env.m.DeleteEventStore(ctx, dst.Name())
				b.StartTimer()
			}
			report(b, n, raw, ours, peak)
		})
	}
}

// report reports the time per event of both sides, their ratio and rita's
// peak heap.
func report(b *testing.B, n int, raw, ours time.Duration, peak uint64) {
	rounds := float64(b.N)
	b.ReportMetric(float64(raw.Nanoseconds())/rounds/float64(n), "raw-ns/event")
	b.ReportMetric(float64(ours.Nanoseconds())/rounds/float64(n), "rita-ns/event")
	b.ReportMetric(float64(ours)/float64(raw), "x-raw")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// BenchmarkCommandMemory runs the built command, rita export and rita
// import, as processes of their own against the benchmark server, and
// reports the most memory each held (its peak resident set): the same for
// 10k and 100k events is memory flat in the store's size.
func BenchmarkCommandMemory(b *testing.B) {
	env := benchEnv(b)
	for _, n := range benchSize {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			file := filepath.Join(b.TempDir(), "export.jsonl")
			var exportRSS, importRSS int64
			round := 0
			for b.Loop() {
				round++
				exportRSS = max(exportRSS, runMeasured(b, env, "export", fmt.Sprintf("src%d", n), "--output", file))
				dst := fmt.Sprintf("mem%d_%d", n, round)
				importRSS = max(importRSS, runMeasured(b, env, "import", dst, "--input", file, "--create"))
				b.StopTimer()
				_ = env.m.DeleteEventStore(context.Background(), dst)
				b.StartTimer()
			}
			b.ReportMetric(float64(exportRSS)/1024, "export-peak-rss-MB")
			b.ReportMetric(float64(importRSS)/1024, "import-peak-rss-MB")
		})
	}
}

// runMeasured runs the command and returns the most memory it held, in
// KiB: the peak of its resident set, sampled from /proc every few
// milliseconds while it runs (the rusage of a child counts what it shared
// with this process before it started the command).
func runMeasured(b *testing.B, env *benchServer, args ...string) int64 {
	b.Helper()
	c := exec.Command(ritaBin, append([]string{"--server", env.srv.ClientURL()}, args...)...)
	c.Env = append(os.Environ(), "NATS_CONTEXT=", "XDG_CONFIG_HOME="+b.TempDir())
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var peak int64
	status := fmt.Sprintf("/proc/%d/status", c.Process.Pid)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				b.Fatalf("rita %v: %v\n%s", args, err, out.String())
			}
			return peak
		case <-tick.C:
			if data, err := os.ReadFile(status); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
						kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
						peak = max(peak, kb)
					}
				}
			}
		}
	}
}
