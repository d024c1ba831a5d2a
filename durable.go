package rita

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/durable"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Durable is a durable consumer of a store, by name: a consumer that keeps
// its place on the server, so that a process that restarts resumes after the
// last event it handled, and several processes running it share it (one of
// them is delivered to at a time, and another takes over when it stops).
// With WithPartitions they share its work instead, by entity.
//
// Watch keeps a model up to date with it and React runs a handler for side
// effects; both return a Subscription. Progress, WaitCaughtUp, Rebuild,
// Delete and the parked events work whether it runs in this process,
// another one, or none.
//
// A Durable is a handle: making one sends no request, and its methods
// check the name (one subject token without wildcards, whitespace or path
// separators, at most 200 bytes; otherwise ErrInvalidOption). It is safe
// for concurrent use by multiple goroutines. The methods of a Durable of a
// nil store fail with ErrInvalidArgument.
type Durable struct {
	s    *EventStore
	name string
}

// Durable returns the handle of the durable consumer name of the store.
func (s *EventStore) Durable(name string) *Durable {
	return &Durable{s: s, name: name}
}

// Name returns the name of the durable consumer.
func (d *Durable) Name() string { return d.name }

// check refuses a nil store or context, and an invalid name.
func (d *Durable) check(ctx context.Context) error {
	if err := d.s.check(ctx); err != nil {
		return err
	}
	return validateDurableName(d.name)
}

// begin is begin for an operation of the durable consumer.
func (d *Durable) begin(ctx context.Context, op operation, what string, missing bool, opts []DurableOption) (*config, error) {
	cfg, err := begin(d.s, ctx, op, what, missing, opts)
	if err != nil {
		return nil, err
	}
	return cfg, validateDurableName(d.name)
}

// validateDurableName checks that name can be a JetStream consumer name and
// a subject token.
func validateDurableName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty durable name", ErrInvalidOption)
	}
	if len(name) > 200 {
		return fmt.Errorf("%w: durable name of %d bytes, at most 200", ErrInvalidOption, len(name))
	}
	if !wire.ValidToken(name) || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%w: durable name %q must be one subject token without wildcards, whitespace or path separators", ErrInvalidOption, name)
	}
	return nil
}

// consumer is the durable consumer as the admin requests see it.
func (d *Durable) consumer() *durable.Consumer {
	s := d.s
	return &durable.Consumer{
		JS: s.m.js, NC: s.m.nc, Store: s.name, Stream: s.stream, Name: d.name, Guard: s.src.Guard,
		Notify: func(what string, attempt int, err error) {
			s.m.logger.Debug("rita: read: retrying", "store", s.name, "name", d.name, "waiting for", what, "attempt", attempt, "error", err)
		},
	}
}

// fail wraps err of the operation op.
func (d *Durable) fail(op string, err error) error {
	if errors.Is(err, durable.ErrActive) {
		return fmt.Errorf("%w: cannot %s %q in store %q while a process runs it", ErrDurableActive, op, d.name, d.s.name)
	}
	return fmt.Errorf("rita: %s %q in store %q: %w", op, d.name, d.s.name, err)
}

