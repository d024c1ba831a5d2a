package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// signalOrder is an Order that reports, on applied, the sequence of each
// event once it has applied it.
type signalOrder struct {
	mu      sync.Mutex
	o       Order
	applied chan uint64
}

func (s *signalOrder) Evolve(e *rita.Event) error {
	s.mu.Lock()
	err := s.o.apply(e.Data)
	s.mu.Unlock()
	s.applied <- e.Sequence()
	return err
}

// waitApplied waits for the sequence seq on applied and returns when it
// arrived.
func waitApplied(b *testing.B, applied <-chan uint64, seq uint64) time.Time {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-applied:
			if got == seq {
				return time.Now()
			}
			if got > seq {
				b.Fatalf("applied %d while waiting for %d", got, seq)
			}
		case <-timeout:
			b.Fatalf("event %d not applied within 10s", seq)
		}
	}
}

// BenchmarkWatchLatency is pair 6: the time from Append returning to a
// watching model having applied the event, against a raw ordered consumer
// that decodes and applies what a raw publish stored. p50-µs and p99-µs are
// that time; e2e-p50-µs and e2e-p99-µs count from the start of the append
// (the event can be applied before the append's acknowledgement arrives, so
// the first time can be 0).
func BenchmarkWatchLatency(b *testing.B) {
	for _, be := range backends(b) {
		for _, st := range storages {
			b.Run(be.prefix+"storage="+st.name, func(b *testing.B) {
				pair(b, func(b *testing.B) {
					ctx := context.Background()
					m := manager(b, be.connect(b))
					_, s := be.newStore(b, m, st.typ)
					model := &signalOrder{applied: make(chan uint64, 16)}
					w, err := s.Watch(ctx, model)
					if err != nil {
						b.Fatal(err)
					}
					defer w.Stop()
					var lat, e2e latencies
					k := 0
					for b.Loop() {
						start := time.Now()
						seq, err := s.Append(ctx, []*rita.Event{libEvent(1, k%eventsPerEntity)})
						returned := time.Now()
						if err != nil {
							b.Fatal(err)
						}
						at := waitApplied(b, model.applied, seq)
						lat.add(max(0, at.Sub(returned)))
						e2e.add(at.Sub(start))
						k++
					}
					lat.report(b, "")
					e2e.report(b, "e2e-")
				}, func(b *testing.B) {
					ctx := context.Background()
					nc := be.connect(b)
					js, err := jetstream.New(nc)
					if err != nil {
						b.Fatal(err)
					}
					name, _ := be.newStore(b, manager(b, nc), st.typ)
					stream, err := js.Stream(ctx, "ES_"+name)
					if err != nil {
						b.Fatal(err)
					}
					oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
					if err != nil {
						b.Fatal(err)
					}
					it, err := oc.Messages()
					if err != nil {
						b.Fatal(err)
					}
					applied := make(chan uint64, 16)
					var done sync.WaitGroup
					done.Go(func() {
						var mu sync.Mutex
						o := &Order{}
						for {
							msg, err := it.Next()
							if err != nil {
								return
							}
							mu.Lock()
							err = rawApply(o, msg)
							seq := o.Last
							mu.Unlock()
							if err != nil {
								continue
							}
							applied <- seq
						}
					})
					defer func() {
						it.Stop()
						done.Wait()
					}()
					var lat, e2e latencies
					k := 0
					for b.Loop() {
						start := time.Now()
						ack, err := js.PublishMsg(ctx, rawMsg(name, 1, k%eventsPerEntity, -1))
						returned := time.Now()
						if err != nil {
							b.Fatal(err)
						}
						at := waitApplied(b, applied, ack.Sequence)
						lat.add(max(0, at.Sub(returned)))
						e2e.add(at.Sub(start))
						k++
					}
					lat.report(b, "")
					e2e.report(b, "e2e-")
				})
			})
		}
	}
}
