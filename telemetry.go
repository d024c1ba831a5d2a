package rita

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/synadia-labs/rita/internal/telemetry"
	"github.com/synadia-labs/rita/internal/wire"
	"github.com/synadia-labs/rita/types"
)

// TraceContext returns ctx carrying the trace the event belongs to, so
// that a handler's own spans and outgoing calls join it: for an event a
// durable consumer or a projection is handling, the span of that handling
// (a React handler's ctx carries it already); for any other event read
// back, the context of the Append that stored it, as a remote parent. An
// event stored without a trace context, or never stored, returns ctx as it
// is.
func (e *Event) TraceContext(ctx context.Context) context.Context {
	if e == nil || e.trace == nil {
		return ctx
	}
	if e.trace.span != nil {
		return trace.ContextWithSpan(ctx, e.trace.span)
	}
	if sc := e.trace.spanContext(); sc.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// spanContext is the span context the event was stored with; invalid for
// none.
func (t *eventTrace) spanContext() trace.SpanContext {
	if t == nil {
		return trace.SpanContext{}
	}
	return telemetry.Extract(t.parent, t.state)
}

// storeTelemetry is what a store measures with: the Manager's tracer and
// instruments, and the attribute sets of the store's measurements, made
// once.
type storeTelemetry struct {
	*telemetry.Telemetry
	store        telemetry.Attrs // rita.store
	appendRetry  telemetry.Attrs // + rita.operation=append
	readRetry    telemetry.Attrs // + rita.operation=read
	evolveDirect telemetry.Attrs // + rita.read.path=direct
	evolveRead   telemetry.Attrs // + rita.read.path=consumer
	evolveSnap   telemetry.Attrs // + rita.read.path=snapshot
	pattern      string          // the store's subjects
	logger       *slog.Logger

	// Span names and start options, made once so that starting a span
	// allocates no more than the tracer does.
	appendName, evolveName string
	producer, client       []trace.SpanStartOption

	// idle is the span of an operation that starts none: it records
	// nothing, and ending it does nothing.
	idle trace.Span
}

func newStoreTelemetry(t *telemetry.Telemetry, store string, logger *slog.Logger) *storeTelemetry {
	base := telemetry.NewAttrs(telemetry.KeyStore.String(store))
	return &storeTelemetry{
		Telemetry:    t,
		store:        base,
		appendRetry:  base.With(telemetry.KeyOperation.String("append")),
		readRetry:    base.With(telemetry.KeyOperation.String("read")),
		evolveDirect: base.With(telemetry.KeyReadPath.String(readPathDirect)),
		evolveRead:   base.With(telemetry.KeyReadPath.String(readPathConsumer)),
		evolveSnap:   base.With(telemetry.KeyReadPath.String(readPathSnapshot)),
		pattern:      wire.StoreSubjects(store),
		logger:       logger,
		appendName:   "append " + store,
		evolveName:   "evolve " + store,
		producer:     []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)},
		client:       []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
		idle:         trace.SpanFromContext(context.Background()),
	}
}

// The read paths of Evolve, as its span and metrics name them.
const (
	readPathDirect   = "direct"
	readPathConsumer = "consumer"
	readPathSnapshot = "snapshot"
)

// startSpan starts the span of an operation on the store (op: "append"
// or "evolve"), with the attributes every span of it has, which are only
// built when it records.
//
// Without a tracer that may record (Telemetry.Tracing) it starts none: it
// returns ctx as it is and a span that does nothing, where the no-op
// tracers would allocate a span and a context that carry nothing new.
func (st *storeTelemetry) startSpan(ctx context.Context, name, op, opType string, opts []trace.SpanStartOption) (context.Context, trace.Span) {
	if !st.Tracing() {
		return ctx, st.idle
	}
	ctx, span := st.Tracer.Start(ctx, name, opts...)
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.System,
			telemetry.KeyOperationName.String(op),
			telemetry.KeyOperationType.String(opType),
			telemetry.KeyStore.String(st.store.Value(telemetry.KeyStore)),
		)
	}
	return ctx, span
}

