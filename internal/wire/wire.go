// Package wire is rita's format on the wire: the names of streams,
// subjects, headers and buckets that every rita store uses, so that stores
// written by one rita are read by another. DESIGN.md has the table; change
// nothing here without a migration story.
//
// The package builds and matches names; it does not validate user input
// (the root package does, and reports it with its own errors) except where
// a predicate says so.
package wire

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// Header names of an event.
const (
	HdrMsgID      = jetstream.MsgIDHeader
	HdrType       = "Rita-Type"
	HdrEntity     = "Rita-Entity"
	HdrTime       = "Rita-Time"
	HdrCodec      = "Rita-Codec"
	HdrVersion    = "Rita-Version" // absent for version 1
	HdrMetaPrefix = "Rita-Meta-"

	// The W3C trace context of the span that appended the event, under
	// the names the W3C propagator uses.
	HdrTraceParent = "traceparent"
	HdrTraceState  = "tracestate"

	HdrExpectSeq     = jetstream.ExpectedLastSubjSeqHeader
	HdrExpectSubject = jetstream.ExpectedLastSubjSeqSubjHeader
)

// Names of a store's stream and subjects. Every event of store NAME is
// published on
//
//	$ES.NAME.<entity-type>.<entity-id>.<event-type>
//
// and the stream ES_NAME captures $ES.NAME.>.
const (
	StreamPrefix  = "ES_"
	SubjectPrefix = "$ES."

	// MaxStoreNameLen keeps "ES_"+name within JetStream's 255-byte limit on
	// stream names.
	MaxStoreNameLen = 255 - len(StreamPrefix)
)

// StreamName is the stream of store.
func StreamName(store string) string { return StreamPrefix + store }

// StoreSubjects is the subject pattern of every event of store.
func StoreSubjects(store string) string { return SubjectPrefix + store + ".>" }

// EventSubject is the subject an event of entity ("<type>.<id>") and event
// type typ is published on.
func EventSubject(store, entity, typ string) string {
	return SubjectPrefix + store + "." + entity + "." + typ
}

// EntityPattern matches every event of entity.
func EntityPattern(store, entity string) string {
	return SubjectPrefix + store + "." + entity + ".*"
}

// FilterPattern is the subject pattern of a filter of one to three tokens,
// "<entity-type>[.<entity-id>[.<event-type>]]": missing trailing tokens mean
// "*", and a last token ">" stands for the rest. The filter must have been
// checked (CheckFilter).
func FilterPattern(store, filter string) string {
	prefix := SubjectPrefix + store + "."
	if strings.HasSuffix(filter, ">") {
		return prefix + filter
	}
	switch strings.Count(filter, ".") {
	case 0:
		return prefix + filter + ".*.*"
	case 1:
		return prefix + filter + ".*"
	}
	return prefix + filter
}

// EntityOf returns the entity tokens of an event subject
// $ES.<store>.<entity-type>.<entity-id>.<event-type>, or of another subject
// whose entity-type token is at position at (counting from 0).
func EntityOf(subject string, at int) (typ, id string, ok bool) {
	for range at {
		_, rest, found := strings.Cut(subject, ".")
		if !found {
			return "", "", false
		}
		subject = rest
	}
	typ, rest, ok1 := strings.Cut(subject, ".")
	id, _, _ = strings.Cut(rest, ".")
	if !ok1 || typ == "" || id == "" {
		return "", "", false
	}
	return typ, id, true
}

// SplitEventSubject returns the entity and event type of an event subject of
// any store; ok is false for a subject of another shape.
func SplitEventSubject(subject string) (entity, typ string, ok bool) {
	toks := strings.SplitN(subject, ".", 5)
	if len(toks) != 5 {
		return "", "", false
	}
	return toks[2] + "." + toks[3], toks[4], true
}

// ValidToken reports whether tok can stand as one token of a subject that is
// published to: non-empty UTF-8 without wildcards, dots, whitespace or
// control characters.
func ValidToken(tok string) bool {
	if tok == "" {
		return false
	}
	ascii := true
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case c >= utf8.RuneSelf:
			ascii = false
		case c <= ' ' || c == 0x7f || c == '*' || c == '>' || c == '.':
			return false
		}
	}
	if ascii {
		return true
	}
	if !utf8.ValidString(tok) {
		return false
	}
	for _, r := range tok {
		if r == '*' || r == '>' || r == '.' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ValidEntity reports whether entity is exactly "<type>.<id>", two valid
// tokens.
func ValidEntity(entity string) bool {
	typ, id, ok := strings.Cut(entity, ".")
	return ok && ValidToken(typ) && ValidToken(id)
}
