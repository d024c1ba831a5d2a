package rita

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Metadata keys that Decide, DecideAndEvolve and their retrying variants set
// on every event a command produces, so that the events can be traced back to
// the command (causation) and to the request or conversation it belongs to
// (correlation). They are stored like any other metadata, as the headers
// Rita-Meta-causation-id and Rita-Meta-correlation-id.
//
// A value the decider set on an event is never overwritten.
const (
	// MetaCausationID is the key of the ID of the command that caused the
	// event: Command.ID (filled from the Manager's ID generator when empty).
	MetaCausationID = "causation-id"

	// MetaCorrelationID is the key of the ID that correlates everything done
	// for one request: the command's own Meta[MetaCorrelationID] when it has
	// one, so that the ID flows from command to events to the commands they
	// trigger; otherwise the command's ID, which then starts the correlation.
	MetaCorrelationID = "correlation-id"
)

// Decide is a convenience method that combines a model's Decide invocation
// followed by an Append. If either step fails, an error is returned.
//
// It returns the decided events and the sequence of the last one stored (on
// a failed append, the events and the error). A decider error is returned
// as is, and nothing is stored. A decider that
// returns no events is not an error: nothing is stored and the sequence is 0.
// An empty cmd.ID or cmd.Time is filled from the Manager's ID generator and
// clock before the decider sees the command. Each decided event's Meta gets
// the command's causation and correlation IDs (MetaCausationID,
// MetaCorrelationID) unless the decider set them. A nil cmd is passed to
// the decider as it is, and stamps nothing.
//
// The events are appended with the Expect the decider gave them: a Model
// stamps each entity's first event with the last sequence it has seen of
// it, so that a decision taken on stale state fails with
// ErrSequenceConflict (a *ConflictError, which names the entity); a plain
// decider that sets no Expect gets no such check, so two of them deciding
// on the same stale state are both stored. Pass a Model (rita.NewModel), or
// create the Manager WithExpectRequired to have events without an Expect
// refused. Load every entity the command writes into the model before
// deciding (WithFilters with each of them). DecideWithRetry decides again
// after a conflict. docs/commands.md walks through it.
func (s *EventStore) Decide(ctx context.Context, model Decider, cmd *Command) ([]*Event, uint64, error) {
	return s.decide(ctx, "decide", model, cmd, nil)
}

// decide is Decide, and DecideAndEvolve when evolver is set, in a span
// named op.
func (s *EventStore) decide(ctx context.Context, op string, model Decider, cmd *Command, evolver Evolver) ([]*Event, uint64, error) {
	if err := s.checkCommand(ctx, model, cmd); err != nil {
		return nil, 0, err
	}
	ctx, span := s.tel.startDecide(ctx, op, s.name, cmd)
	events, seq, err := s.decideOnce(ctx, model, cmd)
	switch {
	case err != nil:
		seq = 0
	case evolver != nil && len(events) > 0:
		err = evolveStored(evolver, events, seq)
	}
	s.tel.decided(span, events, seq, 1, err)
	return events, seq, err
}

// DecideAndEvolve is a convenience method that decides, stores, and evolves a
// model in one operation. If any step fails, an error is returned. Note, that
// if the evolve step fails, the events have already been stored.
//
// Each stored event has its Sequence set before it evolves the model, so a
// Model (which skips events it has applied) stays consistent with a Watch
// feeding it the same events.
func (s *EventStore) DecideAndEvolve(ctx context.Context, model DeciderEvolver, cmd *Command) ([]*Event, uint64, error) {
	return s.decide(ctx, "decide_and_evolve", model, cmd, model)
}

