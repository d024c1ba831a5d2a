package rita

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/telemetry"
	"github.com/synadia-labs/rita/internal/wire"
)

// Append rides out the faults of a live system (a stream leader election, a
// server that restarts, a connection that moves to another server) by
// sending the same messages again, under the retry rules of package jsapi.
//
// Invariants:
//   - every attempt sends the same events under the same IDs (Nats-Msg-Id),
//     so the stream's de-duplication turns an attempt that repeats a stored
//     one into a duplicate, never into a second copy;
//   - only transient failures (jsapi.Transient) are retried. A sequence
//     conflict, a duplicate, a validation error or any other refusal is
//     final. One answer is in between: on a clustered stream, "wrong last
//     sequence" without a sequence (10164) means another append with an
//     expectation on the same subjects is still in process, so the check
//     could not be made. It is sent again a few times, for about a second,
//     before it counts as a conflict;
//   - when an attempt fails because an earlier one was in fact stored (its
//     answer was lost), Append reports the stored events as its success:
//     a single event is acknowledged as a duplicate with its first sequence
//     by the server itself; a batch, or a single event whose Expect the
//     server checks before de-duplicating (a server outside a cluster does),
//     is refused, and Append then looks the IDs up (storedTogether);
//   - no attempt starts later than half the stream's duplicate window after
//     the first one: after the window, the server would no longer recognise
//     a stored ID, and a retry could store an event twice.

const (
	// attemptTimeoutPerEvent adds to the first attempt's timeout for each
	// event of a batch.
	attemptTimeoutPerEvent = 2 * time.Millisecond

	// maxInProcessTries is how often an append refused because another
	// one with an expectation on the same subjects is in process is sent
	// again (about a second, with the backoff) before it fails with
	// ErrSequenceConflict.
	maxInProcessTries = 6
)

// minBatchServer is the oldest nats-server whose atomic batches check the
// expectations of several entities correctly.
var minBatchServer = jsapi.Version{2, 14, 4}

// Append appends one or more events to the store. It returns the sequence
// of the last event stored.
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
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	ctx, span := s.tel.startSpan(ctx, s.tel.appendName, "append", "send", s.tel.producer)
	seq, out, err := s.append(ctx, events)
	s.tel.appended(ctx, span, start, events, seq, out, err)
	return seq, err
}

// appendOutcome is what an append did beyond its result, for its span and
// metrics.
type appendOutcome struct {
	retries   int  // attempts sent again after a transient failure
	duplicate bool // a single event found stored already under its ID
	published bool // the events got as far as the server
}

// append is Append within its span.
func (s *EventStore) append(ctx context.Context, events []*Event) (uint64, appendOutcome, error) {
	msgs, ownID, err := s.encode(ctx, events)
	if err != nil {
		return 0, appendOutcome{}, err
	}
	seq, out, err := s.publish(ctx, events, msgs, ownID)
	if err != nil {
		return 0, out, err
	}
	stored(events, msgs, seq)
	return seq, out, nil
}

// encode makes the messages of events, ready to publish: checked and
// encoded (prepare), sealed when the store encrypts, carrying ctx's trace
// context. It publishes nothing.
func (s *EventStore) encode(ctx context.Context, events []*Event) (msgs []*nats.Msg, ownID bool, err error) {
	msgs, ownID, err = s.prepare(events)
	if err != nil {
		return nil, false, err
	}
	if len(msgs) > 1 && jsapi.OlderThan(s.m.nc.ConnectedServerVersion(), minBatchServer) {
		return nil, false, fmt.Errorf("%w: appending several events as one atomic batch needs nats-server v%s or newer, connected to v%s",
			ErrServerUnsupported, minBatchServer, s.m.nc.ConnectedServerVersion())
	}
	if s.ring != nil {
		if err := s.guarded(ctx, func(ctx context.Context) error { return s.seal(ctx, events, msgs) }); err != nil {
			return nil, false, err
		}
	}
	injectTrace(ctx, msgs)
	return msgs, ownID, nil
}

// injectTrace adds the trace context of ctx's span, if any, to msgs.
func injectTrace(ctx context.Context, msgs []*nats.Msg) {
	if parent, state := telemetry.Inject(ctx); parent != "" {
		for _, m := range msgs {
			wire.SetTrace(m.Header, parent, state)
		}
	}
}

