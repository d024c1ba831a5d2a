package rita_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// tracing is a tracer provider that keeps every ended span in memory.
type tracing struct {
	tp  *sdktrace.TracerProvider
	exp *tracetest.InMemoryExporter
}

func newTracing(t *testing.T) *tracing {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &tracing{tp: tp, exp: exp}
}

// spans returns the ended spans whose name starts with prefix.
func (tr *tracing) spans(prefix string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tr.exp.GetSpans() {
		if len(s.Name) >= len(prefix) && s.Name[:len(prefix)] == prefix {
			out = append(out, s)
		}
	}
	return out
}

// waitSpans waits until n spans whose name starts with prefix have ended.
func (tr *tracing) waitSpans(t *testing.T, prefix string, n int) []tracetest.SpanStub {
	t.Helper()
	eventually(t, 10*time.Second, func() bool { return len(tr.spans(prefix)) >= n }, "%d spans %q", n, prefix)
	return tr.spans(prefix)
}

func attrOf(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func requireAttr(t *testing.T, s tracetest.SpanStub, key string, want any) {
	t.Helper()
	v, ok := attrOf(s, key)
	if !ok {
		t.Fatalf("span %q has no attribute %s; it has %v", s.Name, key, s.Attributes)
	}
	if got := v.AsInterface(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("span %q: %s = %v, want %v", s.Name, key, got, want)
	}
}

// TestTraceFromCommandToReaction follows one command: its Decide and
// Append spans in one process, the reactor's handling of each event in
// another (a second connection), continuing the command's trace with a link
// to the Append, and the events that reactor appends to a second store
// carrying the same trace to a durable watcher there.
func TestTraceFromCommandToReaction(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	trA, trB := newTracing(t), newTracing(t)

	// Process A decides; process B reacts, on a connection of its own.
	mA := e.manager(t, rita.WithTracerProvider(trA.tp), rita.WithRegistry(newRegistry(t, bankTypes())))
	bank := createStore(t, mA, "bank")
	createStore(t, mA, "audit")
	ncB := e.srv.Connect(t)
	mB, err := rita.New(ncB, rita.WithTracerProvider(trB.tp), rita.WithRegistry(newRegistry(t, bankTypes())))
	requireNoError(t, err)
	bankB, err := mB.GetEventStore(ctx, "bank")
	requireNoError(t, err)
	auditB, err := mB.GetEventStore(ctx, "audit")
	requireNoError(t, err)

	var mu sync.Mutex
	handlerSpans := map[uint64]trace.SpanContext{} // by event sequence
	ownSpans := map[uint64]trace.SpanContext{}
	sub, err := bankB.Durable("auditor").React(ctx, func(ctx context.Context, ev *rita.Event) error {
		// A handler's own span joins the trace through its ctx, and
		// through Event.TraceContext alike.
		_, own := trB.tp.Tracer("test").Start(ev.TraceContext(context.Background()), "audit-call")
		own.End()
		mu.Lock()
		handlerSpans[ev.Sequence()] = trace.SpanContextFromContext(ctx)
		ownSpans[ev.Sequence()] = own.SpanContext()
		mu.Unlock()
		_, err := auditB.Append(ctx, []*rita.Event{{Entity: "audit.1", Data: &depositedEvt{Amount: 1}}})
		return err
	})
	requireNoError(t, err)
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })

	// The downstream watcher runs in process A.
	type seen struct {
		trace trace.TraceID
		seq   uint64
	}
	seenCh := make(chan seen, 10)
	auditA, err := mA.GetEventStore(ctx, "audit")
	requireNoError(t, err)
	wsub, err := auditA.Durable("archive").Watch(ctx, rita.EvolverFunc(func(ev *rita.Event) error {
		seenCh <- seen{trace.SpanContextFromContext(ev.TraceContext(context.Background())).TraceID(), ev.Sequence()}
		return nil
	}))
	requireNoError(t, err)
	t.Cleanup(func() { _ = wsub.Stop(context.Background()) })

	// A deposit first, outside any request: its spans are traces of
	// their own. Then the command, under a request span of the
	// application's.
	model := rita.NewModel(newLedger())
	_, _, err = bank.DecideAndEvolve(ctx, model, &rita.Command{Data: &depositCmd{Account: "a", Amount: 10}})
	requireNoError(t, err)
	reqCtx, req := trA.tp.Tracer("test").Start(ctx, "POST /transfers")
	cmd := &rita.Command{Type: "transfer", Data: &transferCmd{From: "a", To: "b", Amount: 4}}
	events, seq, err := bank.DecideAndEvolve(reqCtx, model, cmd)
	requireNoError(t, err)
	req.End()
	traceID := req.SpanContext().TraceID()
	if len(events) != 2 {
		t.Fatalf("the transfer decided %d events, want 2", len(events))
	}

	// Process A: decide > append, both in the request's trace.
	decides := inTrace(trA.waitSpans(t, "decide_and_evolve bank", 2), traceID)
	appends := inTrace(trA.waitSpans(t, "append bank", 2), traceID)
	if len(decides) != 1 || len(appends) != 1 {
		t.Fatalf("%d decide and %d append spans in the command's trace, want 1 each", len(decides), len(appends))
	}
	d, a := decides[0], appends[0]
	if d.Parent.SpanID() != req.SpanContext().SpanID() || a.Parent.SpanID() != d.SpanContext.SpanID() {
		t.Fatalf("want request > decide > append; decide's parent %s, append's parent %s", d.Parent.SpanID(), a.Parent.SpanID())
	}
	if a.SpanKind != trace.SpanKindProducer {
		t.Fatalf("append span kind %v, want producer", a.SpanKind)
	}
	requireAttr(t, d, "rita.command.type", "transfer")
	requireAttr(t, d, "rita.command.id", cmd.ID)
	requireAttr(t, d, "rita.attempts", 1)
	requireAttr(t, d, "rita.events", len(events))
	requireAttr(t, a, "messaging.system", "nats")
	requireAttr(t, a, "messaging.operation.type", "send")
	requireAttr(t, a, "messaging.destination.name", "$ES.bank.>")
	requireAttr(t, a, "rita.store", "bank")
	requireAttr(t, a, "messaging.batch.message_count", len(events))
	requireAttr(t, a, "rita.sequence.first", int64(seq)-1)
	requireAttr(t, a, "rita.sequence.last", int64(seq))
	requireAttr(t, a, "rita.retries", 0)
	requireAttr(t, a, "rita.conflict", false)

	// Process B: one handler span per event, in the same trace, child of
	// and linked to the append.
	trB.waitSpans(t, "react bank", 3)
	reacts := inTrace(trB.spans("react bank"), traceID)
	if len(reacts) != len(events) {
		for _, r := range trB.spans("react bank") {
			t.Logf("react span trace %s parent %s attrs %v", r.SpanContext.TraceID(), r.Parent.SpanID(), r.Attributes)
		}
		t.Fatalf("%d react spans, want %d (one per event)", len(reacts), len(events))
	}
	for _, r := range reacts {
		if r.SpanContext.TraceID() != traceID {
			t.Fatalf("react span in trace %s, want the command's %s", r.SpanContext.TraceID(), traceID)
		}
		if r.Parent.SpanID() != a.SpanContext.SpanID() || !r.Parent.IsRemote() {
			t.Fatalf("react span's parent %s (remote %v), want the append span %s", r.Parent.SpanID(), r.Parent.IsRemote(), a.SpanContext.SpanID())
		}
		if len(r.Links) != 1 || r.Links[0].SpanContext.SpanID() != a.SpanContext.SpanID() {
			t.Fatalf("react span links %v, want one to the append span", r.Links)
		}
		if r.SpanKind != trace.SpanKindConsumer {
			t.Fatalf("react span kind %v, want consumer", r.SpanKind)
		}
		requireAttr(t, r, "messaging.operation.type", "process")
		requireAttr(t, r, "messaging.consumer.group.name", "auditor")
		if r.Status.Code.String() == "Error" {
			t.Fatalf("react span failed: %s", r.Status.Description)
		}
		requireAttr(t, r, "rita.attempt", 1)
	}
	mu.Lock()
	for _, ev := range events {
		sc, own := handlerSpans[ev.Sequence()], ownSpans[ev.Sequence()]
		if sc.TraceID() != traceID || own.TraceID() != traceID {
			t.Fatalf("event %d: handler ctx trace %s, own span trace %s, want %s", ev.Sequence(), sc.TraceID(), own.TraceID(), traceID)
		}
	}
	mu.Unlock()
	for _, own := range inTrace(trB.spans("audit-call"), traceID) {
		if !slices.ContainsFunc(reacts, func(r tracetest.SpanStub) bool { return r.SpanContext.SpanID() == own.Parent.SpanID() }) {
			t.Fatalf("the handler's own span's parent %s is no react span", own.Parent.SpanID())
		}
	}

	// The reactor's appends carry the trace on: the watcher of the audit
	// store, back in process A, sees the command's trace on the audit
	// events of both of the command's events.
	inCommand := 0
	for range 3 {
		select {
		case s := <-seenCh:
			if s.trace == traceID {
				inCommand++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the audit watcher saw too few events")
		}
	}
	if inCommand != len(events) {
		t.Fatalf("%d audit events carry the command's trace, want %d", inCommand, len(events))
	}
	trA.waitSpans(t, "watch audit", 3)
	if n := len(inTrace(trA.spans("watch audit"), traceID)); n != len(events) {
		t.Fatalf("%d watch spans in the command's trace, want %d", n, len(events))
	}
	if n := len(inTrace(trB.spans("append audit"), traceID)); n != len(events) {
		t.Fatalf("%d reactor append spans in the command's trace, want %d", n, len(events))
	}
}

