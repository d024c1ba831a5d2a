package durable

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// Resync and keep-alive: how the engine keeps the events of an entity in
// order across hand-overs, crashes and lost deliveries (see Engine).

// startResyncLocked starts resync unless it runs.
func (r *Engine[E]) startResyncLocked() {
	if r.resyncing {
		return
	}
	r.resyncing = true
	r.workers.Add(1)
	go r.resync()
}

// resync waits until every event the consumer has outstanding is owned here,
// reloads which entities have parked events, and dispatches the held events
// in sequence order. If the consumer's pin has moved to another process, it
// gives the held events back instead.
func (r *Engine[E]) resync() {
	defer r.workers.Done()
	backoff := jsapi.PollBackoff()
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		info, err := r.cons.Info(ctx)
		var blocked map[entity]bool
		if err == nil {
			r.mu.Lock()
			// An event whose ack is on its way may or may not be counted
			// by the server yet: leave it out, so as never to count an
			// event that is still on its way here.
			ready := info.NumAckPending <= len(r.owned)-r.acking
			lost := r.lostPinLocked(info)
			r.mu.Unlock()
			if lost {
				cancel()
				r.mu.Lock()
				r.giveBackHeldLocked()
				r.resyncing = false
				r.mu.Unlock()
				return
			}
			if ready {
				blocked, err = r.parked.blockedEntities(ctx, r.cfg.ParkAs)
			}
		}
		cancel()
		if err != nil {
			if r.connClosed() {
				r.mu.Lock()
				r.resyncing = false
				r.mu.Unlock()
				return
			}
			r.report(err, nil)
		}
		if blocked != nil {
			r.mu.Lock()
			if !r.stopping {
				for k := range blocked {
					r.blocked[k] = true
				}
				held := r.held
				r.held, r.holding, r.resyncing = nil, false, false
				slices.SortFunc(held, func(a, b *delivery) int { return cmp.Compare(a.seq, b.seq) })
				for _, d := range held {
					r.dispatchLocked(d)
				}
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
		}
		if !r.wait(backoff.Delay(n)) {
			r.mu.Lock()
			r.resyncing = false
			r.mu.Unlock()
			return
		}
	}
}

// lostPinLocked reports whether the server has pinned another client.
func (r *Engine[E]) lostPinLocked(info *jetstream.ConsumerInfo) bool {
	for _, g := range info.PriorityGroups {
		if g.Group == PriorityGroup && g.PinnedClientID != "" && r.pinID != "" && g.PinnedClientID != r.pinID {
			return true
		}
	}
	return false
}

// giveBackHeldLocked returns the held events to the server and holds again.
func (r *Engine[E]) giveBackHeldLocked() {
	for _, d := range r.held {
		_ = d.msg.Nak()
		delete(r.owned, d.seq)
	}
	r.held = nil
	r.holding = true
}

// consumeError learns of the consumer's errors; a lost pin gives the held
// events back, so that the process pinned now can have them.
func (r *Engine[E]) consumeError(_ jetstream.ConsumeContext, err error) {
	if errors.Is(err, jetstream.ErrPinIDMismatch) {
		r.mu.Lock()
		r.giveBackHeldLocked()
		r.mu.Unlock()
		return
	}
	if r.isStopping() {
		return
	}
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConnectionClosed):
		r.setEndErr(err)
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		r.checkConsumer()
	}
	r.report(fmt.Errorf("consumer: %w", err), nil)
}

// checkConsumer looks, once at a time, whether the consumer still exists,
// and ends the engine if it, or its store, is gone.
func (r *Engine[E]) checkConsumer() {
	r.mu.Lock()
	if r.checking || r.stopping {
		r.mu.Unlock()
		return
	}
	r.checking = true
	r.workers.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.workers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := r.cons.Info(ctx)
		cancel()
		r.mu.Lock()
		r.checking = false
		r.mu.Unlock()
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			r.setEndErr(err)
			r.cc.Stop()
		}
	}()
}

func (r *Engine[E]) setEndErr(err error) {
	r.mu.Lock()
	if r.endErr == nil {
		r.endErr = err
	}
	r.mu.Unlock()
}

// keepAlive tells the server, every AckWait/4, that the events and retry
// requests held here are in progress.
func (r *Engine[E]) keepAlive() {
	t := time.NewTicker(r.cfg.AckWait / 4)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.kaStop:
			return
		}
		r.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(r.owned)+len(r.retries))
		for _, d := range r.owned {
			msgs = append(msgs, d.msg)
		}
		for _, m := range r.retries {
			msgs = append(msgs, m)
		}
		r.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
	}
}
