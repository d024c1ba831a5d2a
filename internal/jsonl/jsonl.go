// Package jsonl is the form of an event in an export of a store: one JSON
// object on one line, as Export writes it and Import reads it.
// docs/export-format.md describes it for users; change it there too.
//
//	{"seq":7,"id":"Vq3…","time":"2026-03-01T10:00:00.123Z","entity":"account.alice",
//	 "type":"deposited","version":2,"codec":"json","meta":{"k":"v"},"data":{"amount":30}}
//
// Invariants:
//   - a line holds exactly one of "data" and "data_base64": "data" when the
//     payload is a JSON value written compactly on one line with no space
//     around it, copied as it is; "data_base64" (standard encoding)
//     otherwise. Either way Parse returns the payload's exact bytes;
//   - "version" is left out for 1, "codec" when empty, "meta" when empty;
//   - strings are written as JSON strings; a byte sequence that is not
//     UTF-8 in a string field is written as U+FFFD (rita's IDs, entities
//     and types are UTF-8; metadata should be);
//   - nothing but a line break ends a line: no string or payload written
//     holds a raw line break.
package jsonl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Event is an event of an export line.
type Event struct {
	Seq     uint64
	ID      string
	Time    time.Time
	Entity  string
	Type    string
	Version int
	Codec   string
	Meta    map[string]string
	Key     uint64 // the version of the entity's data key the payload is sealed with; 0: none
	Data    []byte
}

// Append appends e's line to buf, with its line break.
func Append(buf []byte, e *Event) []byte {
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, e.Seq, 10)
	buf = append(buf, `,"id":`...)
	buf = appendString(buf, e.ID)
	buf = append(buf, `,"time":"`...)
	buf = e.Time.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","entity":`...)
	buf = appendString(buf, e.Entity)
	buf = append(buf, `,"type":`...)
	buf = appendString(buf, e.Type)
	if e.Version > 1 {
		buf = append(buf, `,"version":`...)
		buf = strconv.AppendInt(buf, int64(e.Version), 10)
	}
	if e.Codec != "" {
		buf = append(buf, `,"codec":`...)
		buf = appendString(buf, e.Codec)
	}
	if len(e.Meta) > 0 {
		buf = append(buf, `,"meta":{`...)
		keys := make([]string, 0, len(e.Meta))
		for k := range e.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, k)
			buf = append(buf, ':')
			buf = appendString(buf, e.Meta[k])
		}
		buf = append(buf, '}')
	}
	if e.Key != 0 {
		buf = append(buf, `,"key":`...)
		buf = strconv.AppendUint(buf, e.Key, 10)
	}
	if InlineJSON(e.Data) {
		buf = append(buf, `,"data":`...)
		buf = append(buf, e.Data...)
	} else {
		buf = append(buf, `,"data_base64":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, e.Data)
		buf = append(buf, '"')
	}
	return append(buf, '}', '\n')
}

// InlineJSON reports whether data can be written as it is in a line: a JSON
// value without a raw line break and without white space around it (which
// a reader of the line would drop).
func InlineJSON(data []byte) bool {
	if len(data) == 0 || bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		return false
	}
	if isSpace(data[0]) || isSpace(data[len(data)-1]) {
		return false
	}
	return json.Valid(data)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// line is a line as encoding/json reads it.
type line struct {
	Seq        uint64            `json:"seq"`
	ID         string            `json:"id"`
	Time       string            `json:"time"`
	Entity     string            `json:"entity"`
	Type       string            `json:"type"`
	Version    int               `json:"version"`
	Codec      string            `json:"codec"`
	Meta       map[string]string `json:"meta"`
	Key        uint64            `json:"key"`
	Data       json.RawMessage   `json:"data"`
	DataBase64 *string           `json:"data_base64"`
}

// Errors of Parse.
var (
	ErrSyntax  = errors.New("not a JSON object of an event")
	ErrMissing = errors.New("missing field")
	ErrField   = errors.New("invalid field")
)

// Parse reads the event of one line (its line break may be left on). It
// checks the line's form, not the event: the caller checks the entity,
// type and metadata as an append does. Fields it does not know are
// ignored, so that lines a later rita adds fields to still read.
func Parse(b []byte) (*Event, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	switch {
	case l.ID == "":
		return nil, fmt.Errorf("%w: id", ErrMissing)
	case l.Time == "":
		return nil, fmt.Errorf("%w: time", ErrMissing)
	case l.Entity == "":
		return nil, fmt.Errorf("%w: entity", ErrMissing)
	case l.Type == "":
		return nil, fmt.Errorf("%w: type", ErrMissing)
	case l.Data == nil && l.DataBase64 == nil:
		return nil, fmt.Errorf("%w: data or data_base64", ErrMissing)
	case l.Data != nil && l.DataBase64 != nil:
		return nil, fmt.Errorf("%w: both data and data_base64", ErrField)
	case l.Version < 0:
		return nil, fmt.Errorf("%w: version %d", ErrField, l.Version)
	}
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: time: %w", ErrField, err)
	}
	e := &Event{Seq: l.Seq, ID: l.ID, Time: t, Entity: l.Entity, Type: l.Type, Version: max(l.Version, 1), Codec: l.Codec, Meta: l.Meta, Key: l.Key, Data: l.Data}
	if l.DataBase64 != nil {
		if e.Data, err = base64.StdEncoding.DecodeString(*l.DataBase64); err != nil {
			return nil, fmt.Errorf("%w: data_base64: %w", ErrField, err)
		}
	}
	if len(e.Meta) == 0 {
		e.Meta = nil
	}
	return e, nil
}
