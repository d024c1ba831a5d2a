package types_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/synadia-labs/rita/types"
)

// Three versions of a deposit: v1 had whole units, v2 cents, v3 a currency.
type (
	depositV1 struct {
		Amount int `json:"amount" msgpack:"amount"`
	}
	depositV2 struct {
		Cents int `json:"cents" msgpack:"cents"`
	}
	deposit struct {
		Cents    int    `json:"cents" msgpack:"cents"`
		Currency string `json:"currency" msgpack:"currency"`
	}
)

func v1ToV2(old *depositV1) (*depositV2, error) { return &depositV2{Cents: old.Amount * 100}, nil }
func v2ToV3(old *depositV2) (*deposit, error) {
	return &deposit{Cents: old.Cents, Currency: "EUR"}, nil
}

func depositRegistry(t *testing.T, opts ...types.RegistryOption) *types.Registry {
	t.Helper()
	reg, err := types.NewRegistry(map[string]*types.Type{
		"deposited": {Init: func() any { return new(deposit) }, Version: 3},
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestUpcastChain(t *testing.T) {
	for _, codecName := range []string{"json", "msgpack"} {
		t.Run(codecName, func(t *testing.T) {
			reg := depositRegistry(t, types.Codec(codecName),
				types.UpcastValue("deposited", 1, v1ToV2),
				types.UpcastValue("deposited", 2, v2ToV3))
			marshal := json.Marshal
			if codecName == "msgpack" {
				marshal = msgpack.Marshal
			}
			for version, stored := range map[int]any{
				1: &depositV1{Amount: 7},
				2: &depositV2{Cents: 700},
				3: &deposit{Cents: 700, Currency: "EUR"},
			} {
				data, err := marshal(stored)
				if err != nil {
					t.Fatal(err)
				}
				name, out, err := reg.Upcast("deposited", version, "", data)
				if err != nil {
					t.Fatalf("version %d: %v", version, err)
				}
				v, err := reg.UnmarshalType(out, name)
				if err != nil {
					t.Fatalf("version %d: %v", version, err)
				}
				if want := (&deposit{Cents: 700, Currency: "EUR"}); name != "deposited" || !reflect.DeepEqual(v, want) {
					t.Fatalf("version %d: upcast to %s %+v, want deposited %+v", version, name, v, want)
				}
			}
		})
	}
}

func TestUpcastUsesStoredCodec(t *testing.T) {
	// The registry now encodes with msgpack, but the value was stored as
	// JSON: the upcaster gets "json", and its output is JSON too.
	var seen string
	reg := depositRegistry(t, types.Codec("msgpack"),
		types.Upcaster("deposited", 1, func(codec string, data []byte) (string, []byte, error) {
			seen = codec
			var old depositV1
			if err := json.Unmarshal(data, &old); err != nil {
				return "", nil, err
			}
			out, err := json.Marshal(depositV2{Cents: old.Amount * 100})
			return "", out, err
		}),
		types.UpcastValue("deposited", 2, v2ToV3))
	name, out, err := reg.Upcast("deposited", 1, "json", []byte(`{"amount":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if seen != "json" || name != "deposited" || string(out) != `{"cents":200,"currency":"EUR"}` {
		t.Fatalf("codec %q, upcast to %s %s", seen, name, out)
	}
}

type orderCreated struct {
	ID string `json:"id"`
}

func TestUpcastRename(t *testing.T) {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"order-created": {Init: func() any { return new(orderCreated) }, Version: 3},
	},
		// v1 was "order-placed", v2 "order-made", v3 "order-created".
		types.Rename("order-placed", 1, "order-made"),
		types.Rename("order-made", 2, "order-created"),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, stored := range []struct {
		name    string
		version int
	}{{"order-placed", 1}, {"order-made", 2}, {"order-created", 3}} {
		name, out, err := reg.Upcast(stored.name, stored.version, "json", []byte(`{"id":"o1"}`))
		if err != nil || name != "order-created" || string(out) != `{"id":"o1"}` {
			t.Fatalf("%s v%d: upcast to %q %s, %v", stored.name, stored.version, name, out, err)
		}
	}
	// The old names are not registered: they are only read.
	if _, err := reg.Init("order-placed"); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Fatalf("Init of an old name: %v", err)
	}
}

func TestUpcastFails(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		opts    []types.RegistryOption
		stored  string
		version int
		data    string
		want    error
		mention []string
	}{
		{"missing first step", []types.RegistryOption{types.UpcastValue("deposited", 2, v2ToV3)},
			"deposited", 1, `{}`, types.ErrUpcasterMissing, []string{`"deposited"`, "version 1"}},
		{"missing middle step", []types.RegistryOption{types.UpcastValue("deposited", 1, v1ToV2)},
			"deposited", 1, `{"amount":1}`, types.ErrUpcasterMissing, []string{`"deposited"`, "version 2"}},
		{"rename to a missing step", []types.RegistryOption{types.Rename("credited", 1, "deposited")},
			"credited", 1, `{}`, types.ErrUpcasterMissing, []string{`"deposited"`, "version 2"}},
		{"newer than registered", nil, "deposited", 4, `{}`, types.ErrVersionUnsupported, []string{`"deposited"`, "version 4"}},
		{"version 0", nil, "deposited", 0, `{}`, types.ErrVersionUnsupported, []string{`"deposited"`, "version 0"}},
		{"unknown name", nil, "refunded", 1, `{}`, types.ErrTypeNotRegistered, []string{`"refunded"`, "version 1"}},
		{"old name, missing step", []types.RegistryOption{types.Rename("credited", 2, "deposited")},
			"credited", 1, `{}`, types.ErrUpcasterMissing, []string{`"credited"`, "version 1"}},
		{"upcaster error", []types.RegistryOption{types.Upcaster("deposited", 2, func(string, []byte) (string, []byte, error) {
			return "", nil, boom
		})}, "deposited", 2, `{}`, boom, []string{`"deposited"`, "version 2", "boom"}},
		{"upcaster panics", []types.RegistryOption{types.Upcaster("deposited", 2, func(string, []byte) (string, []byte, error) {
			panic("bad data")
		})}, "deposited", 2, `{}`, types.ErrUpcastFailed, []string{"bad data"}},
		{"malformed new name", []types.RegistryOption{types.Upcaster("deposited", 2, func(_ string, d []byte) (string, []byte, error) {
			return "a b", d, nil
		})}, "deposited", 2, `{}`, types.ErrUpcastFailed, []string{`"a b"`}},
		{"payload does not decode", []types.RegistryOption{types.UpcastValue("deposited", 2, v2ToV3)},
			"deposited", 2, `not json`, types.ErrUpcastFailed, []string{"json"}},
		{"nil value", []types.RegistryOption{types.UpcastValue("deposited", 2, func(*depositV2) (*deposit, error) { return nil, nil })},
			"deposited", 2, `{}`, types.ErrUpcastFailed, []string{"nil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := depositRegistry(t, tt.opts...)
			_, _, err := reg.Upcast(tt.stored, tt.version, "json", []byte(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
		})
	}
	var nilReg *types.Registry
	if _, _, err := nilReg.Upcast("deposited", 1, "", nil); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Fatalf("nil registry: %v", err)
	}
}

func TestUpcasterRefused(t *testing.T) {
	ok := func(_ string, d []byte) (string, []byte, error) { return "", d, nil }
	tests := []struct {
		name string
		typ  *types.Type
		opts []types.RegistryOption
		want error
	}{
		{"malformed name", nil, []types.RegistryOption{types.Upcaster("a b", 1, ok)}, types.ErrOptionInvalid},
		{"version 0", nil, []types.RegistryOption{types.Upcaster("a", 0, ok)}, types.ErrOptionInvalid},
		{"nil function", nil, []types.RegistryOption{types.Upcaster("a", 1, nil)}, types.ErrOptionInvalid},
		{"nil value function", nil, []types.RegistryOption{types.UpcastValue[depositV1, depositV2]("a", 1, nil)}, types.ErrOptionInvalid},
		{"twice", nil, []types.RegistryOption{types.Upcaster("a", 1, ok), types.Rename("a", 1, "b")}, types.ErrOptionInvalid},
		{"malformed new name", nil, []types.RegistryOption{types.Rename("a", 1, "")}, types.ErrTypeNameInvalid},
		{"from the registered version", &types.Type{Init: func() any { return new(deposit) }, Version: 2},
			[]types.RegistryOption{types.Upcaster("deposited", 2, ok)}, types.ErrOptionInvalid},
		{"from version 1 of a version 1 type", &types.Type{Init: func() any { return new(deposit) }},
			[]types.RegistryOption{types.Upcaster("deposited", 1, ok)}, types.ErrOptionInvalid},
		{"negative type version", &types.Type{Init: func() any { return new(deposit) }, Version: -1}, nil, types.ErrTypeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]*types.Type{}
			if tt.typ != nil {
				m["deposited"] = tt.typ
			}
			reg, err := types.NewRegistry(m, tt.opts...)
			if !errors.Is(err, tt.want) || reg != nil {
				t.Fatalf("NewRegistry: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRegistryVersion(t *testing.T) {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"v0": {Init: func() any { return new(depositV1) }},
		"v1": {Init: func() any { return new(depositV2) }, Version: 1},
		"v3": {Init: func() any { return new(deposit) }, Version: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"v0": 1, "v1": 1, "v3": 3} {
		if got, err := reg.Version(name); got != want || err != nil {
			t.Errorf("Version(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := reg.Version("v9"); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("Version of an unknown name: %v", err)
	}
	var nilReg *types.Registry
	if _, err := nilReg.Version("v1"); !errors.Is(err, types.ErrTypeNotRegistered) {
		t.Errorf("Version on a nil registry: %v", err)
	}
}
