package durable

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/wire"
)

// The partition stream of a partitioned consumer, and what an operator
// does to a partitioned consumer from anywhere: its progress, a rebuild, its
// removal.
//
// The stream is a work-queue mirror of the store's stream (names and
// subjects in package wire). A mirror keeps the store's sequences, so an
// event's sequence, a consumer's acknowledgement floor and Rebuild's after
// mean the same as for a plain consumer; the work queue drops a copy once
// it is acknowledged, so the stream holds the events not yet done, not a
// second store. Partition k is the durable pull consumer "p<k>" on it, in
// the pinned priority group, run by the engine like a plain consumer.

// ErrMismatch is returned when a consumer is run in a way its state on the
// server does not allow: partitioned when a plain consumer of the name
// exists or the other way round, or with another number of partitions or
// filters than it was made with.
var ErrMismatch = errors.New("does not match the consumer on the server")

// PartitionLayout is what a partitioned consumer's stream is made from.
type PartitionLayout struct {
	Partitions int
	Transforms []wire.Transform
	After      uint64 // where the mirror starts, when it is made
}

// streamConfig is the partition stream's configuration.
func (c *Consumer) streamConfig(l PartitionLayout) jetstream.StreamConfig {
	src := &jetstream.StreamSource{Name: wire.StreamName(c.Store)}
	if l.After > 0 {
		src.OptStartSeq = l.After + 1
	}
	for _, t := range l.Transforms {
		src.SubjectTransforms = append(src.SubjectTransforms, jetstream.SubjectTransformConfig{Source: t.Source, Destination: t.Destination})
	}
	cfg := jetstream.StreamConfig{
		Name:        wire.PartitionStream(c.Store, c.Name),
		Description: fmt.Sprintf("rita: %d partitions of consumer %s of store %s", l.Partitions, c.Name, c.Store),
		Retention:   jetstream.WorkQueuePolicy,
		Mirror:      src,
		Metadata: map[string]string{
			wire.MetaPartitions: strconv.Itoa(l.Partitions),
			wire.MetaStore:      c.Store,
			wire.MetaConsumer:   c.Name,
		},
	}
	if info := c.Stream.CachedInfo(); info != nil {
		cfg.Replicas = info.Config.Replicas
		cfg.Storage = info.Config.Storage
		cfg.Placement = info.Config.Placement
	}
	return cfg
}

