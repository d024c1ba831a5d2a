package rita

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxBatchSize is the most events one Append stores. They form one atomic
// batch, and the server takes at most 1000 messages in one; a longer Append
// is refused with ErrTooManyEvents rather than split, since a split batch
// would no longer be atomic.
const MaxBatchSize = 1000

// EventStore persists events to a JetStream stream and provides operations to
// append, evolve, and watch events.
//
// An EventStore is safe for concurrent use by multiple goroutines. The
// methods of a nil *EventStore fail with ErrInvalidArgument.
type EventStore struct {
	m      *Manager
	name   string
	stream jetstream.Stream
}

func (m *Manager) newEventStore(name string, stream jetstream.Stream) *EventStore {
	return &EventStore{m: m, name: name, stream: stream}
}

// Name returns the name of the store.
func (s *EventStore) Name() string {
	if s == nil {
		return ""
	}
	return s.name
}

// Append appends a one or more events to the subject's event sequence. It
// returns the resulting sequence number of the last appended event.
//
// Every event is checked before anything is published: it needs an Entity of
// two tokens, Data, and a Type (taken from the registry when there is one);
// empty IDs and Times are filled from the Manager's ID generator and clock.
// One event is one publish. Several are one atomic batch: all are stored, with
// consecutive sequences, or none. An Expect that does not hold fails with
// ErrSequenceConflict. An event whose ID is already stored (within the
// stream's duplicate window) is not stored again: alone, Append returns the
// sequence it was first stored at; in a batch, the whole batch fails with
// ErrDuplicateEvent. On success each event's Sequence and Subject are set.
//
// Append rides out transient failures, such as a stream leader election, a
// restarting server or a reconnecting connection: it sends the same events,
// under the same IDs, again with backoff until ctx ends (or for at most 30 s
// if ctx has no deadline, and never later than half the store's duplicate
// window after the first try). So it returns one success, also when an
// earlier try was stored but its answer lost, or one final error. A final
// error after a timeout (it matches context.DeadlineExceeded) does not tell
// whether the events were stored: appending the same events again, with
// their IDs, within the duplicate window finds out without storing them
// twice (a single event gets its first sequence back; a batch that was
// stored fails with ErrDuplicateEvent). Sequence conflicts, duplicates,
// invalid events and other refusals of the server are never retried.
func (s *EventStore) Append(ctx context.Context, events []*Event) (uint64, error) {
	if s == nil {
		return 0, errNilStore
	}
	if ctx == nil {
		return 0, errNilContext
	}
	encoded, err := s.prepare(events)
	if err != nil {
		return 0, err
	}
	return s.publish(ctx, encoded)
}

// prepare validates and encodes events; it publishes nothing.
func (s *EventStore) prepare(events []*Event) ([]encodedEvent, error) {
	switch {
	case len(events) == 0:
		return nil, ErrNoEvents
	case len(events) > MaxBatchSize:
		return nil, fmt.Errorf("%w: %d events, at most %d", ErrTooManyEvents, len(events), MaxBatchSize)
	}
	for i, e := range events {
		if e == nil {
			return nil, fmt.Errorf("%w: at index %d", ErrEventNil, i)
		}
		if err := validateEvent(e); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
	}
	var seen map[string]int
	if len(events) > 1 {
		seen = make(map[string]int, len(events))
	}
	encoded := make([]encodedEvent, len(events))
	maxPayload := s.m.nc.MaxPayload()
	for i, e := range events {
		payload, codecName, err := encodeData(s.m.types, e)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		generatedID := e.ID == ""
		if generatedID {
			e.ID = s.m.id.New()
		}
		if e.Time.IsZero() {
			e.Time = s.m.clock.Now()
		}
		if seen != nil {
			if j, dup := seen[e.ID]; dup {
				return nil, fmt.Errorf("%w: ID %q is used by events %d and %d", ErrDuplicateEvent, e.ID, j, i)
			}
			seen[e.ID] = i
		}
		msg, err := newEventMsg(s.name, e, payload, codecName)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		setVersion(s.m.types, msg)
		if err := checkSize(msg, maxPayload); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		encoded[i] = encodedEvent{event: e, msg: msg, generatedID: generatedID}
	}
	return encoded, nil
}

