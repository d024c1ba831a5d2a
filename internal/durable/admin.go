package durable

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// What can be done to a durable consumer from anywhere, running or not: its
// progress, a rebuild, its removal and its parked events. Each request is
// tried again after transient failures (jsapi.Do).

// Consumer is a durable consumer of a store, by name.
type Consumer struct {
	JS     jetstream.JetStream
	NC     *nats.Conn
	Store  string
	Stream jetstream.Stream // the store's
	Name   string

	// Notify, if set, is told of each failure a request is tried again
	// after.
	Notify func(what string, attempt int, err error)

	// Guard, if set, derives from a request's context one that a
	// permission violation ends at once (jsapi.Denials.Guard), and the
	// function that releases it.
	Guard jsapi.GuardFunc
}

// ErrActive is returned by Rebuild and Delete while a process runs the
// consumer.
var ErrActive = errors.New("a process runs it")

// do runs one request under jsapi's retry rules.
func (c *Consumer) do(ctx context.Context, what string, req func(context.Context) error) error {
	var notify func(int, error)
	if c.Notify != nil {
		notify = func(n int, err error) { c.Notify(what, n, err) }
	}
	ctx, release := c.guard(ctx)
	defer release()
	return denied(ctx, jsapi.Do(ctx, what, notify, req))
}

// guard guards ctx with Guard, if set.
func (c *Consumer) guard(ctx context.Context) (context.Context, context.CancelFunc) {
	return c.Guard.Guard(ctx)
}

// denied returns the permission violation that ended ctx, if one did and
// err is not nil; otherwise err.
func denied(ctx context.Context, err error) error { return jsapi.DeniedOr(ctx, err) }

// Info returns the consumer's info; a consumer that was never made fails
// with an error matching jetstream.ErrConsumerNotFound.
func (c *Consumer) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	var info *jetstream.ConsumerInfo
	err := c.do(ctx, "the consumer's info", func(ctx context.Context) error {
		cons, err := c.Stream.Consumer(ctx, c.Name)
		if err != nil {
			return err
		}
		info = cons.CachedInfo()
		return nil
	})
	return info, err
}

// StreamInfo returns the info of the store's stream.
func (c *Consumer) StreamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	err := c.do(ctx, "the store's info", func(ctx context.Context) (err error) {
		info, err = c.Stream.Info(ctx)
		return err
	})
	return info, err
}

// Pinned reports whether a client holds the consumer's pin: a process runs
// it.
func Pinned(info *jetstream.ConsumerInfo) bool {
	for _, g := range info.PriorityGroups {
		if g.PinnedClientID != "" {
			return true
		}
	}
	return false
}

// parked opens the store's parked stream, nil if there is none.
func (c *Consumer) parked(ctx context.Context) (*Parked, error) {
	var p *Parked
	err := c.do(ctx, "the parked events stream", func(ctx context.Context) (err error) {
		p, err = OpenParked(ctx, c.JS, c.Store, c.Stream, false)
		return err
	})
	return p, err
}

// ParkedCount returns how many events the consumer has parked.
func (c *Consumer) ParkedCount(ctx context.Context) (int, error) {
	p, err := c.parked(ctx)
	if err != nil || p == nil {
		return 0, err
	}
	var subs []string
	err = c.do(ctx, "the parked events", func(ctx context.Context) (err error) {
		subs, err = p.subjects(ctx, wire.ParkedEntries(c.Store, c.Name))
		return err
	})
	return len(subs), err
}

// LastMatching returns the sequence of the last event the consumer
// delivers, of those stored now, as the stream leader has it; 0 if none.
func (c *Consumer) LastMatching(ctx context.Context, nc *nats.Conn, cfg jetstream.ConsumerConfig) (uint64, error) {
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	last, err := c.lastMatching(ctx, filters)
	if cfg.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && last < cfg.OptStartSeq {
		return 0, err // nothing it delivers is stored yet
	}
	return last, err
}

// lastMatching returns the sequence of the last event stored now on one of
// filters (every event, if none), as the stream leader has it.
func (c *Consumer) lastMatching(ctx context.Context, filters []string) (uint64, error) {
	if len(filters) == 0 {
		filters = []string{wire.StoreSubjects(c.Store)}
	}
	var last uint64
	err := c.do(ctx, "the stream leader's last sequence", func(ctx context.Context) (err error) {
		last, err = jsapi.LastSeq(ctx, c.NC, wire.StreamName(c.Store), filters, time.Time{}, jsapi.FirstAttemptTimeout<<2)
		return err
	})
	return last, err
}

// inactive returns the consumer's info, refusing with ErrActive while a
// process runs it.
func (c *Consumer) inactive(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	if Pinned(info) {
		return nil, ErrActive
	}
	return info, nil
}