// DecideWithRetry is Decide that decides again when the append fails with
// ErrSequenceConflict, because events were stored since the model last saw
// the entities it decided on.
//
// After a conflict it waits (see WithBackoff), brings the model up to date
// by evolving it with the events it missed, then asks it to decide the same
// command afresh: the events of the failed attempt are discarded, and a
// Model stamps the new ones with the sequences it has now seen. It makes at
// most WithMaxAttempts attempts (3 by default). The events it missed are
// read from each subject the failed decision expected, after the sequence
// it expected of that subject, and applied in stream order (or, with
// WithRetryFilters, from those filters after the lowest expected sequence);
// so a retry reads what was stored since, not whole histories. An event
// that an Expect says the model has already seen is not applied again.
//
// When every attempt conflicts, the error matches ErrSequenceConflict and
// says how many attempts were made. If ctx ends while waiting, the error
// matches both the context's error and ErrSequenceConflict. Any other
// error (the decider's, an invalid event, a failed catch-up) ends it at
// once. The command's ID and Time are filled once, so every attempt, and
// the stored events' causation, share them. Like Decide, it does not evolve
// the model with the events it stores; DecideAndEvolveWithRetry does.
func (s *EventStore) DecideWithRetry(ctx context.Context, model DeciderEvolver, cmd *Command, opts ...DecideOption) ([]*Event, uint64, error) {
	return s.decideWithRetry(ctx, model, cmd, false, opts)
}

// DecideAndEvolveWithRetry is DecideAndEvolve that decides again when the
// append fails with ErrSequenceConflict, as DecideWithRetry does. Once the
// events are stored, the model evolves with them; if that fails, the events
// have already been stored.
func (s *EventStore) DecideAndEvolveWithRetry(ctx context.Context, model DeciderEvolver, cmd *Command, opts ...DecideOption) ([]*Event, uint64, error) {
	return s.decideWithRetry(ctx, model, cmd, true, opts)
}

func (s *EventStore) decideWithRetry(ctx context.Context, model DeciderEvolver, cmd *Command, evolve bool, opts []DecideOption) ([]*Event, uint64, error) {
	if err := s.checkCommand(ctx, model, cmd); err != nil {
		return nil, 0, err
	}
	cfg, err := configure(opDecide, opts)
	if err != nil {
		return nil, 0, err
	}
	op := "decide_with_retry"
	if evolve {
		op = "decide_and_evolve_with_retry"
	}
	ctx, span := s.tel.startDecide(ctx, op, s.name, cmd)
	events, seq, attempts, err := s.retryDecide(ctx, model, cmd, evolve, cfg)
	s.tel.decided(span, events, seq, attempts, err)
	return events, seq, err
}

// retryDecide is decideWithRetry within its span; it also returns the
// number of attempts made.
func (s *EventStore) retryDecide(ctx context.Context, model DeciderEvolver, cmd *Command, evolve bool, cfg *config) ([]*Event, uint64, int, error) {
	for attempt := 1; ; attempt++ {
		events, seq, err := s.decideOnce(ctx, model, cmd)
		if err == nil {
			if evolve && len(events) > 0 {
				return events, seq, attempt, evolveStored(model, events, seq)
			}
			return events, seq, attempt, nil
		}
		if events == nil || !errors.Is(err, ErrSequenceConflict) {
			// A decider's own error (no events) is never retried.
			return nil, 0, attempt, err
		}
		if attempt >= cfg.maxAttempts {
			return nil, 0, attempt, fmt.Errorf("rita: decide: gave up after %s: %w", attempts(attempt), err)
		}
		if cfg.notify != nil {
			cfg.notify(attempt, err)
		}
		if werr := jsapi.Wait(ctx, cfg.backoff.Delay(attempt)); werr != nil {
			return nil, 0, attempt, fmt.Errorf("rita: decide: %w while waiting to retry after %s: %w", werr, attempts(attempt), err)
		}
		if err := s.catchUp(ctx, model, events, cfg.retryFilters); err != nil {
			return nil, 0, attempt, fmt.Errorf("rita: decide: catching up after a sequence conflict (attempt %d): %w", attempt, err)
		}
	}
}

// checkCommand refuses a nil store, context or model, and fills an empty
// cmd.ID and cmd.Time.
func (s *EventStore) checkCommand(ctx context.Context, model Decider, cmd *Command) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if model == nil {
		return fmt.Errorf("%w: nil model", ErrInvalidArgument)
	}
	if cmd != nil && cmd.ID == "" {
		cmd.ID = s.m.id.New()
	}
	if cmd != nil && cmd.Time.IsZero() {
		cmd.Time = s.m.clock.Now()
	}
	return nil
}

// decideOnce asks model to decide on cmd and appends the events it returns,
// stamped with the command's causation and correlation. It returns the
// decided events also when the append fails, for a retry to learn from.
func (s *EventStore) decideOnce(ctx context.Context, model Decider, cmd *Command) ([]*Event, uint64, error) {
	events, err := model.Decide(cmd)
	if err != nil {
		return nil, 0, err
	}
	if len(events) == 0 {
		return events, 0, nil
	}
	correlate(cmd, events)
	seq, err := s.Append(ctx, events)
	return events, seq, err
}

