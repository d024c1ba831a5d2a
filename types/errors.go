package types

import "errors"

// Sentinel errors returned, wrapped, by this package. Match them with
// errors.Is; the wrapping error says which name, Go type or codec was at fault.
var (
	// ErrTypeNameInvalid is returned by NewRegistry for an empty or malformed
	// type name.
	ErrTypeNameInvalid = errors.New("types: invalid type name")

	// ErrTypeInvalid is returned by NewRegistry for a *Type that cannot be
	// used: nil, a nil or panicking Init, an Init that does not return a
	// non-nil pointer to a struct, or a type whose zero value does not
	// round-trip through the registry's codec.
	ErrTypeInvalid = errors.New("types: invalid type")

	// ErrTypeNotRegistered is returned for a type name or Go type that is
	// not in the registry.
	ErrTypeNotRegistered = errors.New("types: type not registered")

	// ErrTypeDuplicate is returned by NewRegistry when one Go type is
	// registered under more than one name.
	ErrTypeDuplicate = errors.New("types: type registered twice")

	// ErrCodecUnknown is returned by NewRegistry for a codec name it does
	// not know.
	ErrCodecUnknown = errors.New("types: unknown codec")

	// ErrValueInvalid is returned by Registry.Marshal for a nil value or
	// a value whose Validate method fails; the validation error is wrapped
	// too.
	ErrValueInvalid = errors.New("types: invalid value")

	// ErrOptionInvalid is returned by NewRegistry for a nil option or for
	// options that conflict, such as two different codecs.
	ErrOptionInvalid = errors.New("types: invalid registry option")

	// ErrUpcasterMissing is returned by Registry.Upcast for a value stored
	// at a version older than its type's registered version when no
	// upcaster continues from that version. The error names the type and
	// the version.
	ErrUpcasterMissing = errors.New("types: no upcaster for stored version")

	// ErrVersionUnsupported is returned by Registry.Upcast for a value
	// stored at a version below 1 or newer than its type's registered
	// version (written by a newer program).
	ErrVersionUnsupported = errors.New("types: stored version not supported")

	// ErrUpcastFailed is returned by Registry.Upcast when an upcaster
	// returns an error (which is wrapped too), panics or returns a
	// malformed type name.
	ErrUpcastFailed = errors.New("types: upcast failed")
)
