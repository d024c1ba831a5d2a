package rita

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// durable runs a durable consumer of a store and hands its events to a
// handler: the engine behind a Watch with WithDurable and React.
//
// The consumer is a JetStream pull consumer with explicit acks and a pinned
// priority group: the server delivers to one process (the pinned client) at
// a time, and pins another when that one stops (Stop unpins) or stops asking
// for messages for AckWait. Within a process events are dispatched to one
// queue per entity, run by one goroutine per entity with work in it, and at
// most cfg.concurrency handler calls run at once.
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
type durable struct {
	s          *EventStore
	name       string
	what       string // "durable watch" or "reactor", for messages
	cfg        durableConfig
	handler    func(context.Context, *Event) error
	errHandler func(error, *Event, jetstream.Msg)
	match      []string
	parked     *parkedStore

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
	owned     map[uint64]*delivery     // events received and not resolved, by stream sequence
	acking    int                      // of owned, those whose ack is on its way
	retries   map[uint64]jetstream.Msg // retry requests received and not resolved
	holding   bool
	held      []*delivery
	resyncing bool
	lastDseq  uint64
	pinID     string // pin ID the server gave this process for the consumer
	retryPin  string // and for the retry consumer
	queues    map[entityKey]*entityQueue
	blocked   map[entityKey]bool

	workers  sync.WaitGroup // entity runners and resync
	stopOnce sync.Once

	reports   reportQueue
	inReport  atomic.Bool
	reporting chan struct{} // closed when the reporter has ended
}

// delivery is an event as the consumer delivered it.
type delivery struct {
	msg jetstream.Msg
	md  *jetstream.MsgMetadata
	seq uint64
	key entityKey
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
	// priorityGroup is the one priority group of rita's durable consumers.
	priorityGroup = "rita"

	// opTimeout bounds one request the engine makes on its own behalf.
	opTimeout = 10 * time.Second

	// hdrPinID carries, on each message of a pinned consumer, the pin ID
	// of the client it is delivered to.
	hdrPinID = "Nats-Pin-Id"
)

// startDurable creates or updates the durable consumer name and its retry
// consumer, and starts delivering to handler.
func (s *EventStore) startDurable(ctx context.Context, name, what string, handler func(context.Context, *Event) error, wc *watchConfig) (*durable, error) {
	cfg := wc.durable.withDefaults()
	subjects, match, err := s.selectSubjects(wc.filters)
	if err != nil {
		return nil, err
	}
	parked, err := s.parkedStream(ctx, true)
	if err != nil {
		return nil, err
	}
	cons, err := s.ensureConsumer(ctx, s.stream, name, subjects, wc.afterSeq, cfg, "rita "+what)
	if err != nil {
		return nil, fmt.Errorf("rita: %s %q of store %q: %w", what, name, s.name, err)
	}
	retryCons, err := s.ensureConsumer(ctx, parked.stream, name, []string{retryPattern(s.name, name)}, 0, cfg, "rita retries of "+what)
	if err != nil {
		return nil, fmt.Errorf("rita: %s %q of store %q: retry consumer: %w", what, name, s.name, err)
	}
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &durable{
		s:          s,
		name:       name,
		what:       what,
		cfg:        cfg,
		handler:    handler,
		errHandler: wc.errHandler,
		match:      match,
		parked:     parked,
		cons:       cons,
		retryCons:  retryCons,
		hctx:       hctx,
		hcancel:    hcancel,
		stopCh:     make(chan struct{}),
		slots:      make(chan struct{}, cfg.concurrency),
		kaStop:     make(chan struct{}),
		done:       make(chan struct{}),
		owned:      make(map[uint64]*delivery),
		retries:    make(map[uint64]jetstream.Msg),
		holding:    true,
		queues:     make(map[entityKey]*entityQueue),
		blocked:    make(map[entityKey]bool),
		reporting:  make(chan struct{}),
	}
	if r.errHandler == nil {
		r.errHandler = r.logError
	}
	r.reports.init()
	go r.reporter()
	expiry := max(time.Second, cfg.ackWait/4)
	r.cc, err = cons.Consume(r.receive,
		jetstream.PullPriorityGroup(priorityGroup),
		jetstream.PullExpiry(expiry),
		jetstream.ConsumeErrHandler(r.consumeError),
	)
	if err != nil {
		r.abort()
		return nil, fmt.Errorf("rita: %s %q of store %q: consume: %w", what, name, s.name, err)
	}
	r.retryCC, err = retryCons.Consume(r.receiveRetry,
		jetstream.PullPriorityGroup(priorityGroup),
		jetstream.PullExpiry(expiry),
		jetstream.ConsumeErrHandler(r.retryConsumeError),
	)
	if err != nil {
		r.cc.Stop()
		r.abort()
		return nil, fmt.Errorf("rita: %s %q of store %q: consume retries: %w", what, name, s.name, err)
	}
	go r.keepAlive()
	return r, nil
}

