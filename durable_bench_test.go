package rita_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// benchStore returns a store holding n raw events spread over 16 entities.
func benchStore(b *testing.B, n int) (*rita.EventStore, jetstream.JetStream) {
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
	for done := 0; done < n; {
		k := min(n-done, rita.MaxBatchSize)
		batch := make([]*rita.Event, k)
		for i := range batch {
			batch[i] = rawEvent(fmt.Sprintf("order.%d", (done+i)%16), "placed", "x")
		}
		if _, err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		done += k
	}
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return s, js
}

// waitCount waits until n reaches want.
func waitCount(b *testing.B, n *atomic.Int64, want int64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkReact measures a reactor handling stored events (one event per
// op), beside BenchmarkRawConsumer, the JetStream consumer it wraps.
func BenchmarkReact(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			s, _ := benchStore(b, b.N)
			var n atomic.Int64
			b.ResetTimer()
			r, err := s.Durable("bench").React(context.Background(), func(context.Context, *rita.Event) error {
				n.Add(1)
				return nil
			}, rita.WithConcurrency(conc))
			if err != nil {
				b.Fatal(err)
			}
			waitCount(b, &n, int64(b.N))
			b.StopTimer()
			if err := r.Stop(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRawConsumer is the raw operation React wraps: a durable pull
// consumer with explicit acks, acknowledged as is (ack) or waiting for the
// server to confirm each acknowledgement (doubleack), as React does.
func BenchmarkRawConsumer(b *testing.B) {
	for _, double := range []bool{false, true} {
		name := "ack"
		if double {
			name = "doubleack"
		}
		b.Run(name, func(b *testing.B) {
			_, js := benchStore(b, b.N)
			ctx := context.Background()
			c, err := js.CreateConsumer(ctx, "ES_bench", jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.ResetTimer()
			cc, err := c.Consume(func(msg jetstream.Msg) {
				if double {
					_ = msg.DoubleAck(ctx)
				} else {
					_ = msg.Ack()
				}
				n.Add(1)
			})
			if err != nil {
				b.Fatal(err)
			}
			waitCount(b, &n, int64(b.N))
			b.StopTimer()
			cc.Stop()
		})
	}
}
