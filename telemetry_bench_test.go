package rita_test

import (
	"context"
	"fmt"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// What tracing costs: Append of one event and a whole-store Evolve of 1,000
// events, with no tracer provider (the global no-op one) and with the SDK
// sampling every span, batched into an in-memory exporter that is reset as
// it goes.
// The same server, store and data for both; see docs/observability.md.
func BenchmarkTelemetry(b *testing.B) {
	srv := ritatest.NewServer(b)
	nc := srv.Connect(b)
	ctx := context.Background()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = tp.Shutdown(ctx) })
	for _, tracing := range []string{"none", "sdk"} {
		var opts []rita.ManagerOption
		if tracing == "sdk" {
			opts = append(opts, rita.WithTracerProvider(tp))
		}
		m, err := rita.New(nc, opts...)
		if err != nil {
			b.Fatal(err)
		}
		s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "telemetry_" + tracing})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("op=append/tracing="+tracing, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Append(ctx, []*rita.Event{{Entity: fmt.Sprintf("order.%d", i%100), Type: "placed", Data: []byte(`{"amount":42}`)}}); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					exp.Reset()
				}
			}
		})
		b.Run("op=evolve1000/tracing="+tracing, func(b *testing.B) {
			b.ReportAllocs()
			var n evolveCounter
			for b.Loop() {
				if _, err := s.Evolve(ctx, &n, rita.WithStopSequence(1000)); err != nil {
					b.Fatal(err)
				}
				exp.Reset()
			}
		})
	}
}