// stored sets the sequence and subject of events, stored as msgs, the last
// at seq.
func stored(events []*Event, msgs []*nats.Msg, seq uint64) {
	first := seq - uint64(len(events)) + 1
	for i, e := range events {
		e.sequence = first + uint64(i)
		e.subject = msgs[i].Subject
	}
}

// prepare validates and encodes events; it publishes nothing. ownID says
// whether an ID came from the caller (and may be stored already).
func (s *EventStore) prepare(events []*Event) (msgs []*nats.Msg, ownID bool, err error) {
	switch {
	case len(events) == 0:
		return nil, false, ErrNoEvents
	case len(events) > MaxBatchSize:
		return nil, false, fmt.Errorf("%w: %d events, at most %d", ErrTooManyEvents, len(events), MaxBatchSize)
	}
	for i, e := range events {
		if e == nil {
			return nil, false, fmt.Errorf("%w: at index %d", ErrEventNil, i)
		}
		if err := validateEvent(e); err != nil {
			return nil, false, fmt.Errorf("event %d: %w", i, err)
		}
	}
	var seen map[string]int
	if len(events) > 1 {
		seen = make(map[string]int, len(events))
	}
	msgs = make([]*nats.Msg, len(events))
	maxPayload := s.m.nc.MaxPayload()
	for i, e := range events {
		payload, codecName, err := encodeData(s.m.types, e)
		if err != nil {
			return nil, false, fmt.Errorf("event %d: %w", i, err)
		}
		if e.ID == "" {
			e.ID = s.m.id.New()
		} else {
			ownID = true
		}
		if e.Time.IsZero() {
			e.Time = s.m.clock.Now()
		}
		if seen != nil {
			if j, dup := seen[e.ID]; dup {
				return nil, false, fmt.Errorf("%w: ID %q is used by events %d and %d", ErrDuplicateEvent, e.ID, j, i)
			}
			seen[e.ID] = i
		}
		msg, err := encodeEvent(s.m.types, s.name, e, payload, codecName)
		if err != nil {
			return nil, false, fmt.Errorf("event %d: %w", i, err)
		}
		if err := checkSize(msg, maxPayload); err != nil {
			return nil, false, fmt.Errorf("event %d: %w", i, err)
		}
		msgs[i] = msg
	}
	if s.m.expectRequired {
		if err := s.checkExpected(events, msgs); err != nil {
			return nil, false, err
		}
	}
	return msgs, ownID, nil
}

// checkExpected refuses events of an entity that no Expect of the call
// covers.
func (s *EventStore) checkExpected(events []*Event, msgs []*nats.Msg) error {
	var patterns []string
	for _, e := range events {
		if e.Expect != nil {
			p, _ := expectPattern(s.name, e) // checked by encodeEvent
			patterns = append(patterns, p)
		}
	}
	for i, m := range msgs {
		if events[i].Expect == nil && !wire.MatchesAny(patterns, m.Subject) {
			return fmt.Errorf("%w: event %d (entity %q) has no Expect, and this Manager requires one for every entity an append writes (WithExpectRequired): decide through rita.Model, which sets it, or set Event.Expect (ExpectSequence(0) for a new entity)",
				ErrExpectRequired, i, events[i].Entity)
		}
	}
	return nil
}

// publish stores msgs, one publish or one atomic batch, retrying transient
// failures as described above, and returns the last sequence.
func (s *EventStore) publish(ctx context.Context, events []*Event, msgs []*nats.Msg, ownID bool) (uint64, appendOutcome, error) {
	// The first attempt, bounded by its own timeout, is all that almost
	// every Append makes: the retry rules, the duplicate window's limit and
	// the permission guard of a context are only set up once it has
	// failed. A single event's first attempt is guarded by a watch, which
	// costs nothing until the server refuses something.
	start := time.Now()
	var seq uint64
	var dup bool
	var err error
	var scope *jsapi.Scope
	if len(msgs) == 1 {
		seq, dup, err = s.publishFirst(ctx, msgs[0])
	} else {
		scope = appendScope(s, msgs)
		gctx, release := s.m.guard(ctx, scope)
		seq, dup, err = s.publishAttempt(gctx, msgs, 1)
		err = s.denied(gctx, scope, err)
		release()
	}
	if err == nil {
		return seq, outcome(nil, dup), nil
	}
	return s.publishAgain(ctx, events, msgs, ownID, start, scope, err)
}

