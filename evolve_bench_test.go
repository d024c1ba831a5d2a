package rita_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// evolveBenchEntities and evolveBenchEventsPerEntity shape the store the read
// benchmarks load one entity from.
const (
	evolveBenchEntities        = 100
	evolveBenchEventsPerEntity = 10
)

// newEvolveBenchStore fills a store (Replicas: 1) with evolveBenchEntities entities of
// evolveBenchEventsPerEntity events each, interleaved.
func newEvolveBenchStore(b *testing.B) (*rita.EventStore, jetstream.JetStream) {
	b.Helper()
	srv := ritatest.NewServer(b)
	nc := srv.Connect(b)
	m, err := rita.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for range evolveBenchEventsPerEntity {
		batch := make([]*rita.Event, evolveBenchEntities)
		for i := range batch {
			batch[i] = &rita.Event{Entity: fmt.Sprintf("order.%d", i), Type: "placed", Data: []byte(`{"amount":42}`)}
		}
		if _, err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return s, js
}

// evolveCounter is an Evolver that counts.
type evolveCounter int

func (c *evolveCounter) Evolve(*rita.Event) error { *c++; return nil }

// Evolve of one entity on a store with one replica: the hot path of every
// command. With a deadline in ctx, and without one (where Evolve waits with
// an idle time to notice a server that is gone).
func BenchmarkEvolveOneEntity(b *testing.B) {
	s, _ := newEvolveBenchStore(b)
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		}},
		{"background", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				ctx, cancel := tc.ctx()
				var n evolveCounter
				if _, err := s.Evolve(ctx, &n, rita.WithFilters(fmt.Sprintf("order.%d", i%evolveBenchEntities))); err != nil {
					b.Fatal(err)
				}
				cancel()
				if n != evolveBenchEventsPerEntity {
					b.Fatalf("read %d events, want %d", n, evolveBenchEventsPerEntity)
				}
				i++
			}
		})
	}
}

// The raw JetStream operation Evolve wraps: an ordered consumer over one
// entity's subject, read up to its last message, then deleted.
func BenchmarkRawOrderedConsumerOneEntity(b *testing.B) {
	_, js := newEvolveBenchStore(b)
	ctx := context.Background()
	stream, err := js.Stream(ctx, "ES_bench")
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{fmt.Sprintf("$ES.bench.order.%d.*", i%evolveBenchEntities)},
		})
		if err != nil {
			b.Fatal(err)
		}
		it, err := oc.Messages()
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; ; n++ {
			msg, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			md, _ := msg.Metadata()
			if md.NumPending == 0 {
				break
			}
		}
		it.Stop()
		if err := js.DeleteConsumer(ctx, "ES_bench", oc.CachedInfo().Name); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
