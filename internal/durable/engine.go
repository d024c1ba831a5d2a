// Package durable runs the durable consumers of a store: the engine behind
// rita's Durable.Watch and Durable.React, and what an operator does to one
// (its progress, a rebuild, its parked events).
package durable

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// The engine runs a durable consumer of a store and hands its events to a
// handler.
//
// The consumer is a JetStream pull consumer with explicit acks and a pinned
// priority group: the server delivers to one process (the pinned client) at
// a time, and pins another when that one stops (Stop unpins) or stops asking
// for messages for AckWait. Within a process events are dispatched to one
// queue per entity, run by one goroutine per entity with work in it, and at
// most Concurrency handler calls run at once.
//
// Invariants, and where they are kept:
//   - owned holds every event this process received and has not resolved
//     (acknowledged, or given back with a Nak). keepAlive tells the server
//     every AckWait/4 that they are in progress, so it delivers none of them
//     elsewhere while this process holds them.
//   - An event is dispatched only while every event the consumer has
//     outstanding is owned here (resync), so that no earlier event of its
//     entity can be with another process, or lost in flight and due again.
//     Delivery starts held, and goes back to holding on a gap in the
//     consumer's delivery sequence or a lost pin.
//   - An entity's jobs run one at a time, in the order they were queued,
//     which for events is sequence order. An event is acknowledged (and the
//     server has confirmed it) before the next job of its entity starts.
//   - While the parked stream holds an entry of this consumer for an entity,
//     the entity's later events are parked (with a compare-and-set on the
//     entity's entries), never handled; blocked caches which entities have
//     entries and is checked against the stream before use.

// Config configures an engine. E is what the handler takes: a decoded
// event.
type Config[E any] struct {
	JS     jetstream.JetStream
	NC     *nats.Conn
	Store  string           // the store's name
	Stream jetstream.Stream // the store's stream

	Name string // the durable consumer's
	What string // "durable watch", "reactor": for messages

	// ParkAs is the consumer name its parked events are kept under, and
	// whose retry requests it takes; Name if empty. A partition of a
	// partitioned consumer parks under the consumer's own name.
	ParkAs string
	// NoRetries leaves the retry requests to another engine: of a
	// partitioned consumer, the one of partition 0 takes them all.
	NoRetries bool
	// Subject, if set, turns the subject an event is delivered on into the
	// one it was stored under (a partition's subjects carry the partition).
	Subject func(string) string

	Subjects []string // the consumer's filter subjects
	Match    []string // if set, handle only events matching one of these
	After    uint64   // where a new consumer starts

	Concurrency int
	// Slots, if set, are the handler slots the engine shares with others
	// (the partitions a process runs): Concurrency in all.
	Slots       chan struct{}
	MaxAttempts int
	Backoff     jsapi.Backoff
	AckWait     time.Duration

	// Decode turns a stored event into what Handle takes; an event it
	// cannot decode is parked at once, untried.
	Decode func(*jsapi.Msg) (E, error)

	// Handle handles one event, the attempt-th time (1 for the first). An
	// error it returns is tried again after a backoff, up to MaxAttempts
	// times, then the event is parked; at once if Permanent says so.
	Handle    func(ctx context.Context, e E, attempt int) error
	Permanent func(error) bool

	// Parked, if set, is called for each event the engine parks.
	Parked func()

	// Report is told, on one goroutine and in order, of each event parked
	// and each failure the engine recovers from (with the event and
	// message when there is one).
	Report func(err error, e E, msg jetstream.Msg)
}

