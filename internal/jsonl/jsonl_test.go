package jsonl

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Every event survives a line: Parse(Append(e)) is e, payload bytes and
// all, and the line is one line.
func TestRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := &Event{
			Seq:     rapid.Uint64().Draw(t, "seq"),
			ID:      rapid.StringN(1, 30, -1).Draw(t, "id"),
			Time:    time.Unix(0, rapid.Int64Range(0, 1<<62).Draw(t, "time")).UTC(),
			Entity:  rapid.StringN(1, 20, -1).Draw(t, "entity"),
			Type:    rapid.StringN(1, 20, -1).Draw(t, "type"),
			Version: rapid.IntRange(1, 5).Draw(t, "version"),
			Codec:   rapid.SampledFrom([]string{"", "json", "msgpack", "protobuf", "binary"}).Draw(t, "codec"),
			Meta:    rapid.MapOfN(rapid.StringN(1, 10, -1), rapid.String(), 0, 3).Draw(t, "meta"),
		}
		switch rapid.IntRange(0, 2).Draw(t, "kind") {
		case 0:
			e.Data = rapid.SliceOf(rapid.Byte()).Draw(t, "bytes")
		case 1:
			e.Data = []byte(`{"a":1,"b":[true,null,"x\ny"]}`)
		default:
			e.Data = []byte(" {\n} ")
		}
		if len(e.Meta) == 0 {
			e.Meta = nil
		}
		for _, s := range append([]string{e.ID, e.Entity, e.Type}, mapStrings(e.Meta)...) {
			if !validUTF8(s) {
				t.Skip("not UTF-8")
			}
		}
		line := Append(nil, e)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("line %q is not one line", line)
		}
		got, err := Parse(line)
		if err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if got.Data == nil {
			got.Data = []byte{}
		}
		if e.Data == nil {
			e.Data = []byte{}
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("Parse(Append(e)) =\n%+v, want\n%+v\nline %s", got, e, line)
		}
	})
}

func mapStrings(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func validUTF8(s string) bool {
	return bytes.Equal([]byte(s), bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
}

// A payload of compact JSON is written as it is, readable; others in base64.
func TestInlineJSON(t *testing.T) {
	line := string(Append(nil, &Event{ID: "1", Entity: "a.b", Type: "t", Data: []byte(`{"x":1}`)}))
	if want := `"data":{"x":1}}`; !bytes.HasSuffix([]byte(line), []byte(want+"\n")) {
		t.Fatalf("line %q does not end with %s", line, want)
	}
	line = string(Append(nil, &Event{ID: "1", Entity: "a.b", Type: "t", Data: []byte{0x81, 0xa1}}))
	if want := `"data_base64":"gaE="}`; !bytes.HasSuffix([]byte(line), []byte(want+"\n")) {
		t.Fatalf("line %q does not end with %s", line, want)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct {
		line string
		want error
	}{
		{`{"id":"1"`, ErrSyntax},
		{`[1]`, ErrSyntax},
		{`{"id":"1","time":"2026-01-01T00:00:00Z","entity":"a.b","type":"t","data":1} {}`, ErrSyntax},
		{`{"time":"2026-01-01T00:00:00Z","entity":"a.b","type":"t","data":1}`, ErrMissing},
		{`{"id":"1","time":"2026-01-01T00:00:00Z","entity":"a.b","type":"t"}`, ErrMissing},
		{`{"id":"1","time":"yesterday","entity":"a.b","type":"t","data":1}`, ErrField},
		{`{"id":"1","time":"2026-01-01T00:00:00Z","entity":"a.b","type":"t","data_base64":"!!"}`, ErrField},
		{`{"id":"1","time":"2026-01-01T00:00:00Z","entity":"a.b","type":"t","data":1,"data_base64":""}`, ErrField},
	} {
		if _, err := Parse([]byte(c.line)); !errors.Is(err, c.want) {
			t.Errorf("Parse(%s) = %v, want %v", c.line, err, c.want)
		}
	}
}
