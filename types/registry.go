package types

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/synadia-labs/rita/internal/codec"
)

// Invariants of a Registry, established by NewRegistry and never changed
// afterwards:
//
//   - every key of byName is a valid type name and its entry's init, when
//     probed, returned a new non-nil pointer to the struct type entry.typ;
//   - byType is the inverse of byName: each registered struct type maps to
//     its one name, so a Go type never has two names;
//   - the zero value of every registered type round-trips through codec;
//   - names holds the keys of byName, sorted.
//
// Nothing is written after NewRegistry returns, which is what makes a
// Registry safe for concurrent use without locks.

// Type describes a type that can be registered in a Registry.
type Type struct {
	// Init returns a new pointer to a zero value of the type, for example
	// func() any { return new(OrderPlaced) }. It must return a pointer to
	// a struct, a different one on each call, and be safe for concurrent
	// use.
	Init func() any

	// Version is the version of the type, for reading values stored by
	// earlier versions of a program: 0 and 1 both mean 1. Raise it when the
	// encoded form of the type changes, or when it is renamed, and register
	// an Upcaster (or UpcastValue, Rename) from the version before; see
	// Registry.Upcast. A negative version is refused with ErrTypeInvalid.
	Version int
}

// Registry maps type names to Go types and encodes and decodes values of
// those types with one codec.
//
// A Registry is immutable once NewRegistry returns it and is safe for
// concurrent use by multiple goroutines. Methods on a nil *Registry do not
// panic: they behave as for a registry with no types and no codec,
// returning errors wrapping ErrTypeNotRegistered.
type Registry struct {
	codec     codec.Codec
	byName    map[string]entry
	byType    map[reflect.Type]string
	names     []string
	upcasters map[upcastKey]UpcastFunc
}

// entry is one registered type.
type entry struct {
	init    func() any
	typ     reflect.Type // the struct type; init returns *typ
	ptr     reflect.Type // *typ
	version int          // at least 1
}

// validator is implemented by values that can check themselves before they
// are encoded.
type validator interface {
	Validate() error
}

