package read

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// Ordered delivers the messages of a store that match its filter subjects
// in stream order, each one once, through the faults of a live system: a
// connection that moves to another server, a consumer that is deleted or
// whose server stops, a stream leader that changes.
//
// It reads with an ephemeral pull consumer (in memory, one replica, no
// acknowledgements) that sends idle heartbeats. When that consumer fails (an
// error, no heartbeat for two intervals, a delivery that skips one, or
// Interrupt after the connection moved), the reader removes it and creates a
// new one that starts after the last message it delivered, with backoff
// between failures, under the retry rules of package jsapi.
//
// Invariants:
//   - last is the stream sequence of the last message Next returned (0: none
//     yet) and dseq that message's delivery sequence on the current consumer;
//   - Next returns a message only if it comes from the current consumer with
//     the delivery sequence dseq+1 (nothing skipped) and a stream sequence
//     above last (nothing repeated);
//   - a consumer it creates starts at last+1, or where the caller asked while
//     last is 0, so replacing a consumer neither skips nor repeats.
//
// A reader is used from one goroutine, except Interrupt, which may be called
// from any.
type Ordered struct {
	src    *Source
	base   jetstream.ConsumerConfig // of the first consumer
	prefix string                   // consumer names are prefix_serial
	serial int
	retry  *jsapi.Retry

	// OnError, if set, is told of each failure the reader recovers from.
	OnError func(error)

	name    string // of the current consumer; "" when there is none
	it      jetstream.MessagesContext
	started bool   // a consumer was made
	pending uint64 // the first consumer's pending messages when made
	last    uint64
	dseq    uint64

	msg Msg // the last message Next returned

	// opt is the NextContext option of optCtx (see nextOpt).
	optCtx context.Context
	opt    jetstream.NextOpt

	// idler bounds a wait for the next message by the idle time, with
	// one context and one timer reused from message to message.
	idler idler

	mu      sync.Mutex
	kicked  bool                      // Interrupt was called
	current jetstream.MessagesContext // it, for Interrupt
}

const (
	// heartbeat is the consumers' idle heartbeat: a consumer that falls
	// silent is replaced after two of them.
	heartbeat = time.Second

	// inactive lets the server remove a consumer that a reader abandoned
	// without being able to remove it (its server was gone).
	inactive = time.Minute

	// Idle is how long a read that waits for a message it knows is there
	// waits before it asks the leader again (the message may have been
	// removed by a limit meanwhile); after StallIdles such waits it
	// replaces its consumer.
	Idle       = time.Second
	StallIdles = 2

	// cleanupTimeout bounds the removal of a consumer after a read, which
	// is done even when the caller's context has ended.
	cleanupTimeout = 2 * time.Second
)

// ErrIdle is returned by Next when no message came within the idle time it
// was given.
var ErrIdle = errors.New("no message within the idle time")

// NewOrdered makes a reader of spec; Connect starts it. ctx decides the
// retry rules: with no deadline, the reader gives up after failing for
// jsapi.Budget without delivering a message (until Unbounded is called).
func NewOrdered(ctx context.Context, src *Source, spec *Spec) *Ordered {
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: inactive,
		Replicas:          1,
		MemoryStorage:     true,
		HeadersOnly:       spec.HeadersOnly,
	}
	if len(spec.Subjects) == 1 {
		cfg.FilterSubject = spec.Subjects[0]
	} else {
		cfg.FilterSubjects = spec.Subjects
	}
	switch {
	case spec.After > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = spec.After + 1
	case !spec.StartTime.IsZero():
		start := spec.StartTime
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	return &Ordered{
		src:    src,
		base:   cfg,
		prefix: nuid.Next(),
		retry:  jsapi.NewRetry(ctx, "a consumer of the store", src.notifier("a consumer of the store")),
	}
}

// Unbounded lifts the retry budget: from now on the reader tries until its
// context ends.
func (r *Ordered) Unbounded() { r.retry.Unbounded() }

// Last returns the stream sequence of the last message delivered.
func (r *Ordered) Last() uint64 { return r.last }

// Pending returns the number of matching messages the first consumer had
// pending when it was made.
func (r *Ordered) Pending() uint64 { return r.pending }

// Connect creates a consumer, retrying failures other than a missing store,
// a closed connection or a refused configuration.
func (r *Ordered) Connect(ctx context.Context) error {
	for {
		err := r.create(ctx)
		if err == nil {
			return nil
		}
		if jsapi.Final(err) && ctx.Err() == nil {
			return err
		}
		if err := r.failed(ctx, err); err != nil {
			return err
		}
	}
}

