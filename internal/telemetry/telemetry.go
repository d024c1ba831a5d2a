// Package telemetry is rita's OpenTelemetry instrumentation: the tracer and
// the instruments of a Manager, the spans of its operations, and the W3C
// trace context an event carries in its headers.
//
// It uses the OpenTelemetry API only. With the API's no-op providers (or the
// global ones before an SDK is installed) every call here is a few
// nanoseconds and allocates at most one context per span; attributes are
// only built for spans that record.
package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
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
	}, nil
}