// appended ends an Append's span and measures it: events stored,
// duration, conflicts, duplicates (its retries are counted as they
// happen).
func (st *storeTelemetry) appended(ctx context.Context, span trace.Span, start time.Time, events []*Event, seq uint64, out appendOutcome, err error) {
	conflict := errors.Is(err, ErrSequenceConflict)
	dups := 0
	switch {
	case out.duplicate:
		dups = 1
	case out.published && errors.Is(err, ErrDuplicateEvent):
		dups = len(events)
	}
	if out.published {
		st.store.Record(ctx, st.M.AppendDuration, telemetry.Since(start))
	}
	if err == nil && !out.duplicate {
		st.store.Add(ctx, st.M.Appended, int64(len(events)))
	}
	if conflict {
		st.store.Add(ctx, st.M.Conflicts, 1)
	}
	st.store.Add(ctx, st.M.Duplicates, int64(dups))
	if span.IsRecording() {
		dest := st.pattern
		if len(events) == 1 && events[0] != nil && events[0].subject != "" {
			dest = events[0].subject
		}
		span.SetAttributes(
			telemetry.KeyDestination.String(dest),
			telemetry.KeyBatchCount.Int(len(events)),
			telemetry.KeyRetries.Int(out.retries),
			telemetry.KeyConflict.Bool(conflict),
		)
		if len(events) == 1 && events[0] != nil {
			span.SetAttributes(telemetry.KeyMessageID.String(events[0].ID))
		}
		if err == nil {
			span.SetAttributes(
				telemetry.KeyFirstSequence.Int64(int64(seq)-int64(len(events))+1),
				telemetry.KeyLastSequence.Int64(int64(seq)),
			)
		}
		if dups > 0 {
			span.SetAttributes(telemetry.KeyDuplicates.Int(dups))
		}
	}
	telemetry.End(span, err, errorType(err))
}

// evolved ends an Evolve's span and measures it: events applied, duration,
// snapshot hits and misses, by read path.
func (st *storeTelemetry) evolved(ctx context.Context, span trace.Span, start time.Time, out evolveOutcome, last uint64, err error) {
	attrs := st.evolveRead
	switch out.path {
	case readPathDirect:
		attrs = st.evolveDirect
	case readPathSnapshot:
		attrs = st.evolveSnap
	}
	if out.path != "" {
		attrs.Record(ctx, st.M.EvolveDuration, telemetry.Since(start))
	}
	attrs.Add(ctx, st.M.EvolveEvents, int64(out.applied))
	st.store.Add(ctx, st.M.SnapshotHits, int64(out.snapshots))
	st.store.Add(ctx, st.M.SnapshotMisses, int64(out.misses))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.KeyDestination.String(st.pattern),
			telemetry.KeyEvents.Int64(int64(out.applied)),
			telemetry.KeyReadPath.String(out.path),
			telemetry.KeySnapshot.Bool(out.snapshots > 0),
			telemetry.KeyLastSequence.Int64(int64(last)),
		)
	}
	telemetry.End(span, err, errorType(err))
}

// startDecide starts the span of a Decide (or one of its variants, op) of
// cmd.
func (st *storeTelemetry) startDecide(ctx context.Context, op, store string, cmd *Command) (context.Context, trace.Span) {
	ctx, span := st.Tracer.Start(ctx, op+" "+store)
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.KeyStore.String(store),
			telemetry.KeyCommandID.String(cmd.ID),
			telemetry.KeyCommandType.String(cmd.Type),
		)
	}
	return ctx, span
}

// decided ends a Decide's span.
func (st *storeTelemetry) decided(span trace.Span, events []*Event, seq uint64, attempts int, err error) {
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.KeyEvents.Int(len(events)),
			telemetry.KeyAttempts.Int(attempts),
			telemetry.KeyLastSequence.Int64(int64(seq)),
		)
	}
	telemetry.End(span, err, errorType(err))
}

// consumerTelemetry is what a durable consumer or projection measures
// with.
type consumerTelemetry struct {
	*storeTelemetry
	attrs    telemetry.Attrs // rita.store, rita.consumer, rita.consumer.kind
	spanName string
	kind     string
	name     string
	store    string
}