// inTrace returns the spans of trace id.
func inTrace(spans []tracetest.SpanStub, id trace.TraceID) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanContext.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// TestTraceHeaders checks the stored W3C trace context: an Append under a
// span writes traceparent (and tracestate when there is one) under the W3C
// names, an Append without one writes neither, and events without them read
// back as before.
func TestTraceHeaders(t *testing.T) {
	e := newEnv(t)
	tr := newTracing(t)
	m := e.manager(t, rita.WithTracerProvider(tr.tp))
	s := createStore(t, m, "orders")
	ctx := testCtx(t)

	plain, err := s.Append(ctx, []*rita.Event{rawEvent("order.1", "placed", "{}")})
	requireNoError(t, err)
	// Without a span in ctx, the Append span is a root span, and its
	// context is what the event carries.
	msg := e.rawMsg(t, "orders", plain)
	sc := tr.waitSpans(t, "append orders", 1)[0].SpanContext
	if v, want := msg.Header.Get("traceparent"), fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()); v != want {
		t.Fatalf("traceparent %q, want %q", v, want)
	}
	if _, ok := msg.Header["Traceparent"]; ok {
		t.Fatal("the header is stored as Traceparent, want the W3C name traceparent")
	}

	ts, err := trace.ParseTraceState("vendor=value")
	requireNoError(t, err)
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	traced, err := s.Append(trace.ContextWithSpanContext(ctx, parent), []*rita.Event{rawEvent("order.1", "paid", "{}")})
	requireNoError(t, err)
	msg = e.rawMsg(t, "orders", traced)
	tp := msg.Header.Values("traceparent")
	if len(tp) != 1 || len(tp[0]) != 55 || tp[0][3:35] != parent.TraceID().String() {
		t.Fatalf("traceparent %q, want one value in the trace %s", tp, parent.TraceID())
	}
	if got := msg.Header.Get("tracestate"); got != "vendor=value" {
		t.Fatalf("tracestate %q, want vendor=value", got)
	}

	// Without a tracer provider and without a span in ctx, nothing is
	// written.
	bare := e.manager(t)
	sb, err := bare.GetEventStore(ctx, "orders")
	requireNoError(t, err)
	none, err := sb.Append(ctx, []*rita.Event{rawEvent("order.2", "placed", "{}")})
	requireNoError(t, err)
	if h := e.rawMsg(t, "orders", none).Header; h.Get("traceparent") != "" || h.Get("tracestate") != "" {
		t.Fatalf("an append without a span wrote trace headers: %v", h)
	}

	// Read back: the traced event continues its trace, the others carry
	// none.
	var got []*rita.Event
	_, err = sb.Evolve(ctx, rita.EvolverFunc(func(ev *rita.Event) error { got = append(got, ev); return nil }))
	requireNoError(t, err)
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	if sc := trace.SpanContextFromContext(got[1].TraceContext(ctx)); sc.TraceID() != parent.TraceID() || !sc.IsRemote() {
		t.Fatalf("event %d continues trace %s (remote %v), want %s", got[1].Sequence(), sc.TraceID(), sc.IsRemote(), parent.TraceID())
	}
	if sc := trace.SpanContextFromContext(got[2].TraceContext(ctx)); sc.IsValid() {
		t.Fatalf("an event stored without a trace context continues %s", sc.TraceID())
	}
	var nilEvent *rita.Event
	if nilEvent.TraceContext(ctx) != ctx {
		t.Fatal("a nil event's TraceContext is not ctx")
	}
}

