package rita

import (
	"context"
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/synadia-labs/rita/internal/codec"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/keys"
	"github.com/synadia-labs/rita/internal/wire"
	"github.com/synadia-labs/rita/types"
)

// Command is a wrapper for application-defined commands. Commands are
// handed to a Decider and never stored or encoded.
type Command struct {
	// ID is a unique identifier for the command. Decide fills an empty ID
	// from the Manager's ID generator; it becomes the causation ID of the
	// events the command produces (MetaCausationID).
	ID string

	// Time is the time of when the command was received. Decide fills a
	// zero Time from the Manager's clock.
	Time time.Time

	// Type is a name for the command, for the decider to switch on if it
	// wants to; rita does not read it.
	Type string

	// Data is the command data, any value the decider understands.
	Data any

	// Meta is application-defined metadata about the command. Its
	// MetaCorrelationID, if set, is carried to the events.
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
	// from the time the event is appended to the store. If no time is
	// provided, Append uses the Manager's clock (clock.Time by default).
	Time time.Time

	// Type is a unique name for the event itself. This can be omitted
	// if a type registry is being used, otherwise it must be set explicitly
	// to identify the encoded data.
	Type string

	// Data is the event data. This must be a byte slice (pre-encoded) or a value
	// of a type registered in the type registry. Without a registry, an
	// encoding.BinaryMarshaler is stored as the bytes it returns, and read
	// back as a []byte.
	Data any

	// Metadata is application-defined metadata about the event.
	Meta map[string]string

	// Expect can be set to specify optimistic concurrency control
	// expectations for an append operation.
	Expect *Expect

	sequence uint64
	subject  string

	// trace is what TraceContext continues; nil for an event stored
	// without a trace context and not being handled in a recorded span,
	// so that untraced events cost one pointer.
	trace *eventTrace

	// forgotten: the payload was personal data whose key is gone.
	forgotten bool
}

