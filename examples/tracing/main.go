// Command tracing follows one command through rita with OpenTelemetry: an
// "api" process decides on a PlaceOrder command under a request span, a
// "shipper" process reacts to the order's event by appending to a second
// store, and back in the api process a durable watcher of that store
// notifies the customer. Each process has its own connection and tracer
// provider; the trace context travels in the events' headers.
//
// Spans go to OpenTelemetry's stdout exporter (as JSON, into a buffer);
// at the end the example reads them back and prints the command's trace as a
// tree. With -json it prints the exporter's output as well.
//
// It starts an embedded nats-server with JetStream (or uses NATS_URL, in
// stores of its own that it deletes at the end). It lives in a module of
// its own, so that the rita module does not depend on the OpenTelemetry SDK:
//
//	cd examples/tracing && go run .
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/types"
)

// The command and events.
type (
	PlaceOrder struct {
		Order    string
		Customer string
	}
	OrderPlaced struct {
		Customer string `json:"customer"`
	}
	ShipmentRequested struct {
		Order string `json:"order"`
	}
)

// orders decides on PlaceOrder.
type orders struct{ placed map[string]bool }

func (o *orders) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	c, ok := cmd.Data.(*PlaceOrder)
	if !ok {
		return nil, fmt.Errorf("unknown command %T", cmd.Data)
	}
	if o.placed[c.Order] {
		return nil, fmt.Errorf("order %s is placed already", c.Order)
	}
	return []*rita.Event{{Entity: "order." + c.Order, Data: &OrderPlaced{Customer: c.Customer}}}, nil
}

func (o *orders) Evolve(e *rita.Event) error {
	if _, ok := e.Data.(*OrderPlaced); ok {
		o.placed[strings.TrimPrefix(e.Entity, "order.")] = true
	}
	return nil
}

func main() {
	showJSON := flag.Bool("json", false, "also print the spans as the stdout exporter wrote them")
	flag.Parse()
	if err := run(os.Stdout, *showJSON); err != nil {
		fmt.Fprintln(os.Stderr, "tracing:", err)
		os.Exit(1)
	}
}

// process is one of the example's programs: a connection and a tracer
// provider of its own.
type process struct {
	nc *nats.Conn
	tp *sdktrace.TracerProvider
	m  *rita.Manager
}

func newProcess(url, service string, exp sdktrace.SpanExporter, reg *types.Registry) (*process, error) {
	nc, err := nats.Connect(url, nats.Name("rita tracing example: "+service))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
	)
	m, err := rita.New(nc, rita.WithRegistry(reg), rita.WithTracerProvider(tp))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &process{nc: nc, tp: tp, m: m}, nil
}

func (p *process) close() {
	_ = p.tp.Shutdown(context.Background())
	p.nc.Close()
}

func run(out io.Writer, showJSON bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	ordersName, shippingName, url := "orders", "shipping", os.Getenv("NATS_URL")
	if url == "" {
		srv, err := embedded.Start(ctx, embedded.Options{})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url = srv.ClientURL()
		say("nats: started an embedded nats-server with JetStream")
	} else {
		suffix := "_" + id.NUID.New()
		ordersName, shippingName = ordersName+suffix, shippingName+suffix
		say("nats: using the server at NATS_URL")
	}

	reg, err := types.NewRegistry(map[string]*types.Type{
		"order-placed":       {Init: func() any { return &OrderPlaced{} }},
		"shipment-requested": {Init: func() any { return &ShipmentRequested{} }},
	})
	if err != nil {
		return err
	}
	var spans syncBuffer
	exp, err := stdouttrace.New(stdouttrace.WithWriter(&spans))
	if err != nil {
		return err
	}
	api, err := newProcess(url, "api", exp, reg)
	if err != nil {
		return err
	}
	defer api.close()
	shipper, err := newProcess(url, "shipper", exp, reg)
	if err != nil {
		return err
	}
	defer shipper.close()

	ordersStore, err := api.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: ordersName})
	if err != nil {
		return err
	}
	shippingStore, err := api.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: shippingName})
	if err != nil {
		return err
	}
	defer func() {
		_ = api.m.DeleteEventStore(context.Background(), ordersName)
		_ = api.m.DeleteEventStore(context.Background(), shippingName)
	}()

	// The shipper reacts to each order placed by requesting a shipment:
	// its append, under the handler's ctx, carries the trace on.
	shipperOrders, err := shipper.m.GetEventStore(ctx, ordersName)
	if err != nil {
		return err
	}
	shipperShipping, err := shipper.m.GetEventStore(ctx, shippingName)
	if err != nil {
		return err
	}
	reactor, err := shipperOrders.Durable("shipper").React(ctx, func(ctx context.Context, e *rita.Event) error {
		order := strings.TrimPrefix(e.Entity, "order.")
		_, err := shipperShipping.Append(ctx, []*rita.Event{{
			ID:     "ship-" + e.ID, // idempotent: a redelivery stores nothing twice
			Entity: "shipment." + order,
			Data:   &ShipmentRequested{Order: order},
		}})
		return err
	})
	if err != nil {
		return err
	}
	defer reactor.Stop(context.Background())

	// Back in the api process, a durable watcher tells the customer; its
	// own span joins the trace through Event.TraceContext.
	notified := make(chan string, 1)
	tracer := api.tp.Tracer("example")
	notifier, err := shippingStore.Durable("notifier").Watch(ctx, rita.EvolverFunc(func(e *rita.Event) error {
		_, span := tracer.Start(e.TraceContext(context.Background()), "send e-mail")
		span.End()
		notified <- e.Entity
		return nil
	}))
	if err != nil {
		return err
	}
	defer notifier.Stop(context.Background())

	// The command, under the span of the request that brought it.
	reqCtx, req := tracer.Start(ctx, "POST /orders")
	model := rita.NewModel(&orders{placed: map[string]bool{}})
	_, seq, err := ordersStore.DecideAndEvolve(reqCtx, model, &rita.Command{Type: "place-order", Data: &PlaceOrder{Order: "1001", Customer: "ada"}})
	req.End()
	if err != nil {
		return err
	}
	say("api: order 1001 placed at sequence %d", seq)
	select {
	case entity := <-notified:
		say("api: customer notified of %s", entity)
	case <-ctx.Done():
		return fmt.Errorf("waiting for the notification: %w", ctx.Err())
	}
	// The trace has seven spans: the request, decide, append, the
	// reactor's handling and its append, the watcher's handling and the
	// e-mail. The reactor's and the watcher's end once their handlers
	// have returned, a moment after the notification.
	traceID := req.SpanContext().TraceID().String()
	for ctx.Err() == nil {
		if tree, err := readSpans(spans.Bytes()); err == nil && countTrace(tree, traceID) >= 7 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	all, err := readSpans(spans.Bytes())
	if err != nil {
		return err
	}
	if n := countTrace(all, traceID); n != 7 {
		return fmt.Errorf("the command's trace has %d spans, want 7", n)
	}
	say("\ntrace %s:", traceID)
	printTree(out, all, traceID)
	if showJSON {
		say("\nthe stdout exporter's output:\n%s", spans.Bytes())
	}
	return nil
}

