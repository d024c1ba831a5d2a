package types

import (
	"fmt"

	"github.com/synadia-labs/rita/internal/codec"
)

// Versions and upcasting.
//
// A registered type has a version, Type.Version (0 and 1 both mean 1). A
// value stored under version v of name can be read after the type has moved
// on: the registry's upcasters take it one version at a time, each from
// (name, v) to (name', v+1), until it reaches a registered name at its
// registered version. A rename is a step like any other: the upcaster
// returns the new name, and the payload (possibly unchanged) becomes version
// v+1 of it. So a type's version counts every change of its lineage, its
// renames included: "order-placed" v1 renamed to "order-created" makes
// "order-created" v2.
//
// Invariants, checked by NewRegistry: at most one upcaster per (name,
// version); an upcaster of a registered name starts below that name's
// version. Since every step raises the version, a chain visits each
// upcaster at most once, and always ends.

// UpcastFunc turns the payload of one version of a type into the payload of
// the next version. codec names the codec data is encoded with ("json",
// "msgpack", "protobuf" or "binary"): the one it was stored with, which the
// result must be encoded with too. It returns the type's name at the next
// version: "" (or the same name) when the type keeps its name, another name
// when it was renamed. An error makes the value unreadable; it is returned
// wrapping ErrUpcastFailed. The function must be safe for concurrent use.
type UpcastFunc func(codec string, data []byte) (name string, out []byte, err error)

// upcastKey names what an upcaster starts from.
type upcastKey struct {
	name    string
	version int
}

// Upcaster registers fn to turn values stored as version from of the type
// name into version from+1 (of the name fn returns, for a rename). name need
// not be registered any more: the type may have been renamed since.
//
// NewRegistry refuses, with ErrOptionInvalid, a malformed name, a version
// below 1, a nil fn, a second upcaster for the same name and version, and an
// upcaster of a registered name from its registered version or later.
func Upcaster(name string, from int, fn UpcastFunc) RegistryOption {
	return func(cfg *registryConfig) error {
		switch {
		case !validName(name):
			return fmt.Errorf("%w: upcaster of %q: %w", ErrOptionInvalid, name, ErrTypeNameInvalid)
		case from < 1:
			return fmt.Errorf("%w: upcaster of %q from version %d: versions start at 1", ErrOptionInvalid, name, from)
		case fn == nil:
			return fmt.Errorf("%w: upcaster of %q from version %d: nil function", ErrOptionInvalid, name, from)
		}
		key := upcastKey{name, from}
		if _, dup := cfg.upcasters[key]; dup {
			return fmt.Errorf("%w: two upcasters of %q from version %d", ErrOptionInvalid, name, from)
		}
		if cfg.upcasters == nil {
			cfg.upcasters = make(map[upcastKey]UpcastFunc)
		}
		cfg.upcasters[key] = fn
		return nil
	}
}

// Rename registers that the type stored as version from of name is, from
// version from+1 on, called newName, with the same payload. It is an
// Upcaster that changes only the name, and is refused as Upcaster is, or
// for a malformed newName.
func Rename(name string, from int, newName string) RegistryOption {
	if !validName(newName) {
		return func(*registryConfig) error {
			return fmt.Errorf("%w: rename of %q to %q: %w", ErrOptionInvalid, name, newName, ErrTypeNameInvalid)
		}
	}
	return Upcaster(name, from, func(_ string, data []byte) (string, []byte, error) {
		return newName, data, nil
	})
}

// UpcastValue registers an upcaster of name from version from that works on
// values rather than bytes: the stored payload is decoded into a new From,
// fn turns it into a To, and that is encoded, with the codec the value was
// stored with, as version from+1 of name. From and To are usually the old
// and the new Go struct (the old one kept under another Go name, not
// registered). A payload that does not decode, an error of fn, or a nil
// result fails the upcast (ErrUpcastFailed). It is refused as Upcaster is.
func UpcastValue[From, To any](name string, from int, fn func(*From) (*To, error)) RegistryOption {
	if fn == nil {
		return Upcaster(name, from, nil)
	}
	return Upcaster(name, from, func(codecName string, data []byte) (string, []byte, error) {
		c, err := codec.Lookup(codecName)
		if err != nil {
			return "", nil, err
		}
		old := new(From)
		if err := c.Unmarshal(data, old); err != nil {
			return "", nil, fmt.Errorf("decode %T with the %s codec: %w", old, codecName, err)
		}
		next, err := fn(old)
		if err != nil {
			return "", nil, err
		}
		if next == nil {
			return "", nil, fmt.Errorf("upcast of %T returned nil", old)
		}
		out, err := c.Marshal(next)
		if err != nil {
			return "", nil, fmt.Errorf("encode %T with the %s codec: %w", next, codecName, err)
		}
		return name, out, nil
	})
}

