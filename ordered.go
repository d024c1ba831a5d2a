package rita

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// orderedReader delivers the messages of a store that match its filter
// subjects in stream order, each one once, through the faults of a live
// system: a connection that moves to another server, a consumer that is
// deleted or whose server stops, a stream leader that changes.
//
// It reads with an ephemeral pull consumer (in memory, one replica, no
// acknowledgements) that sends idle heartbeats. When that consumer fails (an
// error, no heartbeat for two intervals, a delivery that skips one, or
// interrupt after the connection moved), the reader removes it and creates a
// new one that starts after the last message it delivered, with backoff
// between failures, until its context ends.
//
// Invariants:
//   - last is the stream sequence of the last message next returned (0: none
//     yet) and dseq that message's delivery sequence on the current consumer;
//   - next returns a message only if it comes from the current consumer with
//     the delivery sequence dseq+1 (nothing skipped) and a stream sequence
//     above last (nothing repeated);
//   - a consumer it creates starts at last+1, or where the caller asked while
//     last is 0, so replacing a consumer neither skips nor repeats.
//
// A reader is used from one goroutine, except interrupt, which may be called
// from any.
type orderedReader struct {
	s       *EventStore
	base    jetstream.ConsumerConfig // of the first consumer
	prefix  string                   // consumer names are prefix_serial
	serial  int
	onError func(error) // told of each failure it recovers from; may be nil

	// giveUpAfter ends next with the last error once the reader has failed
	// for this long without delivering a message; 0 never gives up.
	giveUpAfter time.Duration

	name     string // of the current consumer; "" when there is none
	it       jetstream.MessagesContext
	started  bool   // a consumer was made
	pending  uint64 // the first consumer's pending messages when made
	last     uint64
	dseq     uint64
	failures int       // since the last message delivered
	failing  time.Time // when the first of those failures happened

	mu      sync.Mutex
	kicked  bool                      // interrupt was called
	current jetstream.MessagesContext // it, for interrupt
}

const (
	// readerHeartbeat is the consumers' idle heartbeat: a consumer that
	// falls silent is replaced after two of them.
	readerHeartbeat = time.Second

	// readerInactive lets the server remove a consumer that a reader
	// abandoned without being able to remove it (its server was gone).
	readerInactive = time.Minute

	// readerAttemptTimeout bounds the first request to create a consumer;
	// after failures it doubles, up to four times as long. A request can
	// go unanswered (sent as a server restarts, or assigned to a server
	// that just stopped): the sooner it is sent again, the sooner events
	// flow.
	readerAttemptTimeout = time.Second

	// maxOutage is how long a read whose context has no deadline keeps
	// trying to reach a server before it fails.
	maxOutage = 30 * time.Second
)

// errIdle is returned by next when no message came within the idle time
// it was given.
var errIdle = errors.New("rita: no message within the idle time")

func newOrderedReader(s *EventStore, spec readSpec) *orderedReader {
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: readerInactive,
		Replicas:          1,
		MemoryStorage:     true,
		HeadersOnly:       spec.headersOnly,
	}
	if len(spec.subjects) == 1 {
		cfg.FilterSubject = spec.subjects[0]
	} else {
		cfg.FilterSubjects = spec.subjects
	}
	switch {
	case spec.afterSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = spec.afterSeq + 1
	case !spec.startTime.IsZero():
		start := spec.startTime
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	return &orderedReader{s: s, base: cfg, prefix: nuid.Next()}
}

// connect creates a consumer, retrying failures other than a missing store,
// a closed connection or a refused configuration.
func (r *orderedReader) connect(ctx context.Context) error {
	for {
		err := r.create(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return contextEnded(ctx.Err(), err, r.failures+1)
		}
		if finalReadError(err) {
			return err
		}
		if err := r.failed(ctx, err); err != nil {
			return err
		}
	}
}