// abort undoes a start that failed before anything was delivered.
func (r *durable) abort() {
	r.hcancel()
	r.reports.close()
	<-r.reporting
}

// ensureConsumer creates the durable consumer name on stream, or updates an
// existing one to cfg, keeping where it starts.
func (s *EventStore) ensureConsumer(ctx context.Context, stream jetstream.Stream, name string, subjects []string, afterSeq uint64, cfg durableConfig, desc string) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    desc,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.ackWait,
		MaxDeliver:     -1,
		MaxAckPending:  max(defaultMaxAckPending, 4*cfg.concurrency),
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{priorityGroup},
		PinnedTTL:      cfg.ackWait,
	}
	if len(subjects) == 1 {
		cc.FilterSubject = subjects[0]
	} else {
		cc.FilterSubjects = subjects
	}
	if afterSeq > 0 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = afterSeq + 1
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
func (r *durable) receive(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.report(fmt.Errorf("rita: %s %q of store %q: %w: %w", r.what, r.name, r.s.name, ErrEventDecode, err), nil, msg)
		return
	}
	key, ok := keyOfSubject(msg.Subject(), 2)
	if !ok {
		key = entityKey{"_", "_"}
	}
	d := &delivery{msg: msg, md: md, seq: md.Sequence.Stream, key: key}

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
func (r *durable) dispatchLocked(d *delivery) {
	if r.match != nil && !matchesAny(r.match, d.msg.Subject()) {
		delete(r.owned, d.seq)
		_ = d.msg.Ack()
		return
	}
	r.enqueueLocked(d.key, job{d: d})
}

// enqueueLocked adds j to the entity's queue, starting its runner if idle.
func (r *durable) enqueueLocked(key entityKey, j job) {
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
func (r *durable) runEntity(key entityKey, q *entityQueue) {
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

// runEvent handles one event: it is tried until it succeeds or runs out of
// attempts, or parked at once if it cannot be decoded, is unprocessable, or
// an earlier event of its entity is parked.
func (r *durable) runEvent(key entityKey, d *delivery) {
	if r.isStopping() {
		r.giveBack(d)
		return
	}
	e, err := decodeEvent(r.s.m.types, d.msg.Subject(), d.msg.Headers(), d.msg.Data(), d.seq, d.md.Timestamp)
	if err != nil {
		r.parkFailed(key, d, nil, err, 0)
		return
	}
	if r.isBlocked(key) {
		if dealt := r.parkIfBlocked(key, d, e); dealt {
			return
		}
	}
	for attempt := 1; ; attempt++ {
		if !r.acquire() {
			r.giveBack(d)
			return
		}
		err := r.call(e)
		r.release()
		if err == nil {
			r.ack(d)
			return
		}
		if errors.Is(err, ErrUnprocessable) || attempt >= r.cfg.maxAttempts {
			r.parkFailed(key, d, e, err, attempt)
			return
		}
		if !r.wait(r.cfg.delay(attempt)) {
			r.giveBack(d)
			return
		}
	}
}

// call runs the handler, turning a panic into an error.
func (r *durable) call(e *Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("rita: %s %q: handler panicked: %v", r.what, r.name, p)
		}
	}()
	return r.handler(r.hctx, e)
}

// parkFailed parks an event that failed, then acknowledges it.
func (r *durable) parkFailed(key entityKey, d *delivery, e *Event, cause error, attempts int) {
	note := parkNote{consumer: r.name, reason: cause.Error(), attempts: attempts}
	if !r.put(key, sourceOfMsg(d.msg, d.md), note, nil) {
		r.giveBack(d)
		return
	}
	r.setBlocked(key)
	r.report(fmt.Errorf("rita: %s %q of store %q: event %d of %s parked after %d attempts: %w",
		r.what, r.name, r.s.name, d.seq, key, attempts, cause), e, d.msg)
	r.ack(d)
}

