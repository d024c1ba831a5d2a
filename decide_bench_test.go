package rita_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// The cost of a DecideWithRetry whose first attempt conflicts, by the
// length of the stock item's history. The command places a new order
// (expecting sequence 0) and reserves stock.1, which another writer has
// just changed: the retry catches up on that one event. Its cost should not
// grow with the history.
func BenchmarkDecideWithRetryConflict(b *testing.B) {
	for _, history := range []int{1_000, 20_000} {
		b.Run("history="+strconv.Itoa(history), func(b *testing.B) {
			srv := ritatest.NewServer(b)
			m, err := rita.New(srv.Connect(b))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Append(ctx, []*rita.Event{{Entity: "stock.1", Type: "received", Data: []byte(strconv.Itoa(b.N + 1))}}); err != nil {
				b.Fatal(err)
			}
			for done := 0; done < history; done += rita.MaxBatchSize {
				batch := make([]*rita.Event, min(rita.MaxBatchSize, history-done))
				for i := range batch {
					batch[i] = &rita.Event{Entity: "stock.1", Type: "counted", Data: []byte("0")}
				}
				if _, err := s.Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			model := rita.NewModel(&warehouse{})
			if _, err := s.Evolve(ctx, model, rita.WithFilters("stock.1")); err != nil {
				b.Fatal(err)
			}
			conflicts := 0
			notify := rita.WithRetryNotify(func(int, error) { conflicts++ })
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				// Another writer changes stock.1 behind the model's back.
				if _, err := s.Append(ctx, []*rita.Event{{Entity: "stock.1", Type: "counted", Data: []byte("0")}}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				cmd := &rita.Command{Data: reserveCmd{Order: fmt.Sprint(i)}}
				if _, _, err := s.DecideAndEvolveWithRetry(ctx, model, cmd, notify); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if conflicts != b.N {
				b.Fatalf("%d conflicts in %d commands, want one each", conflicts, b.N)
			}
		})
	}
}
