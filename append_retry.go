package rita

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Append rides out the faults of a live system (a stream leader election, a
// server that restarts, a connection that moves to another server) by
// sending the same messages again.
//
// Invariants:
//   - every attempt sends the same events under the same IDs (Nats-Msg-Id),
//     so the stream's de-duplication turns an attempt that repeats a stored
//     one into a duplicate, never into a second copy;
//   - only failures that say "not now" are retried (retryableError):
//     no responders, a timeout, a connection that is reconnecting, and the
//     server's answers that ask to try again. A sequence conflict, a
//     duplicate, a validation error or any other refusal is final. One
//     answer is in between: on a clustered stream, "wrong last sequence"
//     without a sequence (10164) means another append with an expectation
//     on the same subjects is still in process, so the check could not be
//     made (it even happens to an append sent right after the one before
//     it was acknowledged). It is sent again a few times, for about a
//     second, before it counts as a conflict;
//   - when an attempt fails because an earlier one was in fact stored (its
//     answer was lost), Append reports the stored events as its success:
//     a single event is acknowledged as a duplicate with its first sequence
//     by the server itself; a batch, or a single event whose Expect the
//     server checks before de-duplicating (a server outside a cluster does),
//     is refused, and Append then looks the IDs up (storedTogether);
//   - no attempt starts later than half the stream's duplicate window after
//     the first one: after the window, the server would no longer recognise
//     a stored ID, and a retry could store an event twice.
//
// A ctx without a deadline gets defaultAppendTimeout, so the caller always
// sees one success or one final error.

const (
	// defaultAppendTimeout bounds an Append whose context has no deadline,
	// retries included. A stream leader election takes a few seconds.
	defaultAppendTimeout = 30 * time.Second

	// attemptTimeout bounds the first attempt (plus attemptTimeoutPerEvent
	// for each event of a batch); it doubles for each later one, up to four
	// times as long. An attempt whose answer was lost (its server stopped,
	// or it was sent as a server restarted) is given up after it, and sent
	// again.
	attemptTimeout         = time.Second
	attemptTimeoutPerEvent = 2 * time.Millisecond

	// Retries wait from retryBackoffMin, doubling up to retryBackoffMax,
	// with jitter.
	retryBackoffMin = 20 * time.Millisecond
	retryBackoffMax = time.Second

	// defaultDuplicateWindow is JetStream's de-duplication window when the
	// stream's configuration is not known.
	defaultDuplicateWindow = 2 * time.Minute

	// maxInProcessTries is how often an append refused because another
	// one with an expectation on the same subjects is in process is sent
	// again (about a second, with the backoff) before it fails with
	// ErrSequenceConflict.
	maxInProcessTries = 6
)

// JetStream error codes that mean "try again later".
const (
	errCodeClusterNotAvailable     jetstream.ErrorCode = 10008
	errCodeClusterNotLeader        jetstream.ErrorCode = 10009
	errCodeStreamSequenceNotMatch  jetstream.ErrorCode = 10063
	errCodeDuplicateInProcess      jetstream.ErrorCode = 10158
	errCodeBatchPublishTooInflight jetstream.ErrorCode = 10211
)

// publish stores events, one publish or one atomic batch, retrying
// transient failures as described above.
func (s *EventStore) publish(ctx context.Context, events []encodedEvent) (uint64, error) {
	// The first attempt, bounded by its own timeout, is all that almost
	// every Append makes: the overall budget of a ctx without a deadline,
	// and the retry limit, are only set up once it has failed.
	start := time.Now()
	var retryUntil time.Time
	backoff := retryBackoffMin
	checkedStream := false
	inProcessTries := 0
	for attempt := 1; ; attempt++ {
		seq, err := s.publishAttempt(ctx, events, attempt)
		if err == nil {
			return seq, nil
		}
		if attempt == 1 {
			retryUntil = start.Add(s.duplicateWindow() / 2)
			if _, ok := ctx.Deadline(); !ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, start.Add(defaultAppendTimeout))
				defer cancel()
			}
		}
		// On a clustered stream, "wrong last sequence" without a sequence
		// (10164) says that another append with an expectation on the
		// same subjects is in process: only after it does the check have
		// an answer. Try again, briefly.
		inProcess := hasErrorCode(err, errCodeWrongLastSequenceConstant) && inProcessTries < maxInProcessTries
		if inProcess {
			inProcessTries++
		} else if s.mayBeStoredAlready(attempt, events, err) {
			if seq, ok := s.storedTogether(ctx, events); ok {
				s.m.logger.Debug("rita: append: already stored", "store", s.name, "attempt", attempt, "events", len(events), "sequence", seq)
				return seq, nil
			}
		}
		if hasErrorCode(err, errCodeBatchDuplicate) {
			return 0, s.duplicateError(ctx, events)
		}
		if !inProcess && !retryableError(err) {
			return 0, err
		}
		if ctx.Err() != nil {
			return 0, contextEnded(ctx.Err(), err, attempt)
		}
		if !checkedStream && isNoResponders(err) {
			// No responders also means the store is gone: ask the meta
			// layer once, so that Append does not wait in vain.
			checkedStream = true
			if gone := s.streamGone(ctx); gone != nil {
				return 0, fmt.Errorf("rita: append to store %q: %w: %w", s.name, gone, err)
			}
		}
		if time.Now().After(retryUntil) {
			return 0, fmt.Errorf("rita: append to store %q: gave up after %d attempts, at half the store's duplicate window: %w", s.name, attempt, err)
		}
		s.m.logger.Debug("rita: append: retrying", "store", s.name, "attempt", attempt, "events", len(events), "error", err)
		if werr := wait(ctx, jitter(backoff)); werr != nil {
			return 0, contextEnded(werr, err, attempt)
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// contextEnded is the error of a call whose context ended (with cause)
// after attempts tries, the last of which failed with last.
func contextEnded(cause, last error, attempts int) error {
	if errors.Is(last, cause) {
		return fmt.Errorf("%w (after %d attempts)", last, attempts)
	}
	return fmt.Errorf("%w (after %d attempts, when the context ended: %w)", last, attempts, cause)
}

// publishAttempt sends events once, within the attempt's timeout.
func (s *EventStore) publishAttempt(ctx context.Context, events []encodedEvent, attempt int) (uint64, error) {
	timeout := attemptTimeout + time.Duration(len(events))*attemptTimeoutPerEvent
	ctx, cancel := context.WithTimeout(ctx, timeout<<min(attempt-1, 2))
	defer cancel()
	if len(events) == 1 {
		return s.publishOne(ctx, events[0])
	}
	return s.publishBatch(ctx, events)
}

// mayBeStoredAlready reports whether err may mean that the events are stored
// already, so that their IDs are worth looking up: a retry refused as a
// conflict or a duplicate (the first attempt may have been stored), or a
// single event with an ID of the caller's (which may have been appended
// before) refused as a conflict.
func (s *EventStore) mayBeStoredAlready(attempt int, events []encodedEvent, err error) bool {
	refused := errors.Is(err, ErrSequenceConflict) || hasErrorCode(err, errCodeBatchDuplicate)
	if !refused {
		return false
	}
	if attempt > 1 {
		return true
	}
	return len(events) == 1 && !events[0].generatedID
}

// storedTogether looks up the events' IDs in the store. If every one of
// them is stored, one after the other in the order of events, it sets their
// sequences and subjects and returns the last sequence and true.
func (s *EventStore) storedTogether(ctx context.Context, events []encodedEvent) (uint64, bool) {
	found, err := s.storedIDs(ctx, events)
	if err != nil || len(found) != len(events) {
		return 0, false
	}
	first := found[events[0].event.ID]
	for i, ev := range events {
		if found[ev.event.ID] != first+uint64(i) {
			return 0, false
		}
	}
	for i, ev := range events {
		ev.event.sequence = first + uint64(i)
		ev.event.subject = ev.msg.Subject
	}
	return first + uint64(len(events)) - 1, true
}

// storedIDs returns the sequence of each of the events' IDs that is stored
// on the events' subjects within the stream's duplicate window.
func (s *EventStore) storedIDs(ctx context.Context, events []encodedEvent) (map[string]uint64, error) {
	want := make(map[string]bool, len(events))
	subjects := make([]string, 0, len(events))
	seen := make(map[string]bool, len(events))
	for _, ev := range events {
		want[ev.event.ID] = true
		if !seen[ev.msg.Subject] {
			seen[ev.msg.Subject] = true
			subjects = append(subjects, ev.msg.Subject)
		}
	}
	spec := readSpec{
		subjects:    subjects,
		startTime:   time.Now().Add(-s.duplicateWindow() - time.Minute),
		headersOnly: true,
	}
	found := make(map[string]uint64, len(events))
	err := s.read(ctx, spec, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
		if id := msg.Headers().Get(hdrMsgID); want[id] {
			if _, dup := found[id]; !dup {
				found[id] = md.Sequence.Stream
			}
		}
		return nil
	})
	return found, err
}

// duplicateWindow is how long the stream remembers an event ID.
func (s *EventStore) duplicateWindow() time.Duration {
	if info := s.stream.CachedInfo(); info != nil && info.Config.Duplicates > 0 {
		return info.Config.Duplicates
	}
	return defaultDuplicateWindow
}

// streamGone returns an error matching jetstream.ErrStreamNotFound if the
// store's stream no longer exists, and nil if it does or the question went
// unanswered.
func (s *EventStore) streamGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	_, err := s.m.js.Stream(ctx, streamName(s.name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	return nil
}

// retryableError reports whether err may go away by itself, so that the
// same request (an append, a question to the stream leader) is worth
// sending again.
func retryableError(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeClusterNotAvailable, errCodeClusterNotLeader, errCodeStreamSequenceNotMatch,
			errCodeDuplicateInProcess, errCodeBatchIncomplete, errCodeBatchTooManyInflight,
			errCodeBatchPublishTooInflight:
			return true
		}
		return false
	}
	return transientRequestError(err)
}

// transientRequestError reports whether a request failed for want of an
// answer rather than because of one: nobody listened, nobody answered in
// time, or the connection is between servers.
func transientRequestError(err error) bool {
	return isNoResponders(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrStaleConnection)
}

func isNoResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// jitter returns a random duration between d/2 and d.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// serverRefusal is a server's error answer that prints as its description
// alone, while errors.As still finds the *jetstream.APIError.
type serverRefusal struct{ *jetstream.APIError }

func (r serverRefusal) Error() string { return r.Description }
func (r serverRefusal) Unwrap() error { return r.APIError }
