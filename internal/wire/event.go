package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Fields are the parts of an event that travel in the headers and subject
// of its message.
type Fields struct {
	ID      string
	Entity  string // "<type>.<id>"
	Type    string // one token
	Time    time.Time
	Codec   string // "" writes no Rita-Codec header
	Version int    // of the event's type; 0 and 1 write no Rita-Version header
	Meta    map[string]string

	// Expect, when ExpectPattern is set: the last message on the subject
	// pattern ExpectPattern must be at ExpectSeq (0: none).
	ExpectSeq     uint64
	ExpectPattern string

	// The W3C trace context of the span that appended the event, as
	// Parse reads it (SetTrace writes it).
	TraceParent, TraceState string

	// Encrypted is the Rita-Encrypted header as Parse reads it: the
	// version of the entity's key the payload is sealed with; "" for a
	// payload stored as it is.
	Encrypted string
}

// Message builds the message of an event of store. The fields must have
// been checked: the entity is two tokens, the type one, metadata keys are
// header names and values hold no line break.
func Message(store string, f *Fields, payload []byte) *nats.Msg {
	n := 4 + len(f.Meta)
	if f.Codec != "" {
		n++
	}
	if f.Version > 1 {
		n++
	}
	if f.ExpectPattern != "" {
		n += 2
	}
	h := make(nats.Header, n)
	vals := make(values, 0, n) // one allocation for all header values
	h[HdrMsgID] = vals.one(f.ID)
	h[HdrType] = vals.one(f.Type)
	h[HdrEntity] = vals.one(f.Entity)
	h[HdrTime] = vals.one(f.Time.Format(time.RFC3339Nano))
	if f.Codec != "" {
		h[HdrCodec] = vals.one(f.Codec)
	}
	if f.Version > 1 {
		h[HdrVersion] = vals.one(strconv.Itoa(f.Version))
	}
	for k, v := range f.Meta {
		h[HdrMetaPrefix+k] = vals.one(v)
	}
	if f.ExpectPattern != "" {
		h[HdrExpectSeq] = vals.one(strconv.FormatUint(f.ExpectSeq, 10))
		h[HdrExpectSubject] = vals.one(f.ExpectPattern)
	}
	return &nats.Msg{Subject: EventSubject(store, f.Entity, f.Type), Header: h, Data: payload}
}

// SetTrace sets the W3C trace context headers of an event's message h: the
// context of the span that appends it.
func SetTrace(h nats.Header, parent, state string) {
	h[HdrTraceParent] = []string{parent}
	if state != "" {
		h[HdrTraceState] = []string{state}
	}
}

// values hands out one-element header value slices cut from one backing
// array. Each has a capacity of one, so appending to it (nats.Header.Add)
// copies instead of overwriting the next value.
type values []string

func (vals *values) one(v string) []string {
	*vals = append(*vals, v)
	n := len(*vals)
	return (*vals)[n-1 : n : n]
}

// Errors of Parse, wrapped with what was wrong.
var (
	ErrNotEvent = errors.New("not an event subject")
	ErrTime     = errors.New("time header")
	ErrVersion  = errors.New("version header")
)

// Parse reads the fields of a stored event from its subject and headers,
// in one pass over the headers. An entity or type missing from the headers
// is taken from the subject ($ES.<store>.<entity-type>.<entity-id>.<event-type>);
// a missing time is left zero. It does not check the entity and type, and
// leaves Expect unset.
func Parse(subject string, h nats.Header) (Fields, error) {
	var f Fields
	var stamp, version string
	for k, v := range h {
		if len(v) == 0 {
			continue
		}
		switch k {
		case HdrMsgID:
			f.ID = v[0]
		case HdrType:
			f.Type = v[0]
		case HdrEntity:
			f.Entity = v[0]
		case HdrTime:
			stamp = v[0]
		case HdrCodec:
			f.Codec = v[0]
		case HdrVersion:
			version = v[0]
		case HdrTraceParent:
			f.TraceParent = v[0]
		case HdrTraceState:
			f.TraceState = v[0]
		case HdrEncrypted:
			f.Encrypted = v[0]
		default:
			if key, ok := strings.CutPrefix(k, HdrMetaPrefix); ok && key != "" {
				if f.Meta == nil {
					f.Meta = make(map[string]string)
				}
				f.Meta[key] = v[0]
			}
		}
	}
	if f.Entity == "" || f.Type == "" {
		entity, typ, ok := SplitEventSubject(subject)
		if !ok {
			return f, fmt.Errorf("%w: %q, and header %s or %s is missing", ErrNotEvent, subject, HdrEntity, HdrType)
		}
		if f.Entity == "" {
			f.Entity = entity
		}
		if f.Type == "" {
			f.Type = typ
		}
	}
	if stamp != "" {
		t, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			return f, fmt.Errorf("%w %s: %w", ErrTime, HdrTime, err)
		}
		f.Time = t
	}
	f.Version = 1
	if version != "" {
		v, err := strconv.Atoi(version)
		if err != nil || v < 1 {
			return f, fmt.Errorf("%w %s: %q is not a version (an integer from 1)", ErrVersion, HdrVersion, version)
		}
		f.Version = v
	}
	return f, nil
}