// partitionStream returns the consumer's partition stream, nil if it has
// none.
func (c *Consumer) partitionStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := c.JS.Stream(ctx, wire.PartitionStream(c.Store, c.Name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	md := st.CachedInfo().Config.Metadata
	if md[wire.MetaStore] != c.Store || md[wire.MetaConsumer] != c.Name {
		return nil, fmt.Errorf("stream %s is not the partitions of %q of store %q: %w", st.CachedInfo().Config.Name, c.Name, c.Store, ErrMismatch)
	}
	return st, nil
}

// partitionsOf returns the number of partitions of a partition stream.
func partitionsOf(st jetstream.Stream) int {
	n, _ := strconv.Atoi(st.CachedInfo().Config.Metadata[wire.MetaPartitions])
	return n
}

// EnsurePartitions makes the consumer's partition stream, or checks that
// the existing one matches l; it refuses with ErrMismatch if a plain
// consumer of the name exists.
func (c *Consumer) EnsurePartitions(ctx context.Context, l PartitionLayout) (jetstream.Stream, error) {
	if _, err := c.Stream.Consumer(ctx, c.Name); err == nil {
		return nil, fmt.Errorf("a consumer %q that is not partitioned exists: delete it first: %w", c.Name, ErrMismatch)
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	st, err := c.partitionStream(ctx)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st, err = c.JS.CreateStream(ctx, c.streamConfig(l))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = c.partitionStream(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("create the partition stream: %w", err)
		}
	}
	if n := partitionsOf(st); n != l.Partitions {
		return nil, fmt.Errorf("it has %d partitions, not %d: delete it first: %w", n, l.Partitions, ErrMismatch)
	}
	var have []wire.Transform
	if m := st.CachedInfo().Config.Mirror; m != nil {
		for _, t := range m.SubjectTransforms {
			have = append(have, wire.Transform{Source: t.Source, Destination: t.Destination})
		}
	}
	if !slices.Equal(have, l.Transforms) {
		return nil, fmt.Errorf("its filters name other entity or event types than it was made with: delete it first: %w", ErrMismatch)
	}
	return st, nil
}

// CheckNotPartitioned refuses with ErrMismatch if the consumer is
// partitioned.
func (c *Consumer) CheckNotPartitioned(ctx context.Context) error {
	st, err := c.partitionStream(ctx)
	if err != nil {
		return err
	}
	if st != nil {
		return fmt.Errorf("it is partitioned (%d partitions): run it partitioned, or delete it first: %w", partitionsOf(st), ErrMismatch)
	}
	return nil
}

// PartitionSet is the server's view of a partitioned consumer.
type PartitionSet struct {
	Stream *jetstream.StreamInfo // the partition stream's
	// Consumers holds partition k's consumer info at k, nil for a
	// partition that was never run.
	Consumers []*jetstream.ConsumerInfo
}

// Partitions returns the server's view of the consumer's partitions, nil if
// it is not partitioned.
func (c *Consumer) Partitions(ctx context.Context) (*PartitionSet, error) {
	var set *PartitionSet
	err := c.do(ctx, "the partitions", func(ctx context.Context) error {
		st, err := c.partitionStream(ctx)
		if err != nil || st == nil {
			set = nil
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		set = &PartitionSet{Stream: info, Consumers: make([]*jetstream.ConsumerInfo, partitionsOf(st))}
		for k := range set.Consumers {
			cons, err := st.Consumer(ctx, wire.PartitionConsumer(k))
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			set.Consumers[k] = cons.CachedInfo()
		}
		return nil
	})
	return set, err
}

// Active reports whether a process runs one of the partitions.
func (set *PartitionSet) Active() bool {
	for _, ci := range set.Consumers {
		if ci != nil && Pinned(ci) {
			return true
		}
	}
	return false
}

// Done reports whether every event up to target is done (acknowledged:
// the work queue no longer holds it), and the sequence up to which every
// event is.
func (set *PartitionSet) Done(target uint64) (applied uint64, done bool) {
	st := set.Stream.State
	applied = st.LastSeq
	if st.Msgs > 0 {
		applied = st.FirstSeq - 1
	}
	if m := set.Stream.Config.Mirror; m != nil && m.OptStartSeq > 0 && target < m.OptStartSeq {
		return applied, true // nothing it delivers is stored yet
	}
	return applied, target == 0 || applied >= target
}

// MirrorLag is the number of matching events of the store not yet copied
// to the partitions.
func (set *PartitionSet) MirrorLag() uint64 {
	if set.Stream.Mirror == nil {
		return 0
	}
	return set.Stream.Mirror.Lag
}

// LastMatchingPartitioned returns the sequence of the last event stored
// now that the partitioned consumer takes.
func (c *Consumer) LastMatchingPartitioned(ctx context.Context, set *PartitionSet) (uint64, error) {
	var filters []string
	if m := set.Stream.Config.Mirror; m != nil {
		for _, t := range m.SubjectTransforms {
			filters = append(filters, t.Source)
		}
	}
	return c.lastMatching(ctx, filters)
}

// rebuildPartitions makes the partition stream again, its mirror starting
// after after; the partition consumers are made again by the next run.
func (c *Consumer) rebuildPartitions(ctx context.Context, set *PartitionSet, after uint64) error {
	if set.Active() {
		return ErrActive
	}
	if p, err := c.parked(ctx); err != nil {
		return err
	} else if p != nil {
		if err := p.purge(ctx, c.Name); err != nil {
			return err
		}
	}
	cfg := set.Stream.Config
	cfg.Mirror.OptStartSeq, cfg.Mirror.OptStartTime = 0, nil
	if after > 0 {
		cfg.Mirror.OptStartSeq = after + 1
	}
	if err := c.JS.DeleteStream(ctx, cfg.Name); err != nil {
		return err
	}
	_, err := c.JS.CreateStream(ctx, cfg)
	return err
}

// deletePartitions removes the partition stream, the retry consumer and the
// parked events.
func (c *Consumer) deletePartitions(ctx context.Context, set *PartitionSet) error {
	if set.Active() {
		return ErrActive
	}
	if err := c.JS.DeleteStream(ctx, set.Stream.Config.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	return c.deleteParked(ctx)
}

// DeleteAllPartitions deletes the partition streams of every partitioned
// consumer of store, with the store.
func DeleteAllPartitions(ctx context.Context, js jetstream.JetStream, store string) error {
	prefix := wire.PartitionStream(store, "")
	names := js.StreamNames(ctx)
	var found []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) {
			found = append(found, name)
		}
	}
	if err := names.Err(); err != nil {
		return err
	}
	for _, name := range found {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if st.CachedInfo().Config.Metadata[wire.MetaStore] != store {
			continue // the stream of another store whose name begins so
		}
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
	}
	return nil
}