// create makes the next consumer and starts pulling from it.
func (r *Ordered) create(ctx context.Context) error {
	cfg := r.base
	r.serial++
	cfg.Name = r.prefix + "_" + strconv.Itoa(r.serial)
	if r.last > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = r.last + 1
		cfg.OptStartTime = nil
	}
	gctx, release := r.src.guard(ctx)
	defer release()
	actx, cancel := context.WithTimeout(gctx, jsapi.AttemptTimeout(r.retry.Attempt()))
	defer cancel()
	cons, err := r.src.JS.CreateOrUpdateConsumer(actx, r.src.Stream, cfg)
	if err := denied(gctx, err); errors.Is(err, jsapi.ErrPermissionDenied) {
		return fmt.Errorf("create consumer: %w", err)
	}
	if err != nil {
		if jsapi.Transient(err) {
			r.forget(cfg.Name) // it may have been made all the same
		}
		return fmt.Errorf("create consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullHeartbeat(heartbeat), jetstream.PullMaxMessagesWithBytesLimit(pullMessages, r.src.pullBytes()))
	if err != nil {
		r.forget(cfg.Name)
		return err
	}
	if !r.started {
		r.started = true
		if info := cons.CachedInfo(); info != nil {
			r.pending = info.NumPending
		}
	}
	r.name, r.it, r.dseq = cfg.Name, it, 0
	r.mu.Lock()
	r.current, r.kicked = it, false
	r.mu.Unlock()
	return nil
}

// Next returns the next message, valid until the next call. With idle > 0
// it returns ErrIdle when no message came within idle.
func (r *Ordered) Next(ctx context.Context, idle time.Duration) (*Msg, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.it == nil {
			if err := r.Connect(ctx); err != nil {
				return nil, err
			}
		}
		msg, err := r.pull(ctx, idle)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case r.src.NC.IsClosed():
				return nil, fmt.Errorf("%w: %w", nats.ErrConnectionClosed, err)
			case errors.Is(err, ErrIdle) && r.src.NC.IsConnected():
				return nil, err
			case errors.Is(err, ErrIdle):
				// Nothing comes while the connection is down; that counts
				// as failing, so that the retry budget applies.
				if err := r.failed(ctx, nats.ErrDisconnected); err != nil {
					return nil, err
				}
				continue
			}
			kicked := r.takeKick()
			r.drop()
			if !kicked {
				if err := r.failed(ctx, fmt.Errorf("consumer: %w", err)); err != nil {
					return nil, err
				}
			}
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("message metadata: %w", err)
		}
		if md.Consumer != r.name {
			continue // from a consumer replaced since
		}
		if md.Sequence.Consumer != r.dseq+1 {
			r.drop() // a gap: start again after the last message
			continue
		}
		r.dseq = md.Sequence.Consumer
		if md.Sequence.Stream <= r.last {
			continue
		}
		r.last = md.Sequence.Stream
		r.retry.Progressed()
		r.msg.set(msg, md)
		return &r.msg, nil
	}
}

// pull takes the next message of the current consumer.
func (r *Ordered) pull(ctx context.Context, idle time.Duration) (jetstream.Msg, error) {
	if idle <= 0 {
		return r.it.Next(r.nextOpt(ctx))
	}
	ictx := r.idler.arm(ctx, idle)
	msg, err := r.it.Next(r.nextOpt(ictx))
	r.idler.disarm()
	if err != nil && ctx.Err() == nil && r.idler.idled() {
		return nil, ErrIdle
	}
	return msg, err
}

// nextOpt returns the option that bounds a wait by ctx, made once for each
// context rather than for each message.
func (r *Ordered) nextOpt(ctx context.Context) jetstream.NextOpt {
	if ctx != r.optCtx {
		r.optCtx, r.opt = ctx, jetstream.NextContext(ctx)
	}
	return r.opt
}

// idler bounds each wait for a message by an idle time without paying for a
// timer per message: one context and one watchdog timer serve a whole read.
// Every wait turns a counter odd when it starts and even when it ends; the
// watchdog looks at it every half idle time and ends the context (with the
// cause ErrIdle) when it has seen the same wait in progress at three looks
// in a row, that is after between one and one and a half idle times of
// waiting. Time spent outside a wait (the caller handling a message) never
// counts.
type idler struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	idle   time.Duration
	dog    *watchdog
}

// idleLooks is how many looks of the watchdog, half an idle time apart,
// must see one wait in progress before it ends it.
const idleLooks = 3

