package rita_test

import (
	"context"
	"fmt"
	"log"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/synadia-labs/rita"
)

// A Manager with a tracer provider records a span for each operation, and
// the events it appends carry the trace: reading one back, TraceContext
// continues the trace of the append that stored it. Any OpenTelemetry SDK
// setup works; this one keeps the spans in memory.
func ExampleWithTracerProvider() {
	nc, stop := runServer()
	defer stop()
	ctx := context.Background()

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(ctx)
	m, err := rita.New(nc, rita.WithTracerProvider(tp))
	if err != nil {
		log.Fatal(err)
	}
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "orders"})
	if err != nil {
		log.Fatal(err)
	}

	// The request that brings the command has a span of its own.
	reqCtx, req := tp.Tracer("shop").Start(ctx, "POST /orders")
	_, err = store.Append(reqCtx, []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte(`{}`)}})
	req.End()
	if err != nil {
		log.Fatal(err)
	}

	var stored *rita.Event
	_, err = store.Evolve(ctx, rita.EvolverFunc(func(e *rita.Event) error { stored = e; return nil }))
	if err != nil {
		log.Fatal(err)
	}
	continued := trace.SpanContextFromContext(stored.TraceContext(ctx))
	fmt.Println("event in the request's trace:", continued.TraceID() == req.SpanContext().TraceID())
	for _, s := range spans.GetSpans() {
		fmt.Println(s.Name)
	}
	// Output:
	// event in the request's trace: true
	// append orders
	// POST /orders
	// evolve orders
}
