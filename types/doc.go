// Package types maps names to Go types so that values can be encoded with a
// type name alongside and decoded later into a value of the right type.
//
// A Registry is built once with NewRegistry from a map of names to *Type and
// is immutable and safe for concurrent use afterwards. Each Type's Init
// returns a new pointer to a zero value of a struct type. The registry
// encodes with one codec, JSON unless the Codec option picks "msgpack",
// "protobuf" or "binary", and checks at construction that every type's zero
// value survives a round trip through it.
//
//	reg, err := types.NewRegistry(map[string]*types.Type{
//		"order-placed":  {Init: func() any { return new(OrderPlaced) }},
//		"order-shipped": {Init: func() any { return new(OrderShipped) }},
//	})
//	if err != nil {
//		return err
//	}
//	name, _ := reg.Lookup(&OrderPlaced{ID: "o1"}) // "order-placed"
//	data, err := reg.Marshal(&OrderPlaced{ID: "o1"})
//	// ... store name and data, later:
//	v, err := reg.UnmarshalType(data, name) // v is an *OrderPlaced
//
// Names may be dot-separated ("billing.invoice-sent"), but rita uses an event
// type as one subject token, so names of event types must not contain dots:
// rita's Append refuses them.
//
// Types change over the years. A Type carries a Version, and values stored
// under an older version (or an older name) are brought up to date when they
// are read by upcasters registered with the Upcaster, UpcastValue and Rename
// options, one version at a time; see Registry.Upcast.
//
//	reg, err := types.NewRegistry(map[string]*types.Type{
//		"order-placed": {Init: func() any { return new(OrderPlaced) }, Version: 2},
//	}, types.UpcastValue("order-placed", 1, func(old *OrderPlacedV1) (*OrderPlaced, error) {
//		return &OrderPlaced{ID: old.ID, Amount: old.Cents / 100}, nil
//	}))
//
// Errors wrap the sentinels in errors.go; match them with errors.Is.
package types