// Engine is a running durable consumer.
type Engine[E any] struct {
	cfg    Config[E]
	parked *Parked

	cons      jetstream.Consumer
	retryCons jetstream.Consumer
	cc        jetstream.ConsumeContext
	retryCC   jetstream.ConsumeContext

	hctx    context.Context // handlers' context, cancelled when Stop gives up waiting
	hcancel context.CancelFunc
	stopCh  chan struct{} // closed when Stop begins
	slots   chan struct{} // one per handler call that may run
	kaStop  chan struct{}
	done    chan struct{} // closed once everything is resolved and the pin released

	mu        sync.Mutex
	stopping  bool
	endErr    error                    // why the engine ended by itself
	owned     map[uint64]*delivery     // events received and not resolved, by stream sequence
	acking    int                      // of owned, those whose ack is on its way
	retries   map[uint64]jetstream.Msg // retry requests received and not resolved
	holding   bool
	held      []*delivery
	resyncing bool
	checking  bool // a check that the consumer still exists runs
	lastDseq  uint64
	pinID     string // pin ID the server gave this process for the consumer
	retryPin  string // and for the retry consumer
	queues    map[entity]*entityQueue
	blocked   map[entity]bool

	workers  sync.WaitGroup // entity runners, resync and checks
	stopOnce sync.Once

	reports   reportQueue[E]
	inReport  atomic.Bool
	reporting chan struct{} // closed when the reporter has ended
}

// delivery is an event as the consumer delivered it.
type delivery struct {
	msg     jetstream.Msg
	md      *jetstream.MsgMetadata
	seq     uint64
	key     entity
	subject string // as stored in the store
}

// job is an event of the store, or a request to retry an entity's parked
// events.
type job struct {
	d     *delivery
	retry jetstream.Msg
	rseq  uint64
}

type entityQueue struct{ jobs []job }

const (
	// PriorityGroup is the one priority group of rita's durable consumers.
	PriorityGroup = "rita"

	// opTimeout bounds one request the engine makes on its own behalf.
	opTimeout = 10 * time.Second

	// hdrPinID carries, on each message of a pinned consumer, the pin ID
	// of the client it is delivered to.
	hdrPinID = "Nats-Pin-Id"

	// defaultMaxAckPending bounds the events delivered to a durable
	// consumer and not yet acknowledged: those being handled, waiting
	// behind an earlier event of their entity, or retried.
	defaultMaxAckPending = 1000
)

// Start creates or updates the durable consumer and its retry consumer, and
// starts delivering to the handler.
func Start[E any](ctx context.Context, cfg Config[E]) (*Engine[E], error) {
	if cfg.ParkAs == "" {
		cfg.ParkAs = cfg.Name
	}
	parked, err := OpenParked(ctx, cfg.JS, cfg.Store, cfg.Stream, true)
	if err != nil {
		return nil, err
	}
	cons, err := ensureConsumer(ctx, cfg.Stream, cfg.Name, cfg.Subjects, cfg.After, &cfg, "rita "+cfg.What)
	if err != nil {
		return nil, err
	}
	var retryCons jetstream.Consumer
	if !cfg.NoRetries {
		retryCons, err = ensureConsumer(ctx, parked.stream, cfg.ParkAs, []string{wire.RetryRequests(cfg.Store, cfg.ParkAs)}, 0, &cfg, "rita retries of "+cfg.What)
		if err != nil {
			return nil, fmt.Errorf("retry consumer: %w", err)
		}
	}
	slots := cfg.Slots
	if slots == nil {
		slots = make(chan struct{}, cfg.Concurrency)
	}
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Engine[E]{
		cfg:       cfg,
		parked:    parked,
		cons:      cons,
		retryCons: retryCons,
		hctx:      hctx,
		hcancel:   hcancel,
		stopCh:    make(chan struct{}),
		slots:     slots,
		kaStop:    make(chan struct{}),
		done:      make(chan struct{}),
		owned:     make(map[uint64]*delivery),
		retries:   make(map[uint64]jetstream.Msg),
		holding:   true,
		queues:    make(map[entity]*entityQueue),
		blocked:   make(map[entity]bool),
		reporting: make(chan struct{}),
	}
	r.reports.init()
	go r.reporter()
	expiry := max(time.Second, cfg.AckWait/4)
	r.cc, err = cons.Consume(r.receive,
		jetstream.PullPriorityGroup(PriorityGroup),
		jetstream.PullExpiry(expiry),
		jetstream.ConsumeErrHandler(r.consumeError),
	)
	if err != nil {
		r.abort()
		return nil, fmt.Errorf("consume: %w", err)
	}
	if retryCons != nil {
		r.retryCC, err = retryCons.Consume(r.receiveRetry,
			jetstream.PullPriorityGroup(PriorityGroup),
			jetstream.PullExpiry(expiry),
			jetstream.ConsumeErrHandler(r.retryConsumeError),
		)
		if err != nil {
			r.cc.Stop()
			r.abort()
			return nil, fmt.Errorf("consume retries: %w", err)
		}
	}
	go r.keepAlive()
	go r.watchEnd()
	return r, nil
}