// TestTraceErrors checks that a failed append's span records the error with
// the sentinel's text as error.type.
func TestTraceErrors(t *testing.T) {
	e := newEnv(t)
	tr := newTracing(t)
	m := e.manager(t, rita.WithTracerProvider(tr.tp))
	s := createStore(t, m, "orders")
	ctx := testCtx(t)
	appendN(t, s, "order.1", "placed", 1)
	ev := rawEvent("order.1", "paid", "{}")
	ev.Expect = rita.ExpectSequence(0)
	_, err := s.Append(ctx, []*rita.Event{ev})
	requireErrorIs(t, err, rita.ErrSequenceConflict)

	spans := tr.waitSpans(t, "append orders", 2)
	failed := spans[len(spans)-1]
	if failed.Status.Code.String() != "Error" || failed.Status.Description != err.Error() {
		t.Fatalf("span status %v %q, want Error %q", failed.Status.Code, failed.Status.Description, err)
	}
	requireAttr(t, failed, "error.type", rita.ErrSequenceConflict.Error())
	requireAttr(t, failed, "rita.conflict", true)
	if len(failed.Events) == 0 || failed.Events[0].Name != "exception" {
		t.Fatalf("span events %v, want the error recorded", failed.Events)
	}
}

// metrics collects what a Manager measured.
type metrics struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMetrics(t *testing.T) *metrics {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &metrics{reader: reader, mp: mp}
}

