package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// libOrder is the Order model as rita evolves it.
type libOrder struct{ Order }

func (o *libOrder) Evolve(e *rita.Event) error {
	o.Last = e.Sequence()
	return o.apply(e.Data)
}

// MarshalBinary and UnmarshalBinary let rita snapshot the model.
func (o *libOrder) MarshalBinary() ([]byte, error) { return json.Marshal(&o.Order) }

func (o *libOrder) UnmarshalBinary(data []byte) error {
	o.Order = Order{}
	return json.Unmarshal(data, &o.Order)
}

// rawDecode is what a hand-written program does with a stored event: pick
// the Go type by the Rita-Type header and unmarshal the payload into it.
func rawDecode(h nats.Header, data []byte) (any, error) {
	typ := h.Get("Rita-Type")
	init, ok := rawInit[typ]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", typ)
	}
	v := init()
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// rawApply decodes a consumer's message and applies it to o.
func rawApply(o *Order, msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return err
	}
	v, err := rawDecode(msg.Headers(), msg.Data())
	if err != nil {
		return err
	}
	o.Last = md.Sequence.Stream
	return o.apply(v)
}

// rawOrderedRead reads every message matching subjects that is stored when
// it begins with an ordered consumer, applies each to o, and removes the
// consumer: what Evolve does, written against the jetstream package.
func rawOrderedRead(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, subjects []string, o *Order, opts ...jetstream.PullMessagesOpt) error {
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		return err
	}
	it, err := oc.Messages(opts...)
	if err != nil {
		return err
	}
	defer it.Stop()
	info := oc.CachedInfo()
	for i := uint64(0); i < info.NumPending; i++ {
		msg, err := it.Next()
		if err != nil {
			return err
		}
		if err := rawApply(o, msg); err != nil {
			return err
		}
	}
	it.Stop()
	if cur := oc.CachedInfo(); cur != nil {
		info = cur
	}
	return js.DeleteConsumer(ctx, stream.CachedInfo().Config.Name, info.Name)
}

// BenchmarkEvolveStore is pair 4 (and, through its allocs/event and B/event,
// pair 7): Evolve of a whole store against a raw ordered consumer that reads
// and decodes the same messages. live-heap-MB shows whether memory stays
// flat as the store grows.
func BenchmarkEvolveStore(b *testing.B) {
	for _, be := range backends(b) {
		for _, st := range storages {
			for _, size := range be.sizes() {
				b.Run(fmt.Sprintf("%sstorage=%s/events=%s", be.prefix, st.name, sizeName(size)), func(b *testing.B) {
					f := be.fixture(b, st.typ, size, shapeOrders)
					ctx := context.Background()
					pair(b, func(b *testing.B) {
						m := manager(b, be.connect(b))
						s, err := m.GetEventStore(ctx, f.name)
						if err != nil {
							b.Fatal(err)
						}
						// One untimed read first, on each side: the side
						// that runs first would otherwise also pay for
						// warming the server's caches and the process.
						if _, err := s.Evolve(ctx, &libOrder{}); err != nil {
							b.Fatal(err)
						}
						var allocs allocCounter
						heap := startHeapPeak()
						allocs.begin()
						b.ResetTimer()
						for b.Loop() {
							o := &libOrder{}
							last, err := s.Evolve(ctx, o)
							if err != nil {
								b.Fatal(err)
							}
							if o.Events != f.events || last != uint64(f.events) {
								b.Fatalf("evolved %d events up to %d, want %d", o.Events, last, f.events)
							}
						}
						b.StopTimer()
						allocs.report(b, b.N*f.events)
						heap.report(b)
						rate(b, b.N*f.events)
					}, func(b *testing.B) {
						nc := be.connect(b)
						js, err := jetstream.New(nc)
						if err != nil {
							b.Fatal(err)
						}
						stream, err := js.Stream(ctx, "ES_"+f.name)
						if err != nil {
							b.Fatal(err)
						}
						if err := rawOrderedRead(ctx, js, stream, nil, &Order{}); err != nil {
							b.Fatal(err)
						}
						var allocs allocCounter
						heap := startHeapPeak()
						allocs.begin()
						b.ResetTimer()
						for b.Loop() {
							o := &Order{}
							if err := rawOrderedRead(ctx, js, stream, nil, o); err != nil {
								b.Fatal(err)
							}
							if o.Events != f.events || o.Last != uint64(f.events) {
								b.Fatalf("read %d events up to %d, want %d", o.Events, o.Last, f.events)
							}
						}
						b.StopTimer()
						allocs.report(b, b.N*f.events)
						heap.report(b)
						rate(b, b.N*f.events)
					})
				})
			}
		}
	}
}

// BenchmarkEvolveStorePull puts pair 4 in context: the raw ordered consumer
// of the pair, reading with jetstream's default pull size (500 messages),
// beside the same read keeping 2000 messages asked for, at most 4 MiB a
// request, as the library's readers do (internal/read's pullMessages): how
// much of the library's rate comes from the pull size alone.
func BenchmarkEvolveStorePull(b *testing.B) {
	be := the
	for _, st := range storages {
		for _, method := range []struct {
			name string
			opts []jetstream.PullMessagesOpt
		}{
			{"raw-default", nil},
			{"raw-2000", []jetstream.PullMessagesOpt{jetstream.PullMaxMessagesWithBytesLimit(2000, 4<<20)}},
		} {
			b.Run(fmt.Sprintf("storage=%s/events=100k/method=%s", st.name, method.name), func(b *testing.B) {
				f := be.fixture(b, st.typ, 100_000, shapeOrders)
				ctx := context.Background()
				js, err := jetstream.New(be.connect(b))
				if err != nil {
					b.Fatal(err)
				}
				stream, err := js.Stream(ctx, "ES_"+f.name)
				if err != nil {
					b.Fatal(err)
				}
				if err := rawOrderedRead(ctx, js, stream, nil, &Order{}, method.opts...); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					o := &Order{}
					if err := rawOrderedRead(ctx, js, stream, nil, o, method.opts...); err != nil {
						b.Fatal(err)
					}
					if o.Events != f.events {
						b.Fatalf("read %d events, want %d", o.Events, f.events)
					}
				}
				b.StopTimer()
				rate(b, b.N*f.events)
			})
		}
	}
}
