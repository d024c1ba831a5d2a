package rita

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/codec"
	"github.com/synadia-labs/rita/types"
)

// Header names of the wire format. They are shared with every rita store;
// see DESIGN.md before changing any of them.
const (
	hdrMsgID      = jetstream.MsgIDHeader
	hdrType       = "Rita-Type"
	hdrEntity     = "Rita-Entity"
	hdrTime       = "Rita-Time"
	hdrCodec      = "Rita-Codec"
	hdrMetaPrefix = "Rita-Meta-"
	hdrVersion    = "Rita-Version" // absent for version 1; see upcast.go

	hdrExpectSeq     = jetstream.ExpectedLastSubjSeqHeader
	hdrExpectSubject = jetstream.ExpectedLastSubjSeqSubjHeader
)

// encodedEvent is an event ready to publish.
type encodedEvent struct {
	event *Event
	msg   *nats.Msg

	generatedID bool // the ID was made by Append, so it cannot be stored yet
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
		if !isRaw {
			return nil, "", fmt.Errorf("%w: without a type registry Data must be []byte, not %T", ErrEventDataInvalid, e.Data)
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

// newEventMsg builds the message of a validated event whose ID and Time are
// set.
func newEventMsg(store string, e *Event, payload []byte, codecName string) (*nats.Msg, error) {
	h := make(nats.Header, 7+len(e.Meta))
	vals := make(headerValues, 0, 7+len(e.Meta)) // one allocation for all values
	h[hdrMsgID] = vals.one(e.ID)
	h[hdrType] = vals.one(e.Type)
	h[hdrEntity] = vals.one(e.Entity)
	h[hdrTime] = vals.one(e.Time.Format(time.RFC3339Nano))
	if codecName != "" {
		h[hdrCodec] = vals.one(codecName)
	}
	for k, v := range e.Meta {
		h[hdrMetaPrefix+k] = vals.one(v)
	}
	if e.Expect != nil {
		pattern := entityPattern(store, e.Entity)
		if e.Expect.Pattern != "" {
			p, err := filterSubject(store, e.Expect.Pattern)
			if err != nil {
				return nil, fmt.Errorf("expect pattern: %w", err)
			}
			pattern = p
		}
		h[hdrExpectSeq] = vals.one(strconv.FormatUint(e.Expect.Sequence, 10))
		h[hdrExpectSubject] = vals.one(pattern)
	}
	return &nats.Msg{
		Subject: eventSubject(store, e.Entity, e.Type),
		Header:  h,
		Data:    payload,
	}, nil
}

// decodeEvent turns a stored message into an Event. ts is the time the
// server stored it, used when the message has no Rita-Time header.
//
// Whatever the message holds, it returns an Event or an error wrapping
// ErrEventDecode, and never panics (a codec or a type's own decoding
// method that does is turned into an error). The error also wraps what was
// wrong where there is a sentinel for it: ErrEventEntityRequired or
// ErrEventEntityInvalid for the entity, ErrEventTypeRequired for the type,
// types.ErrTypeNotRegistered for a type the registry does not know,
// types.ErrCodecUnknown for a codec nobody knows.
func decodeEvent(reg *types.Registry, subject string, h nats.Header, data []byte, seq uint64, ts time.Time) (*Event, error) {
	e := &Event{
		ID:       h.Get(hdrMsgID),
		Entity:   h.Get(hdrEntity),
		Type:     h.Get(hdrType),
		sequence: seq,
		subject:  subject,
	}
	if e.Entity == "" || e.Type == "" {
		// Derive what is missing from $ES.<store>.<entity-type>.<entity-id>.<event-type>.
		toks := strings.SplitN(subject, ".", 5)
		if len(toks) != 5 {
			return nil, fmt.Errorf("%w: sequence %d: subject %q is not an event subject and headers %s or %s are missing", ErrEventDecode, seq, subject, hdrEntity, hdrType)
		}
		if e.Entity == "" {
			e.Entity = toks[2] + "." + toks[3]
		}
		if e.Type == "" {
			e.Type = toks[4]
		}
	}
	if err := validateEntity(e.Entity); err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
	}
	if e.Type == "" {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, ErrEventTypeRequired)
	}
	if t := h.Get(hdrTime); t != "" {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return nil, fmt.Errorf("%w: sequence %d: header %s: %w", ErrEventDecode, seq, hdrTime, err)
		}
		e.Time = parsed
	} else {
		e.Time = ts
	}
	for k, v := range h {
		if key, ok := strings.CutPrefix(k, hdrMetaPrefix); ok && key != "" && len(v) > 0 {
			if e.Meta == nil {
				e.Meta = make(map[string]string)
			}
			e.Meta[key] = v[0]
		}
	}
	if reg == nil {
		e.Data = data
		return e, nil
	}
	data, err := upcastEvent(reg, e, h, data)
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
	}
	v, err := reg.Init(e.Type)
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, seq, err)
	}
	name := h.Get(hdrCodec)
	if name == "" || name == reg.Codec() {
		err = unmarshalSafely(reg.Unmarshal, data, v)
	} else {
		var c codec.Codec
		if c, err = codec.Lookup(name); err != nil {
			err = fmt.Errorf("%w %q: %w", types.ErrCodecUnknown, name, err)
		} else {
			err = unmarshalSafely(c.Unmarshal, data, v)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: type %q, codec %q: %w", ErrEventDecode, seq, e.Type, name, err)
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
