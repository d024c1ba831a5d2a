package rita

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// EvolverFunc lets a function be an Evolver.
type EvolverFunc func(*Event) error

// Evolve calls f(e).
func (f EvolverFunc) Evolve(e *Event) error { return f(e) }

// Evolve loads events and evolves a model of state. The sequence of the last
// event that evolved the state is returned, including when an error occurs.
// Which events are loaded is said by WithFilters, in the form
// `<entity-type>.<entity-id>.<event-type>`. If only the entity type is
// provided, all events for all entities of that type will be loaded. If the
// entity type and entity ID are provided, all events for that specific
// entity will be loaded. If the full subject is provided, only events of
// that specific type for that specific entity will be loaded. Wildcards can
// be used as well. Without filters, every event of the store is loaded.
//
// Events are applied in stream order, from the start (or after
// WithAfterSequence) up to WithStopSequence, or else up to the last matching
// event stored when Evolve began: events appended while it runs are not
// read. An empty store, or no matching event, returns (0, nil). The first
// error ends it: the model's error, an event that cannot be decoded (wrapping
// ErrEventDecode), or the context's.
//
// On a replicated store (Replicas > 1), "stored when Evolve began" is what
// the stream leader reports, not the replica Evolve happens to read from:
// an Evolve that starts after an Append has returned sees that event.
// Evolve rides out a reconnect, a lost consumer, a restarting server or a
// change of stream leader, trying again with backoff from where it got to,
// without skipping or repeating an event, until ctx ends. Without a
// deadline in ctx it gives up once it has failed to reach the store for
// 30 s. Either way the error it gives up with matches
// context.DeadlineExceeded and says what Evolve was waiting for; the
// events applied before it stay applied.
func (s *EventStore) Evolve(ctx context.Context, model Evolver, opts ...EvolveOption) (uint64, error) {
	cfg, err := begin(s, ctx, opEvolve, "model", model == nil, opts)
	if err != nil {
		return 0, err
	}
	if cfg.stop != 0 && cfg.stop <= cfg.after {
		return 0, nil // nothing between them
	}
	start := time.Now()
	ctx, span := s.tel.startSpan(ctx, s.tel.evolveName, "evolve", "receive", s.tel.client)
	var out evolveOutcome
	last, err := s.evolve(ctx, model, cfg, &out)
	s.tel.evolved(ctx, span, start, out, last, err)
	return last, err
}

// evolveOutcome is what an Evolve did, for its span and metrics.
type evolveOutcome struct {
	applied   uint64 // events applied
	path      string // readPathDirect, readPathConsumer or readPathSnapshot
	snapshots int    // entities evolved from a snapshot
	misses    int    // entities that asked for one and found none to use
}

// evolve is Evolve within its span.
func (s *EventStore) evolve(ctx context.Context, model Evolver, cfg *config, out *evolveOutcome) (uint64, error) {
	if cfg.snapshot != nil {
		out.path = readPathSnapshot
		return s.evolveSnapshot(ctx, model, cfg, out)
	}
	spec, err := s.readSpec(cfg.filters)
	if err != nil {
		return 0, err
	}
	spec.After, spec.Stop = cfg.after, cfg.stop
	var last uint64
	out.path, err = s.read(ctx, spec, func(e *Event) error {
		if err := model.Evolve(e); err != nil {
			return fmt.Errorf("rita: evolve event %d (%s): %w", e.sequence, e.Type, err)
		}
		last = e.sequence
		out.applied++
		return nil
	})
	return last, err
}

// readSpec turns filters into what a read delivers: the consumer's filter
// subjects and, when the consumer has to read wider than the filters, the
// patterns to match.
func (s *EventStore) readSpec(filters []string) (*read.Spec, error) {
	all := wire.StoreSubjects(s.name)
	if len(filters) == 0 {
		return &read.Spec{Subjects: []string{all}}, nil
	}
	patterns := make([]string, len(filters))
	for i, f := range filters {
		p, err := filterPattern(s.name, f)
		if err != nil {
			return nil, err
		}
		patterns[i] = p
	}
	kept, exact := wire.ConsumerSubjects(patterns)
	if exact {
		return &read.Spec{Subjects: kept}, nil
	}
	return &read.Spec{Subjects: []string{all}, Match: kept}, nil
}

// read decodes and applies, in stream order, the events spec selects that
// were stored when it began: for one entity with direct gets, otherwise with
// a consumer. apply's error ends it and is returned as is; the read's own
// name the store. path says which read it was: readPathDirect or
// readPathConsumer.
func (s *EventStore) read(ctx context.Context, spec *read.Spec, apply func(*Event) error) (path string, err error) {
	var applyErr error
	deliver := func(m *read.Msg) error {
		e, err := decodeEvent(ctx, s.m.types, s.ring, &m.Msg)
		if err == nil {
			err = apply(e)
		}
		applyErr = err
		return err
	}
	if s.src.Direct && spec.Match == nil && len(spec.Subjects) == 1 && isEntityPattern(s.name, spec.Subjects[0]) {
		path = readPathDirect
		err = read.Entity(ctx, s.src, spec.Subjects[0], spec.After, spec.Stop, read.Known{}, deliver)
	} else {
		path = readPathConsumer
		err = read.Read(ctx, s.src, spec, deliver)
	}
	if err != nil && applyErr == nil {
		return path, fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	return path, err
}

// isEntityPattern reports whether pattern is $ES.<store>.<type>.<id>.<event>
// with a literal type and id: the events (of some types) of one entity,
// which direct gets read fastest.
func isEntityPattern(store, pattern string) bool {
	rest, ok := strings.CutPrefix(pattern, wire.SubjectPrefix+store+".")
	if !ok {
		return false
	}
	typ, rest, ok1 := strings.Cut(rest, ".")
	id, evt, ok2 := strings.Cut(rest, ".")
	return ok1 && ok2 && evt != "" && !strings.Contains(evt, ".") &&
		typ != "*" && typ != ">" && id != "*" && id != ">"
}
