package rita

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/types"
)

// The client-side cost of one event, without a server: what Append does
// before it publishes (validate, encode, build headers and subject) and what
// Evolve and Watch do with each message (decode), each beside what a
// hand-written program does for the same event on raw JetStream.

// benchItem encodes to 123 bytes of JSON, the size of the bench package's
// events.
type benchItem struct {
	SKU   string `json:"sku"`
	Qty   int    `json:"qty"`
	Price int    `json:"price"`
	Note  string `json:"note"`
}

func newBenchItem() *benchItem {
	return &benchItem{SKU: "sku-41", Qty: 2, Price: 4100, Note: benchNote}
}

// benchNote pads a benchItem to 123 bytes of JSON.
const benchNote = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

func benchManager(b *testing.B) *Manager {
	b.Helper()
	reg, err := types.NewRegistry(map[string]*types.Type{
		"item-added": {Init: func() any { return &benchItem{} }},
	})
	if err != nil {
		b.Fatal(err)
	}
	// A connection that never connected: prepare asks it only for the
	// server's maximum payload (0, none known, on this one).
	return &Manager{nc: &nats.Conn{}, types: reg, id: id.NUID, clock: clock.Time}
}

func BenchmarkEncodeEvent(b *testing.B) {
	if n, _ := json.Marshal(newBenchItem()); len(n) != 123 {
		b.Fatalf("payload is %d bytes, want 123", len(n))
	}
	b.Run("impl=lib", func(b *testing.B) {
		s := &EventStore{m: benchManager(b), name: "orders"}
		b.ReportAllocs()
		for b.Loop() {
			ev := []*Event{{Entity: "order.42", Data: newBenchItem(), Expect: ExpectSequence(4100)}}
			if _, _, err := s.prepare(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=raw", func(b *testing.B) {
		var sink atomic.Pointer[nats.Msg] // the message must escape, as a published one does
		b.ReportAllocs()
		for b.Loop() {
			data, err := json.Marshal(newBenchItem())
			if err != nil {
				b.Fatal(err)
			}
			sink.Store(&nats.Msg{
				Subject: "$ES.orders.order.42.item-added",
				Header: nats.Header{
					"Nats-Msg-Id":                         {nuid.Next()},
					"Rita-Type":                           {"item-added"},
					"Rita-Entity":                         {"order.42"},
					"Rita-Time":                           {time.Now().Format(time.RFC3339Nano)},
					"Rita-Codec":                          {"json"},
					"Nats-Expected-Last-Subject-Sequence": {strconv.FormatUint(4100, 10)},
					"Nats-Expected-Last-Subject-Sequence-Subject": {"$ES.orders.order.42.*"},
				},
				Data: data,
			})
		}
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	m := benchManager(b)
	s := &EventStore{m: m, name: "orders"}
	encoded, _, err := s.prepare([]*Event{{Entity: "order.42", Data: newBenchItem()}})
	if err != nil {
		b.Fatal(err)
	}
	msg := encoded[0]
	stored := &jsapi.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data, Seq: 4242, Time: time.Now()}
	b.Run("impl=lib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := decodeEvent(context.Background(), m.types, nil, stored)
			if err != nil || e.Data.(*benchItem).Qty != 2 {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if msg.Header.Get("Rita-Type") != "item-added" {
				b.Fatal("type")
			}
			v := &benchItem{}
			if err := json.Unmarshal(msg.Data, v); err != nil || v.Qty != 2 {
				b.Fatal(err)
			}
		}
	})
}
