package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names (docs/observability.md has the table).
const (
	MetricAppended        = "rita.append.events"
	MetricAppendDuration  = "rita.append.duration"
	MetricConflicts       = "rita.append.conflicts"
	MetricDuplicates      = "rita.append.duplicates"
	MetricRetries         = "rita.retries"
	MetricEvolveEvents    = "rita.evolve.events"
	MetricEvolveDuration  = "rita.evolve.duration"
	MetricSnapshotHits    = "rita.snapshot.hits"
	MetricSnapshotMisses  = "rita.snapshot.misses"
	MetricHandlerDuration = "rita.handler.duration"
	MetricHandlerFailures = "rita.handler.failures"
	MetricParked          = "rita.parked"
	MetricLag             = "rita.consumer.lag"
)

// durationBuckets are the histogram boundaries, in seconds: from an append
// on loopback (about 100 µs) to a replay of millions of events.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// Instruments are the metrics of one Manager.
type Instruments struct {
	meter metric.Meter

	Appended        metric.Int64Counter
	AppendDuration  metric.Float64Histogram
	Conflicts       metric.Int64Counter
	Duplicates      metric.Int64Counter
	Retries         metric.Int64Counter
	EvolveEvents    metric.Int64Counter
	EvolveDuration  metric.Float64Histogram
	SnapshotHits    metric.Int64Counter
	SnapshotMisses  metric.Int64Counter
	HandlerDuration metric.Float64Histogram
	HandlerFailures metric.Int64Counter
	Parked          metric.Int64Counter
	Lag             metric.Int64ObservableGauge
}

func newInstruments(meter metric.Meter) (*Instruments, error) {
	m := &Instruments{meter: meter}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	m.Appended = counter(MetricAppended, "{event}", "Events stored by Append.")
	m.AppendDuration = seconds(MetricAppendDuration, "Duration of Append calls, retries included.")
	m.Conflicts = counter(MetricConflicts, "{append}", "Appends refused because an expectation did not hold.")
	m.Duplicates = counter(MetricDuplicates, "{event}", "Events not stored again because their ID was stored already.")
	m.Retries = counter(MetricRetries, "{retry}", "Requests sent again after a transient fault.")
	m.EvolveEvents = counter(MetricEvolveEvents, "{event}", "Events applied by Evolve.")
	m.EvolveDuration = seconds(MetricEvolveDuration, "Duration of Evolve calls.")
	m.SnapshotHits = counter(MetricSnapshotHits, "{lookup}", "Evolve calls that started from a snapshot.")
	m.SnapshotMisses = counter(MetricSnapshotMisses, "{lookup}", "Evolve calls that asked for a snapshot and found none to use.")
	m.HandlerDuration = seconds(MetricHandlerDuration, "Duration of a durable consumer's or projection's handler call.")
	m.HandlerFailures = counter(MetricHandlerFailures, "{failure}", "Handler calls that returned an error or panicked.")
	m.Parked = counter(MetricParked, "{event}", "Events parked by a durable consumer.")
	lag, err := meter.Int64ObservableGauge(MetricLag, metric.WithUnit("{event}"),
		metric.WithDescription("Events of a durable consumer not yet done: pending plus in flight, as Progress reports."))
	errs = append(errs, err)
	m.Lag = lag
	return m, errors.Join(errs...)
}

// Since is the time since start in seconds, as the duration histograms take
// it.
func Since(start time.Time) float64 { return time.Since(start).Seconds() }

// Attrs is a set of metric attributes made once and used for every
// measurement of a store or consumer, so that measuring allocates nothing.
type Attrs struct {
	set     attribute.Set
	adds    []metric.AddOption
	records []metric.RecordOption
}

// NewAttrs makes the measurement options of kvs.
func NewAttrs(kvs ...attribute.KeyValue) Attrs {
	set := attribute.NewSet(kvs...)
	o := metric.WithAttributeSet(set)
	return Attrs{set: set, adds: []metric.AddOption{o}, records: []metric.RecordOption{o}}
}

// Value returns the value of the attribute key, "" if there is none.
func (a Attrs) Value(key attribute.Key) string {
	v, _ := a.set.Value(key)
	return v.AsString()
}

// With returns the attributes with kvs added.
func (a Attrs) With(kvs ...attribute.KeyValue) Attrs {
	return NewAttrs(append(a.set.ToSlice(), kvs...)...)
}

// Add adds n to c.
func (a Attrs) Add(ctx context.Context, c metric.Int64Counter, n int64) {
	if n != 0 && c.Enabled(ctx) {
		c.Add(ctx, n, a.adds...)
	}
}

// Record records v in h.
func (a Attrs) Record(ctx context.Context, h metric.Float64Histogram, v float64) {
	if h.Enabled(ctx) {
		h.Record(ctx, v, a.records...)
	}
}

// ObserveLag registers a callback that reports a consumer's lag, as lag
// returns it, each time the metrics are collected. The returned function
// unregisters it.
func (m *Instruments) ObserveLag(a Attrs, lag func(context.Context) (uint64, error)) (unregister func(), err error) {
	obs := metric.WithAttributeSet(a.set)
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, lagTimeout)
		defer cancel()
		n, err := lag(ctx)
		if err != nil {
			return nil // no value this time; the next collection asks again
		}
		o.ObserveInt64(m.Lag, int64(min(n, 1<<62)), obs)
		return nil
	}, m.Lag)
	if err != nil {
		return nil, err
	}
	return func() { _ = reg.Unregister() }, nil
}

// lagTimeout bounds the request a lag observation makes.
const lagTimeout = 2 * time.Second
