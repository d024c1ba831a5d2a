package types_test

import (
	"errors"
	"fmt"

	"github.com/synadia-labs/rita/types"
)

// PaymentV1 is how a payment was stored at version 1: whole euros, and under
// the name "paid".
type PaymentV1 struct {
	Euros int `json:"euros"`
}

// PaymentV2 is version 2, still called "paid": amounts in cents.
type PaymentV2 struct {
	Cents int `json:"cents"`
}

// Payment is the current version, 3, renamed "payment-received".
type Payment struct {
	Cents int `json:"cents"`
}

// Values stored years ago are read as the current version: each upcaster
// takes them one version further, and a rename is a step like any other.
func ExampleRegistry_Upcast() {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"payment-received": {Init: func() any { return new(Payment) }, Version: 3},
	},
		types.UpcastValue("paid", 1, func(old *PaymentV1) (*PaymentV2, error) {
			return &PaymentV2{Cents: old.Euros * 100}, nil
		}),
		types.Rename("paid", 2, "payment-received"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	name, data, err := reg.Upcast("paid", 1, "json", []byte(`{"euros":12}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := reg.UnmarshalType(data, name)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %+v\n", name, v)

	// Without the first step, version 1 cannot be read.
	reg, err = types.NewRegistry(map[string]*types.Type{
		"payment-received": {Init: func() any { return new(Payment) }, Version: 3},
	}, types.Rename("paid", 2, "payment-received"))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _, err = reg.Upcast("paid", 1, "json", []byte(`{"euros":12}`))
	fmt.Println(errors.Is(err, types.ErrUpcasterMissing))
	fmt.Println(err)
	// Output:
	// payment-received &{Cents:1200}
	// true
	// types: no upcaster for stored version: "paid" version 1: no upcaster from it, and "paid" is not registered
}