func (m *metrics) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, mm := range sm.Metrics {
			out[mm.Name] = mm
		}
	}
	return out
}

// sum is the value of a counter's data point whose attributes include
// want (the sum of all of them when several match).
func sum(t *testing.T, all map[string]metricdata.Metrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	mm, ok := all[name]
	if !ok {
		return 0
	}
	var n int64
	switch d := mm.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if hasAttrs(p.Attributes, want) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if hasAttrs(p.Attributes, want) {
				n += p.Value
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if hasAttrs(p.Attributes, want) {
				n += int64(p.Count)
			}
		}
	default:
		t.Fatalf("metric %s has data %T", name, mm.Data)
	}
	return n
}

func hasAttrs(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// TestMetricsAfterWorkload runs a known workload and checks every counter
// against it: N events appended, K conflicts, D duplicates, the events
// Evolve read, snapshot hits and misses, handler calls, failures and
// parked events of a reactor, and its lag once caught up.
func TestMetricsAfterWorkload(t *testing.T) {
	e := newEnv(t)
	mt := newMetrics(t)
	m := e.manager(t, rita.WithMeterProvider(mt.mp), rita.WithRegistry(newRegistry(t, bankTypes())))
	s := createStore(t, m, "bank")
	ctx := testCtx(t)
	store := attribute.String("rita.store", "bank")

	// N = 7 events: 5 single appends and a batch of 2.
	const accounts = 5
	for i := range accounts {
		_, err := s.Append(ctx, []*rita.Event{{ID: fmt.Sprintf("dep-%d", i), Entity: accountEntity(fmt.Sprint(i)), Data: &depositedEvt{Amount: 1}}})
		requireNoError(t, err)
	}
	_, err := s.Append(ctx, []*rita.Event{
		{Entity: accountEntity("0"), Data: &depositedEvt{Amount: 10}},
		{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 10}},
	})
	requireNoError(t, err)
	// K = 3 conflicts.
	for range 3 {
		_, err := s.Append(ctx, []*rita.Event{{Entity: accountEntity("0"), Data: &depositedEvt{Amount: 1}, Expect: rita.ExpectSequence(1)}})
		requireErrorIs(t, err, rita.ErrSequenceConflict)
	}
	// D = 2 duplicates: the first event appended again, twice.
	for range 2 {
		seq, err := s.Append(ctx, []*rita.Event{{ID: "dep-0", Entity: accountEntity("0"), Data: &depositedEvt{Amount: 1}}})
		requireNoError(t, err)
		if seq != 1 {
			t.Fatalf("duplicate acknowledged at %d, want 1", seq)
		}
	}
	// Invalid input measures nothing.
	if _, err := s.Append(ctx, []*rita.Event{{Entity: "bad", Data: &depositedEvt{}}}); err == nil {
		t.Fatal("an invalid event was appended")
	}

	// Evolve: the whole store (7 events), then account 0 (events 1 and 6)
	// with snapshots: a miss that reads 2 events and saves one, then a hit
	// with nothing after it.
	_, err = s.Evolve(ctx, rita.EvolverFunc(func(*rita.Event) error { return nil }))
	requireNoError(t, err)
	for range 2 {
		_, err = s.Evolve(ctx, rita.NewModel(&wholeShop{}), rita.WithFilters(accountEntity("0")), rita.WithSnapshot(rita.SnapshotConfig{Version: "1", Every: 1}))
		requireNoError(t, err)
	}

	// A reactor that fails account 3's events for good: its first event
	// (4) is parked after 1 failed call, its next (8) parked behind it
	// without a call: M = 2 parked.
	_, err = s.Append(ctx, []*rita.Event{{Entity: accountEntity("3"), Data: &depositedEvt{Amount: 5}}})
	requireNoError(t, err)
	sub, err := s.Durable("mailer").React(ctx, func(_ context.Context, ev *rita.Event) error {
		if ev.Entity == accountEntity("3") {
			return fmt.Errorf("%w: no mail for 3", rita.ErrUnprocessable)
		}
		return nil
	}, rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) {}))
	requireNoError(t, err)
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	requireNoError(t, s.Durable("mailer").WaitCaughtUp(ctx))

	got := mt.collect(t)
	check := func(name string, want int64, attrs ...attribute.KeyValue) {
		t.Helper()
		if n := sum(t, got, name, append([]attribute.KeyValue{store}, attrs...)...); n != want {
			t.Errorf("%s%v = %d, want %d", name, attrs, n, want)
		}
	}
	check("rita.append.events", 8) // 7 + the event of account 3
	check("rita.append.duration", accounts+1+3+2+1)
	check("rita.append.conflicts", 3)
	check("rita.append.duplicates", 2)
	check("rita.retries", 0)
	check("rita.evolve.events", 7, attribute.String("rita.read.path", "consumer"))
	check("rita.evolve.events", 2, attribute.String("rita.read.path", "snapshot"))
	check("rita.evolve.duration", 1, attribute.String("rita.read.path", "consumer"))
	check("rita.evolve.duration", 2, attribute.String("rita.read.path", "snapshot"))
	check("rita.snapshot.misses", 1)
	check("rita.snapshot.hits", 1)
	mailer := []attribute.KeyValue{attribute.String("rita.consumer", "mailer"), attribute.String("rita.consumer.kind", "react")}
	check("rita.handler.duration", 8-1, mailer...) // 8 events, the last of account 3 parked without a call
	check("rita.handler.failures", 1, mailer...)
	check("rita.parked", 2, mailer...)
	check("rita.consumer.lag", 0, mailer...)
	if _, ok := got["rita.consumer.lag"]; !ok {
		t.Error("no rita.consumer.lag observed for a running durable consumer")
	}
}

