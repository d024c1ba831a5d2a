package rita

import (
	"errors"
	"fmt"
	"strings"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// Errors returned by the event store. Every error the package returns for one
// of these causes wraps the sentinel, so callers match it with errors.Is; the
// wrapping message says which event, entity or option was at fault.
var (
	// ErrSequenceConflict is returned by Append (and Decide, DecideAndEvolve)
	// when an event's Expect does not hold: another event was stored for the
	// expected subject since the expected sequence. Nothing is stored. The
	// error is a *ConflictError, which says which event and entity
	// collided, and at which sequences.
	ErrSequenceConflict = errors.New("rita: sequence conflict")

	// ErrEventDataRequired is returned when an event has no Data.
	ErrEventDataRequired = errors.New("rita: event data required")

	// ErrEventEntityRequired is returned when an event has no Entity.
	ErrEventEntityRequired = errors.New("rita: event entity required")

	// ErrEventEntityInvalid is returned when an event's Entity is not two
	// non-empty tokens ("<type>.<id>") free of wildcards and whitespace.
	ErrEventEntityInvalid = errors.New("rita: event entity invalid")

	// ErrEventTypeRequired is returned when an event has no Type and there is
	// no type registry to derive it from, or its Data is pre-encoded
	// []byte.
	ErrEventTypeRequired = errors.New("rita: event type required")

	// ErrNoEvents is returned by Append when it is given no events.
	ErrNoEvents = errors.New("rita: no events provided")

	// ErrEventStoreNameRequired is returned when an event store name is empty.
	ErrEventStoreNameRequired = errors.New("rita: event store name is required")

	// ErrSubjectTooManyTokens is returned when a filter has more than the
	// three tokens <entity-type>.<entity-id>.<event-type>.
	ErrSubjectTooManyTokens = errors.New("rita: subject can have at most three tokens")
)

// Errors returned by Model when the wrapped value lacks a capability.
var (
	// ErrEvolverNotImplemented is returned by Model.Evolve when T does not
	// implement Evolver.
	ErrEvolverNotImplemented = errors.New("evolver not implemented")

	// ErrDeciderNotImplemented is returned by Model.Decide when T does not
	// implement Decider.
	ErrDeciderNotImplemented = errors.New("decider not implemented")

	// ErrViewerNotImplemented is never returned by this package: every
	// Model can View its value. It is kept for code written against the
	// first rita, which declared it too.
	ErrViewerNotImplemented = errors.New("viewer not implemented")
)

// Errors of appending, reading and the durable consumers.
var (
	// ErrDuplicateEvent is returned by Append when several events are
	// appended as one batch and one of their IDs is already stored (within
	// the stream's duplicate window) or appears twice in the batch. The error
	// names the ID. Nothing is stored. (A single event whose ID is already
	// stored is not an error: Append returns the sequence it was stored at.)
	ErrDuplicateEvent = errors.New("rita: duplicate event")

	// ErrTooManyEvents is returned by Append when more events are given than
	// one atomic batch can hold (MaxBatchSize). Nothing is stored.
	ErrTooManyEvents = errors.New("rita: too many events for one atomic append")

	// ErrEventNil is returned by Append when the events slice holds a nil
	// event, and by Decide when a decider returns one.
	ErrEventNil = errors.New("rita: nil event")

	// ErrEventTypeInvalid is returned when an event's Type is not a valid
	// subject fragment, disagrees with the type registry, or names a type
	// the registry does not know.
	ErrEventTypeInvalid = errors.New("rita: event type invalid")

	// ErrEventMetaInvalid is returned when an event's metadata key cannot be
	// carried as a header name, or a value holds a line break.
	ErrEventMetaInvalid = errors.New("rita: event metadata invalid")

	// ErrEventDataInvalid is returned when an event's Data cannot be encoded:
	// without a registry it must be a []byte or an encoding.BinaryMarshaler;
	// with one it must be a value of a registered type (or a []byte already
	// encoded with the registry's codec) that passes its Validate method.
	ErrEventDataInvalid = errors.New("rita: event data invalid")

	// ErrEventDecode is returned when a stored message cannot be turned into
	// an Event: a missing or malformed rita header, an unknown codec or type,
	// or a payload the codec cannot decode.
	ErrEventDecode = errors.New("rita: event cannot be decoded")

	// ErrEventStoreNameInvalid is returned when an event store name cannot be
	// used as a JetStream stream name and subject token (dots, spaces,
	// wildcards, path separators, or too long).
	ErrEventStoreNameInvalid = errors.New("rita: event store name invalid")

	// ErrFilterInvalid is returned when a filter given to WithFilters has an
	// empty token, whitespace, or a misplaced wildcard.
	ErrFilterInvalid = errors.New("rita: filter invalid")

	// ErrInvalidOption is returned when an option is given a value it cannot
	// take, or is passed to an operation it does not apply to.
	ErrInvalidOption = errors.New("rita: invalid option")

	// ErrServerUnsupported is returned when the connected nats-server is too
	// old for an operation: atomic batches of several events need v2.14.4
	// or newer, since older servers mis-check the expectations of
	// multi-entity batches.
	ErrServerUnsupported = errors.New("rita: nats-server version not supported")

	// ErrInvalidArgument is returned when a required argument is nil or
	// out of range: a context, a connection, a store, a model, a handler.
	ErrInvalidArgument = errors.New("rita: invalid argument")

	// ErrUnprocessable marks an event that cannot be handled however often
	// it is tried. A reactor handler or the Evolver of a durable Watch
	// returns an error wrapping it (fmt.Errorf("...: %w", rita.ErrUnprocessable))
	// to have the event parked at once instead of retried; Project halts at
	// once on it.
	ErrUnprocessable = errors.New("rita: event unprocessable")

	// ErrParkedNotFound is returned by Durable.GetParked, RetryParked and
	// DeleteParked when the durable consumer has not parked the event, or
	// it was retried or deleted since.
	ErrParkedNotFound = errors.New("rita: parked event not found")

	// ErrDurableActive is returned by Durable.Rebuild and Durable.Delete
	// while a process runs the durable consumer (or one stopped without
	// Stop less than its ack wait ago).
	ErrDurableActive = errors.New("rita: durable consumer is active")

	// ErrProjectionHalted ends a Project whose projection could not apply
	// an event: it applies no later event, so that its checkpoint stays
	// exact; project it again to retry. Subscription.Err returns it.
	ErrProjectionHalted = errors.New("rita: projection halted")

	// ErrEventTooLarge is returned by Append when an event does not fit in
	// one message: its headers (metadata included) exceed the 64 KiB
	// JetStream allows, or its headers and payload together exceed the
	// server's maximum payload (or the store's maximum message size).
	// Nothing is stored.
	ErrEventTooLarge = errors.New("rita: event too large")

	// ErrExpectRequired is returned by Append, Decide and their variants,
	// on a Manager made WithExpectRequired, when an entity is written
	// without an Expect. Nothing is stored.
	ErrExpectRequired = errors.New("rita: expectation required")

	// ErrEncryptionKey is returned when an entity's data key cannot be
	// made, read or used (WithEncryption): the KeyProvider failed or holds
	// the wrong key, the key bucket could not be reached, or a payload does
	// not open with its key. An Append that fails with it stores nothing;
	// a read that fails with it stops, as for an event that cannot be
	// decoded. An event whose key was forgotten is not an error: it
	// arrives with Event.Forgotten set.
	ErrEncryptionKey = errors.New("rita: encryption key unavailable")
)

// Errors of the server's permissions and limits.
var (
	// ErrPermissionDenied is returned by a call that the server refused
	// for lack of permission: a publish to an event, API or
	// acknowledgement subject, or the subscription of a reply inbox, that
	// the connection's user may not make. The error names the subject
	// refused. The call fails at once, without waiting for its deadline,
	// and is never retried. Permissions lists what each role needs.
	ErrPermissionDenied = jsapi.ErrPermissionDenied

	// ErrStoreFull is returned by Append (and Decide and their variants)
	// when the server refused to store the events for lack of room: the
	// store reached a limit of its configuration (MaxMsgs, MaxBytes or
	// MaxMsgsPerSubject) with Discard set to jetstream.DiscardNew, or the
	// JetStream storage of the account or of the server is exhausted.
	// Nothing of the append is stored, a batch included. It is not retried.
	ErrStoreFull = errors.New("rita: event store full")
)

// ConflictError is the error of an append refused because an event's Expect
// did not hold: another event was stored on the subjects the expectation
// covers (the event's entity, or its Expect.Pattern) after the sequence it
// expected. It matches ErrSequenceConflict with errors.Is, and errors.As
// reaches it:
//
//	var conflict *rita.ConflictError
//	if errors.As(err, &conflict) {
//		log.Printf("%s moved on: %d, not %d", conflict.Entity, conflict.Actual, conflict.Expected)
//	}
//
// Nothing of the append is stored. The model decided on stale state:
// evolve it with the events it missed and decide again, which
// DecideWithRetry does.
type ConflictError struct {
	// Store is the name of the event store.
	Store string

	// EventID and Entity name the event whose Expect did not hold. In a
	// batch with several expectations, it is the first one found not to
	// hold.
	EventID string
	Entity  string

	// Pattern is the filter the expectation covered: the event's
	// Expect.Pattern, or its entity when that is empty.
	Pattern string

	// Expected is the sequence the event expected to be the last one on
	// Pattern (0: no event at all).
	Expected uint64

	// Actual is the last sequence on Pattern when the conflict was found,
	// as the server reported it or as looked up right after; 0 if it could
	// not be learnt.
	Actual uint64

	err error // the server's refusal
}

// Error says which event's expectation failed, and what to do.
func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: store %q: event %s of entity %q expected the last event on %q at sequence %d",
		ErrSequenceConflict, e.Store, e.EventID, e.Entity, e.Pattern, e.Expected)
	if e.Actual != 0 {
		fmt.Fprintf(&b, ", but it is at %d", e.Actual)
	} else {
		b.WriteString(", but it has moved on")
	}
	b.WriteString(": evolve the model again and decide again (DecideWithRetry does)")
	return b.String()
}

// Is reports whether target is ErrSequenceConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrSequenceConflict }

// Unwrap returns the server's refusal (a *jetstream.APIError), if any.
func (e *ConflictError) Unwrap() error { return e.err }