// Rebuild starts the consumer again after sequence after and removes its
// parked events.
func (c *Consumer) Rebuild(ctx context.Context, after uint64) error {
	ctx, release := c.guard(ctx)
	defer release()
	return denied(ctx, c.rebuild(ctx, after))
}

func (c *Consumer) rebuild(ctx context.Context, after uint64) error {
	info, err := c.inactive(ctx)
	if set, perr := c.PartitionsIfMissing(ctx, err); perr != nil || set != nil {
		if perr != nil {
			return perr
		}
		return c.rebuildPartitions(ctx, set, after)
	}
	if err != nil {
		return err
	}
	if p, err := c.parked(ctx); err != nil {
		return err
	} else if p != nil {
		if err := p.purge(ctx, c.Name); err != nil {
			return err
		}
	}
	_, err = c.Stream.ResetConsumerToSequence(ctx, c.Name, after+1)
	if err == nil || ctx.Err() != nil {
		return err
	}
	// The consumer starts later than after (ErrConsumerInvalidReset), or
	// the server cannot reset consumers: make it again, starting there.
	cfg := info.Config
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverAllPolicy, 0, nil
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	if err := c.Stream.DeleteConsumer(ctx, c.Name); err != nil {
		return err
	}
	_, err = c.Stream.CreateConsumer(ctx, cfg)
	return err
}

// Delete removes the consumer, its retry consumer and its parked events.
func (c *Consumer) Delete(ctx context.Context) error {
	ctx, release := c.guard(ctx)
	defer release()
	return denied(ctx, c.delete(ctx))
}

func (c *Consumer) delete(ctx context.Context) error {
	_, err := c.inactive(ctx)
	if set, perr := c.PartitionsIfMissing(ctx, err); perr != nil || set != nil {
		if perr != nil {
			return perr
		}
		return c.deletePartitions(ctx, set)
	}
	if err != nil {
		return err
	}
	if err := c.Stream.DeleteConsumer(ctx, c.Name); err != nil {
		return err
	}
	return c.deleteParked(ctx)
}

// PartitionsIfMissing returns the consumer's partitions when err says it
// has no plain consumer; nil if it has none either (or err says otherwise).
func (c *Consumer) PartitionsIfMissing(ctx context.Context, err error) (*PartitionSet, error) {
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil
	}
	return c.Partitions(ctx)
}

// deleteParked removes the retry consumer and the parked events.
func (c *Consumer) deleteParked(ctx context.Context) error {
	p, err := c.parked(ctx)
	if err != nil || p == nil {
		return err
	}
	if err := p.stream.DeleteConsumer(ctx, c.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	return p.purge(ctx, c.Name)
}

// Parked returns the consumer's parked events (every consumer's, for name
// "*"), ordered by consumer and sequence.
func (c *Consumer) Parked(ctx context.Context) ([]*Entry, error) {
	p, err := c.parked(ctx)
	if err != nil || p == nil {
		return nil, err
	}
	var entries []*Entry
	err = c.do(ctx, "the parked events", func(ctx context.Context) (err error) {
		entries, err = p.list(ctx, wire.ParkedEntries(c.Store, c.Name))
		return err
	})
	return entries, err
}

// ParkedAt returns the consumer's entry of the event at seq, nil if it has
// none.
func (c *Consumer) ParkedAt(ctx context.Context, seq uint64) (*Entry, error) {
	p, err := c.parked(ctx)
	if err != nil || p == nil {
		return nil, err
	}
	var e *Entry
	err = c.do(ctx, "the parked event", func(ctx context.Context) (err error) {
		e, err = p.lastOn(ctx, wire.ParkedEntryAt(c.Store, c.Name, seq))
		return err
	})
	return e, err
}

// RequestRetry asks the consumer, where it runs, to handle entry's entity's
// parked events again.
func (c *Consumer) RequestRetry(ctx context.Context, entry *Entry) error {
	key, ok := entityOf(entry.raw.Subject, wire.ParkedEntityAt)
	if !ok {
		return fmt.Errorf("parked entry subject %q is not an entity's", entry.raw.Subject)
	}
	msg := nats.NewMsg(wire.RetrySubject(c.Store, c.Name, key.String()))
	msg.Header.Set(wire.HdrParkedSequence, strconv.FormatUint(entry.src.seq, 10))
	return c.do(ctx, "the retry request", func(ctx context.Context) error {
		_, err := c.JS.PublishMsg(ctx, msg)
		return err
	})
}

// Remove deletes entry from the parked events.
func (c *Consumer) Remove(ctx context.Context, entry *Entry) error {
	ctx, release := c.guard(ctx)
	defer release()
	p, err := c.parked(ctx)
	if err != nil || p == nil {
		return err
	}
	return denied(ctx, p.remove(ctx, entry.raw.Sequence))
}
