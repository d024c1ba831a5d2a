package rita

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Evolve loads events and evolves a model of state. The sequence of the last
// event that evolved the state is returned, including when an error occurs.
// Note, the pattern can be several forms depending on the need. The full
// template is `<entity-type>.<entity-id>.<event-type>`. If only the entity
// type is provided, all events for all entities of that type will be loaded.
// If the entity type and entity ID are provided, all events for that specific
// entity will be loaded. If the full subject is provided, only events of that
// specific type for that specific entity will be loaded. Wildcards can be used
// as well.
//
// Events are applied in stream order, from the start (or after
// WithAfterSequence) up to WithStopSequence, or else up to the last matching
// event stored when Evolve began: events appended while it runs are not
// read. An empty store, or no matching event, returns (0, nil). The first
// error ends it: the model's error, an event that cannot be decoded (wrapping
// ErrEventDecode), or the context's. The consumer it reads with is removed
// before it returns (or, if its server does not confirm that within two
// seconds, by the server once it has been inactive for a minute; that does
// not fail Evolve).
//
// On a replicated store (Replicas > 1), "stored when Evolve began" is what
// the stream leader reports, not the replica Evolve happens to read from:
// an Evolve that starts after an Append has returned sees that event. Evolve
// rides out a reconnect, a lost consumer or a change of stream leader
// without skipping or repeating an event. Without a deadline in ctx it gives
// up after failing to reach the store for 30 s.
func (s *EventStore) Evolve(ctx context.Context, model Evolver, opts ...EvolveOption) (uint64, error) {
	if s == nil {
		return 0, errNilStore
	}
	if ctx == nil {
		return 0, errNilContext
	}
	if model == nil {
		return 0, fmt.Errorf("%w: nil model", ErrInvalidArgument)
	}
	cfg, err := newEvolveConfig(opts)
	if err != nil {
		return 0, err
	}
	if cfg.stopSeq != 0 && cfg.stopSeq == cfg.afterSeq {
		return 0, nil
	}
	if cfg.snapshot != nil {
		return s.evolveSnapshot(ctx, model, cfg)
	}
	subjects, match, err := s.selectSubjects(cfg.filters)
	if err != nil {
		return 0, err
	}
	spec := readSpec{
		subjects: subjects,
		match:    match,
		afterSeq: cfg.afterSeq,
		stopSeq:  cfg.stopSeq,
	}
	var last uint64
	apply := func(e *Event) error {
		if err := model.Evolve(e); err != nil {
			return fmt.Errorf("rita: evolve event %d (%s): %w", e.sequence, e.Type, err)
		}
		last = e.sequence
		return nil
	}
	if s.useDirect(spec) {
		if err := s.evolveDirect(ctx, spec, apply); !errors.Is(err, errNoDirect) {
			return last, err
		}
	}
	err = s.read(ctx, spec, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
		e, err := decodeEvent(s.m.types, msg.Subject(), msg.Headers(), msg.Data(), md.Sequence.Stream, md.Timestamp)
		if err != nil {
			return err
		}
		return apply(e)
	})
	return last, err
}