// parkIfBlocked parks d if an earlier event of its entity is parked. It
// reports whether d was dealt with (parked, or given back on stop); false
// means the entity is no longer blocked and d is to be handled.
func (r *durable) parkIfBlocked(key entityKey, d *delivery, e *Event) bool {
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		last, err := r.parked.lastOf(ctx, r.name, key)
		cancel()
		if err != nil {
			if r.connClosed() {
				r.giveBack(d)
				return true
			}
			r.report(err, e, d.msg)
			if !r.wait(r.cfg.delay(n)) {
				r.giveBack(d)
				return true
			}
			continue
		}
		if last == nil {
			r.clearBlocked(key)
			return false
		}
		lastSeq := entrySeq(last)
		if lastSeq >= d.seq {
			// Parked already (this event, delivered again after a crash
			// between parking and acknowledging), or resolved: a later
			// event of the entity is parked.
			r.ack(d)
			return true
		}
		blockedBy, _ := parseUint(last.Header.Get(hdrParkedBlockedBy))
		if blockedBy == 0 {
			blockedBy = lastSeq
		}
		note := parkNote{
			consumer:  r.name,
			reason:    fmt.Sprintf("waiting for event %d of %s, which is parked", blockedBy, key),
			blockedBy: blockedBy,
		}
		expect := last.Sequence
		ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
		_, err = r.parked.put(ctx, key, sourceOfMsg(d.msg, d.md), note, &expect)
		cancel()
		if errors.Is(err, errParkConflict) {
			continue // the entity's entries changed: look again
		}
		if err != nil {
			if r.connClosed() {
				r.giveBack(d)
				return true
			}
			r.report(err, e, d.msg)
			if !r.wait(r.cfg.delay(n)) {
				r.giveBack(d)
				return true
			}
			continue
		}
		r.report(fmt.Errorf("rita: %s %q of store %q: event %d of %s parked: %s",
			r.what, r.name, r.s.name, d.seq, key, note.reason), e, d.msg)
		r.ack(d)
		return true
	}
}

// put stores an entry, trying again on failure until it is stored or the
// engine stops; it reports whether it was stored.
func (r *durable) put(key entityKey, src parkSource, note parkNote, expect *uint64) bool {
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := r.parked.put(ctx, key, src, note, expect)
		cancel()
		if err == nil {
			return true
		}
		if r.connClosed() {
			return false
		}
		r.report(err, nil, nil)
		if !r.wait(r.cfg.delay(n)) {
			return false
		}
	}
}

// ack acknowledges d and waits for the server to confirm, so that d cannot
// be delivered again after a later event of its entity is handled. While
// running it tries until confirmed; once stopping, three times.
func (r *durable) ack(d *delivery) {
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
		r.report(fmt.Errorf("rita: %s %q of store %q: acknowledge event %d: %w", r.what, r.name, r.s.name, d.seq, err), nil, d.msg)
		if r.isStopping() && n >= 3 {
			return
		}
		r.sleep(r.cfg.delay(n))
	}
}

// giveBack returns d to the server for delivery again (to this process or
// another), without handling it.
func (r *durable) giveBack(d *delivery) {
	_ = d.msg.Nak()
	r.resolve(d)
}

func (r *durable) resolve(d *delivery) {
	r.mu.Lock()
	delete(r.owned, d.seq)
	r.mu.Unlock()
}

// acquire takes a handler slot; false if the engine stops first.
func (r *durable) acquire() bool {
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

func (r *durable) release() { <-r.slots }

// wait waits d; false if the engine stops first.
func (r *durable) wait(d time.Duration) bool {
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
func (r *durable) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.hctx.Done():
	}
}

// connClosed reports whether the connection is closed for good: nothing the
// engine asks of the server can succeed any more.
func (r *durable) connClosed() bool { return r.s.m.nc.IsClosed() }

func (r *durable) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

func (r *durable) isBlocked(key entityKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blocked[key]
}

func (r *durable) setBlocked(key entityKey) {
	r.mu.Lock()
	r.blocked[key] = true
	r.mu.Unlock()
}

func (r *durable) clearBlocked(key entityKey) {
	r.mu.Lock()
	delete(r.blocked, key)
	r.mu.Unlock()
}
