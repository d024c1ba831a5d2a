package rita

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/durable"
)

// Durables returns the progress of every durable consumer of the store,
// sorted by name: those Durable.Watch and Durable.React made, and any other
// durable consumer of the store's stream. It is Durable.Progress for each of
// them, read with a few requests for all: for people and tools that look
// after a store. A store without durable consumers returns none (an empty
// slice); a store deleted since it was opened fails with an error matching
// jetstream.ErrStreamNotFound.
func (s *EventStore) Durables(ctx context.Context) ([]Progress, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var (
		infos  []*jetstream.ConsumerInfo
		sinfo  *jetstream.StreamInfo
		parked map[string]int
	)
	err := s.src.Do(ctx, "the store's durable consumers", func(ctx context.Context) (err error) {
		if sinfo, err = s.stream.Info(ctx); err != nil {
			return err
		}
		if infos, err = durable.Infos(ctx, s.stream); err != nil {
			return err
		}
		parked, err = durable.ParkedCounts(ctx, s.m.js, s.name, s.stream)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rita: list the durable consumers of store %q: %w", s.name, err)
	}
	list := make([]Progress, 0, len(infos))
	for _, info := range infos {
		list = append(list, Progress{
			Name:          info.Name,
			Pending:       info.NumPending,
			InFlight:      info.NumAckPending,
			Applied:       info.AckFloor.Stream,
			Delivered:     info.Delivered.Stream,
			StoreSequence: sinfo.State.LastSeq,
			Parked:        parked[info.Name],
			Active:        durable.Pinned(info),
		})
	}
	slices.SortFunc(list, func(a, b Progress) int { return cmp.Compare(a.Name, b.Name) })
	return list, nil
}
