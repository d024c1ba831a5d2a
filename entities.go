package rita

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/wire"
)

// EntityCount returns the number of entities that have events in the
// store. The server knows the subjects, not the entities: counting them
// lists every subject, so it is done only when the store holds at most
// limit distinct subjects (an entity has one per event type it has);
// otherwise counted is false and n 0. A store deleted since it was opened
// fails with an error matching jetstream.ErrStreamNotFound.
func (s *EventStore) EntityCount(ctx context.Context, limit int) (n uint64, counted bool, err error) {
	if err := s.check(ctx); err != nil {
		return 0, false, err
	}
	var si *jetstream.StreamInfo
	err = s.src.Do(ctx, "the store's info", func(ctx context.Context) (err error) {
		si, err = s.stream.Info(ctx)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("rita: count the entities of store %q: %w", s.name, err)
	}
	if si.State.NumSubjects > uint64(max(limit, 0)) {
		return 0, false, nil
	}
	if si.State.NumSubjects == 0 {
		return 0, true, nil
	}
	err = s.src.Do(ctx, "the store's subjects", func(ctx context.Context) (err error) {
		si, err = s.stream.Info(ctx, jetstream.WithSubjectFilter(wire.StoreSubjects(s.name)))
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("rita: count the entities of store %q: %w", s.name, err)
	}
	entities := make(map[string]struct{}, len(si.State.Subjects))
	for subject := range si.State.Subjects {
		if entity, _, ok := wire.SplitEventSubject(subject); ok {
			entities[entity] = struct{}{}
		}
	}
	return uint64(len(entities)), true, nil
}