// Watch applies the events of the store (or of WithFilters) to model, in
// order per entity, with the durable consumer, created on first use. It
// returns once every event stored when it was called has been applied or
// parked (unless WithNoWait): a process that restarts resumes after the last
// event its model applied, so Watch suits a model that keeps its state
// elsewhere (a read model in a database, say); a Model in memory needs every
// event and wants EventStore.Watch.
//
// An event is acknowledged once model.Evolve returns nil for it. An Evolve
// error is tried again (WithMaxAttempts, WithBackoff) before any later event
// of the same entity is applied; after the last attempt, or at once for an
// error wrapping ErrUnprocessable, the event goes to the error handler and is
// parked (see Parked), and so are the later events of its entity until it is
// retried. Events of other entities go on, up to WithConcurrency at once, so
// model must be safe for concurrent use when that is above 1.
//
// If ctx ends before the catch-up, Watch stops and returns an error matching
// ctx's. The consumer stays on the server after Stop; Rebuild starts it
// again from the beginning, Delete removes it.
func (d *Durable) Watch(ctx context.Context, model Evolver, opts ...DurableOption) (*Subscription, error) {
	cfg, err := d.begin(ctx, opDurableWatch, "model", model == nil, opts)
	if err != nil {
		return nil, err
	}
	handler := func(_ context.Context, e *Event) error { return model.Evolve(e) }
	sub, err := d.start(ctx, "durable watch", handler, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.noWait {
		return sub, nil
	}
	if err := d.WaitCaughtUp(ctx); err != nil {
		_ = sub.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("rita: durable watch %q of store %q: catching up: %w", d.name, d.s.name, err)
	}
	return sub, nil
}

// React runs handler for every event of the store (or of WithFilters) with
// the durable consumer, created on first use, and returns once it runs.
// A process that restarts resumes after the last event handled, and several
// processes may run the same reactor: the server delivers to one of them at
// a time and hands over to another when it stops (Stop) or vanishes (after
// WithAckWait), so that an event is never handled by two processes at the
// same time. (A process cut off from the server for longer than WithAckWait,
// rather than gone, cannot keep its events: they pass to another process
// while its handlers may still run.) With WithPartitions the processes
// share the events instead, each entity's handled by one of them at a time.
//
// What handler returns decides what happens to the event:
//   - nil: it is acknowledged, and never delivered again;
//   - an error wrapping ErrUnprocessable: it is parked at once;
//   - any other error: it is tried again after a backoff (WithBackoff), up
//     to WithMaxAttempts times, and then parked.
//
// A parked event goes to the error handler (WithErrHandler; by default it is
// logged through the Manager's logger) and is kept in the store's parked
// events (Parked, RetryParked). The later events of its entity are parked
// too, until it is retried, so that the events of an entity are always
// handled in order. Events of different entities are handled in parallel,
// up to WithConcurrency at once (default 1); a failing event holds up only
// the later events of its own entity.
//
// Delivery is at least once: a process that vanishes after its handler
// succeeded and before the event was acknowledged has the event handled
// again by the next one, so handlers should be idempotent. handler gets a
// context that ends when Stop gives up waiting for it; it must not call
// Stop. A nil handler fails with ErrInvalidArgument.
func (d *Durable) React(ctx context.Context, handler func(context.Context, *Event) error, opts ...DurableOption) (*Subscription, error) {
	cfg, err := d.begin(ctx, opReact, "handler", handler == nil, opts)
	if err != nil {
		return nil, err
	}
	return d.start(ctx, "reactor", handler, cfg)
}

// attemptKey is the context key of Attempt.
type attemptKey struct{}

// withAttempt gives ctx the attempt number n.
func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// Attempt returns the number of the attempt a handler is making on the
// event it was given: 1 the first time, 2 for the first retry, and so on; 0
// for a context that does not come from rita.
//
// A reactor's handler (Durable.React) and a projection's Apply get it
// through their context. For a reactor it counts the tries of this process
// (WithMaxAttempts) plus the deliveries of the event before, to a process
// that stopped or vanished while it held it (each counted once, though it
// may have tried more than once); a retry of a parked event (RetryParked)
// goes on from the attempts it was parked after. A handler with side
// effects that cannot be repeated (a payment, an e-mail) checks, when it
// is above 1, whether the earlier attempt went through. A durable Watch's
// Evolver has no context, and so no attempt number.
func Attempt(ctx context.Context) int {
	if ctx == nil {
		return 0
	}
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

// start runs the durable consumer with handler.
func (d *Durable) start(ctx context.Context, what string, handler func(context.Context, *Event) error, cfg *config) (*Subscription, error) {
	s := d.s
	spec, err := s.readSpec(cfg.filters)
	if err != nil {
		return nil, err
	}
	errHandler := cfg.errHandler
	if errHandler == nil {
		errHandler = func(err error, e *Event, _ jetstream.Msg) { s.m.logError(what, d.name, s.name, err, e) }
	}
	prefix := fmt.Sprintf("rita: %s %q of store %q: ", what, d.name, s.name)
	kind := "watch"
	if what == "reactor" {
		kind = "react"
	}
	ct := s.tel.consumer(s.name, kind, d.name)
	scope := s.scope
	ctx, release := s.m.guard(ctx, scope) // a refused request ends the start at once
	defer release()
	ecfg := durable.Config[*Event]{
		JS:          s.m.js,
		NC:          s.m.nc,
		Store:       s.name,
		Stream:      s.stream,
		Name:        d.name,
		What:        what,
		Subjects:    spec.Subjects,
		Match:       spec.Match,
		After:       cfg.after,
		Concurrency: cfg.concurrency,
		MaxAttempts: cfg.maxAttempts,
		Backoff:     *cfg.backoff,
		AckWait:     cfg.ackWait,
		Decode:      func(m *jsapi.Msg) (*Event, error) { return decodeEvent(context.Background(), s.m.types, s.ring, m) },
		Handle: func(ctx context.Context, e *Event, attempt int) error {
			return ct.handle(withAttempt(ctx, attempt), e, attempt, handler)
		},
		Parked:    func() { ct.attrs.Add(context.Background(), ct.M.Parked, 1) },
		Permanent: func(err error) bool { return errors.Is(err, ErrUnprocessable) },
		Report: func(err error, e *Event, msg jetstream.Msg) {
			errHandler(fmt.Errorf("%s%w", prefix, err), e, msg)
		},
	}
	var run runner
	if cfg.partitions > 0 {
		run, err = d.startPartitioned(ctx, ecfg, spec, cfg)
	} else if err = d.checkNotPartitioned(ctx); err == nil {
		run, err = durable.Start(ctx, ecfg)
	}
	if errors.Is(err, durable.ErrMismatch) {
		return nil, fmt.Errorf("%s%w: %w", prefix, ErrInvalidOption, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s%w", prefix, s.denied(ctx, scope, err))
	}
	ct.observeLag(run.Done(), func(ctx context.Context) (uint64, error) {
		if cfg.partitions > 0 {
			p, err := d.Progress(ctx)
			return p.Lag(), err
		}
		info, err := d.consumer().Info(ctx)
		if err != nil {
			return 0, err
		}
		return info.NumPending + uint64(max(info.NumAckPending, 0)), nil
	})
	return &Subscription{run: run, prefix: prefix}, nil
}

// checkNotPartitioned refuses to run d plain when it is partitioned. A user
// whose permissions do not reach d's partition stream (docs/permissions.md:
// a consumer runs plain consumers) cannot have made one: its refusal means
// "not partitioned", at once.
func (d *Durable) checkNotPartitioned(ctx context.Context) error {
	scope := &jsapi.Scope{Streams: []string{wire.PartitionStream(d.s.name, d.name)}}
	ctx, release := d.s.m.guard(ctx, scope)
	defer release()
	err := d.consumer().CheckNotPartitioned(ctx)
	if jsapi.DeniedBy(ctx) != nil {
		return nil
	}
	return err
}

// runner is a running durable consumer: an engine, or a member of a
// partitioned consumer's group.
type runner interface {
	Stop(context.Context) error
	Done() <-chan struct{}
	Err() error
}

// Progress is how far a durable consumer has come, as the server sees it:
// it holds for every process running it.
type Progress struct {
	// Name is the name of the durable consumer.
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

	// Partitions holds, for a partitioned consumer (WithPartitions), the
	// progress of each partition, partition k at k; nil otherwise. The
	// fields above add them up (Pending also counts the events not yet
	// copied to the partitions).
	Partitions []PartitionProgress
}

// PartitionProgress is how far one partition of a partitioned consumer has
// come, as the server sees it.
type PartitionProgress struct {
	// Partition is the partition's number, from 0.
	Partition int

	// Pending counts the partition's events not yet delivered.
	Pending uint64

	// InFlight counts its events delivered and not yet done.
	InFlight int

	// Delivered is the sequence of the last event delivered.
	Delivered uint64

	// Active reports whether a process runs the partition.
	Active bool
}

// CaughtUp reports whether every event stored when the progress was read
// was done: none pending, none in flight.
func (p Progress) CaughtUp() bool { return p.Pending == 0 && p.InFlight == 0 }

// Lag is the number of events not yet done: Pending + InFlight.
func (p Progress) Lag() uint64 { return p.Pending + uint64(p.InFlight) }

// Progress returns the progress of the durable consumer, whether it runs in
// this process, another one, or none. One that was never run fails with an
// error matching jetstream.ErrConsumerNotFound.
func (d *Durable) Progress(ctx context.Context) (Progress, error) {
	if err := d.check(ctx); err != nil {
		return Progress{}, err
	}
	c := d.consumer()
	info, err := c.Info(ctx)
	if set, perr := d.consumer().PartitionsIfMissing(ctx, err); perr != nil || set != nil {
		if perr != nil {
			return Progress{}, d.fail("progress of", perr)
		}
		return d.partitionProgress(ctx, set)
	}
	if err != nil {
		return Progress{}, d.fail("progress of", err)
	}
	sinfo, err := c.StreamInfo(ctx)
	if err != nil {
		return Progress{}, d.fail("progress of", err)
	}
	parked, err := c.ParkedCount(ctx)
	if err != nil {
		return Progress{}, d.fail("progress of", err)
	}
	return Progress{
		Name:          d.name,
		Pending:       info.NumPending,
		InFlight:      info.NumAckPending,
		Applied:       info.AckFloor.Stream,
		Delivered:     info.Delivered.Stream,
		StoreSequence: sinfo.State.LastSeq,
		Parked:        parked,
		Active:        durable.Pinned(info),
	}, nil
}

// WaitCaughtUp waits until the durable consumer has done (handled or
// parked) every matching event stored when WaitCaughtUp was called. It
// polls the consumer, and returns an error matching ctx's if ctx ends first.
// Something must be running it, here or in another process, for it ever to
// return nil. One that was never run fails with an error matching
// jetstream.ErrConsumerNotFound.
func (d *Durable) WaitCaughtUp(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	c := d.consumer()
	info, err := c.Info(ctx)
	if set, perr := d.consumer().PartitionsIfMissing(ctx, err); perr != nil || set != nil {
		if perr != nil {
			return d.fail("wait for", perr)
		}
		return d.waitPartitions(ctx, set)
	}
	if err != nil {
		return d.fail("wait for", err)
	}
	target, err := c.LastMatching(ctx, d.s.m.nc, info.Config)
	if err != nil {
		return d.fail("wait for", err)
	}
	poll := jsapi.PollBackoff()
	for n := 1; info.AckFloor.Stream < target; n++ {
		if err := jsapi.Wait(ctx, poll.Delay(n)); err != nil {
			return d.fail("wait for", err)
		}
		if info, err = c.Info(ctx); err != nil {
			return d.fail("wait for", err)
		}
	}
	return nil
}

// Rebuild starts the durable consumer again: its next run delivers every
// matching event after sequence after (0: from the start of the store)
// again, and its parked events are removed (they will be met again). Stop
// every process running it first, and reset what it builds (truncate the
// read model's tables) before running it again.
//
// It fails with ErrDurableActive while a process runs it (or one stopped
// without Stop less than its ack wait ago), and with an error matching
// jetstream.ErrConsumerNotFound if it was never run.
func (d *Durable) Rebuild(ctx context.Context, after uint64) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	if err := d.consumer().Rebuild(ctx, after); err != nil {
		return d.fail("rebuild", err)
	}
	return nil
}

// Delete removes the durable consumer from the server: its consumer, its
// retry consumer and its parked events. Its next run starts afresh. It
// fails with ErrDurableActive while a process runs it, and with an error
// matching jetstream.ErrConsumerNotFound if it was never run.
func (d *Durable) Delete(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	if err := d.consumer().Delete(ctx); err != nil {
		return d.fail("delete", err)
	}
	return nil
}

// ParkedEvent is an event that a durable consumer could not handle, as
// Durable.Parked and GetParked return it.
type ParkedEvent struct {
	// Consumer is the name of the durable consumer that parked it.
	Consumer string

	// Event is the event as stored: Sequence and Subject say where. If its
	// payload cannot be decoded (DecodeErr is set), Data holds the raw bytes.
	Event *Event

	// DecodeErr says why the payload could not be decoded, if it could not.
	DecodeErr error

	// Reason is the error of the last attempt.
	Reason string

	// Attempts counts the times the event was tried, over every retry.
	// It is 0 for an event parked without being tried: one that could not be
	// decoded, or one parked because an earlier event of its entity was.
	Attempts int

	// BlockedBy is, for an event parked because an earlier event of its
	// entity was parked, the sequence of that earlier event; 0 otherwise.
	BlockedBy uint64

	// ParkedAt is when it was (last) parked.
	ParkedAt time.Time
}

// parkedEvent turns an entry into a ParkedEvent.
func (d *Durable) parkedEvent(entry *durable.Entry) *ParkedEvent {
	pe := &ParkedEvent{
		Consumer:  entry.Consumer,
		Reason:    entry.Reason,
		Attempts:  entry.Attempts,
		BlockedBy: entry.BlockedBy,
		ParkedAt:  entry.ParkedAt,
	}
	m := entry.Event()
	e, err := decodeEvent(context.Background(), d.s.m.types, d.s.ring, m)
	if err != nil {
		pe.DecodeErr = err
		// Without the registry the payload stays raw; this only fails for
		// a malformed Rita-Time, which is then left out.
		delete(m.Header, wire.HdrTime)
		if e, err = decodeEvent(context.Background(), nil, nil, m); err != nil {
			e = &Event{ID: m.Header.Get(wire.HdrMsgID), Data: m.Data, sequence: m.Seq, subject: m.Subject}
		}
	}
	pe.Event = e
	return pe
}

// Parked returns the events the durable consumer has parked, in sequence
// order; none (an empty slice) if it has parked none. It reads every entry:
// it is meant for people and tools that look after a store, not for a hot
// path.
func (d *Durable) Parked(ctx context.Context) ([]*ParkedEvent, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	entries, err := d.consumer().Parked(ctx)
	if err != nil {
		return nil, d.fail("list the parked events of", err)
	}
	list := make([]*ParkedEvent, len(entries))
	for i, entry := range entries {
		list[i] = d.parkedEvent(entry)
	}
	return list, nil
}

// entry returns the entry of the event at seq, failing with
// ErrParkedNotFound if there is none.
func (d *Durable) entry(ctx context.Context, op string, seq uint64) (*durable.Consumer, *durable.Entry, error) {
	if err := d.check(ctx); err != nil {
		return nil, nil, err
	}
	c := d.consumer()
	entry, err := c.ParkedAt(ctx, seq)
	if err != nil {
		return nil, nil, d.fail(op, err)
	}
	if entry == nil {
		return nil, nil, fmt.Errorf("%w: %q has not parked event %d of store %q", ErrParkedNotFound, d.name, seq, d.s.name)
	}
	return c, entry, nil
}

// GetParked returns the event at sequence seq as the durable consumer
// parked it. It fails with ErrParkedNotFound if the consumer has not parked
// it (or it was retried or deleted since).
func (d *Durable) GetParked(ctx context.Context, seq uint64) (*ParkedEvent, error) {
	_, entry, err := d.entry(ctx, "get a parked event of", seq)
	if err != nil {
		return nil, err
	}
	return d.parkedEvent(entry), nil
}

// RetryParked sends the event at sequence seq, parked by the durable
// consumer, back for another try, with every other event of its entity the
// consumer has parked: where the consumer runs, it handles them in sequence
// order, removes each that succeeds, and parks again the first that fails
// (with its attempts added up; the rest stay parked). Once none is left,
// the entity's new events are handled again instead of parked.
//
// RetryParked only records the request and returns; the consumer acts on it
// when it runs. It fails with ErrParkedNotFound if the consumer has not
// parked the event.
func (d *Durable) RetryParked(ctx context.Context, seq uint64) error {
	c, entry, err := d.entry(ctx, "retry a parked event of", seq)
	if err != nil {
		return err
	}
	if err := c.RequestRetry(ctx, entry); err != nil {
		return d.fail("retry a parked event of", err)
	}
	return nil
}

// DeleteParked removes the event at sequence seq from the events parked by
// the durable consumer, without handling it: use it for an event that must
// be skipped. The entity's other parked events stay parked until retried.
// It fails with ErrParkedNotFound if the consumer has not parked the event.
func (d *Durable) DeleteParked(ctx context.Context, seq uint64) error {
	c, entry, err := d.entry(ctx, "delete a parked event of", seq)
	if err != nil {
		return err
	}
	if err := c.Remove(ctx, entry); err != nil {
		return d.fail("delete a parked event of", err)
	}
	return nil
}

// Subscription is a running durable consumer (Durable.Watch, Durable.React)
// or projection (Project). It is safe for concurrent use by multiple
// goroutines.
type Subscription struct {
	run    runner
	prefix string
	once   sync.Once
}

// Stop stops the subscription: it takes no new event and lets the handler
// calls (or the Apply) that run finish within ctx. A durable consumer also
// gives the events it has not handled back to the server and lets another
// process running it take over at once; its state stays on the server, so
// the next run resumes where this one stopped. A projection's checkpoint
// says where the next Project starts.
//
// If ctx ends first, Stop cancels the handlers' context and returns an
// error matching ctx's; the events a durable consumer's handlers hold stay
// with this process until they return, so that no other process handles
// them meanwhile. Stop may be called more than once, and from the error
// handler, but not from the handler, Evolver or Apply.
func (s *Subscription) Stop(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	if err := s.run.Stop(ctx); err != nil {
		return fmt.Errorf("%sstop: %w", s.prefix, err)
	}
	return nil
}

// Closed returns a channel that is closed once the subscription has
// ended: after Stop, or by itself (its connection was closed, its consumer
// or store deleted, or, for a projection, it halted).
func (s *Subscription) Closed() <-chan struct{} { return s.run.Done() }

// Err returns why the subscription ended by itself, once Closed is closed
// (for a halted projection, an error wrapping ErrProjectionHalted); nil
// while it runs and after Stop.
func (s *Subscription) Err() error { return s.run.Err() }