// TestTelemetryRetriesAndAttempts checks the counts a span and the metrics
// give of what an operation had to do again: an Append that waited for a
// restarting server reports its retries on its span and in rita.retries,
// and a DecideWithRetry that met a conflict reports two attempts.
func TestTelemetryRetriesAndAttempts(t *testing.T) {
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t, ritatest.Reconnecting())
	tr, mt := newTracing(t), newMetrics(t)
	m, err := rita.New(nc, rita.WithTracerProvider(tr.tp), rita.WithMeterProvider(mt.mp), rita.WithRegistry(newRegistry(t, bankTypes())))
	requireNoError(t, err)
	s := createStore(t, m, "bank")
	ctx := testCtx(t)

	srv.Stop()
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, []*rita.Event{{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 1}}})
		done <- err
	}()
	// The append retries while the server is away: wait for the metric
	// to count one.
	eventually(t, 10*time.Second, func() bool {
		return sum(t, mt.collect(t), "rita.retries", attribute.String("rita.operation", "append")) > 0
	}, "a retry counted while the server is stopped")
	srv.Restart()
	requireNoError(t, <-done)
	a := tr.waitSpans(t, "append bank", 1)[0]
	retries, _ := attrOf(a, "rita.retries")
	counted := sum(t, mt.collect(t), "rita.retries", attribute.String("rita.operation", "append"))
	if retries.AsInt64() < 1 || retries.AsInt64() != counted {
		t.Fatalf("append span says %d retries, rita.retries counts %d; want the same, at least 1", retries.AsInt64(), counted)
	}

	// A decision on stale state conflicts once, catches up, and succeeds.
	stale := rita.NewModel(newLedger())
	_, err = s.Evolve(ctx, stale)
	requireNoError(t, err)
	_, err = s.Append(ctx, []*rita.Event{{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 5}}})
	requireNoError(t, err)
	_, _, err = s.DecideWithRetry(ctx, stale, &rita.Command{Data: &withdrawCmd{Account: "1", Amount: 1}})
	requireNoError(t, err)
	d := tr.waitSpans(t, "decide_with_retry bank", 1)[0]
	requireAttr(t, d, "rita.attempts", 2)
	if n := len(inTrace(tr.spans("append bank"), d.SpanContext.TraceID())); n != 2 {
		t.Fatalf("%d append spans under the decision, want 2 (the conflict and the success)", n)
	}
	if got := sum(t, mt.collect(t), "rita.append.conflicts"); got != 1 {
		t.Fatalf("rita.append.conflicts = %d, want 1", got)
	}
}

