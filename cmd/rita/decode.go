package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/synadia-labs/rita"
)

// payloads decodes event payloads for display without the application's Go
// types: JSON as it is, msgpack generically, protobuf with the messages of
// a descriptor set (--proto), anything else as raw bytes.
type payloads struct {
	// explicit maps an event type to the message it is (--proto-type).
	explicit map[string]protoreflect.MessageDescriptor
	// byName maps a normalised message name to its messages.
	byName map[string][]protoreflect.MessageDescriptor
}

// loadProto reads a FileDescriptorSet (protoc --descriptor_set_out, buf
// build -o) and the --proto-type mappings.
func loadProto(file string, mappings []string) (*payloads, error) {
	p := &payloads{explicit: map[string]protoreflect.MessageDescriptor{}, byName: map[string][]protoreflect.MessageDescriptor{}}
	if file == "" {
		if len(mappings) > 0 {
			return nil, withCode(exitUsage, fmt.Errorf("--proto-type needs --proto"))
		}
		return p, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--proto: %w", err))
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--proto %s is not a protobuf descriptor set (make one with protoc --descriptor_set_out or buf build -o): %w", file, err))
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--proto %s: %w", file, err))
	}
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		addMessages(p, fd.Messages())
		return true
	})
	for _, m := range mappings {
		typ, msg, ok := strings.Cut(m, "=")
		if !ok {
			return nil, withCode(exitUsage, fmt.Errorf("--proto-type %q: want EVENT-TYPE=full.message.Name", m))
		}
		d, err := files.FindDescriptorByName(protoreflect.FullName(msg))
		md, isMsg := d.(protoreflect.MessageDescriptor)
		if err != nil || !isMsg {
			return nil, withCode(exitUsage, fmt.Errorf("--proto-type %q: no message %s in %s", m, msg, file))
		}
		p.explicit[typ] = md
	}
	return p, nil
}

func addMessages(p *payloads, msgs protoreflect.MessageDescriptors) {
	for i := range msgs.Len() {
		md := msgs.Get(i)
		n := normalise(string(md.Name()))
		p.byName[n] = append(p.byName[n], md)
		addMessages(p, md.Messages())
	}
}

// normalise makes "order-placed", "order_placed" and "OrderPlaced" alike.
func normalise(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// message finds the protobuf message of an event type: the one --proto-type
// names, else the one message named like the type (or like its end:
// "pb-order-placed" is an OrderPlaced).
func (p *payloads) message(typ string) protoreflect.MessageDescriptor {
	if md, ok := p.explicit[typ]; ok {
		return md
	}
	n := normalise(typ)
	if mds := p.byName[n]; len(mds) == 1 {
		return mds[0]
	}
	var found protoreflect.MessageDescriptor
	for name, mds := range p.byName {
		if strings.HasSuffix(n, name) && len(mds) == 1 {
			if found != nil {
				return nil // ambiguous
			}
			found = mds[0]
		}
	}
	return found
}

// decoded is a payload made readable: JSON, or the raw bytes.
type decoded struct {
	JSON json.RawMessage // nil: not decoded
	Raw  []byte
	As   string // how it was decoded: json, msgpack, protobuf, raw
}

// decode makes e's payload readable.
func (p *payloads) decode(e *rita.RawEvent) decoded {
	switch e.Codec {
	case "json", "":
		if json.Valid(e.Data) && len(e.Data) > 0 {
			var buf bytes.Buffer
			if json.Compact(&buf, e.Data) == nil {
				return decoded{JSON: buf.Bytes(), As: "json"}
			}
		}
	case "msgpack":
		var v any
		if err := msgpack.Unmarshal(e.Data, &v); err == nil {
			if b, err := json.Marshal(plain(v)); err == nil {
				return decoded{JSON: b, As: "msgpack"}
			}
		}
	case "protobuf":
		if md := p.message(e.Type); md != nil {
			msg := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(e.Data, msg); err == nil {
				if b, err := (protojson.MarshalOptions{Resolver: protoregistry.GlobalTypes}).Marshal(msg); err == nil {
					var buf bytes.Buffer
					if json.Compact(&buf, b) == nil {
						return decoded{JSON: buf.Bytes(), As: "protobuf"}
					}
				}
			}
		}
	}
	return decoded{Raw: e.Data, As: "raw"}
}

// text shows a decoded payload in a table: JSON as it is, raw bytes as a
// quoted string when they are printable text, base64 otherwise.
func (d decoded) text() string {
	if d.JSON != nil {
		return string(d.JSON)
	}
	if utf8.Valid(d.Raw) && !strings.ContainsFunc(string(d.Raw), func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Sprintf("%q", d.Raw)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(d.Raw)
}

// plain turns what msgpack decodes into values JSON can hold: maps with
// keys of any type become maps with string keys, bytes base64, times
// RFC 3339.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = plain(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
		return x
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}
