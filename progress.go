package rita

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Progress is how far a durable Watch or a reactor has come, as the server
// sees it: it holds for every process running it.
type Progress struct {
	// Name is the name of the durable Watch or reactor.
	Name string

	// Pending counts the matching events stored and not yet delivered.
	Pending uint64

	// InFlight counts the events delivered and not yet done: being
	// handled, retried, or waiting behind an earlier event of their entity.
	InFlight int

	// Applied is the sequence up to which every matching event is done,
	// handled or parked (the consumer's acknowledgement floor).
	Applied uint64

	// Delivered is the sequence of the last event delivered.
	Delivered uint64

	// StoreSequence is the sequence of the last event in the store.
	StoreSequence uint64

	// Parked counts the events this consumer has parked.
	Parked int

	// Active reports whether a process is running it (holds the pin of its
	// consumer). One that stopped without Stop counts as running until its
	// ack wait has passed.
	Active bool
}

// CaughtUp reports whether every event stored when the progress was read
// was done: none pending, none in flight.
func (p Progress) CaughtUp() bool { return p.Pending == 0 && p.InFlight == 0 }

// Lag is the number of events not yet done: Pending + InFlight.
func (p Progress) Lag() uint64 { return p.Pending + uint64(p.InFlight) }

// Progress returns the progress of the durable Watch or reactor name, whether
// it runs in this process, another one, or none. A name that was never run
// fails with an error matching jetstream.ErrConsumerNotFound; an invalid one
// with ErrInvalidOption.
func (s *EventStore) Progress(ctx context.Context, name string) (Progress, error) {
	if s == nil {
		return Progress{}, errNilStore
	}
	if ctx == nil {
		return Progress{}, errNilContext
	}
	if err := validateDurableName(name); err != nil {
		return Progress{}, err
	}
	info, err := s.consumerInfo(ctx, name)
	if err != nil {
		return Progress{}, fmt.Errorf("rita: progress of %q in store %q: %w", name, s.name, err)
	}
	sinfo, err := s.stream.Info(ctx)
	if err != nil {
		return Progress{}, fmt.Errorf("rita: progress of %q in store %q: %w", name, s.name, err)
	}
	p := Progress{
		Name:          name,
		Pending:       info.NumPending,
		InFlight:      info.NumAckPending,
		Applied:       info.AckFloor.Stream,
		Delivered:     info.Delivered.Stream,
		StoreSequence: sinfo.State.LastSeq,
		Active:        pinned(info),
	}
	parked, err := s.parkedStream(ctx, false)
	if err != nil {
		return Progress{}, err
	}
	if parked != nil {
		subs, err := parked.subjects(ctx, parkedConsumerPattern(s.name, name))
		if err != nil {
			return Progress{}, err
		}
		p.Parked = len(subs)
	}
	return p, nil
}

// pinned reports whether a client holds the consumer's pin.
func pinned(info *jetstream.ConsumerInfo) bool {
	for _, g := range info.PriorityGroups {
		if g.PinnedClientID != "" {
			return true
		}
	}
	return false
}

