package types_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/synadia-labs/rita/internal/codec"
	"github.com/synadia-labs/rita/internal/pb"
	"github.com/synadia-labs/rita/types"
)

// orderPlaced validates itself through a pointer receiver.
type orderPlaced struct {
	ID     string
	Amount int64
	Items  []string
}

var errNoID = errors.New("order id is required")

func (o *orderPlaced) Validate() error {
	if o.ID == "" {
		return errNoID
	}
	return nil
}

// orderShipped validates itself through a value receiver.
type orderShipped struct {
	ID      string
	Carrier string
}

var errNoCarrier = errors.New("carrier is required")

func (o orderShipped) Validate() error {
	if o.Carrier == "" {
		return errNoCarrier
	}
	return nil
}

// empty has no fields; its zero-sized values may share an address.
type empty struct{}

// withChan cannot be encoded by JSON or MessagePack.
type withChan struct {
	C chan int
}

// point encodes itself as two bytes.
type point struct{ X, Y byte }

func (p *point) MarshalBinary() ([]byte, error) { return []byte{p.X, p.Y}, nil }

func (p *point) UnmarshalBinary(data []byte) error {
	if len(data) != 2 {
		return fmt.Errorf("point: want 2 bytes, got %d", len(data))
	}
	p.X, p.Y = data[0], data[1]
	return nil
}

// panicky panics when it is encoded.
type panicky struct{}

func (*panicky) MarshalBinary() ([]byte, error) { panic("boom") }
func (*panicky) UnmarshalBinary([]byte) error   { return nil }

func typ[T any]() *types.Type {
	return &types.Type{Init: func() any { return new(T) }}
}