func (s *EventStore) publishOne(ctx context.Context, ev encodedEvent) (uint64, error) {
	ack, err := s.m.js.PublishMsg(ctx, ev.msg)
	if err != nil {
		return 0, s.publishError(err)
	}
	ev.event.sequence = ack.Sequence
	ev.event.subject = ev.msg.Subject
	return ack.Sequence, nil
}

// publishError maps a failed publish to the package's errors.
func (s *EventStore) publishError(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeWrongLastSequence, errCodeWrongLastSequenceConstant:
			return fmt.Errorf("%w: store %q: %w", ErrSequenceConflict, s.name, serverRefusal{apiErr})
		}
	}
	if tooLarge(err) {
		return fmt.Errorf("%w: store %q: %w", ErrEventTooLarge, s.name, err)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("rita: append to store %q: no stream answered (is the store deleted?): %w", s.name, err)
	}
	return fmt.Errorf("rita: append to store %q: %w", s.name, err)
}

// JetStream error codes that Append maps to the package's errors.
const (
	errCodeWrongLastSequence         jetstream.ErrorCode = 10071
	errCodeWrongLastSequenceConstant jetstream.ErrorCode = 10164
	errCodeBatchDuplicate            jetstream.ErrorCode = 10201
	errCodeBatchIncomplete           jetstream.ErrorCode = 10176
	errCodeBatchTooManyInflight      jetstream.ErrorCode = 10210
)

// Decide is a convenience method that combines a model's Decide invocation
// followed by an Append. If either step fails, an error is returned.
//
// It returns the decided events and the sequence of the last one stored. A
// decider error is returned as is, and nothing is stored. A decider that
// returns no events is not an error: nothing is stored and the sequence is 0.
// An empty cmd.ID or cmd.Time is filled from the Manager's ID generator and
// clock before the decider sees the command. Each decided event's Meta gets
// the command's causation and correlation IDs (MetaCausationID,
// MetaCorrelationID) unless the decider set them. DecideWithRetry retries on
// ErrSequenceConflict.
func (s *EventStore) Decide(ctx context.Context, model Decider, cmd *Command) ([]*Event, uint64, error) {
	if err := s.checkCommand(ctx, model, cmd); err != nil {
		return nil, 0, err
	}
	events, seq, err := s.decideOnce(ctx, model, cmd)
	if err != nil {
		return nil, 0, err
	}
	return events, seq, nil
}

// checkCommand refuses a nil store, context, model or command, and fills an
// empty cmd.ID and cmd.Time.
func (s *EventStore) checkCommand(ctx context.Context, model Decider, cmd *Command) error {
	switch {
	case s == nil:
		return errNilStore
	case ctx == nil:
		return errNilContext
	case model == nil:
		return fmt.Errorf("%w: nil model", ErrInvalidArgument)
	case cmd == nil:
		return fmt.Errorf("%w: nil command", ErrInvalidArgument)
	}
	if cmd.ID == "" {
		cmd.ID = s.m.id.New()
	}
	if cmd.Time.IsZero() {
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

// DecideAndEvolve is a convenience method that decides, stores, and evolves a
// model in one operation. If any step fails, an error is returned. Note, that
// if the evolve step fails, the events have already been stored.
//
// Each stored event has its Sequence set before it evolves the model, so a
// Model (which skips events it has applied) stays consistent with a Watch
// feeding it the same events.
func (s *EventStore) DecideAndEvolve(ctx context.Context, model DeciderEvolver, cmd *Command) ([]*Event, uint64, error) {
	events, seq, err := s.Decide(ctx, model, cmd)
	if err != nil || len(events) == 0 {
		return events, seq, err
	}
	return events, seq, evolveStored(model, events, seq)
}
