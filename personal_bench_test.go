package rita_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// What encryption costs (WithEncryption, every event personal): Append of
// one event and a whole-store Evolve of 10,000 events over 100 entities,
// each beside the same operation on a store without encryption, on the
// same server. The keys are cached after the first read of each entity
// (within KeyCacheTTL), as in a running process.
func BenchmarkEncryption(b *testing.B) {
	srv := ritatest.NewServer(b)
	nc := srv.Connect(b)
	ctx := context.Background()
	keys, err := rita.NewAESKeyProvider("k", map[string][]byte{"k": bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		b.Fatal(err)
	}
	const events, entities = 10_000, 100
	payload := []byte(`{"name":"Ada Lovelace","email":"ada@example.com","street":"12 St James's Square","city":"London"}`)
	for _, mode := range []string{"plain", "encrypted"} {
		var opts []rita.ManagerOption
		if mode == "encrypted" {
			opts = append(opts, rita.WithEncryption(rita.EncryptionConfig{Keys: keys, PersonalTypes: []string{"registered"}}))
		}
		m, err := rita.New(nc, opts...)
		if err != nil {
			b.Fatal(err)
		}
		s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "crypto_" + mode})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < events; i += 100 {
			batch := make([]*rita.Event, 100)
			for j := range batch {
				batch[j] = &rita.Event{Entity: fmt.Sprintf("customer.%d", (i+j)%entities), Type: "registered", Data: payload}
			}
			if _, err := s.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("op=append/mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				ev := &rita.Event{Entity: fmt.Sprintf("customer.%d", i%entities), Type: "registered", Data: payload}
				if _, err := s.Append(ctx, []*rita.Event{ev}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op=evolve10k/mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			var n evolveCounter
			for b.Loop() {
				if _, err := s.Evolve(ctx, &n, rita.WithStopSequence(events)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