// TestTraceProjection checks a projection's span for each event it
// applies: in the trace of the append that stored the event, with the
// attempt, and failed attempts recorded as errors with their own spans.
func TestTraceProjection(t *testing.T) {
	e := newEnv(t)
	tr, mt := newTracing(t), newMetrics(t)
	m := e.manager(t, rita.WithTracerProvider(tr.tp), rita.WithMeterProvider(mt.mp))
	s := createStore(t, m, "shop")
	ctx := testCtx(t)

	reqCtx, req := tr.tp.Tracer("test").Start(ctx, "POST /orders")
	_, err := s.Append(reqCtx, []*rita.Event{rawEvent("order.1", "placed", "{}")})
	requireNoError(t, err)
	req.End()

	db := newMemDB()
	db.fail = func(ctx context.Context, _ *rita.Event, call int) error {
		if call == 1 {
			return errors.New("database busy")
		}
		return nil
	}
	sub, err := s.Project(ctx, db, rita.WithBackoff(time.Millisecond, time.Millisecond))
	requireNoError(t, err)
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })

	spans := tr.waitSpans(t, "project shop", 2)
	if len(spans) != 2 {
		t.Fatalf("%d project spans, want 2 (a failed attempt and a success)", len(spans))
	}
	for i, sp := range spans {
		if sp.SpanContext.TraceID() != req.SpanContext().TraceID() {
			t.Fatalf("project span %d in trace %s, want the request's %s", i, sp.SpanContext.TraceID(), req.SpanContext().TraceID())
		}
		requireAttr(t, sp, "rita.attempt", i+1)
		requireAttr(t, sp, "rita.consumer.kind", "project")
	}
	if spans[0].Status.Code.String() != "Error" || spans[0].Status.Description != "database busy" {
		t.Fatalf("first attempt's status %v %q, want Error \"database busy\"", spans[0].Status.Code, spans[0].Status.Description)
	}
	requireAttr(t, spans[0], "error.type", "_OTHER")
	kind := attribute.String("rita.consumer.kind", "project")
	got := mt.collect(t)
	if n := sum(t, got, "rita.handler.duration", kind); n != 2 {
		t.Fatalf("rita.handler.duration counts %d calls, want 2", n)
	}
	if n := sum(t, got, "rita.handler.failures", kind); n != 1 {
		t.Fatalf("rita.handler.failures = %d, want 1", n)
	}
}