// span is what the example reads of a span the stdout exporter wrote.
type span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ SpanID string }
	SpanKind    int
	StartTime   time.Time
	EndTime     time.Time
	Attributes  []keyValue
	Resource    []keyValue
	Links       []struct{ SpanContext struct{ SpanID string } }
}

type keyValue struct {
	Key   string
	Value struct{ Value any }
}

func (s *span) attr(kvs []keyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return fmt.Sprint(kv.Value.Value)
		}
	}
	return ""
}

// readSpans decodes the exporter's output: one JSON object per span.
func readSpans(data []byte) ([]*span, error) {
	var out []*span
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var s span
		err := dec.Decode(&s)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the exporter's output: %w", err)
		}
		out = append(out, &s)
	}
}

func countTrace(spans []*span, traceID string) int {
	n := 0
	for _, s := range spans {
		if s.SpanContext.TraceID == traceID {
			n++
		}
	}
	return n
}

// printTree prints the spans of one trace, each under its parent, with the
// process it ran in and the attributes that tell what it did.
func printTree(out io.Writer, spans []*span, traceID string) {
	children := map[string][]*span{}
	var roots []*span
	ids := map[string]bool{}
	for _, s := range spans {
		if s.SpanContext.TraceID == traceID {
			ids[s.SpanContext.SpanID] = true
		}
	}
	for _, s := range spans {
		if s.SpanContext.TraceID != traceID {
			continue
		}
		if p := s.Parent.SpanID; p != "" && ids[p] && p != "0000000000000000" {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b *span) int { return a.StartTime.Compare(b.StartTime) }
	var walk func(s *span, prefix string, last bool, root bool)
	walk = func(s *span, prefix string, last bool, root bool) {
		branch, next := "├─ ", "│  "
		if last {
			branch, next = "└─ ", "   "
		}
		if root {
			branch, next = "", ""
		}
		line := prefix + branch + s.Name
		fmt.Fprintf(out, "%-44s %-8s %s\n", line, "["+s.attr(s.Resource, "service.name")+"]", details(s))
		kids := children[s.SpanContext.SpanID]
		slices.SortFunc(kids, byStart)
		for i, k := range kids {
			walk(k, prefix+next, i == len(kids)-1, false)
		}
	}
	slices.SortFunc(roots, byStart)
	for _, r := range roots {
		walk(r, "", true, true)
	}
}

// details are a span's telling attributes.
func details(s *span) string {
	var parts []string
	for _, key := range []string{"messaging.operation.type", "rita.consumer", "messaging.batch.message_count", "rita.sequence.last", "rita.sequence", "rita.attempts"} {
		if v := s.attr(s.Attributes, key); v != "" {
			parts = append(parts, strings.TrimPrefix(strings.TrimPrefix(key, "messaging."), "rita.")+"="+v)
		}
	}
	if len(s.Links) > 0 {
		parts = append(parts, fmt.Sprintf("links=%d", len(s.Links)))
	}
	return strings.Join(parts, " ")
}

// syncBuffer is a bytes.Buffer the exporters of both processes write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf.Bytes())
}
