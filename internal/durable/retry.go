package durable

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/wire"
)

// Retrying parked events. A retry request for an entity is stored in the
// parked stream (RequestRetry); the consumer's retry consumer delivers it to
// the process running the consumer, which queues it with the entity's
// events, so that it never runs beside another job of the entity in that
// process. The job handles the entity's entries in sequence order and
// removes each one after the handler succeeds, before it looks at the next:
// a process that finds no entry for the entity (parkIfBlocked) may then
// handle the entity's new events, since the retry is done with it.

// receiveRetry takes a retry request from the retry consumer.
func (r *Engine[E]) receiveRetry(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.report(fmt.Errorf("retry request: %w", err), msg)
		return
	}
	key, ok := entityOf(msg.Subject(), wire.ParkedEntityAt)
	if !ok {
		_ = msg.Term()
		r.report(fmt.Errorf("retry request on %q: not an entity", msg.Subject()), msg)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if pin := msg.Headers().Get(hdrPinID); pin != "" {
		r.retryPin = pin
	}
	rseq := md.Sequence.Stream
	if _, dup := r.retries[rseq]; dup {
		return
	}
	if r.stopping {
		_ = msg.Nak()
		return
	}
	r.retries[rseq] = msg
	r.enqueueLocked(key, job{retry: msg, rseq: rseq})
}

func (r *Engine[E]) retryConsumeError(_ jetstream.ConsumeContext, err error) {
	if errors.Is(err, jetstream.ErrPinIDMismatch) || r.isStopping() {
		return
	}
	r.report(fmt.Errorf("retry consumer: %w", err), nil)
}

// runRetry handles the entity's parked entries in order, until none is left
// or one fails again; then it removes the request.
func (r *Engine[E]) runRetry(key entity, rseq uint64, msg jetstream.Msg) {
	if r.isStopping() {
		r.giveBackRetry(rseq, msg)
		return
	}
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		entries, err := r.parked.entries(ctx, r.cfg.ParkAs, key)
		cancel()
		if err != nil {
			if r.failed(err, n) {
				r.giveBackRetry(rseq, msg)
				return
			}
			continue
		}
		if len(entries) == 0 {
			r.clearBlocked(key)
			break
		}
		for _, entry := range entries {
			switch r.retryEntry(key, entry) {
			case retryDone:
			case retryFailed:
				r.doneRetry(rseq, msg)
				return
			case retryStopped:
				r.giveBackRetry(rseq, msg)
				return
			}
		}
		// Look again: a process may have parked more events of the
		// entity while these were handled.
	}
	r.doneRetry(rseq, msg)
}

type retryOutcome int

const (
	retryDone    retryOutcome = iota // handled and removed
	retryFailed                      // parked again
	retryStopped                     // left as it was: the engine stops
)

// retryEntry tries one parked event again.
func (r *Engine[E]) retryEntry(key entity, entry *Entry) retryOutcome {
	before := entry.Attempts
	e, err := r.cfg.Decode(entry.src.Msg())
	if err != nil {
		if !r.put(key, entry.src, note{consumer: r.cfg.ParkAs, reason: err.Error(), attempts: before}, nil) {
			return retryStopped
		}
		r.report(fmt.Errorf("retried event %d of %s parked again: %w", entry.src.seq, key, err), nil)
		return retryFailed
	}
	for attempt := 1; ; attempt++ {
		if !r.acquire() {
			return retryStopped
		}
		err := r.call(e, before+attempt)
		r.release()
		if err == nil {
			return r.removeEntry(entry.raw.Sequence)
		}
		if r.cfg.Permanent(err) || attempt >= r.cfg.MaxAttempts {
			n := note{consumer: r.cfg.ParkAs, reason: err.Error(), attempts: before + attempt}
			if !r.put(key, entry.src, n, nil) {
				return retryStopped
			}
			r.reportEvent(fmt.Errorf("retried event %d of %s parked again after %s: %w",
				entry.src.seq, key, tries(before+attempt), err), e, nil)
			return retryFailed
		}
		if !r.wait(r.cfg.Backoff.Delay(attempt)) {
			return retryStopped
		}
	}
}

// removeEntry removes a retried entry, trying until it is gone. If the
// engine stops first the entry stays, and the event will be handled again
// when it is next retried.
func (r *Engine[E]) removeEntry(pseq uint64) retryOutcome {
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := r.parked.remove(ctx, pseq)
		cancel()
		if err == nil {
			return retryDone
		}
		if r.failed(err, n) {
			return retryStopped
		}
	}
}

// doneRetry removes the retry request from the stream and acknowledges it.
func (r *Engine[E]) doneRetry(rseq uint64, msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := r.parked.remove(ctx, rseq); err != nil {
		r.report(err, msg)
	}
	if err := msg.DoubleAck(ctx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		r.report(fmt.Errorf("acknowledge retry request: %w", err), msg)
	}
	r.mu.Lock()
	delete(r.retries, rseq)
	r.mu.Unlock()
}

func (r *Engine[E]) giveBackRetry(rseq uint64, msg jetstream.Msg) {
	_ = msg.Nak()
	r.mu.Lock()
	delete(r.retries, rseq)
	r.mu.Unlock()
}