// abort undoes a start that failed before anything was delivered.
func (r *Engine[E]) abort() {
	r.hcancel()
	r.reports.close()
	<-r.reporting
}

// ensureConsumer creates the durable consumer name on stream, or updates an
// existing one to cfg, keeping where it starts.
func ensureConsumer[E any](ctx context.Context, stream jetstream.Stream, name string, subjects []string, after uint64, cfg *Config[E], desc string) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    desc,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  max(defaultMaxAckPending, 4*cfg.Concurrency),
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroup},
		PinnedTTL:      cfg.AckWait,
	}
	if len(subjects) == 1 {
		cc.FilterSubject = subjects[0]
	} else {
		cc.FilterSubjects = subjects
	}
	if after > 0 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = after + 1
	}
	existing, err := stream.Consumer(ctx, name)
	switch {
	case err == nil:
		old := existing.CachedInfo().Config
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
		cc.Replicas, cc.MemoryStorage = old.Replicas, old.MemoryStorage
		if sameConsumerConfig(old, cc) {
			return existing, nil
		}
		return stream.UpdateConsumer(ctx, cc)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err := stream.CreateConsumer(ctx, cc)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Created by another process meanwhile: use it as it is.
			return stream.Consumer(ctx, name)
		}
		return c, err
	default:
		return nil, err
	}
}

// sameConsumerConfig reports whether an existing consumer already has what
// ensureConsumer would set.
func sameConsumerConfig(old, want jetstream.ConsumerConfig) bool {
	return old.AckPolicy == want.AckPolicy &&
		old.AckWait == want.AckWait &&
		old.MaxDeliver == want.MaxDeliver &&
		old.MaxAckPending == want.MaxAckPending &&
		old.PriorityPolicy == want.PriorityPolicy &&
		slices.Equal(old.PriorityGroups, want.PriorityGroups) &&
		old.PinnedTTL == want.PinnedTTL &&
		old.FilterSubject == want.FilterSubject &&
		slices.Equal(old.FilterSubjects, want.FilterSubjects) &&
		old.Description == want.Description
}

// receive takes an event from the consumer; it runs on the subscription's
// goroutine and does not block.
func (r *Engine[E]) receive(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.report(fmt.Errorf("message metadata: %w", err), msg)
		return
	}
	subject := msg.Subject()
	if r.cfg.Subject != nil {
		subject = r.cfg.Subject(subject)
	}
	key, ok := entityOf(subject, 2)
	if !ok {
		key = entity{"_", "_"}
	}
	d := &delivery{msg: msg, md: md, seq: md.Sequence.Stream, key: key, subject: subject}

	r.mu.Lock()
	defer r.mu.Unlock()
	if pin := msg.Headers().Get(hdrPinID); pin != "" {
		r.pinID = pin
	}
	if r.stopping {
		if _, held := r.owned[d.seq]; !held { // a Nak of one held here would free it for others
			_ = msg.Nak()
		}
		return
	}
	dseq := md.Sequence.Consumer
	if r.lastDseq != 0 && dseq != r.lastDseq+1 {
		// Some deliveries went elsewhere or were lost: an earlier event of
		// an entity may be outstanding, so wait until it is here.
		r.holding = true
	}
	r.lastDseq = dseq
	if _, dup := r.owned[d.seq]; dup {
		// Delivered again while held here: the server acknowledges by
		// stream sequence, so the first delivery still serves.
		return
	}
	r.owned[d.seq] = d
	if r.holding {
		r.held = append(r.held, d)
		r.startResyncLocked()
		return
	}
	r.dispatchLocked(d)
}

// dispatchLocked queues d behind the earlier events of its entity.
func (r *Engine[E]) dispatchLocked(d *delivery) {
	if r.cfg.Match != nil && !wire.MatchesAny(r.cfg.Match, d.subject) {
		delete(r.owned, d.seq)
		_ = d.msg.Ack()
		return
	}
	r.enqueueLocked(d.key, job{d: d})
}

