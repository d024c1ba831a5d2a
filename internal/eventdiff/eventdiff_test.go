package eventdiff

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/internal/pb"
)

type point struct {
	X, Y   int
	hidden string
}

func TestSameData(t *testing.T) {
	placed := &pb.OrderPlaced{OrderId: "o1", Amount: 3}
	decoded := &pb.OrderPlaced{}
	data, err := proto.Marshal(placed)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(data, decoded); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		want, got any
		same      bool
	}{
		{"equal pointers", &point{X: 1}, &point{X: 1}, true},
		{"pointer and value", &point{X: 1}, point{X: 1}, true},
		{"value and pointer", point{X: 1}, &point{X: 1}, true},
		{"different values", &point{X: 1}, &point{X: 2}, false},
		{"unexported field differs", &point{hidden: "a"}, &point{hidden: "b"}, false},
		{"different types", &point{}, &struct{ X, Y int }{}, false},
		{"bytes", []byte("a"), []byte("a"), true},
		{"different bytes", []byte("a"), []byte("b"), false},
		{"nil and nil", nil, nil, true},
		{"nil and value", nil, &point{}, false},
		{"nil pointer", (*point)(nil), &point{}, false},
		{"proto, decoded", placed, decoded, true},
		{"proto, different", placed, &pb.OrderPlaced{OrderId: "o2"}, false},
		{"proto and struct", placed, &point{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameData(tt.want, tt.got); got != tt.same {
				t.Fatalf("SameData(%#v, %#v) = %v", tt.want, tt.got, got)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		e    *rita.Event
		want string
	}{
		{&rita.Event{Entity: "a.b", Type: "t", Data: &point{X: 1}}, "a.b t &eventdiff.point{X:1, Y:0, hidden:\"\"}"},
		{&rita.Event{Entity: "a.b", Data: []byte(`{"x":1}`)}, `a.b []byte("{\"x\":1}")`},
		{&rita.Event{Data: nil}, `"" <nil data>`},
		{nil, "<nil event>"},
	}
	for _, tt := range tests {
		if got := Event(tt.e); got != tt.want {
			t.Errorf("Event() = %s, want %s", got, tt.want)
		}
	}
	got := Data(&pb.OrderPlaced{OrderId: "o1"})
	if !strings.HasPrefix(got, "*pb.OrderPlaced{") || !strings.Contains(got, `"o1"`) || strings.Contains(got, "sizeCache") {
		t.Errorf("Data(proto) = %s", got)
	}
}

func TestEvents(t *testing.T) {
	same := []*rita.Event{{Entity: "a.b", Data: &point{X: 1}}}
	if d := Events("decided", same, []*rita.Event{{Entity: "a.b", Type: "p", Data: point{X: 1}, ID: "x", Meta: map[string]string{"k": "v"}}}); d != "" {
		t.Fatalf("equal events differ:\n%s", d)
	}
	d := Events("decided", same, []*rita.Event{{Entity: "a.b", Data: &point{X: 2, Y: 3}}})
	for _, want := range []string{"want 1 event, got 1 event decided:", "Data.X: want 1, got 2", "Data.Y: want 0, got 3"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff\n%s\ndoes not say %s", d, want)
		}
	}
	// Only unexported fields differ: the whole values are shown.
	d = Events("decided", []*rita.Event{{Entity: "a.b", Data: &point{hidden: "a"}}}, []*rita.Event{{Entity: "a.b", Data: &point{hidden: "b"}}})
	if !strings.Contains(d, `Data: want &eventdiff.point{X:0, Y:0, hidden:"a"}, got &eventdiff.point{X:0, Y:0, hidden:"b"}`) {
		t.Errorf("diff\n%s", d)
	}
}