// arm starts a wait and returns the context that ends it when it idles
// (or when parent ends).
func (i *idler) arm(parent context.Context, idle time.Duration) context.Context {
	if i.parent != parent || i.idle != idle || i.ctx.Err() != nil {
		i.release()
		i.parent, i.idle = parent, idle
		i.ctx, i.cancel = context.WithCancelCause(parent)
		i.dog = newWatchdog(i.cancel, idle)
	}
	i.dog.waits.Add(1)
	return i.ctx
}

// disarm ends the wait arm started.
func (i *idler) disarm() { i.dog.waits.Add(1) }

// idled reports whether the watchdog ended the context.
func (i *idler) idled() bool {
	return i.ctx != nil && errors.Is(context.Cause(i.ctx), ErrIdle)
}

// watchdog ends a wait, counted by waits, that lasts longer than an idle
// time.
type watchdog struct {
	waits  atomic.Uint64 // odd while a wait is in progress
	cancel context.CancelCauseFunc
	period time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	seen    uint64 // the wait in progress at the last look
	looks   int    // how many looks in a row saw it
}

func newWatchdog(cancel context.CancelCauseFunc, idle time.Duration) *watchdog {
	d := &watchdog{cancel: cancel, period: max(idle/2, time.Millisecond)}
	d.mu.Lock()
	d.timer = time.AfterFunc(d.period, d.look)
	d.mu.Unlock()
	return d
}

// look is the timer's function.
func (d *watchdog) look() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	switch w := d.waits.Load(); {
	case w%2 == 0:
		d.looks = 0
	case w != d.seen:
		d.seen, d.looks = w, 1
	default:
		d.looks++
	}
	if d.looks >= idleLooks {
		d.cancel(ErrIdle)
		return
	}
	d.timer.Reset(d.period)
}

func (d *watchdog) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.timer.Stop()
}

// release ends the context and its watchdog.
func (i *idler) release() {
	if i.cancel != nil {
		i.dog.stop()
		i.cancel(context.Canceled)
		i.parent, i.ctx, i.cancel, i.idle, i.dog = nil, nil, nil, 0, nil
	}
}

// failed records a failure: it tells OnError, and waits a backoff unless
// the retry rules say to give up, in which case it returns the error.
func (r *Ordered) failed(ctx context.Context, err error) error {
	if r.OnError != nil && ctx.Err() == nil {
		r.OnError(err)
	}
	return r.retry.FailedRetryable(ctx, err)
}

// errStalled is the failure of a consumer that went silent while a message
// was due: no message, no heartbeat, no error (it may have been deleted
// between two pull requests).
var errStalled = errors.New("the consumer fell silent")

// Restart replaces the current consumer on the next call of Next, because
// it fell silent while a message was due.
func (r *Ordered) Restart() {
	if r.src.Notify != nil {
		r.src.Notify("a consumer of the store", r.retry.Attempt(), errStalled)
	}
	r.drop()
}

// Interrupt makes the reader replace its consumer: a call of Next that
// waits returns to do so. It is called when the connection has moved to
// another server, where the consumer may not exist.
func (r *Ordered) Interrupt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kicked = true
	if r.current != nil {
		r.current.Stop()
	}
}

func (r *Ordered) takeKick() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kicked
	r.kicked = false
	return k
}

// drop stops the current consumer and asks the server to remove it,
// without waiting for the answer: it may be on a server that is gone, in
// which case its inactivity threshold removes it.
func (r *Ordered) drop() {
	r.idler.release()
	if r.it == nil {
		return
	}
	r.mu.Lock()
	r.current = nil
	r.mu.Unlock()
	r.it.Stop()
	r.forget(r.name)
	r.it, r.name = nil, ""
}

// forget asks the server to remove consumer name without waiting.
func (r *Ordered) forget(name string) {
	_ = r.src.NC.Publish(jsapi.ConsumerDeleteSubject(r.src.Stream, name), nil)
}

// Close stops the reader and removes its consumer, waiting (up to
// cleanupTimeout) for the server to confirm unless the connection is not
// connected. It returns why the removal was not confirmed; the consumer is
// then asked to go without waiting, and its inactivity threshold removes it
// if that does not reach the server either.
func (r *Ordered) Close(ctx context.Context) error {
	r.idler.release()
	if r.it == nil {
		return nil
	}
	r.mu.Lock()
	r.current = nil
	r.mu.Unlock()
	r.it.Stop()
	name := r.name
	r.it, r.name = nil, ""
	if !r.src.NC.IsConnected() {
		r.forget(name)
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := r.src.JS.DeleteConsumer(dctx, r.src.Stream, name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.forget(name)
		return err
	}
	return nil
}