// enqueueLocked adds j to the entity's queue, starting its runner if idle.
func (r *Engine[E]) enqueueLocked(key entity, j job) {
	if q := r.queues[key]; q != nil {
		q.jobs = append(q.jobs, j)
		return
	}
	q := &entityQueue{jobs: []job{j}}
	r.queues[key] = q
	r.workers.Add(1)
	go r.runEntity(key, q)
}

// runEntity runs the entity's jobs in order until its queue is empty.
func (r *Engine[E]) runEntity(key entity, q *entityQueue) {
	defer r.workers.Done()
	for {
		r.mu.Lock()
		if len(q.jobs) == 0 {
			delete(r.queues, key)
			r.mu.Unlock()
			return
		}
		j := q.jobs[0]
		r.mu.Unlock()
		if j.d != nil {
			r.runEvent(key, j.d)
		} else {
			r.runRetry(key, j.rseq, j.retry)
		}
		r.mu.Lock()
		q.jobs[0] = job{}
		q.jobs = q.jobs[1:]
		r.mu.Unlock()
	}
}

// msgOf is the stored message of a delivery.
func msgOf(d *delivery) *jsapi.Msg {
	return &jsapi.Msg{Subject: d.subject, Header: d.msg.Headers(), Data: d.msg.Data(), Seq: d.seq, Time: d.md.Timestamp}
}

// runEvent handles one event: it is tried until it succeeds or runs out of
// attempts, or parked at once if it cannot be decoded, is unprocessable, or
// an earlier event of its entity is parked.
func (r *Engine[E]) runEvent(key entity, d *delivery) {
	if r.isStopping() {
		r.giveBack(d)
		return
	}
	e, err := r.cfg.Decode(msgOf(d))
	if err != nil {
		var none E
		r.parkFailed(key, d, none, err, 0)
		return
	}
	if r.isBlocked(key) {
		if dealt := r.parkIfBlocked(key, d, e); dealt {
			return
		}
	}
	// Deliveries before this one were tried by a process that stopped or
	// vanished, at least once each.
	prior := 0
	if d.md != nil && d.md.NumDelivered > 1 {
		prior = int(d.md.NumDelivered - 1)
	}
	for attempt := 1; ; attempt++ {
		if !r.acquire() {
			r.giveBack(d)
			return
		}
		err := r.call(e, prior+attempt)
		r.release()
		if err == nil {
			r.ack(d)
			return
		}
		if r.cfg.Permanent(err) || attempt >= r.cfg.MaxAttempts {
			r.parkFailed(key, d, e, err, attempt)
			return
		}
		if !r.wait(r.cfg.Backoff.Delay(attempt)) {
			r.giveBack(d)
			return
		}
	}
}

// call runs the handler, turning a panic into an error.
func (r *Engine[E]) call(e E, attempt int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return r.cfg.Handle(r.hctx, e, attempt)
}

// parkFailed parks an event that failed, then acknowledges it.
func (r *Engine[E]) parkFailed(key entity, d *delivery, e E, cause error, attempts int) {
	n := note{consumer: r.cfg.ParkAs, reason: cause.Error(), attempts: attempts}
	if !r.put(key, sourceOf(d), n, nil) {
		r.giveBack(d)
		return
	}
	r.setBlocked(key)
	r.parkedOne()
	r.reportEvent(fmt.Errorf("event %d of %s parked after %s: %w", d.seq, key, tries(attempts), cause), e, d.msg)
	r.ack(d)
}

// parkedOne tells Config.Parked of an event parked.
func (r *Engine[E]) parkedOne() {
	if r.cfg.Parked != nil {
		r.cfg.Parked()
	}
}