// publishAgain goes on with an append whose first attempt, made at start,
// failed with err: it applies the retry rules described above. scope is the
// first attempt's, or nil if it had none.
func (s *EventStore) publishAgain(ctx context.Context, events []*Event, msgs []*nats.Msg, ownID bool, start time.Time, scope *jsapi.Scope, err error) (uint64, appendOutcome, error) {
	var seq uint64
	if scope == nil {
		scope = appendScope(s, msgs)
		err = jsapi.Cause(ctx, s.m.nc, scope, err)
	}
	ctx, release := s.m.guard(ctx, scope) // a refused publish ends it at once
	defer release()
	retry := jsapi.NewRetry(ctx, "", func(n int, err error) {
		s.m.logger.Debug("rita: append: retrying", "store", s.name, "attempt", n, "events", len(events), "error", err)
		s.tel.appendRetry.Add(ctx, s.tel.M.Retries, 1)
	})
	inProcessTries := 0
	checkedStream := false
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			seq, _, err = s.publishAttempt(ctx, msgs, attempt)
			if err == nil {
				return seq, outcome(retry, false), nil
			}
			err = s.denied(ctx, scope, err)
		}
		// On a clustered stream, "wrong last sequence" without a sequence
		// (10164) says that another append with an expectation on the
		// same subjects is in process: only after it does the check have
		// an answer. Try again, briefly.
		inProcess := jsapi.HasCode(err, jsapi.CodeWrongLastSequenceConstant) && inProcessTries < maxInProcessTries
		if inProcess {
			inProcessTries++
		} else if mayBeStoredAlready(attempt, len(events) == 1 && ownID, err) {
			if seq, ok := s.storedTogether(ctx, events, msgs); ok {
				s.m.logger.Debug("rita: append: already stored", "store", s.name, "attempt", attempt, "events", len(events), "sequence", seq)
				return seq, outcome(retry, attempt == 1), nil // a duplicate if stored before this call
			}
		}
		if jsapi.HasCode(err, jsapi.CodeBatchDuplicate) {
			return 0, outcome(retry, false), s.duplicateError(ctx, events, msgs)
		}
		if !inProcess && !jsapi.Transient(err) {
			return 0, outcome(retry, false), s.publishError(ctx, events, err)
		}
		if !checkedStream && jsapi.NoResponders(err) {
			// No responders also means the store is gone: ask the meta
			// layer once, so that Append does not wait in vain.
			checkedStream = true
			if gone := s.streamGone(ctx); gone != nil {
				return 0, outcome(retry, false), fmt.Errorf("rita: append to store %q: %w: %w", s.name, gone, err)
			}
		}
		if time.Since(start) > s.duplicateWindow()/2 {
			return 0, outcome(retry, false), fmt.Errorf("rita: append to store %q: gave up after %d attempts, at half the store's duplicate window: %w", s.name, attempt, err)
		}
		if err := retry.FailedRetryable(ctx, err); err != nil {
			return 0, outcome(retry, false), fmt.Errorf("rita: append to store %q: %w", s.name, err)
		}
	}
}

// firstAppendTimeout bounds the first attempt of a single event's Append.
const firstAppendTimeout = jsapi.FirstAttemptTimeout + attemptTimeoutPerEvent

// publishFirst sends a single event's first attempt through the Manager's
// acknowledgement table (jsapi.Acks), so that concurrent Appends pipeline
// on the connection and none waits for another, and waits for its
// acknowledgement until it comes, firstAppendTimeout passes, ctx ends, or
// the server refuses a publish of the call (a permission violation,
// watched without a context). A publish abandoned because ctx ended may
// still be stored, as one that timed out.
func (s *EventStore) publishFirst(ctx context.Context, msg *nats.Msg) (seq uint64, dup bool, err error) {
	w, refused := s.m.denials.Watch()
	if refused != nil {
		return 0, false, refused
	}
	p, err := s.m.acks.Publish(msg)
	if err != nil {
		return 0, false, err
	}
	ack, err := p.Wait(ctx, firstAppendTimeout, &w, func() *jsapi.Scope { return appendScope(s, []*nats.Msg{msg}) })
	if err != nil {
		return 0, false, err
	}
	return ack.Sequence, ack.Duplicate, nil
}

