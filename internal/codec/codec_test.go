package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/synadia-labs/rita/internal/pb"
)

type plain struct {
	Name  string
	Count int
	Tags  []string
}

// point implements the binary interfaces with a fixed 2-byte layout.
type point struct{ X, Y byte }

func (p *point) MarshalBinary() ([]byte, error) { return []byte{p.X, p.Y}, nil }

func (p *point) UnmarshalBinary(data []byte) error {
	if len(data) != 2 {
		return fmt.Errorf("point: want 2 bytes, got %d", len(data))
	}
	p.X, p.Y = data[0], data[1]
	return nil
}

func TestLookup(t *testing.T) {
	for _, name := range []string{JSON, MsgPack, Protobuf, Binary} {
		c, err := Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
		if c.Name() != name {
			t.Errorf("Lookup(%q).Name() = %q", name, c.Name())
		}
	}
	for _, name := range []string{"", "JSON", "xml"} {
		_, err := Lookup(name)
		if !errors.Is(err, ErrUnknown) {
			t.Errorf("Lookup(%q) error = %v, want ErrUnknown", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("Lookup(%q) error %q does not name the codec", name, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		codec string
		in    any
		out   func() any
	}{
		{JSON, &plain{Name: "a", Count: 2, Tags: []string{"x"}}, func() any { return new(plain) }},
		{MsgPack, &plain{Name: "a", Count: 2, Tags: []string{"x"}}, func() any { return new(plain) }},
		{Protobuf, &pb.OrderPlaced{OrderId: "o1", Amount: 42, Items: []string{"i"}}, func() any { return new(pb.OrderPlaced) }},
		{Binary, &point{X: 1, Y: 2}, func() any { return new(point) }},
	}
	for _, tt := range tests {
		t.Run(tt.codec, func(t *testing.T) {
			c, err := Lookup(tt.codec)
			if err != nil {
				t.Fatal(err)
			}
			data, err := c.Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			out := tt.out()
			if err := c.Unmarshal(data, out); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if m, ok := out.(proto.Message); ok {
				if !proto.Equal(m, tt.in.(proto.Message)) {
					t.Errorf("got %v, want %v", out, tt.in)
				}
			} else if !reflect.DeepEqual(out, tt.in) {
				t.Errorf("got %+v, want %+v", out, tt.in)
			}
		})
	}
}

func TestBinaryBytes(t *testing.T) {
	c, _ := Lookup(Binary)
	in := []byte("raw")
	data, err := c.Marshal(in)
	if err != nil || !bytes.Equal(data, in) {
		t.Fatalf("Marshal([]byte) = %q, %v", data, err)
	}
	var out []byte
	if err := c.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the decoded slice must be a copy
	if string(out) != "raw" {
		t.Errorf("Unmarshal(*[]byte) = %q, want a copy of %q", out, "raw")
	}
}

func TestUnsupportedValue(t *testing.T) {
	pbc, _ := Lookup(Protobuf)
	bin, _ := Lookup(Binary)
	if _, err := pbc.Marshal(&plain{}); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("protobuf Marshal(non-proto) = %v", err)
	}
	if err := pbc.Unmarshal(nil, &plain{}); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("protobuf Unmarshal(non-proto) = %v", err)
	}
	if _, err := bin.Marshal(plain{}); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("binary Marshal(plain) = %v", err)
	}
	if err := bin.Unmarshal([]byte{1}, &plain{}); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("binary Unmarshal(plain) = %v", err)
	}
	if _, err := bin.Marshal((*point)(nil)); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("binary Marshal(nil *point) = %v", err)
	}
}

// TestNilTargets checks that no codec panics when asked to decode into nil,
// a typed nil pointer or a non-pointer.
func TestNilTargets(t *testing.T) {
	targets := []any{nil, (*plain)(nil), plain{}, (*pb.OrderPlaced)(nil), (*point)(nil), (*[]byte)(nil)}
	for _, name := range []string{JSON, MsgPack, Protobuf, Binary} {
		c, _ := Lookup(name)
		for _, target := range targets {
			if err := c.Unmarshal([]byte{}, target); err == nil {
				t.Errorf("%s: Unmarshal into %T succeeded, want error", name, target)
			}
		}
	}
}

func TestDecodeError(t *testing.T) {
	for _, name := range []string{JSON, MsgPack, Protobuf, Binary} {
		c, _ := Lookup(name)
		var target any = new(plain)
		switch name {
		case Protobuf:
			target = new(pb.OrderPlaced)
		case Binary:
			target = new(point)
		}
		if err := c.Unmarshal([]byte{0xff, 0xff, 0xff}, target); err == nil {
			t.Errorf("%s: Unmarshal of garbage succeeded", name)
		}
	}
}
