package rita

import "time"

// Command is a wrapper for application-defined commands.
type Command struct {
	// ID is a unique identifier for the command.
	ID string

	// Time is the time of when the command was received.
	Time time.Time

	// Type is a unique name for the command. This can be omitted
	// if a type registry is being used, otherwise it must be set explicitly
	// to identity the encoded data.
	Type string

	// Data is the command data. This must be a byte slice (pre-encoded) or a value
	// of a type registered in the type registry.
	Data any

	// Meta is application-defined metadata about the command.
	Meta map[string]string
}

// Event is a wrapper for application-defined events.
//
// Append fills ID, Time and (with a type registry) Type when they are empty,
// and sets the sequence and subject once the event is stored. Events read
// back by Evolve and Watch carry every field but Expect.
type Event struct {
	// ID of the event. This will be used as the NATS msg ID
	// for de-duplication.
	ID string

	// Identifier for specific entities. Can be used to determine if
	// an event is related to a specific entity/node/endpoint/agent/etc.
	// The format must be two tokens, e.g. "node.1234".
	Entity string

	// Time is the time of when the event occurred which may be different
	// from the time the event is appended to the store. If no time is provided,
	// the current local time will be used.
	Time time.Time

	// Type is a unique name for the event itself. This can be omitted
	// if a type registry is being used, otherwise it must be set explicitly
	// to identity the encoded data.
	Type string

	// Data is the event data. This must be a byte slice (pre-encoded) or a value
	// of a type registered in the type registry.
	Data any

	// Metadata is application-defined metadata about the event.
	Meta map[string]string

	// Expect can be set to specify optimistic concurrency control
	// expectations for an append operation.
	Expect *Expect

	sequence uint64
	subject  string
}

// Sequence returns the stream sequence number of the event: where it was
// stored, for an event that was appended or read back; 0 otherwise.
func (e *Event) Sequence() uint64 {
	if e == nil {
		return 0
	}
	return e.sequence
}

// Subject returns the full NATS subject the event was published to, or ""
// for an event that was neither appended nor read back.
func (e *Event) Subject() string {
	if e == nil {
		return ""
	}
	return e.subject
}