// tries says "1 attempt" or "n attempts".
func tries(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// parkIfBlocked parks d if an earlier event of its entity is parked. It
// reports whether d was dealt with (parked, or given back on stop); false
// means the entity is no longer blocked and d is to be handled.
func (r *Engine[E]) parkIfBlocked(key entity, d *delivery, e E) bool {
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		last, err := r.parked.lastOf(ctx, r.cfg.ParkAs, key)
		cancel()
		if err != nil {
			if r.failed(err, n) {
				r.giveBack(d)
				return true
			}
			continue
		}
		if last == nil {
			r.clearBlocked(key)
			return false
		}
		if last.src.seq >= d.seq {
			// Parked already (this event, delivered again after a crash
			// between parking and acknowledging), or resolved: a later
			// event of the entity is parked.
			r.ack(d)
			return true
		}
		blockedBy := last.BlockedBy
		if blockedBy == 0 {
			blockedBy = last.src.seq
		}
		n := note{
			consumer:  r.cfg.ParkAs,
			reason:    fmt.Sprintf("waiting for event %d of %s, which is parked", blockedBy, key),
			blockedBy: blockedBy,
		}
		expect := last.raw.Sequence
		ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
		_, err = r.parked.put(ctx, key, sourceOf(d), n, &expect)
		cancel()
		if errors.Is(err, errParkConflict) {
			continue // the entity's entries changed: look again
		}
		if err != nil {
			if r.failed(err, 1) {
				r.giveBack(d)
				return true
			}
			continue
		}
		r.parkedOne()
		r.reportEvent(fmt.Errorf("event %d of %s parked: %s", d.seq, key, n.reason), e, d.msg)
		r.ack(d)
		return true
	}
}

// failed reports a failure of the engine's own request and waits before the
// n+1-th try; it reports whether to give up (the connection is closed, or
// the engine stops).
func (r *Engine[E]) failed(err error, n int) bool {
	if r.connClosed() {
		return true
	}
	r.report(err, nil)
	return !r.wait(r.cfg.Backoff.Delay(n))
}

// put stores an entry, trying again on failure until it is stored or the
// engine stops; it reports whether it was stored.
func (r *Engine[E]) put(key entity, src source, n note, expect *uint64) bool {
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := r.parked.put(ctx, key, src, n, expect)
		cancel()
		if err == nil {
			return true
		}
		if r.failed(err, try) {
			return false
		}
	}
}

// ack acknowledges d and waits for the server to confirm, so that d cannot
// be delivered again after a later event of its entity is handled. While
// running it tries until confirmed; once stopping, three times.
func (r *Engine[E]) ack(d *delivery) {
	r.mu.Lock()
	r.acking++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.acking--
		delete(r.owned, d.seq)
		r.mu.Unlock()
	}()
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := d.msg.DoubleAck(ctx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) || r.connClosed() {
			return
		}
		r.report(fmt.Errorf("acknowledge event %d: %w", d.seq, err), d.msg)
		if r.isStopping() && n >= 3 {
			return
		}
		r.sleep(r.cfg.Backoff.Delay(n))
	}
}

// giveBack returns d to the server for delivery again (to this process or
// another), without handling it.
func (r *Engine[E]) giveBack(d *delivery) {
	_ = d.msg.Nak()
	r.mu.Lock()
	delete(r.owned, d.seq)
	r.mu.Unlock()
}

// acquire takes a handler slot; false if the engine stops first.
func (r *Engine[E]) acquire() bool {
	select {
	case <-r.stopCh:
		return false
	default:
	}
	select {
	case r.slots <- struct{}{}:
		return true
	case <-r.stopCh:
		return false
	}
}

func (r *Engine[E]) release() { <-r.slots }

// wait waits d; false if the engine stops first.
func (r *Engine[E]) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stopCh:
		return false
	}
}

// sleep waits d, or until the handlers' context ends.
func (r *Engine[E]) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.hctx.Done():
	}
}

// connClosed reports whether the connection is closed for good: nothing the
// engine asks of the server can succeed any more.
func (r *Engine[E]) connClosed() bool { return r.cfg.NC.IsClosed() }

func (r *Engine[E]) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

func (r *Engine[E]) isBlocked(key entity) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blocked[key]
}

func (r *Engine[E]) setBlocked(key entity) {
	r.mu.Lock()
	r.blocked[key] = true
	r.mu.Unlock()
}

func (r *Engine[E]) clearBlocked(key entity) {
	r.mu.Lock()
	delete(r.blocked, key)
	r.mu.Unlock()
}
