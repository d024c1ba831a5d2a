package bench

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/synadia-labs/rita/types"
)

// The workload: orders. Every event encodes to exactly payloadSize bytes of
// JSON (the Note field pads it), the size the figures are about.
const payloadSize = 123

// The event types of an order. Each entity "order.<n>" gets eventsPerEntity
// events: one order-placed, then item-added and item-removed in turn, and
// order-shipped last.
type (
	OrderPlaced struct {
		Customer string `json:"customer"`
		Currency string `json:"currency"`
		Note     string `json:"note"`
	}
	ItemAdded struct {
		SKU   string `json:"sku"`
		Qty   int    `json:"qty"`
		Price int    `json:"price"`
		Note  string `json:"note"`
	}
	ItemRemoved struct {
		SKU  string `json:"sku"`
		Qty  int    `json:"qty"`
		Note string `json:"note"`
	}
	OrderShipped struct {
		Carrier  string `json:"carrier"`
		Tracking string `json:"tracking"`
		Note     string `json:"note"`
	}
)

const (
	typePlaced  = "order-placed"
	typeAdded   = "item-added"
	typeRemoved = "item-removed"
	typeShipped = "order-shipped"
)

var eventTypes = []string{typePlaced, typeAdded, typeRemoved, typeShipped}

func newRegistry() (*types.Registry, error) {
	return types.NewRegistry(map[string]*types.Type{
		typePlaced:  {Init: func() any { return &OrderPlaced{} }},
		typeAdded:   {Init: func() any { return &ItemAdded{} }},
		typeRemoved: {Init: func() any { return &ItemRemoved{} }},
		typeShipped: {Init: func() any { return &OrderShipped{} }},
	})
}

// newRawValue returns a new zero value of the Go type of an event type, for
// the raw decoders: what a hand-written application would keep in a map.
var rawInit = map[string]func() any{
	typePlaced:  func() any { return &OrderPlaced{} },
	typeAdded:   func() any { return &ItemAdded{} },
	typeRemoved: func() any { return &ItemRemoved{} },
	typeShipped: func() any { return &OrderShipped{} },
}

const eventsPerEntity = 100

// orderEvent returns the k-th event (0-based) of order n, its type name and
// its Go value, padded to payloadSize bytes of JSON.
func orderEvent(n, k int) (string, any) {
	id := strconv.Itoa(n)
	switch {
	case k == 0:
		return typePlaced, pad(&OrderPlaced{Customer: "customer-" + id, Currency: "EUR"})
	case k == eventsPerEntity-1:
		return typeShipped, pad(&OrderShipped{Carrier: "acme", Tracking: "TRK" + id})
	case k%2 == 1:
		return typeAdded, pad(&ItemAdded{SKU: "sku-" + strconv.Itoa(k), Qty: 1 + k%5, Price: 100 * k})
	default:
		return typeRemoved, pad(&ItemRemoved{SKU: "sku-" + strconv.Itoa(k-1), Qty: 1})
	}
}

// pad fills the Note field of v so that v encodes to payloadSize bytes.
func pad(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	n := payloadSize - len(b)
	if n < 0 {
		panic(fmt.Sprintf("bench: %T encodes to %d bytes, more than %d", v, len(b), payloadSize))
	}
	note := strings.Repeat("x", n)
	switch e := v.(type) {
	case *OrderPlaced:
		e.Note = note
	case *ItemAdded:
		e.Note = note
	case *ItemRemoved:
		e.Note = note
	case *OrderShipped:
		e.Note = note
	}
	return v
}

// Order is the model the benchmarks evolve: it applies every event type, so
// that each event costs what a real model costs, and counts them.
type Order struct {
	Customer string
	Items    map[string]int
	Shipped  bool
	Events   int
	Last     uint64
}

func (o *Order) apply(data any) error {
	switch d := data.(type) {
	case *OrderPlaced:
		o.Customer = d.Customer
	case *ItemAdded:
		if o.Items == nil {
			o.Items = make(map[string]int)
		}
		o.Items[d.SKU] += d.Qty
	case *ItemRemoved:
		if o.Items != nil {
			o.Items[d.SKU] -= d.Qty
		}
	case *OrderShipped:
		o.Shipped = true
	default:
		return fmt.Errorf("unexpected event data %T", data)
	}
	o.Events++
	return nil
}
