package types_test

import (
	"errors"
	"fmt"

	"github.com/synadia-labs/rita/internal/pb"
	"github.com/synadia-labs/rita/types"
)

// OrderPlaced is an example event that validates itself.
type OrderPlaced struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// Validate refuses an order without a positive amount.
func (o *OrderPlaced) Validate() error {
	if o.Amount <= 0 {
		return fmt.Errorf("order %s: amount must be positive", o.ID)
	}
	return nil
}

// OrderShipped is an example event.
type OrderShipped struct {
	ID      string `json:"id"`
	Carrier string `json:"carrier"`
}

func ExampleNewRegistry() {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"order-placed":  {Init: func() any { return new(OrderPlaced) }},
		"order-shipped": {Init: func() any { return new(OrderShipped) }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reg.Codec(), reg.Names())

	name, err := reg.Lookup(OrderShipped{ID: "o1"})
	fmt.Println(name, err)
	// Output:
	// json [order-placed order-shipped]
	// order-shipped <nil>
}

func ExampleRegistry_Marshal() {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"order-placed": {Init: func() any { return new(OrderPlaced) }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	data, err := reg.Marshal(&OrderPlaced{ID: "o1", Amount: 42})
	fmt.Println(string(data), err)

	// Validate is called before encoding.
	_, err = reg.Marshal(&OrderPlaced{ID: "o2"})
	fmt.Println(errors.Is(err, types.ErrValueInvalid))
	fmt.Println(err)
	// Output:
	// {"id":"o1","amount":42} <nil>
	// true
	// types: invalid value: "order-placed" (*types_test.OrderPlaced): order o2: amount must be positive
}

func ExampleRegistry_UnmarshalType() {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"order-placed": {Init: func() any { return new(OrderPlaced) }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	v, err := reg.UnmarshalType([]byte(`{"id":"o1","amount":42}`), "order-placed")
	if err != nil {
		fmt.Println(err)
		return
	}
	order := v.(*OrderPlaced)
	fmt.Printf("%T %s %d\n", v, order.ID, order.Amount)

	_, err = reg.UnmarshalType([]byte(`{}`), "order.lost")
	fmt.Println(err)
	// Output:
	// *types_test.OrderPlaced o1 42
	// types: type not registered: "order.lost"
}

func ExampleCodec() {
	reg, err := types.NewRegistry(map[string]*types.Type{
		"order-placed": {Init: func() any { return new(pb.OrderPlaced) }},
	}, types.Codec("protobuf"))
	if err != nil {
		fmt.Println(err)
		return
	}

	data, err := reg.Marshal(&pb.OrderPlaced{OrderId: "o1", Amount: 42, Items: []string{"book"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := reg.UnmarshalType(data, "order-placed")
	if err != nil {
		fmt.Println(err)
		return
	}
	order := v.(*pb.OrderPlaced)
	fmt.Println(reg.Codec(), order.GetOrderId(), order.GetAmount(), order.GetItems())

	// A type that is not a proto.Message is refused up front.
	_, err = types.NewRegistry(map[string]*types.Type{
		"order-shipped": {Init: func() any { return new(OrderShipped) }},
	}, types.Codec("protobuf"))
	fmt.Println(errors.Is(err, types.ErrTypeInvalid))
	// Output:
	// protobuf o1 42 [book]
	// true
}
