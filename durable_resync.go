package rita

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Resync and keep-alive: how the engine keeps the events of an entity in
// order across hand-overs, crashes and lost deliveries (see durable).

// startResyncLocked starts resync unless it runs.
func (r *durable) startResyncLocked() {
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
func (r *durable) resync() {
	defer r.workers.Done()
	delay := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		info, err := r.cons.Info(ctx)
		var blocked map[entityKey]bool
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
				blocked, err = r.parked.blockedEntities(ctx, r.name)
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
			r.report(fmt.Errorf("rita: %s %q of store %q: %w", r.what, r.name, r.s.name, err), nil, nil)
		}
		if blocked != nil {
			r.mu.Lock()
			if !r.stopping {
				for k := range blocked {
					r.blocked[k] = true
				}
				held := r.held
				r.held, r.holding, r.resyncing = nil, false, false
				slices.SortFunc(held, func(a, b *delivery) int { return compareUint(a.seq, b.seq) })
				for _, d := range held {
					r.dispatchLocked(d)
				}
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
		}
		if !r.wait(delay) {
			r.mu.Lock()
			r.resyncing = false
			r.mu.Unlock()
			return
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// lostPinLocked reports whether the server has pinned another client.
func (r *durable) lostPinLocked(info *jetstream.ConsumerInfo) bool {
	for _, g := range info.PriorityGroups {
		if g.Group == priorityGroup && g.PinnedClientID != "" && r.pinID != "" && g.PinnedClientID != r.pinID {
			return true
		}
	}
	return false
}

// giveBackHeldLocked returns the held events to the server and holds again.
func (r *durable) giveBackHeldLocked() {
	for _, d := range r.held {
		_ = d.msg.Nak()
		delete(r.owned, d.seq)
	}
	r.held = nil
	r.holding = true
}

// consumeError learns of the consumer's errors; a lost pin gives the held
// events back, so that the process pinned now can have them.
func (r *durable) consumeError(_ jetstream.ConsumeContext, err error) {
	if errors.Is(err, jetstream.ErrPinIDMismatch) {
		r.mu.Lock()
		r.giveBackHeldLocked()
		r.mu.Unlock()
		return
	}
	if r.isStopping() {
		return
	}
	r.report(fmt.Errorf("rita: %s %q of store %q: %w", r.what, r.name, r.s.name, err), nil, nil)
}

// keepAlive tells the server, every AckWait/4, that the events and retry
// requests held here are in progress.
func (r *durable) keepAlive() {
	t := time.NewTicker(r.cfg.ackWait / 4)
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
