package rita_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// Creating a store that exists with another configuration says which
// fields differ and what to call.
func TestCreateEventStoreNamesDifferences(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	base := rita.EventStoreConfig{Name: "orders", Description: "orders", MaxAge: time.Hour}
	_, err := e.m.CreateEventStore(ctx, base)
	requireNoError(t, err)

	// The same configuration returns the store.
	_, err = e.m.CreateEventStore(ctx, base)
	requireNoError(t, err)
	// Defaults spelt out are the same configuration too.
	same := base
	same.Replicas, same.Duplicates = 1, 2*time.Minute
	_, err = e.m.CreateEventStore(ctx, same)
	requireNoError(t, err)

	tests := []struct {
		name   string
		change func(*rita.EventStoreConfig)
		want   []string
	}{
		{"max age", func(c *rita.EventStoreConfig) { c.MaxAge = 2 * time.Hour }, []string{"MaxAge: 1h0m0s, asked 2h0m0s"}},
		{"storage and duplicates", func(c *rita.EventStoreConfig) {
			c.Storage, c.Duplicates = jetstream.MemoryStorage, time.Minute
		}, []string{"Storage: File, asked Memory", "Duplicates: 2m0s, asked 1m0s"}},
		{"description and metadata", func(c *rita.EventStoreConfig) {
			c.Description, c.Metadata = "", map[string]string{"team": "shop"}
		}, []string{`Description: "orders", asked ""`, "Metadata: map[], asked map[team:shop]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			_, err := e.m.CreateEventStore(ctx, cfg)
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				t.Fatalf("error %v does not match jetstream.ErrStreamNameAlreadyInUse", err)
			}
			for _, part := range append(tt.want, "UpdateEventStore") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q lacks %q", err, part)
				}
			}
			if strings.Count(err.Error(), "asked") != len(tt.want) {
				t.Errorf("error %q names other differences than %q", err, tt.want)
			}
		})
	}
}
