package durable

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/wire"
)

// What the durable consumers of a store are, seen from outside: their
// infos and parked-event counts, each gathered in one request for all of
// them, for tools that list them.

// Infos returns the infos of the durable consumers of the store's stream
// (the store's own ephemeral readers are left out), in no particular order.
func Infos(ctx context.Context, stream jetstream.Stream) ([]*jetstream.ConsumerInfo, error) {
	var infos []*jetstream.ConsumerInfo
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		if info.Config.Durable != "" {
			infos = append(infos, info)
		}
	}
	return infos, list.Err()
}

// ParkedCounts returns how many events each consumer of store has parked,
// by consumer name; none (an empty map) if no event was ever parked.
func ParkedCounts(ctx context.Context, js jetstream.JetStream, store string, storeStream jetstream.Stream) (map[string]int, error) {
	counts := map[string]int{}
	p, err := OpenParked(ctx, js, store, storeStream, false)
	if err != nil || p == nil {
		return counts, err
	}
	subs, err := p.subjects(ctx, wire.ParkedEntries(store, "*"))
	if err != nil {
		return nil, err
	}
	// $ES_PARKED.<store>.<consumer>.event.<type>.<id>.<seq>: the store's
	// name and the consumer's hold no dot.
	prefix := wire.ParkedSubjects(store)
	prefix = prefix[:len(prefix)-1]
	for _, sub := range subs {
		rest, ok := strings.CutPrefix(sub, prefix)
		if !ok {
			continue
		}
		consumer, _, _ := strings.Cut(rest, ".")
		counts[consumer]++
	}
	return counts, nil
}