// NewRegistry returns a registry of the given types, keyed by name, that
// encodes with the codec chosen by the options (JSON by default). The map is
// not retained: later changes to it or to its *Type values do not affect the
// registry. A nil or empty map gives an empty registry.
//
// A name is one or more tokens separated by dots, each token made of ASCII
// letters, digits, '_' and '-', for example "orders.placed-v2".
//
// NewRegistry refuses, returning every problem found joined into one error:
// a malformed name (ErrTypeNameInvalid); a nil *Type, a nil Init, or an Init
// that panics, returns nil or returns anything but a new pointer to a struct
// (ErrTypeInvalid); a type whose zero value does not round-trip through the
// codec (ErrTypeInvalid, also wrapping the codec's error); one Go type under
// two names (ErrTypeDuplicate). The zero-value round trip does not call
// Validate. Option errors (ErrCodecUnknown, ErrOptionInvalid) are returned
// on their own, before any type is checked.
func NewRegistry(types map[string]*Type, opts ...RegistryOption) (*Registry, error) {
	var cfg registryConfig
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: option %d is nil", ErrOptionInvalid, i)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.codec == nil {
		c, err := codec.Lookup(codec.JSON)
		if err != nil {
			return nil, fmt.Errorf("%w: default %q: %w", ErrCodecUnknown, codec.JSON, err)
		}
		cfg.codec = c
	}

	r := &Registry{
		codec:     cfg.codec,
		byName:    make(map[string]entry, len(types)),
		byType:    make(map[reflect.Type]string, len(types)),
		upcasters: cfg.upcasters,
	}
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	slices.Sort(names) // report problems, and pick duplicates, in a stable order

	var errs []error
	for _, name := range names {
		e, err := checkType(name, types[name], r.codec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, ok := r.byType[e.typ]; ok {
			errs = append(errs, fmt.Errorf("%w: Go type %s is registered as both %q and %q",
				ErrTypeDuplicate, reflect.PointerTo(e.typ), other, name))
			continue
		}
		r.byName[name] = e
		r.byType[e.typ] = name
		r.names = append(r.names, name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := r.checkUpcasters(); err != nil {
		return nil, err
	}
	return r, nil
}

// checkType validates one registration and returns its entry.
func checkType(name string, t *Type, c codec.Codec) (entry, error) {
	if !validName(name) {
		return entry{}, fmt.Errorf("%w %q: want dot-separated tokens of ASCII letters, digits, '_' or '-'",
			ErrTypeNameInvalid, name)
	}
	if t == nil {
		return entry{}, fmt.Errorf("%w %q: nil *Type", ErrTypeInvalid, name)
	}
	if t.Init == nil {
		return entry{}, fmt.Errorf("%w %q: nil Init", ErrTypeInvalid, name)
	}
	if t.Version < 0 {
		return entry{}, fmt.Errorf("%w %q: version %d, want 0 or more", ErrTypeInvalid, name, t.Version)
	}
	v, err := callInit(t.Init)
	if err != nil {
		return entry{}, fmt.Errorf("%w %q: %w", ErrTypeInvalid, name, err)
	}
	if v == nil {
		return entry{}, fmt.Errorf("%w %q: Init returned nil", ErrTypeInvalid, name)
	}
	rt := reflect.TypeOf(v)
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return entry{}, fmt.Errorf("%w %q: Init returned %s, want a pointer to a struct", ErrTypeInvalid, name, rt)
	}
	if reflect.ValueOf(v).IsNil() {
		return entry{}, fmt.Errorf("%w %q: Init returned a nil %s", ErrTypeInvalid, name, rt)
	}

	// Round-trip the zero value through the codec, without Validate: a zero
	// value may legitimately be invalid, but it must be representable.
	fresh, err := callInit(t.Init)
	if err != nil {
		return entry{}, fmt.Errorf("%w %q: %w", ErrTypeInvalid, name, err)
	}
	if reflect.TypeOf(fresh) != rt || reflect.ValueOf(fresh).IsNil() {
		return entry{}, fmt.Errorf("%w %q: Init returned %s, then %T", ErrTypeInvalid, name, rt, fresh)
	}
	// Zero-sized values may share one address, so only larger ones can be
	// told apart from a reused pointer.
	if rt.Elem().Size() > 0 && reflect.ValueOf(fresh).Pointer() == reflect.ValueOf(v).Pointer() {
		return entry{}, fmt.Errorf("%w %q: Init returned the same %s twice, want a new pointer on each call",
			ErrTypeInvalid, name, rt)
	}
	if err := roundTrip(c, v, fresh); err != nil {
		return entry{}, fmt.Errorf("%w %q: zero %s does not round-trip through the %s codec: %w",
			ErrTypeInvalid, name, rt, c.Name(), err)
	}
	return entry{init: t.Init, typ: rt.Elem(), ptr: rt, version: max(t.Version, 1)}, nil
}

// callInit calls init, turning a panic into an error.
func callInit(init func() any) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("calling Init: panic: %v", p)
		}
	}()
	return init(), nil
}

// roundTrip encodes v and decodes the result into into, turning a panic in
// the codec or in the type's own marshaling methods into an error.
func roundTrip(c codec.Codec, v, into any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("codec panicked: %v", p)
		}
	}()
	data, err := c.Marshal(v)
	if err != nil {
		return err
	}
	return c.Unmarshal(data, into)
}

// validName reports whether name is one or more dot-separated, non-empty
// tokens of ASCII letters, digits, '_' and '-'.
func validName(name string) bool {
	if name == "" {
		return false
	}
	tokenLen := 0
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b == '.':
			if tokenLen == 0 {
				return false
			}
			tokenLen = 0
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '_', b == '-':
			tokenLen++
		default:
			return false
		}
	}
	return tokenLen > 0
}