func (st *storeTelemetry) consumer(store, kind, name string) *consumerTelemetry {
	kvs := []attribute.KeyValue{telemetry.KeyStore.String(store), telemetry.KeyConsumerKind.String(kind)}
	if name != "" {
		kvs = append(kvs, telemetry.KeyConsumer.String(name))
	}
	return &consumerTelemetry{
		storeTelemetry: st,
		attrs:          telemetry.NewAttrs(kvs...),
		spanName:       kind + " " + store,
		kind:           kind,
		name:           name,
		store:          store,
	}
}

// handle runs handler on e in the span of its processing, measuring its
// duration and failure; e carries the span for Event.TraceContext while
// handler runs.
func (ct *consumerTelemetry) handle(ctx context.Context, e *Event, attempt int, handler func(context.Context, *Event) error) error {
	ctx, span := ct.StartProcess(ctx, ct.spanName, e.trace.spanContext())
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.System,
			telemetry.KeyOperationName.String(ct.kind),
			telemetry.KeyOperationType.String("process"),
			telemetry.KeyDestination.String(e.subject),
			telemetry.KeyMessageID.String(e.ID),
			telemetry.KeyStore.String(ct.store),
			telemetry.KeyConsumerKind.String(ct.kind),
			telemetry.KeyEntity.String(e.Entity),
			telemetry.KeyEventType.String(e.Type),
			telemetry.KeySequence.Int64(int64(e.sequence)),
			telemetry.KeyAttempt.Int(attempt),
		)
		if ct.name != "" {
			span.SetAttributes(telemetry.KeyConsumerGroup.String(ct.name), telemetry.KeyConsumer.String(ct.name))
		}
	}
	if span.IsRecording() {
		// While the handler runs, TraceContext gives the span.
		prev := e.trace
		e.trace = &eventTrace{span: span}
		if prev != nil {
			e.trace.parent, e.trace.state = prev.parent, prev.state
		}
		defer func() { e.trace = prev }()
	}
	start := time.Now()
	err := handler(ctx, e)
	ct.attrs.Record(ctx, ct.M.HandlerDuration, telemetry.Since(start))
	if err != nil {
		ct.attrs.Add(ctx, ct.M.HandlerFailures, 1)
	}
	telemetry.End(span, err, errorType(err))
	return err
}

// observeLag reports the consumer's lag, as lag returns it, at each
// collection of the metrics until done is closed.
func (ct *consumerTelemetry) observeLag(done <-chan struct{}, lag func(context.Context) (uint64, error)) {
	unregister, err := ct.M.ObserveLag(ct.attrs, lag)
	if err != nil {
		ct.logger.Warn("rita: consumer lag not observed", "store", ct.store, "name", ct.name, "error", err)
		return
	}
	go func() {
		<-done
		unregister()
	}()
}

// errorType is the error.type of err: the text of the package's sentinel
// (or the context's error) it matches, "_OTHER" for anything else.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range sentinels() {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "_OTHER"
}

// sentinels are the errors errorType names, the more specific first.
func sentinels() []error {
	return []error{
		ErrSequenceConflict, ErrDuplicateEvent, ErrEventTooLarge, ErrExpectRequired,
		ErrPermissionDenied, ErrStoreFull, ErrEncryptionKey,
		ErrEventDecode, ErrUnprocessable, ErrProjectionHalted, ErrServerUnsupported,
		ErrEventNil, ErrNoEvents, ErrTooManyEvents, ErrEventDataRequired, ErrEventDataInvalid,
		ErrEventEntityRequired, ErrEventEntityInvalid, ErrEventTypeRequired, ErrEventTypeInvalid,
		ErrEventMetaInvalid, ErrFilterInvalid, ErrSubjectTooManyTokens, ErrInvalidOption,
		ErrInvalidArgument, ErrEvolverNotImplemented, ErrDeciderNotImplemented,
		types.ErrTypeNotRegistered, types.ErrCodecUnknown,
		context.DeadlineExceeded, context.Canceled,
	}
}
