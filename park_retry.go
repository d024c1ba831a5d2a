package rita

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Retrying parked events. RetryParked stores a retry request for an entity
// in the parked stream; the consumer's retry consumer delivers it to the
// process running the consumer, which queues it with the entity's events, so
// that it never runs beside another job of the entity in that process. The
// job handles the entity's entries in sequence order and removes each one
// after the handler succeeds, before it looks at the next: a process that
// finds no entry for the entity (parkIfBlocked) may then handle the entity's
// new events, since the retry is done with it.

// receiveRetry takes a retry request from the retry consumer.
func (r *durable) receiveRetry(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.report(fmt.Errorf("rita: %s %q of store %q: retry request: %w", r.what, r.name, r.s.name, err), nil, msg)
		return
	}
	key, ok := keyOfSubject(msg.Subject(), 4)
	if !ok {
		_ = msg.Term()
		r.report(fmt.Errorf("rita: %s %q of store %q: retry request on %q: not an entity", r.what, r.name, r.s.name, msg.Subject()), nil, msg)
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

func (r *durable) retryConsumeError(_ jetstream.ConsumeContext, err error) {
	if errors.Is(err, jetstream.ErrPinIDMismatch) || r.isStopping() {
		return
	}
	r.report(fmt.Errorf("rita: %s %q of store %q: retry consumer: %w", r.what, r.name, r.s.name, err), nil, nil)
}

// runRetry handles the entity's parked entries in order, until none is left
// or one fails again; then it removes the request.
func (r *durable) runRetry(key entityKey, rseq uint64, msg jetstream.Msg) {
	if r.isStopping() {
		r.giveBackRetry(rseq, msg)
		return
	}
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		raws, err := r.parked.entries(ctx, r.name, key)
		cancel()
		if err != nil {
			if r.connClosed() {
				r.giveBackRetry(rseq, msg)
				return
			}
			r.report(err, nil, msg)
			if !r.wait(r.cfg.delay(n)) {
				r.giveBackRetry(rseq, msg)
				return
			}
			continue
		}
		if len(raws) == 0 {
			r.clearBlocked(key)
			break
		}
		for _, raw := range raws {
			switch r.retryEntry(key, raw) {
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
func (r *durable) retryEntry(key entityKey, raw *jetstream.RawStreamMsg) retryOutcome {
	src, err := sourceOfEntry(raw)
	if err != nil {
		r.report(err, nil, nil)
		return retryFailed
	}
	before, _ := strconv.Atoi(raw.Header.Get(hdrParkedAttempts))
	e, err := src.event(r.s)
	if err != nil {
		if !r.put(key, src, parkNote{consumer: r.name, reason: err.Error(), attempts: before}, nil) {
			return retryStopped
		}
		r.report(fmt.Errorf("rita: %s %q of store %q: retried event %d of %s parked again: %w", r.what, r.name, r.s.name, src.seq, key, err), nil, nil)
		return retryFailed
	}
	for attempt := 1; ; attempt++ {
		if !r.acquire() {
			return retryStopped
		}
		err := r.call(e)
		r.release()
		if err == nil {
			return r.removeEntry(raw.Sequence)
		}
		if errors.Is(err, ErrUnprocessable) || attempt >= r.cfg.maxAttempts {
			note := parkNote{consumer: r.name, reason: err.Error(), attempts: before + attempt}
			if !r.put(key, src, note, nil) {
				return retryStopped
			}
			r.report(fmt.Errorf("rita: %s %q of store %q: retried event %d of %s parked again after %d attempts: %w",
				r.what, r.name, r.s.name, src.seq, key, before+attempt, err), e, nil)
			return retryFailed
		}
		if !r.wait(r.cfg.delay(attempt)) {
			return retryStopped
		}
	}
}

// removeEntry removes a retried entry, trying until it is gone. If the
// engine stops first the entry stays, and the event will be handled again
// when it is next retried.
func (r *durable) removeEntry(pseq uint64) retryOutcome {
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := r.parked.remove(ctx, pseq)
		cancel()
		if err == nil {
			return retryDone
		}
		if r.connClosed() {
			return retryStopped
		}
		r.report(err, nil, nil)
		if !r.wait(r.cfg.delay(n)) {
			return retryStopped
		}
	}
}

// doneRetry removes the retry request from the stream and acknowledges it.
func (r *durable) doneRetry(rseq uint64, msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := r.parked.remove(ctx, rseq); err != nil {
		r.report(err, nil, msg)
	}
	if err := msg.DoubleAck(ctx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		r.report(fmt.Errorf("rita: %s %q of store %q: acknowledge retry request: %w", r.what, r.name, r.s.name, err), nil, msg)
	}
	r.mu.Lock()
	delete(r.retries, rseq)
	r.mu.Unlock()
}

func (r *durable) giveBackRetry(rseq uint64, msg jetstream.Msg) {
	_ = msg.Nak()
	r.mu.Lock()
	delete(r.retries, rseq)
	r.mu.Unlock()
}

// parseUint parses a decimal header value; "" is 0.
func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}
