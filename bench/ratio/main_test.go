package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkAppend/storage=file/impl=lib-2   	 1000	 100 ns/op	 9500 events/s	 90 p50-µs
BenchmarkAppend/storage=file/impl=raw-2   	 1000	 100 ns/op	 10000 events/s	 80 p50-µs
BenchmarkAppend/storage=file/impl=lib-2   	 1000	 100 ns/op	 9400 events/s	 90 p50-µs
BenchmarkAppend/storage=file/impl=raw-2   	 1000	 100 ns/op	 10000 events/s	 80 p50-µs
BenchmarkAppend/storage=file/impl=lib-2   	 1000	 100 ns/op	 9600 events/s	 90 p50-µs
BenchmarkAppend/storage=file/impl=raw-2   	 1000	 100 ns/op	 10000 events/s	 80 p50-µs
BenchmarkEvolveStore/storage=file/events=100k/impl=lib-2 1 5 ns/op 40 allocs/event 30 live-heap-MB 100 events/s
BenchmarkEvolveStore/storage=file/events=100k/impl=raw-2 1 5 ns/op 36 allocs/event 30 live-heap-MB 100 events/s
BenchmarkLoadEntitySnapshot/storage=file/events=100k/tail=0-2 100 5 ns/op 150 p50-µs
BenchmarkAppendConcurrentOptions/storage=mem/method=raw-async-64-2 1000 5 ns/op 45000 events/s
BenchmarkAppendConcurrentOptions/storage=mem/method=raw-sync-64-2 1000 5 ns/op 32000 events/s
BenchmarkAppendConcurrent/storage=mem/impl=raw-2 1000 5 ns/op 72000 events/s
BenchmarkLoadEntitySnapshot/storage=file/events=1M/tail=0-2 100 5 ns/op 160 p50-µs
PASS
`

func TestParseAndReport(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := res["BenchmarkAppend/storage=file/impl=lib"]["events/s"]; len(got) != 3 || got[2] != 9600 {
		t.Fatalf("events/s of lib = %v", got)
	}
	if s := summarize([]float64{9500, 9400, 9600}); s.median != 9500 || s.n != 3 {
		t.Fatalf("summarize = %+v", s)
	}
	var out bytes.Buffer
	report(&out, res)
	for _, want := range []string{
		"Append/storage=file",
		"0.950  >= 0.95: met",
		"EvolveStore/storage=file/events=100k",
		"+4.0  lib-raw <= 3: NOT met",
		"3 checked, 2 met, 1 not met",
		"NOT met: pair 7 EvolveStore/storage=file/events=100k allocs/event +4.0",
		"4    EvolveStore/storage=file/events=100k",
		"1.07  met",
		"mem   raw-async-64            45000.0 ±0%  0.625  one goroutine, 64 in flight",
		"mem   raw-sync-64             32000.0 ±0%  0.444  64 goroutines, each a synchronous publish",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
