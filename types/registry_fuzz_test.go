package types_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/synadia-labs/rita/internal/pb"
	"github.com/synadia-labs/rita/types"
)

// wantValidName says what a type name may be: one or more dot-separated,
// non-empty tokens of ASCII letters, digits, '_' and '-'.
func wantValidName(name string) bool {
	for tok := range strings.SplitSeq(name, ".") {
		if tok == "" || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			return false
		}
	}
	return true
}

// A name is registered exactly when it is valid, and then the registry knows
// it both ways; an invalid one is refused with ErrTypeNameInvalid. Any other
// name is unknown to Init and UnmarshalType, and no payload, however
// malformed, makes decoding panic.
func FuzzRegistryName(f *testing.F) {
	for _, s := range []string{"order-placed", "orders.placed-v2", "a", "", ".", "a.", ".a", "a..b", "a b",
		"a*", "a>", "ördre", "a/b", "A_1.b-2", "\x00", strings.Repeat("a.", 100) + "a"} {
		f.Add(s, []byte(`{"ID":"1"}`))
	}
	f.Add("order-placed", []byte{0xff, 0x00, 0x01})
	f.Add("order-placed", []byte(`{"ID":`))
	codecs := map[string]map[string]*types.Type{
		"json":     {"order-placed": typ[orderPlaced]()},
		"msgpack":  {"order-placed": typ[orderPlaced]()},
		"protobuf": {"order-placed": {Init: func() any { return new(pb.OrderPlaced) }}},
		"binary":   {"order-placed": typ[point]()},
	}
	regs := make([]*types.Registry, 0, len(codecs))
	for name, ts := range codecs {
		r, err := types.NewRegistry(ts, types.Codec(name))
		if err != nil {
			f.Fatalf("registry %s: %v", name, err)
		}
		regs = append(regs, r)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		r, err := types.NewRegistry(map[string]*types.Type{name: typ[orderPlaced]()})
		switch {
		case wantValidName(name) && err != nil:
			t.Fatalf("valid name %q refused: %v", name, err)
		case !wantValidName(name) && !errors.Is(err, types.ErrTypeNameInvalid):
			t.Fatalf("invalid name %q: error %v, want ErrTypeNameInvalid", name, err)
		case err == nil:
			if got, err := r.Lookup(&orderPlaced{}); err != nil || got != name {
				t.Fatalf("Lookup = %q, %v; want %q", got, err, name)
			}
			if v, err := r.Init(name); err != nil || reflect.TypeOf(v) != reflect.TypeFor[*orderPlaced]() {
				t.Fatalf("Init(%q) = %T, %v", name, v, err)
			}
		}
		for _, r := range regs {
			v, err := r.UnmarshalType(data, name)
			if name != "order-placed" {
				if !errors.Is(err, types.ErrTypeNotRegistered) {
					t.Fatalf("UnmarshalType(%q) with the %s codec: %v, want ErrTypeNotRegistered", name, r.Codec(), err)
				}
				continue
			}
			if err == nil && v == nil {
				t.Fatalf("UnmarshalType with the %s codec returned nil without an error", r.Codec())
			}
		}
	})
}