// outcome is what a publish did, for Append's span and metrics: the
// retries its retry rules made (none without retry), and whether a single
// event was found stored already.
func outcome(retry *jsapi.Retry, duplicate bool) appendOutcome {
	o := appendOutcome{published: true, duplicate: duplicate}
	if retry != nil {
		o.retries = retry.Retried()
	}
	return o
}

// publishAttempt sends msgs once, within the attempt's timeout. dup says
// that a single event was acknowledged as a duplicate of a stored one.
func (s *EventStore) publishAttempt(ctx context.Context, msgs []*nats.Msg, attempt int) (seq uint64, dup bool, err error) {
	timeout := jsapi.AttemptTimeout(attempt) + time.Duration(len(msgs))*attemptTimeoutPerEvent<<min(attempt-1, 2)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if len(msgs) == 1 {
		ack, err := s.m.js.PublishMsg(ctx, msgs[0])
		if err != nil {
			return 0, false, err
		}
		return ack.Sequence, ack.Duplicate, nil
	}
	seq, err = jsapi.PublishBatch(ctx, s.m.nc, msgs)
	return seq, false, err
}

// publishError maps a refused publish to the package's errors.
func (s *EventStore) publishError(ctx context.Context, events []*Event, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsapi.CodeWrongLastSequence, jsapi.CodeWrongLastSequenceConstant:
			return s.conflictError(ctx, events, apiErr)
		}
	}
	if tooLarge(err) {
		return fmt.Errorf("%w: store %q: %w", ErrEventTooLarge, s.name, err)
	}
	if storeFull(err) {
		return fmt.Errorf("%w: store %q: %w", ErrStoreFull, s.name, err)
	}
	return fmt.Errorf("rita: append to store %q: %w", s.name, err)
}

// conflictError says which event's Expect failed. For a single event the
// server's answer names the actual last sequence (unless the check was
// made while another append was in process); for a batch it names no event,
// so the expected subjects' last sequences are looked up, and the first
// event whose expectation no longer holds is the one reported.
func (s *EventStore) conflictError(ctx context.Context, events []*Event, apiErr *jetstream.APIError) error {
	ce := &ConflictError{Store: s.name, err: jsapi.Refusal{APIError: apiErr}}
	reported, hasReported := reportedLastSeq(apiErr)
	var expecting []*Event
	for _, e := range events {
		if e.Expect != nil {
			expecting = append(expecting, e)
		}
	}
	if len(expecting) == 0 {
		return ce // the server saw an expectation rita did not set
	}
	found := expecting[0]
	var actual uint64
	if len(expecting) == 1 && hasReported {
		actual = reported
	} else {
		for _, e := range expecting {
			last, err := s.lastOn(ctx, e)
			if err != nil {
				break // report the first expectation, without its actual
			}
			if last != e.Expect.Sequence {
				found, actual = e, last
				break
			}
		}
	}
	ce.EventID, ce.Entity = found.ID, found.Entity
	ce.Pattern = cmp.Or(found.Expect.Pattern, found.Entity)
	ce.Expected, ce.Actual = found.Expect.Sequence, actual
	return ce
}

// reportedLastSeq reads the actual last sequence from the server's "wrong
// last sequence: N" answer.
func reportedLastSeq(apiErr *jetstream.APIError) (uint64, bool) {
	_, n, ok := strings.Cut(apiErr.Description, "wrong last sequence: ")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(n), 10, 64)
	return seq, err == nil
}

// lastOn returns the last sequence on the subjects e's Expect covers, as
// the stream leader has it.
func (s *EventStore) lastOn(ctx context.Context, e *Event) (uint64, error) {
	pattern, err := expectPattern(s.name, e)
	if err != nil {
		return 0, err
	}
	return jsapi.LastSeq(ctx, s.m.nc, wire.StreamName(s.name), []string{pattern}, time.Time{}, jsapi.FirstAttemptTimeout)
}

// mayBeStoredAlready reports whether err may mean that the events are stored
// already, so that their IDs are worth looking up: a retry refused as a
// conflict or a duplicate (the first attempt may have been stored), or a
// single event with an ID of the caller's (which may have been appended
// before) refused as a conflict.
func mayBeStoredAlready(attempt int, singleOwnID bool, err error) bool {
	refused := jsapi.HasCode(err, jsapi.CodeWrongLastSequence) || jsapi.HasCode(err, jsapi.CodeWrongLastSequenceConstant) ||
		jsapi.HasCode(err, jsapi.CodeBatchDuplicate)
	return refused && (attempt > 1 || singleOwnID)
}