// eventTrace is the trace an event belongs to: the W3C trace context it was
// stored with, and the span of its handling by a durable consumer or a
// projection while a handler runs.
type eventTrace struct {
	parent, state string
	span          trace.Span
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

// validateEntity checks that entity is exactly "<type>.<id>".
func validateEntity(entity string) error {
	if entity == "" {
		return ErrEventEntityRequired
	}
	if !wire.ValidEntity(entity) {
		return fmt.Errorf("%w: %q must be two tokens <type>.<id> without wildcards or whitespace", ErrEventEntityInvalid, entity)
	}
	return nil
}

// validateEventType checks that typ can end an event subject: one literal
// token, so that "<entity-type>.<entity-id>.*" matches every event of an
// entity.
func validateEventType(typ string) error {
	if typ == "" {
		return ErrEventTypeRequired
	}
	if !wire.ValidToken(typ) {
		return fmt.Errorf("%w: %q must be one subject token: no dots, wildcards or whitespace", ErrEventTypeInvalid, typ)
	}
	return nil
}

// validateEvent checks what can be checked of e without encoding it.
func validateEvent(e *Event) error {
	if e.Data == nil {
		return ErrEventDataRequired
	}
	if err := validateEntity(e.Entity); err != nil {
		return err
	}
	for k, v := range e.Meta {
		if !validHeaderName(k) {
			return fmt.Errorf("%w: key %q is not a valid header name", ErrEventMetaInvalid, k)
		}
		if strings.ContainsAny(v, "\r\n") || strings.HasPrefix(v, " ") || strings.HasPrefix(v, "\t") {
			return fmt.Errorf("%w: value of %q holds a line break or starts with white space", ErrEventMetaInvalid, k)
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 7230 token, the characters a
// header name may have.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// encodeData turns e.Data into a payload and settles e.Type. It returns the
// codec name to put in the header ("" without a registry).
func encodeData(reg *types.Registry, e *Event) ([]byte, string, error) {
	if v := reflect.ValueOf(e.Data); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, "", fmt.Errorf("%w: nil %T", ErrEventDataRequired, e.Data)
	}
	raw, isRaw := e.Data.([]byte)
	if reg == nil {
		if m, ok := e.Data.(encoding.BinaryMarshaler); ok && !isRaw {
			b, err := m.MarshalBinary()
			if err != nil {
				return nil, "", fmt.Errorf("%w: %T: %w", ErrEventDataInvalid, e.Data, err)
			}
			raw, isRaw = b, true
		}
		if !isRaw {
			return nil, "", fmt.Errorf("%w: without a type registry Data must be []byte or an encoding.BinaryMarshaler, not %T", ErrEventDataInvalid, e.Data)
		}
		if e.Type == "" {
			return nil, "", ErrEventTypeRequired
		}
		return raw, "", validateEventType(e.Type)
	}
	if isRaw {
		if e.Type == "" {
			return nil, "", fmt.Errorf("%w: pre-encoded []byte Data needs a Type", ErrEventTypeRequired)
		}
		if _, err := reg.Init(e.Type); err != nil {
			return nil, "", fmt.Errorf("%w: %q is not registered: %w", ErrEventTypeInvalid, e.Type, err)
		}
		return raw, reg.Codec(), validateEventType(e.Type)
	}
	name, err := reg.Lookup(e.Data)
	if err != nil {
		return nil, "", fmt.Errorf("%w: data of type %T is not registered: %w", ErrEventTypeInvalid, e.Data, err)
	}
	if e.Type != "" && e.Type != name {
		return nil, "", fmt.Errorf("%w: Type %q disagrees with the registry, which names %T %q", ErrEventTypeInvalid, e.Type, e.Data, name)
	}
	if err := validateEventType(name); err != nil {
		return nil, "", err
	}
	payload, err := reg.Marshal(e.Data)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrEventDataInvalid, err)
	}
	e.Type = name
	return payload, reg.Codec(), nil
}

// encodeEvent builds the message of a validated event of store whose ID,
// Time and Type are set.
func encodeEvent(reg *types.Registry, store string, e *Event, payload []byte, codecName string) (*nats.Msg, error) {
	f := wire.Fields{ID: e.ID, Entity: e.Entity, Type: e.Type, Time: e.Time, Codec: codecName, Meta: e.Meta}
	if reg != nil {
		f.Version, _ = reg.Version(e.Type)
	}
	if e.Expect != nil {
		p, err := expectPattern(store, e)
		if err != nil {
			return nil, fmt.Errorf("expect pattern: %w", err)
		}
		f.ExpectSeq, f.ExpectPattern = e.Expect.Sequence, p
	}
	return wire.Message(store, &f, payload), nil
}

// expectPattern is the subject pattern e.Expect covers: its Pattern, or
// else e's entity.
func expectPattern(store string, e *Event) (string, error) {
	if e.Expect.Pattern == "" {
		return wire.EntityPattern(store, e.Entity), nil
	}
	return filterPattern(store, e.Expect.Pattern)
}

// decodeEvent turns a stored message into an Event. The time the server
// stored it is used when the message has no Rita-Time header.
//
// Whatever the message holds, it returns an Event or an error wrapping
// ErrEventDecode, and never panics (a codec or a type's own decoding
// method that does is turned into an error). The error also wraps what was
// wrong where there is a sentinel for it: ErrEventEntityRequired or
// ErrEventEntityInvalid for the entity, ErrEventTypeRequired for the type,
// types.ErrTypeNotRegistered for a type the registry does not know,
// types.ErrCodecUnknown for a codec nobody knows.
//
// A payload stored encrypted (WithEncryption) is decrypted with ring
// first; with a nil ring it is left as the stored bytes. An event whose key
// was forgotten decodes with Forgotten set and no Data.
func decodeEvent(ctx context.Context, reg *types.Registry, ring *keys.Ring, m *jsapi.Msg) (*Event, error) {
	seq := m.Seq
	f, err := wire.Parse(m.Subject, m.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
	}
	if err := validateEntity(f.Entity); err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
	}
	if f.Type == "" {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, ErrEventTypeRequired)
	}
	e := &Event{ID: f.ID, Entity: f.Entity, Type: f.Type, Time: f.Time, Meta: f.Meta, sequence: seq, subject: m.Subject}
	if f.TraceParent != "" {
		e.trace = &eventTrace{parent: f.TraceParent, state: f.TraceState}
	}
	if e.Time.IsZero() {
		if e.Time, err = m.Stored(); err != nil {
			return nil, fmt.Errorf("%w: sequence %d: time stamp: %w", ErrEventDecode, seq, err)
		}
	}
	data := m.Data
	if f.Encrypted != "" {
		plain, forgotten, err := openPayload(ctx, ring, e.Entity, e.Type, f.Encrypted, data)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
		case forgotten:
			e.forgotten = true
			return e, nil
		case ring == nil:
			e.Data = data // the ciphertext: this reader has no keys
			return e, nil
		}
		data = plain
	}
	if reg == nil {
		e.Data = data
		return e, nil
	}
	name, data, err := reg.Upcast(e.Type, f.Version, f.Codec, data)
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
	}
	e.Type = name
	v, err := reg.Init(e.Type)
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
	}
	if f.Codec == "" || f.Codec == reg.Codec() {
		err = unmarshalSafely(reg.Unmarshal, data, v)
	} else {
		var c codec.Codec
		if c, err = codec.Lookup(f.Codec); err != nil {
			err = fmt.Errorf("%w %q: %w", types.ErrCodecUnknown, f.Codec, err)
		} else {
			err = unmarshalSafely(c.Unmarshal, data, v)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: type %q, codec %q: %w", ErrEventDecode, seq, e.Type, f.Codec, err)
	}
	e.Data = v
	return e, nil
}

// unmarshalSafely calls unmarshal, turning a panic (in a codec, or in a
// type's own UnmarshalBinary, say) into an error.
func unmarshalSafely(unmarshal func([]byte, any) error, data []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoding panicked: %v", p)
		}
	}()
	return unmarshal(data, v)
}
