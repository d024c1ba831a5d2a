// Package eventdiff compares events the way ritatest's specifications do
// (entity, type, data, the expected metadata) and describes the differences
// readably, event by event.
package eventdiff

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/synadia-labs/rita"
)

// Decision returns "" when a decision that returned got and err is
// the one expected (want, or wantErr), and otherwise says how it differs,
// event by event. what names the events ("decided", "stored").
func Decision(what string, want []*rita.Event, wantErr error, got []*rita.Event, err error) string {
	switch {
	case wantErr != nil && err == nil:
		return fmt.Sprintf("want error %q, got no error and %s %s%s", wantErr, Plural(len(got), "event"), what, List(got))
	case wantErr != nil && !errors.Is(err, wantErr):
		return fmt.Sprintf("want error %q, got error %q", wantErr, err)
	case wantErr != nil:
		return ""
	case err != nil:
		return fmt.Sprintf("want %s, got error: %v", Plural(len(want), "event"), err)
	}
	return Events(what, want, got)
}

// Events returns "" when got matches want, and otherwise every event
// side by side, with the differences of those that differ.
func Events(what string, want, got []*rita.Event) string {
	n := max(len(want), len(got))
	diffs := make([][]string, n)
	differ := len(want) != len(got)
	for i := range min(len(want), len(got)) {
		diffs[i] = eventDiffs(want[i], got[i])
		differ = differ || len(diffs[i]) > 0
	}
	if !differ {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "want %s, got %s %s:\n", Plural(len(want), "event"), Plural(len(got), "event"), what)
	for i := range n {
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "  event %d:\n    want: %s\n    got:  (none)\n", i+1, Event(want[i]))
		case i >= len(want):
			fmt.Fprintf(&b, "  event %d:\n    want: (none)\n    got:  %s\n", i+1, Event(got[i]))
		case len(diffs[i]) == 0:
			fmt.Fprintf(&b, "  event %d: ok: %s\n", i+1, Event(got[i]))
		default:
			fmt.Fprintf(&b, "  event %d:\n    want: %s\n    got:  %s\n", i+1, Event(want[i]), Event(got[i]))
			for _, d := range diffs[i] {
				fmt.Fprintf(&b, "    %s\n", d)
			}
		}
	}
	return b.String()
}

// eventDiffs lists how got differs from want in what a Spec compares.
func eventDiffs(want, got *rita.Event) []string {
	var diffs []string
	if want.Entity != got.Entity {
		diffs = append(diffs, fmt.Sprintf("Entity: want %q, got %q", want.Entity, got.Entity))
	}
	if want.Type != "" && got.Type != "" && want.Type != got.Type {
		diffs = append(diffs, fmt.Sprintf("Type: want %q, got %q", want.Type, got.Type))
	}
	if !SameData(want.Data, got.Data) {
		fields := fieldDiffs(want.Data, got.Data)
		if len(fields) == 0 {
			fields = []string{fmt.Sprintf("Data: want %s, got %s", Data(want.Data), Data(got.Data))}
		}
		diffs = append(diffs, fields...)
	}
	keys := make([]string, 0, len(want.Meta))
	for k := range want.Meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if g, ok := got.Meta[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("Meta[%q]: want %q, got none", k, want.Meta[k]))
		} else if g != want.Meta[k] {
			diffs = append(diffs, fmt.Sprintf("Meta[%q]: want %q, got %q", k, want.Meta[k], g))
		}
	}
	return diffs
}

// SameData reports whether two event payloads are equal: proto.Equal for
// protocol buffers, reflect.DeepEqual otherwise, a pointer to a struct being
// equal to the struct.
func SameData(want, got any) bool {
	if w, ok := want.(proto.Message); ok {
		g, ok := got.(proto.Message)
		return ok && proto.Equal(w, g)
	}
	return reflect.DeepEqual(indirect(want), indirect(got))
}

// indirect returns the struct a non-nil pointer to a struct points to, and
// any other value as is.
func indirect(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Struct {
		return rv.Elem().Interface()
	}
	return v
}

// fieldDiffs lists the exported fields in which two structs of one type (or
// pointers to them) differ; nil if they are not such structs.
func fieldDiffs(want, got any) []string {
	if _, ok := want.(proto.Message); ok {
		return nil
	}
	w, g := reflect.ValueOf(indirect(want)), reflect.ValueOf(indirect(got))
	if !w.IsValid() || !g.IsValid() || w.Type() != g.Type() || w.Kind() != reflect.Struct {
		return nil
	}
	var diffs []string
	for i := range w.NumField() {
		f := w.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		wf, gf := w.Field(i).Interface(), g.Field(i).Interface()
		if !reflect.DeepEqual(wf, gf) {
			diffs = append(diffs, fmt.Sprintf("Data.%s: want %#v, got %#v", f.Name, wf, gf))
		}
	}
	return diffs
}

// Event shows an event as "<entity> <type> <data>", the type only
// when set, and the metadata when there is some.
func Event(e *rita.Event) string {
	if e == nil {
		return "<nil event>"
	}
	parts := []string{e.Entity}
	if e.Entity == "" {
		parts[0] = `""`
	}
	if e.Type != "" {
		parts = append(parts, e.Type)
	}
	parts = append(parts, Data(e.Data))
	return strings.Join(parts, " ")
}

// Data shows a payload: Go syntax for structs, text for []byte,
// the text format for protocol buffers.
func Data(v any) string {
	switch d := v.(type) {
	case nil:
		return "<nil data>"
	case []byte:
		return fmt.Sprintf("[]byte(%q)", d)
	case proto.Message:
		return fmt.Sprintf("%T{%v}", d, d)
	default:
		return fmt.Sprintf("%#v", d)
	}
}

// List shows events one a line, after a colon; "" for none.
func List(events []*rita.Event) string {
	if len(events) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(":")
	for i, e := range events {
		fmt.Fprintf(&b, "\n  event %d: %s", i+1, Event(e))
	}
	return b.String()
}

// Plural says "1 event" or "n events".
func Plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
