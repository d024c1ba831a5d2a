package rita

import (
	"context"
	"fmt"

	"github.com/synadia-labs/rita/internal/durable"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// Partitioned durable consumers (WithPartitions): how Durable runs one and
// reports its progress. The machinery, and the invariants it keeps, are in
// internal/durable (partition.go, partition_stream.go); the layout on the
// server in internal/wire (partition.go).

// startPartitioned joins the group of processes running the partitioned
// consumer.
func (d *Durable) startPartitioned(ctx context.Context, ecfg durable.Config[*Event], spec *read.Spec, cfg *config) (runner, error) {
	if n := len(wire.PartitionStream(d.s.name, d.name)); n > 255 {
		return nil, fmt.Errorf("%w: store and durable names too long to partition: the partition stream's name would be %d bytes, at most 255", ErrInvalidOption, n)
	}
	patterns := spec.Match
	if patterns == nil {
		patterns = spec.Subjects
	}
	transforms, exact := wire.PartitionTransforms(d.s.name, cfg.partitions, patterns)
	ecfg.Subjects, ecfg.Match = nil, nil
	if !exact {
		ecfg.Match = patterns
	}
	return durable.StartGroup(ctx, durable.GroupConfig[*Event]{
		Config: ecfg,
		Layout: durable.PartitionLayout{Partitions: cfg.partitions, Transforms: transforms, After: cfg.after},
	})
}

// partitionProgress sums the progress of the partitions.
func (d *Durable) partitionProgress(ctx context.Context, set *durable.PartitionSet) (Progress, error) {
	c := d.consumer()
	sinfo, err := c.StreamInfo(ctx)
	if err != nil {
		return Progress{}, d.fail("progress of", err)
	}
	parked, err := c.ParkedCount(ctx)
	if err != nil {
		return Progress{}, d.fail("progress of", err)
	}
	applied, _ := set.Done(0)
	p := Progress{
		Name:          d.name,
		Pending:       set.MirrorLag(),
		Applied:       applied,
		StoreSequence: sinfo.State.LastSeq,
		Parked:        parked,
		Partitions:    make([]PartitionProgress, len(set.Consumers)),
	}
	for k, ci := range set.Consumers {
		pp := PartitionProgress{Partition: k}
		if ci != nil { // nil: never run (its pending events count below)
			pp.Pending = ci.NumPending
			pp.InFlight = ci.NumAckPending
			pp.Delivered = ci.Delivered.Stream
			pp.Active = durable.Pinned(ci)
		}
		p.Partitions[k] = pp
		p.InFlight += pp.InFlight
		p.Delivered = max(p.Delivered, pp.Delivered)
		p.Active = p.Active || pp.Active
	}
	// The work queue holds exactly the copies not yet done: pending or in
	// flight, in whichever partition.
	if msgs := set.Stream.State.Msgs; msgs > uint64(p.InFlight) {
		p.Pending += msgs - uint64(p.InFlight)
	}
	return p, nil
}

// waitPartitions waits until every event the partitioned consumer takes,
// of those stored now, is done.
func (d *Durable) waitPartitions(ctx context.Context, set *durable.PartitionSet) error {
	c := d.consumer()
	target, err := c.LastMatchingPartitioned(ctx, set)
	if err != nil {
		return d.fail("wait for", err)
	}
	poll := jsapi.PollBackoff()
	for n := 1; ; n++ {
		if _, done := set.Done(target); done {
			return nil
		}
		if err := jsapi.Wait(ctx, poll.Delay(n)); err != nil {
			return d.fail("wait for", err)
		}
		if set, err = c.Partitions(ctx); err == nil && set == nil {
			err = fmt.Errorf("the partitions of %q are gone", d.name)
		}
		if err != nil {
			return d.fail("wait for", err)
		}
	}
}