// evolveStored evolves model with events that were stored up to seq.
func evolveStored(model Evolver, events []*Event, seq uint64) error {
	for _, e := range events {
		if err := model.Evolve(e); err != nil {
			return fmt.Errorf("rita: events stored up to sequence %d, but evolving the model failed: %w", seq, err)
		}
	}
	return nil
}

// attempts says "1 attempt" or "n attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// correlate sets the causation and correlation IDs of cmd on events, leaving
// keys that are already set alone. It copies an event's Meta before adding to
// it, since a decider may share one map between events or keep it. Nil events
// are left for Append to refuse; a nil cmd sets nothing.
func correlate(cmd *Command, events []*Event) {
	if cmd == nil {
		return
	}
	correlation := cmd.Meta[MetaCorrelationID]
	if correlation == "" {
		correlation = cmd.ID
	}
	for _, e := range events {
		if e == nil {
			continue
		}
		_, hasCause := e.Meta[MetaCausationID]
		_, hasCorr := e.Meta[MetaCorrelationID]
		if hasCause && hasCorr {
			continue
		}
		meta := make(map[string]string, len(e.Meta)+2)
		maps.Copy(meta, e.Meta)
		if !hasCause {
			meta[MetaCausationID] = cmd.ID
		}
		if !hasCorr {
			meta[MetaCorrelationID] = correlation
		}
		e.Meta = meta
	}
}

// expectation is what a failed decision said the model had seen: every
// event on filter (pattern, as a subject pattern of the store) up to seq.
type expectation struct {
	filter  string
	pattern string
	seq     uint64
}

// seenBy reports whether an expectation says the model has seen e.
func seenBy(seen []expectation, e *Event) bool {
	for _, x := range seen {
		if e.sequence <= x.seq && wire.Matches(x.pattern, e.subject) {
			return true
		}
	}
	return false
}

// catchUp evolves model with the events it missed, as told by the Expects
// of the events it decided on: those stored on each expected subject after
// the sequence expected of it, applied in stream order. So the cost of a
// retry is what was stored since the model last looked, whatever the
// length of the histories. With filters, it reads those instead, after the
// lowest expected sequence. An event that an expectation says the model
// has seen is skipped.
func (s *EventStore) catchUp(ctx context.Context, model Evolver, decided []*Event, filters []string) error {
	var seen []expectation
	for _, e := range decided {
		if e == nil || e.Expect == nil {
			continue
		}
		pattern, err := expectPattern(s.name, e)
		if err != nil {
			return err
		}
		seen = append(seen, expectation{filter: cmp.Or(e.Expect.Pattern, e.Entity), pattern: pattern, seq: e.Expect.Sequence})
	}
	if len(seen) == 0 {
		// A conflict needs an Expect; without one there is nothing to read.
		return fmt.Errorf("%w: no decided event has an Expect to catch up from", ErrSequenceConflict)
	}
	if len(filters) > 0 {
		after := slices.MinFunc(seen, func(a, b expectation) int { return cmp.Compare(a.seq, b.seq) }).seq
		missed := EvolverFunc(func(e *Event) error {
			if seenBy(seen, e) {
				return nil
			}
			return model.Evolve(e)
		})
		_, err := s.Evolve(ctx, missed, WithFilters(filters...), WithAfterSequence(after))
		return err
	}
	var missed []*Event
	read := make(map[uint64]bool)
	collect := EvolverFunc(func(e *Event) error {
		if !read[e.sequence] && !seenBy(seen, e) {
			read[e.sequence] = true
			missed = append(missed, e)
		}
		return nil
	})
	for _, x := range seen {
		if _, err := s.Evolve(ctx, collect, WithFilters(x.filter), WithAfterSequence(x.seq)); err != nil {
			return err
		}
	}
	slices.SortFunc(missed, func(a, b *Event) int { return cmp.Compare(a.sequence, b.sequence) })
	for _, e := range missed {
		if err := model.Evolve(e); err != nil {
			return fmt.Errorf("rita: evolve event %d (%s): %w", e.sequence, e.Type, err)
		}
	}
	return nil
}