// WaitCaughtUp waits until the durable Watch or reactor name has done (handled
// or parked) every matching event stored when WaitCaughtUp was called. It
// polls the consumer, and returns ctx's error if ctx ends first. Something must
// be running it, here or in another process, for it ever to return nil. A name
// that was never run fails with an error matching jetstream.ErrConsumerNotFound.
func (s *EventStore) WaitCaughtUp(ctx context.Context, name string) error {
	if s == nil {
		return errNilStore
	}
	if ctx == nil {
		return errNilContext
	}
	if err := validateDurableName(name); err != nil {
		return err
	}
	wrap := func(err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("rita: wait for %q in store %q: %w", name, s.name, err)
	}
	info, err := s.consumerInfo(ctx, name)
	if err != nil {
		return wrap(err)
	}
	target, err := s.lastMatching(ctx, info.Config)
	if err != nil {
		return wrap(err)
	}
	delay := 5 * time.Millisecond
	for info.AckFloor.Stream < target {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return wrap(ctx.Err())
		}
		delay = min(2*delay, 250*time.Millisecond)
		if info, err = s.consumerInfo(ctx, name); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// lastMatching returns the sequence of the last event the consumer of cfg
// delivers, of those stored now; 0 if none. The consumer has caught up once
// its acknowledgement floor reaches it. (Its pending count, which the server
// updates after a message is stored, could miss the newest events.)
func (s *EventStore) lastMatching(ctx context.Context, cfg jetstream.ConsumerConfig) (uint64, error) {
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	if len(filters) == 0 {
		filters = []string{storeSubjects(s.name)}
	}
	var last uint64
	for _, f := range filters {
		msg, err := s.stream.GetLastMsgForSubject(ctx, f)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		last = max(last, msg.Sequence)
	}
	if cfg.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && last < cfg.OptStartSeq {
		return 0, nil // nothing it delivers is stored yet
	}
	return last, nil
}

// Rebuild starts the durable Watch or reactor name again: its next run
// delivers every matching event after sequence after (0: from the start of
// the store) again, and its parked events are removed (they will be met
// again). Stop every process running it first, and reset what it builds
// (truncate the read model's tables) before running it again.
//
// It fails with ErrDurableActive while a process runs it (or one stopped
// without Stop less than its ack wait ago), and with an error matching
// jetstream.ErrConsumerNotFound if it was never run.
func (s *EventStore) Rebuild(ctx context.Context, name string, after uint64) error {
	info, err := s.inactiveConsumer(ctx, name, "rebuild")
	if err != nil {
		return err
	}
	parked, err := s.parkedStream(ctx, false)
	if err != nil {
		return err
	}
	if parked != nil {
		if err := parked.purge(ctx, name); err != nil {
			return err
		}
	}
	_, err = s.stream.ResetConsumerToSequence(ctx, name, after+1)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("rita: rebuild %q in store %q: %w", name, s.name, err)
	}
	// The consumer starts later than after (ErrConsumerInvalidReset), or
	// the server cannot reset consumers: make it again, starting there.
	cfg := info.Config
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverAllPolicy, 0, nil
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	if err := s.stream.DeleteConsumer(ctx, name); err != nil {
		return fmt.Errorf("rita: rebuild %q in store %q: %w", name, s.name, err)
	}
	if _, err := s.stream.CreateConsumer(ctx, cfg); err != nil {
		return fmt.Errorf("rita: rebuild %q in store %q: %w", name, s.name, err)
	}
	return nil
}

// DeleteDurable removes the durable Watch or reactor name from the server:
// its consumer, its retry consumer and its parked events. Its next run starts
// afresh. It fails with ErrDurableActive while a process runs it, and with an
// error matching jetstream.ErrConsumerNotFound if it was never run.
func (s *EventStore) DeleteDurable(ctx context.Context, name string) error {
	if _, err := s.inactiveConsumer(ctx, name, "delete"); err != nil {
		return err
	}
	if err := s.stream.DeleteConsumer(ctx, name); err != nil {
		return fmt.Errorf("rita: delete %q in store %q: %w", name, s.name, err)
	}
	parked, err := s.parkedStream(ctx, false)
	if err != nil || parked == nil {
		return err
	}
	if err := parked.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("rita: delete %q in store %q: %w", name, s.name, err)
	}
	return parked.purge(ctx, name)
}

// inactiveConsumer returns the info of consumer name, refusing it if a
// process runs it.
func (s *EventStore) inactiveConsumer(ctx context.Context, name, op string) (*jetstream.ConsumerInfo, error) {
	if s == nil {
		return nil, errNilStore
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if err := validateDurableName(name); err != nil {
		return nil, err
	}
	info, err := s.consumerInfo(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("rita: %s %q in store %q: %w", op, name, s.name, err)
	}
	if pinned(info) {
		return nil, fmt.Errorf("%w: cannot %s %q in store %q while a process runs it", ErrDurableActive, op, name, s.name)
	}
	return info, nil
}

// consumerInfo returns the current info of the store's consumer name.
func (s *EventStore) consumerInfo(ctx context.Context, name string) (*jetstream.ConsumerInfo, error) {
	c, err := s.stream.Consumer(ctx, name)
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}