func TestNewRegistryRefuses(t *testing.T) {
	shared := new(orderPlaced)
	tests := []struct {
		name    string
		types   map[string]*types.Type
		opts    []types.RegistryOption
		want    []error // every one must match errors.Is
		mention string  // the error text must contain this
	}{
		{"empty name", map[string]*types.Type{"": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `""`},
		{"lone dot", map[string]*types.Type{".": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `"."`},
		{"leading dot", map[string]*types.Type{".a": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `".a"`},
		{"trailing dot", map[string]*types.Type{"a.": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `"a."`},
		{"empty token", map[string]*types.Type{"a..b": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `"a..b"`},
		{"space", map[string]*types.Type{"order placed": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `"order placed"`},
		{"slash", map[string]*types.Type{"order/placed": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `"order/placed"`},
		{"wildcard", map[string]*types.Type{"order.*": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `"order.*"`},
		{"non-ascii", map[string]*types.Type{"commandé": typ[orderPlaced]()}, nil, []error{types.ErrTypeNameInvalid}, `"command`},
		{"nil type", map[string]*types.Type{"a": nil}, nil, []error{types.ErrTypeInvalid}, "nil *Type"},
		{"nil init", map[string]*types.Type{"a": {}}, nil, []error{types.ErrTypeInvalid}, "nil Init"},
		{"init returns nil", map[string]*types.Type{"a": {Init: func() any { return nil }}}, nil, []error{types.ErrTypeInvalid}, "returned nil"},
		{"init returns typed nil", map[string]*types.Type{"a": {Init: func() any { return (*orderPlaced)(nil) }}}, nil, []error{types.ErrTypeInvalid}, "nil *types_test.orderPlaced"},
		{"init returns value", map[string]*types.Type{"a": {Init: func() any { return orderPlaced{} }}}, nil, []error{types.ErrTypeInvalid}, "types_test.orderPlaced"},
		{"init returns pointer to int", map[string]*types.Type{"a": {Init: func() any { return new(int) }}}, nil, []error{types.ErrTypeInvalid}, "*int"},
		{"init panics", map[string]*types.Type{"a": {Init: func() any { panic("no") }}}, nil, []error{types.ErrTypeInvalid}, "panic"},
		{"init reuses pointer", map[string]*types.Type{"a": {Init: func() any { return shared }}}, nil, []error{types.ErrTypeInvalid}, "same"},
		{"duplicate", map[string]*types.Type{"a": typ[orderPlaced](), "b": typ[orderPlaced]()}, nil, []error{types.ErrTypeDuplicate}, `*types_test.orderPlaced is registered as both "a" and "b"`},
		{"json cannot encode", map[string]*types.Type{"a": typ[withChan]()}, nil, []error{types.ErrTypeInvalid}, "json"},
		{"msgpack cannot encode", map[string]*types.Type{"a": typ[withChan]()}, []types.RegistryOption{types.Codec("msgpack")}, []error{types.ErrTypeInvalid}, "msgpack"},
		{"protobuf needs proto.Message", map[string]*types.Type{"a": typ[orderPlaced]()}, []types.RegistryOption{types.Codec("protobuf")}, []error{types.ErrTypeInvalid, codec.ErrUnsupportedValue}, "protobuf"},
		{"binary needs BinaryMarshaler", map[string]*types.Type{"a": typ[orderPlaced]()}, []types.RegistryOption{types.Codec("binary")}, []error{types.ErrTypeInvalid, codec.ErrUnsupportedValue}, "binary"},
		{"codec panics", map[string]*types.Type{"a": typ[panicky]()}, []types.RegistryOption{types.Codec("binary")}, []error{types.ErrTypeInvalid}, "boom"},
		{"unknown codec", nil, []types.RegistryOption{types.Codec("xml")}, []error{types.ErrCodecUnknown}, `"xml"`},
		{"empty codec name", nil, []types.RegistryOption{types.Codec("")}, []error{types.ErrCodecUnknown}, `""`},
		{"conflicting codecs", nil, []types.RegistryOption{types.Codec("json"), types.Codec("msgpack")}, []error{types.ErrOptionInvalid}, `"msgpack"`},
		{"nil option", nil, []types.RegistryOption{nil}, []error{types.ErrOptionInvalid}, "nil"},
		{"every problem reported", map[string]*types.Type{"": typ[orderPlaced](), "b": nil}, nil, []error{types.ErrTypeNameInvalid, types.ErrTypeInvalid}, `"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := types.NewRegistry(tt.types, tt.opts...)
			if err == nil {
				t.Fatalf("NewRegistry succeeded with %v, want error", reg.Names())
			}
			if reg != nil {
				t.Errorf("NewRegistry returned a registry with its error")
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("error %q does not match %v", err, want)
				}
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestNewRegistryAccepts(t *testing.T) {
	tests := []struct {
		name  string
		types map[string]*types.Type
		opts  []types.RegistryOption
		names []string
		codec string
	}{
		{"nil map", nil, nil, nil, "json"},
		{"empty map", map[string]*types.Type{}, []types.RegistryOption{types.Codec("msgpack")}, nil, "msgpack"},
		{"name forms", map[string]*types.Type{
			"a":                  typ[orderPlaced](),
			"order.shipped":      typ[orderShipped](),
			"Order_Empty-v2.x.1": typ[empty](),
		}, nil, []string{"Order_Empty-v2.x.1", "a", "order.shipped"}, "json"},
		{"same codec twice", nil, []types.RegistryOption{types.Codec("binary"), types.Codec("binary")}, nil, "binary"},
		{"zero value is not validated", map[string]*types.Type{"a": typ[orderPlaced]()}, []types.RegistryOption{types.Codec("msgpack")}, []string{"a"}, "msgpack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := types.NewRegistry(tt.types, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := reg.Names(); !reflect.DeepEqual(got, tt.names) {
				t.Errorf("Names() = %q, want %q", got, tt.names)
			}
			if got := reg.Codec(); got != tt.codec {
				t.Errorf("Codec() = %q, want %q", got, tt.codec)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		codec string
		types map[string]*types.Type
		name  string
		in    any
	}{
		{"json", map[string]*types.Type{"order.placed": typ[orderPlaced](), "order.shipped": typ[orderShipped]()},
			"order.placed", &orderPlaced{ID: "o1", Amount: 42, Items: []string{"book", "pen"}}},
		{"msgpack", map[string]*types.Type{"order.placed": typ[orderPlaced](), "order.shipped": typ[orderShipped]()},
			"order.shipped", &orderShipped{ID: "o1", Carrier: "ups"}},
		{"protobuf", map[string]*types.Type{"order.placed": typ[pb.OrderPlaced](), "order.shipped": typ[pb.OrderShipped]()},
			"order.placed", &pb.OrderPlaced{OrderId: "o1", Amount: 42, Items: []string{"book"}}},
		{"binary", map[string]*types.Type{"point": typ[point]()},
			"point", &point{X: 3, Y: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.codec, func(t *testing.T) {
			reg, err := types.NewRegistry(tt.types, types.Codec(tt.codec))
			if err != nil {
				t.Fatal(err)
			}
			name, err := reg.Lookup(tt.in)
			if err != nil || name != tt.name {
				t.Fatalf("Lookup = %q, %v; want %q", name, err, tt.name)
			}
			data, err := reg.Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			out, err := reg.UnmarshalType(data, name)
			if err != nil {
				t.Fatalf("UnmarshalType: %v", err)
			}
			if !equal(out, tt.in) {
				t.Errorf("UnmarshalType = %+v, want %+v", out, tt.in)
			}
			into, err := reg.Init(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Unmarshal(data, into); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !equal(into, tt.in) {
				t.Errorf("Unmarshal = %+v, want %+v", into, tt.in)
			}
		})
	}
}

func equal(a, b any) bool {
	if ma, ok := a.(proto.Message); ok {
		mb, ok := b.(proto.Message)
		return ok && proto.Equal(ma, mb)
	}
	return reflect.DeepEqual(a, b)
}

func TestMarshalByValue(t *testing.T) {
	reg, err := types.NewRegistry(map[string]*types.Type{"point": typ[point]()}, types.Codec("binary"))
	if err != nil {
		t.Fatal(err)
	}
	// *point implements BinaryMarshaler, point does not: Marshal must still
	// find the method through a pointer to a copy.
	data, err := reg.Marshal(point{X: 1, Y: 2})
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "\x01\x02" {
		t.Errorf("Marshal(point) = %q", data)
	}
}

func TestMarshalValidates(t *testing.T) {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"order.placed":  typ[orderPlaced](),
		"order.shipped": typ[orderShipped](),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    any
		want []error
	}{
		{"pointer receiver, pointer", &orderPlaced{}, []error{types.ErrValueInvalid, errNoID}},
		{"pointer receiver, value", orderPlaced{}, []error{types.ErrValueInvalid, errNoID}},
		{"value receiver, pointer", &orderShipped{ID: "o1"}, []error{types.ErrValueInvalid, errNoCarrier}},
		{"value receiver, value", orderShipped{ID: "o1"}, []error{types.ErrValueInvalid, errNoCarrier}},
		{"nil pointer", (*orderPlaced)(nil), []error{types.ErrValueInvalid}},
		{"unregistered", &point{}, []error{types.ErrTypeNotRegistered}},
		{"nil", nil, []error{types.ErrTypeNotRegistered}},
		{"valid", &orderPlaced{ID: "o1"}, nil},
		{"valid value", orderShipped{ID: "o1", Carrier: "ups"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Marshal(tt.v)
			if tt.want == nil && err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("Marshal error %v does not match %v", err, want)
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	reg, err := types.NewRegistry(map[string]*types.Type{"order.placed": typ[orderPlaced]()})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{&orderPlaced{}, orderPlaced{}, (*orderPlaced)(nil)} {
		if name, err := reg.Lookup(v); err != nil || name != "order.placed" {
			t.Errorf("Lookup(%T) = %q, %v", v, name, err)
		}
	}
	for _, v := range []any{nil, &orderShipped{}, orderShipped{}, new(*orderPlaced), 42, "order.placed"} {
		_, err := reg.Lookup(v)
		if !errors.Is(err, types.ErrTypeNotRegistered) {
			t.Errorf("Lookup(%T) error = %v, want ErrTypeNotRegistered", v, err)
			continue
		}
		if v != nil && !strings.Contains(err.Error(), fmt.Sprintf("%T", v)) {
			t.Errorf("Lookup(%T) error %q does not name the Go type", v, err)
		}
	}
}

func TestInit(t *testing.T) {
	reg, err := types.NewRegistry(map[string]*types.Type{"order.placed": typ[orderPlaced]()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := reg.Init("order.placed")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := reg.Init("order.placed")
	if _, ok := a.(*orderPlaced); !ok {
		t.Fatalf("Init returned %T, want *orderPlaced", a)
	}
	if a == b {
		t.Error("Init returned the same pointer twice")
	}
	_, err = reg.Init("order.lost")
	if !errors.Is(err, types.ErrTypeNotRegistered) || !strings.Contains(err.Error(), `"order.lost"`) {
		t.Errorf("Init(unknown) error = %v", err)
	}
	_, err = reg.UnmarshalType([]byte("{}"), "order.lost")
	if !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("UnmarshalType(unknown) error = %v", err)
	}
	if _, err := reg.UnmarshalType([]byte("not json"), "order.placed"); err == nil {
		t.Error("UnmarshalType(garbage) succeeded")
	}
	if err := reg.Unmarshal([]byte("{}"), nil); err == nil {
		t.Error("Unmarshal into nil succeeded")
	}
}

// TestInitChangesType covers an Init whose result changes after registration.
func TestInitChangesType(t *testing.T) {
	calls := 0
	var mu sync.Mutex
	reg, err := types.NewRegistry(map[string]*types.Type{"a": {Init: func() any {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls > 2 { // NewRegistry probes Init twice
			return new(orderShipped)
		}
		return new(orderPlaced)
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Init("a"); !errors.Is(err, types.ErrTypeInvalid) {
		t.Errorf("Init error = %v, want ErrTypeInvalid", err)
	}
}

// TestRegistryOwnsItsTypes checks that the caller's map is not retained.
func TestRegistryOwnsItsTypes(t *testing.T) {
	m := map[string]*types.Type{"order.placed": typ[orderPlaced]()}
	reg, err := types.NewRegistry(m)
	if err != nil {
		t.Fatal(err)
	}
	m["order.shipped"] = typ[orderShipped]()
	m["order.placed"].Init = nil
	if _, err := reg.Init("order.placed"); err != nil {
		t.Errorf("Init after the caller changed the map: %v", err)
	}
	if names := reg.Names(); !reflect.DeepEqual(names, []string{"order.placed"}) {
		t.Errorf("Names() = %q", names)
	}
	names := reg.Names()
	names[0] = "changed"
	if reg.Names()[0] != "order.placed" {
		t.Error("Names() shares its slice with the registry")
	}
}

func TestNilRegistry(t *testing.T) {
	var reg *types.Registry
	if _, err := reg.Init("a"); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("Init: %v", err)
	}
	if _, err := reg.Lookup(&orderPlaced{}); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("Lookup: %v", err)
	}
	if _, err := reg.Marshal(&orderPlaced{ID: "o1"}); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("Marshal: %v", err)
	}
	if err := reg.Unmarshal([]byte("{}"), &orderPlaced{}); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("Unmarshal: %v", err)
	}
	if _, err := reg.UnmarshalType([]byte("{}"), "a"); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("UnmarshalType: %v", err)
	}
	if got := reg.Codec(); got != "" {
		t.Errorf("Codec() = %q", got)
	}
	if got := reg.Names(); got != nil {
		t.Errorf("Names() = %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"order.placed":  typ[pb.OrderPlaced](),
		"order.shipped": typ[pb.OrderShipped](),
	}, types.Codec("protobuf"))
	if err != nil {
		t.Fatal(err)
	}
	const workers, iterations = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iterations {
				in := &pb.OrderPlaced{OrderId: fmt.Sprintf("o-%d-%d", w, i), Amount: int64(i)}
				name, err := reg.Lookup(in)
				if err != nil {
					errs <- err
					return
				}
				data, err := reg.Marshal(in)
				if err != nil {
					errs <- err
					return
				}
				out, err := reg.UnmarshalType(data, name)
				if err != nil {
					errs <- err
					return
				}
				if !proto.Equal(out.(*pb.OrderPlaced), in) {
					errs <- fmt.Errorf("got %v, want %v", out, in)
					return
				}
				_ = reg.Names()
				_ = reg.Codec()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