// storedTogether looks up the events' IDs in the store. If every one of
// them is stored, one after the other in the order of events, it returns
// the last sequence and true.
func (s *EventStore) storedTogether(ctx context.Context, events []*Event, msgs []*nats.Msg) (uint64, bool) {
	found, err := s.storedIDs(ctx, msgs)
	if err != nil || len(found) != len(events) {
		return 0, false
	}
	first := found[events[0].ID]
	for i, e := range events {
		if found[e.ID] != first+uint64(i) {
			return 0, false
		}
	}
	return first + uint64(len(events)) - 1, true
}

// storedIDs returns the sequence of each of the messages' IDs that is stored
// on the messages' subjects within the stream's duplicate window.
func (s *EventStore) storedIDs(ctx context.Context, msgs []*nats.Msg) (map[string]uint64, error) {
	want := make(map[string]bool, len(msgs))
	var subjects []string
	for _, m := range msgs {
		want[m.Header.Get(wire.HdrMsgID)] = true
		if !slices.Contains(subjects, m.Subject) {
			subjects = append(subjects, m.Subject)
		}
	}
	spec := &read.Spec{
		Subjects:    subjects,
		StartTime:   time.Now().Add(-s.duplicateWindow() - time.Minute),
		HeadersOnly: true,
	}
	found := make(map[string]uint64, len(msgs))
	err := read.Read(ctx, s.src, spec, func(m *read.Msg) error {
		if id := m.Header.Get(wire.HdrMsgID); want[id] {
			if _, dup := found[id]; !dup {
				found[id] = m.Seq
			}
		}
		return nil
	})
	return found, err
}

// duplicateError says which IDs of a refused batch are already stored. The
// server does not name them, so it looks for them among the messages stored
// on the batch's subjects within the stream's duplicate window.
func (s *EventStore) duplicateError(ctx context.Context, events []*Event, msgs []*nats.Msg) error {
	found, err := s.storedIDs(ctx, msgs)
	ids := make([]string, 0, len(events))
	for _, e := range events {
		if _, stored := found[e.ID]; stored || err != nil || len(found) == 0 {
			ids = append(ids, e.ID)
		}
	}
	if err != nil || len(found) == 0 {
		return fmt.Errorf("%w: store %q: one of the batch's IDs is already stored: %s", ErrDuplicateEvent, s.name, strings.Join(ids, ", "))
	}
	return fmt.Errorf("%w: store %q: ID %s already stored", ErrDuplicateEvent, s.name, strings.Join(ids, ", "))
}

// streamGone returns an error matching jetstream.ErrStreamNotFound if the
// store's stream no longer exists, and nil if it does or the question went
// unanswered.
func (s *EventStore) streamGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, jsapi.FirstAttemptTimeout)
	defer cancel()
	_, err := s.m.js.Stream(ctx, wire.StreamName(s.name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	return nil
}

// The size limits of a message, checked before anything is published so
// that an event too large for the server is refused as a whole, not halfway
// through a batch.
const (
	// maxHeaderSize is the most header bytes JetStream stores with a
	// message.
	maxHeaderSize = 64*1024 - 1

	// sizeMargin leaves room for the headers Append adds to a message of an
	// atomic batch after the check (Nats-Batch-Id and the like).
	sizeMargin = 128
)

// checkSize refuses msg with ErrEventTooLarge if its headers do not fit
// JetStream's limit or it does not fit maxPayload (0: unknown).
func checkSize(msg *nats.Msg, maxPayload int64) error {
	hdr := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range msg.Header {
		for _, v := range vs {
			hdr += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	if hdr+sizeMargin > maxHeaderSize {
		return fmt.Errorf("%w: %d bytes of headers (metadata included), at most %d", ErrEventTooLarge, hdr, maxHeaderSize-sizeMargin)
	}
	if size := int64(hdr + len(msg.Data)); maxPayload > 0 && size+sizeMargin > maxPayload {
		return fmt.Errorf("%w: %d bytes with its headers, the server takes at most %d", ErrEventTooLarge, size, maxPayload-sizeMargin)
	}
	return nil
}

// tooLarge reports whether a publish failed because the message was too
// large for the client, the server or the stream.
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || jsapi.HasCode(err, jsapi.CodeMessageTooLarge) || jsapi.HasCode(err, jsapi.CodeHeaderTooLarge)
}
