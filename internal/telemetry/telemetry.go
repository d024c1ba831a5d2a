// Package telemetry is rita's OpenTelemetry instrumentation: the tracer and
// the instruments of a Manager, the spans of its operations, and the W3C
// trace context an event carries in its headers.
//
// It uses the OpenTelemetry API only. With the API's no-op tracer provider
// (or the global one before an SDK is installed) an operation that asks
// Tracing starts no span at all; otherwise attributes are only built for
// spans that record.
package telemetry

import (
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope of rita's tracer and meter.
const Scope = "github.com/synadia-labs/rita"

// Attribute keys. The messaging ones are the OpenTelemetry semantic
// conventions'; the rita ones are rita's own.
const (
	KeySystem        = attribute.Key("messaging.system")
	KeyDestination   = attribute.Key("messaging.destination.name")
	KeyOperationType = attribute.Key("messaging.operation.type")
	KeyOperationName = attribute.Key("messaging.operation.name")
	KeyBatchCount    = attribute.Key("messaging.batch.message_count")
	KeyMessageID     = attribute.Key("messaging.message.id")
	KeyConsumerGroup = attribute.Key("messaging.consumer.group.name")
	KeyErrorType     = attribute.Key("error.type")

	KeyStore         = attribute.Key("rita.store")
	KeyConsumer      = attribute.Key("rita.consumer")
	KeyConsumerKind  = attribute.Key("rita.consumer.kind")
	KeyFirstSequence = attribute.Key("rita.sequence.first")
	KeyLastSequence  = attribute.Key("rita.sequence.last")
	KeySequence      = attribute.Key("rita.sequence")
	KeyRetries       = attribute.Key("rita.retries")
	KeyConflict      = attribute.Key("rita.conflict")
	KeyDuplicates    = attribute.Key("rita.duplicates")
	KeyEvents        = attribute.Key("rita.events")
	KeySnapshot      = attribute.Key("rita.snapshot")
	KeyReadPath      = attribute.Key("rita.read.path")
	KeyAttempts      = attribute.Key("rita.attempts")
	KeyAttempt       = attribute.Key("rita.attempt")
	KeyEntity        = attribute.Key("rita.entity")
	KeyEventType     = attribute.Key("rita.event.type")
	KeyOperation     = attribute.Key("rita.operation")
	KeyCommandID     = attribute.Key("rita.command.id")
	KeyCommandType   = attribute.Key("rita.command.type")
)

// System is the messaging.system of every span: rita's events travel on
// NATS.
var System = KeySystem.String("nats")

// Telemetry is the tracer and the instruments of one Manager.
type Telemetry struct {
	Tracer trace.Tracer
	M      *Instruments

	newRootConsumer []trace.SpanStartOption // made once: StartProcess

	// provider is the tracer provider Tracer comes from, and idle how it
	// may leave spans out (see Tracing).
	provider trace.TracerProvider
	idle     idleKind
}

// idleKind says when a tracer provider's spans cannot record.
type idleKind int

const (
	idleNever  idleKind = iota // an SDK's, or any other: they may record
	idleAlways                 // the API's no-op provider
	idleGlobal                 // the global delegate, until an SDK is set
)

// globalPkg is the package of the global tracer provider's delegate, what
// otel.GetTracerProvider returns until otel.SetTracerProvider is called.
const globalPkg = "go.opentelemetry.io/otel/internal/global"

// idleOf says when the spans of tp cannot record.
func idleOf(tp trace.TracerProvider) idleKind {
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return idleAlways
	}
	if t := reflect.TypeOf(tp); t.Kind() == reflect.Pointer && t.Elem().PkgPath() == globalPkg && tp == otel.GetTracerProvider() {
		return idleGlobal
	}
	return idleNever
}

// Tracing reports whether a span started now might record, or carry a
// span context of its own. It does not when the tracer provider is the
// API's no-op one, or the global one while no SDK has been set as global:
// their spans record nothing and carry their parent's span context, so an
// operation may then leave its span out (and its allocations) without
// changing what it sends or reports. Once an application sets a global
// provider, the spans of a Manager made before start again.
func (t *Telemetry) Tracing() bool {
	switch t.idle {
	case idleAlways:
		return false
	case idleGlobal:
		return otel.GetTracerProvider() != t.provider
	}
	return true
}

// New makes the tracer and instruments from the providers.
func New(tp trace.TracerProvider, mp metric.MeterProvider) (*Telemetry, error) {
	m, err := newInstruments(mp.Meter(Scope))
	if err != nil {
		return nil, err
	}
	return &Telemetry{
		Tracer:          tp.Tracer(Scope),
		M:               m,
		newRootConsumer: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithNewRoot()},
		provider:        tp,
		idle:            idleOf(tp),
	}, nil
}