// checkUpcasters refuses upcasters that could never run: those of a
// registered name from its registered version or later.
func (r *Registry) checkUpcasters() error {
	for key := range r.upcasters {
		if e, ok := r.byName[key.name]; ok && key.version >= e.version {
			return fmt.Errorf("%w: upcaster of %q from version %d: the type is registered at version %d",
				ErrOptionInvalid, key.name, key.version, e.version)
		}
	}
	return nil
}

// Version returns the version of the type registered as name: its
// Type.Version, or 1 when that is 0. An unknown name returns an error
// wrapping ErrTypeNotRegistered.
func (r *Registry) Version(name string) (int, error) {
	if r == nil {
		return 0, fmt.Errorf("%w: %q (nil registry)", ErrTypeNotRegistered, name)
	}
	e, ok := r.byName[name]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrTypeNotRegistered, name)
	}
	return e.version, nil
}

// Upcast brings a payload stored as version of the type name, encoded with
// codecName ("" means the registry's codec), to the registered version of
// its type, through the upcasters, and returns the type's current name and
// payload. A value already at its registered version is returned as is.
//
// It fails, naming the type and version it got stuck at, with an error
// wrapping ErrUpcasterMissing when no upcaster continues from there and the
// name is either registered at a later version or upcast from at other
// versions (an old name); ErrVersionUnsupported for a version
// below 1 or later than the registered one (a value written by a newer
// program); ErrTypeNotRegistered for a name that is neither registered nor
// upcast from; and ErrUpcastFailed when an upcaster fails, panics or returns
// a malformed name.
func (r *Registry) Upcast(name string, version int, codecName string, data []byte) (string, []byte, error) {
	if r == nil {
		return "", nil, fmt.Errorf("%w: %q (nil registry)", ErrTypeNotRegistered, name)
	}
	if version < 1 {
		return "", nil, fmt.Errorf("%w: %q version %d: versions start at 1", ErrVersionUnsupported, name, version)
	}
	if codecName == "" {
		codecName = r.codec.Name()
	}
	for {
		e, registered := r.byName[name]
		if registered && version == e.version {
			return name, data, nil
		}
		if registered && version > e.version {
			return "", nil, fmt.Errorf("%w: %q version %d is newer than the registered version %d",
				ErrVersionUnsupported, name, version, e.version)
		}
		fn, ok := r.upcasters[upcastKey{name, version}]
		if !ok {
			if registered {
				return "", nil, fmt.Errorf("%w: %q version %d: no upcaster to version %d (registered at version %d)",
					ErrUpcasterMissing, name, version, version+1, e.version)
			}
			if r.upcastsFrom(name) {
				return "", nil, fmt.Errorf("%w: %q version %d: no upcaster from it, and %q is not registered",
					ErrUpcasterMissing, name, version, name)
			}
			return "", nil, fmt.Errorf("%w: %q version %d, and no upcaster from it", ErrTypeNotRegistered, name, version)
		}
		next, out, err := callUpcast(fn, codecName, data)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %q from version %d: %w", ErrUpcastFailed, name, version, err)
		}
		if next == "" {
			next = name
		} else if !validName(next) {
			return "", nil, fmt.Errorf("%w: %q from version %d: upcaster returned the malformed name %q",
				ErrUpcastFailed, name, version, next)
		}
		name, data, version = next, out, version+1
	}
}

// upcastsFrom reports whether some upcaster starts from a version of name.
func (r *Registry) upcastsFrom(name string) bool {
	for key := range r.upcasters {
		if key.name == name {
			return true
		}
	}
	return false
}

// callUpcast calls fn, turning a panic into an error: an upcaster meets
// stored data, which may be anything.
func callUpcast(fn UpcastFunc, codecName string, data []byte) (name string, out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("upcaster panicked: %v", p)
		}
	}()
	return fn(codecName, data)
}
