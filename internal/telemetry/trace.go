package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Header names of the W3C trace context, as the W3C propagator writes them:
// an event carries the context of the span that appended it.
const (
	HdrTraceParent = "traceparent"
	HdrTraceState  = "tracestate"
)

// pair is a propagation carrier of the two W3C headers, so that injecting
// and extracting needs no header map.
type pair struct{ parent, state string }

func (p *pair) Get(key string) string {
	switch key {
	case HdrTraceParent:
		return p.parent
	case HdrTraceState:
		return p.state
	}
	return ""
}

func (p *pair) Set(key, value string) {
	switch key {
	case HdrTraceParent:
		p.parent = value
	case HdrTraceState:
		p.state = value
	}
}

func (p *pair) Keys() []string { return []string{HdrTraceParent, HdrTraceState} }

// Inject returns the W3C trace context of ctx's span, as header values;
// empty when ctx has no valid span context.
func Inject(ctx context.Context) (parent, state string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	var p pair
	propagation.TraceContext{}.Inject(ctx, &p)
	return p.parent, p.state
}

// Extract returns the span context the W3C header values carry; the zero
// (invalid) one when parent is empty or malformed.
func Extract(parent, state string) trace.SpanContext {
	if parent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), &pair{parent: parent, state: state})
	return trace.SpanContextFromContext(ctx)
}

// StartProcess starts the span of processing one stored event whose
// creation context is from (invalid when the event carries none). As the
// messaging conventions have it for a message processed on its own, the
// creation context is the span's parent and also its link, so that the
// span sits in the trace of the command that stored the event and tools
// that follow links find it too. Without a creation context the span
// starts a trace of its own rather than join whatever ctx carries.
func (t *Telemetry) StartProcess(ctx context.Context, name string, from trace.SpanContext) (context.Context, trace.Span) {
	if from.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, from)
		return t.Tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(trace.Link{SpanContext: from}))
	}
	return t.Tracer.Start(ctx, name, t.newRootConsumer...)
}

// End ends span, recording err, if any, as its error: errType (the text of
// the sentinel err matches) as error.type, err's text as the status.
func End(span trace.Span, err error, errType string) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(KeyErrorType.String(errType))
	}
	span.End()
}