// create makes the next consumer and starts pulling from it.
func (r *orderedReader) create(ctx context.Context) error {
	cfg := r.base
	r.serial++
	cfg.Name = r.prefix + "_" + strconv.Itoa(r.serial)
	if r.last > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = r.last + 1
		cfg.OptStartTime = nil
	}
	actx, cancel := context.WithTimeout(ctx, readerAttemptTimeout<<min(r.failures, 2))
	defer cancel()
	cons, err := r.s.m.js.CreateOrUpdateConsumer(actx, streamName(r.s.name), cfg)
	if err != nil {
		if transientRequestError(err) {
			r.forget(cfg.Name) // it may have been made all the same
		}
		return fmt.Errorf("create consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullHeartbeat(readerHeartbeat))
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

// next returns the next message and its metadata. With idle > 0 it
// returns errIdle when no message came within idle.
func (r *orderedReader) next(ctx context.Context, idle time.Duration) (jetstream.Msg, *jetstream.MsgMetadata, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if r.it == nil {
			if err := r.connect(ctx); err != nil {
				return nil, nil, err
			}
		}
		msg, err := r.pull(ctx, idle)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil, nil, ctx.Err()
			case r.s.m.nc.IsClosed():
				return nil, nil, fmt.Errorf("%w: %w", nats.ErrConnectionClosed, err)
			case errors.Is(err, errIdle) && r.s.m.nc.IsConnected():
				return nil, nil, err
			case errors.Is(err, errIdle):
				// Nothing comes while the connection is down; that
				// counts as failing, so that giveUpAfter applies.
				if err := r.failed(ctx, nats.ErrDisconnected); err != nil {
					return nil, nil, err
				}
				continue
			}
			kicked := r.takeKick()
			r.drop()
			if !kicked {
				if err := r.failed(ctx, fmt.Errorf("consumer: %w", err)); err != nil {
					return nil, nil, err
				}
			}
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrEventDecode, err)
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
		r.failures, r.failing = 0, time.Time{}
		return msg, md, nil
	}
}

// pull takes the next message of the current consumer.
func (r *orderedReader) pull(ctx context.Context, idle time.Duration) (jetstream.Msg, error) {
	if idle <= 0 {
		return r.it.Next(jetstream.NextContext(ctx))
	}
	if ctx.Done() == nil {
		// ctx cannot end: a timer is cheaper than a context.
		msg, err := r.it.Next(jetstream.NextMaxWait(idle))
		if errors.Is(err, nats.ErrTimeout) {
			return nil, errIdle
		}
		return msg, err
	}
	ictx, cancel := context.WithTimeout(ctx, idle)
	defer cancel()
	msg, err := r.it.Next(jetstream.NextContext(ictx))
	if err != nil && ctx.Err() == nil && ictx.Err() != nil {
		return nil, errIdle
	}
	return msg, err
}

// failed records a failure: it tells onError, gives up if the reader has
// failed for longer than giveUpAfter, and otherwise waits a backoff.
func (r *orderedReader) failed(ctx context.Context, err error) error {
	if r.failures == 0 {
		r.failing = time.Now()
	}
	r.failures++
	if r.onError != nil {
		r.onError(err)
	}
	if r.giveUpAfter > 0 && time.Since(r.failing) >= r.giveUpAfter {
		return fmt.Errorf("gave up after failing for %v: %w", r.giveUpAfter, err)
	}
	backoff := retryBackoffMax
	if r.failures < 10 {
		backoff = min(retryBackoffMin<<(r.failures-1), retryBackoffMax)
	}
	if werr := wait(ctx, jitter(backoff)); werr != nil {
		return contextEnded(werr, err, r.failures)
	}
	return nil
}

// restart replaces the current consumer on the next call of next.
func (r *orderedReader) restart() { r.drop() }

// interrupt makes the reader replace its consumer: a call of next that
// waits returns to do so. It is called when the connection has moved to
// another server, where the consumer may not exist.
func (r *orderedReader) interrupt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kicked = true
	if r.current != nil {
		r.current.Stop()
	}
}

func (r *orderedReader) takeKick() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kicked
	r.kicked = false
	return k
}

// drop stops the current consumer and asks the server to remove it,
// without waiting for the answer: it may be on a server that is gone, in
// which case its inactivity threshold removes it.
func (r *orderedReader) drop() {
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
func (r *orderedReader) forget(name string) {
	_ = r.s.m.nc.Publish(consumerDeleteSubject(r.s.name, name), nil)
}

// close stops the reader and removes its consumer, waiting (up to
// cleanupTimeout) for the server to confirm unless the connection is not
// connected. It returns why the removal was not confirmed; the consumer is
// then asked to go without waiting, and its inactivity threshold removes it
// if that does not reach the server either.
func (r *orderedReader) close(ctx context.Context) error {
	if r.it == nil {
		return nil
	}
	r.mu.Lock()
	r.current = nil
	r.mu.Unlock()
	r.it.Stop()
	name := r.name
	r.it, r.name = nil, ""
	if !r.s.m.nc.IsConnected() {
		r.forget(name)
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := r.s.m.js.DeleteConsumer(dctx, streamName(r.s.name), name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.forget(name)
		return err
	}
	return nil
}

func consumerDeleteSubject(store, consumer string) string {
	return "$JS.API.CONSUMER.DELETE." + streamName(store) + "." + consumer
}

// finalReadError reports whether a failure to create a consumer will not go
// away by trying again: the store is gone, the connection is closed, or the
// server refused the request as malformed.
func finalReadError(err error) bool {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrConnectionClosed) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 400
}