// Init returns a new pointer to a zero value of the type registered as name.
// An unknown name returns an error wrapping ErrTypeNotRegistered that names
// it; an Init that no longer returns the registered type returns one
// wrapping ErrTypeInvalid.
func (r *Registry) Init(name string) (any, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: %q (nil registry)", ErrTypeNotRegistered, name)
	}
	e, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTypeNotRegistered, name)
	}
	v := e.init()
	if reflect.TypeOf(v) != e.ptr || reflect.ValueOf(v).IsNil() {
		return nil, fmt.Errorf("%w %q: Init returned %T, registered as %s",
			ErrTypeInvalid, name, v, e.ptr)
	}
	return v, nil
}

// Lookup returns the name under which the type of v is registered. v may be
// a pointer to a registered struct type (even a nil one) or a value of it. A
// nil v or an unregistered type returns an error wrapping
// ErrTypeNotRegistered that names the Go type.
func (r *Registry) Lookup(v any) (string, error) {
	if r == nil {
		return "", fmt.Errorf("%w: Go type %T (nil registry)", ErrTypeNotRegistered, v)
	}
	t := reflect.TypeOf(v)
	if t == nil {
		return "", fmt.Errorf("%w: nil has no Go type", ErrTypeNotRegistered)
	}
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	name, ok := r.byType[st]
	if !ok {
		return "", fmt.Errorf("%w: Go type %s", ErrTypeNotRegistered, t)
	}
	return name, nil
}

// Marshal encodes v, a pointer to or a value of a registered type, with the
// registry's codec.
//
// If v (or a pointer to it) has a method Validate() error, Marshal calls it
// first; a failure returns an error wrapping both ErrValueInvalid and the
// validation error. A nil pointer also returns an error wrapping
// ErrValueInvalid, and an unregistered type one wrapping
// ErrTypeNotRegistered.
func (r *Registry) Marshal(v any) ([]byte, error) {
	name, err := r.Lookup(v)
	if err != nil {
		return nil, err
	}
	p := reflect.ValueOf(v)
	if p.Kind() != reflect.Pointer {
		// Work on a pointer to a copy, so that methods with pointer
		// receivers (Validate, MarshalBinary, proto.Message) are found.
		cp := reflect.New(p.Type())
		cp.Elem().Set(p)
		p = cp
	} else if p.IsNil() {
		return nil, fmt.Errorf("%w: %q: nil %T", ErrValueInvalid, name, v)
	}
	ptr := p.Interface()
	if val, ok := ptr.(validator); ok {
		if err := val.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %q (%T): %w", ErrValueInvalid, name, v, err)
		}
	}
	data, err := r.codec.Marshal(ptr)
	if err != nil {
		return nil, fmt.Errorf("types: marshal %q (%T) with the %s codec: %w", name, v, r.codec.Name(), err)
	}
	return data, nil
}

// Unmarshal decodes data into v, which must be a non-nil pointer, with the
// registry's codec. It does not require v's type to be registered and does
// not call Validate.
func (r *Registry) Unmarshal(data []byte, v any) error {
	if r == nil {
		return fmt.Errorf("%w: cannot unmarshal into %T (nil registry)", ErrTypeNotRegistered, v)
	}
	if err := r.codec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("types: unmarshal into %T with the %s codec: %w", v, r.codec.Name(), err)
	}
	return nil
}

// UnmarshalType decodes data into a new value of the type registered as
// name and returns the pointer to it. An unknown name returns an error
// wrapping ErrTypeNotRegistered.
func (r *Registry) UnmarshalType(data []byte, name string) (any, error) {
	v, err := r.Init(name)
	if err != nil {
		return nil, err
	}
	if err := r.codec.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("types: unmarshal %q (%T) with the %s codec: %w", name, v, r.codec.Name(), err)
	}
	return v, nil
}

// Codec returns the name of the registry's codec, such as "json". It returns
// "" for a nil registry.
func (r *Registry) Codec() string {
	if r == nil {
		return ""
	}
	return r.codec.Name()
}

// Names returns the registered type names in sorted order. The slice is a
// new copy that the caller owns; it is nil for a nil or empty registry.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	return slices.Clone(r.names)
}
