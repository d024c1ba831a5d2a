package durable

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Stop stops taking events, lets the running handlers finish within ctx,
// gives back every event not handled and releases the pin, so that another
// process takes over at once. If ctx ends first, the handlers' context is
// cancelled and Stop returns ctx's error; the events they hold stay with
// this process (kept alive) until they return, and are resolved then. It
// may be called more than once, and from the report function.
func (r *Engine[E]) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopping = true
		r.mu.Unlock()
		close(r.stopCh)
		r.cc.Drain()
		if r.retryCC != nil {
			r.retryCC.Drain()
		}
		go func() {
			<-r.cc.Closed()
			if r.retryCC != nil {
				<-r.retryCC.Closed()
			}
			r.workers.Wait()
			r.finish()
			close(r.done)
		}()
	})
	select {
	case <-r.done:
	case <-ctx.Done():
		r.hcancel()
		return ctx.Err()
	}
	r.hcancel()
	if !r.inReport.Load() {
		<-r.reporting
	}
	return nil
}

// Done returns a channel that is closed once the engine has ended: after
// Stop, or by itself when its consumer or its connection went away.
func (r *Engine[E]) Done() <-chan struct{} { return r.done }

// Err returns why the engine ended by itself, once Done is closed; nil
// after Stop.
func (r *Engine[E]) Err() error {
	select {
	case <-r.done:
	default:
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endErr
}

// watchEnd stops the engine when its consumer stops by itself: the
// consumer was deleted (with its store, say) or the connection closed.
func (r *Engine[E]) watchEnd() {
	select {
	case <-r.cc.Closed():
	case <-r.stopCh:
		return
	}
	r.mu.Lock()
	if !r.stopping && r.endErr == nil {
		// Nothing more can arrive: the consumer's subscription ended
		// without telling why, or before its error handler was told
		// (a connection that closes does either, depending on timing).
		r.endErr = errConsumeEnded
		if r.connClosed() {
			r.endErr = jetstream.ErrConnectionClosed
		}
	}
	ended := !r.stopping
	r.mu.Unlock()
	if ended {
		_ = r.Stop(context.Background())
	}
}

// errConsumeEnded is the end of an engine whose consumer's subscription
// ended by itself.
var errConsumeEnded = errors.New("the consumer's subscription ended")

// finish gives back what is left once nothing runs, and releases the pins.
func (r *Engine[E]) finish() {
	r.mu.Lock()
	rest := make([]*delivery, 0, len(r.owned))
	for _, d := range r.owned {
		rest = append(rest, d)
	}
	retries := make([]jetstream.Msg, 0, len(r.retries))
	for _, m := range r.retries {
		retries = append(retries, m)
	}
	r.owned, r.retries, r.held = map[uint64]*delivery{}, map[uint64]jetstream.Msg{}, nil
	pin := r.pinID
	r.mu.Unlock()
	slices.SortFunc(rest, func(a, b *delivery) int { return cmp.Compare(a.seq, b.seq) })
	for _, d := range rest {
		_ = d.msg.Nak()
	}
	for _, m := range retries {
		_ = m.Nak()
	}
	close(r.kaStop)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	r.unpin(ctx, r.cons, r.cfg.Stream, pin)
	if r.retryCons != nil {
		r.unpin(ctx, r.retryCons, r.parked.stream, "")
	}
	r.reports.close()
}

// unpin releases the consumer's pin if this process holds it (pin is the
// pin ID it was given; "" releases a pin held by any of this process's
// subscriptions, as far as the server's info tells).
func (r *Engine[E]) unpin(ctx context.Context, c jetstream.Consumer, stream jetstream.Stream, pin string) {
	if r.connClosed() {
		return
	}
	info, err := c.Info(ctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group != PriorityGroup || g.PinnedClientID == "" {
			continue
		}
		if pin != "" && g.PinnedClientID != pin {
			continue
		}
		if pin == "" && !r.holdsRetryPin(g.PinnedClientID) {
			continue
		}
		_ = stream.UnpinConsumer(ctx, info.Name, PriorityGroup)
	}
}

// holdsRetryPin reports whether the retry consumer's pin is this process's.
func (r *Engine[E]) holdsRetryPin(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retryPin != "" && r.retryPin == id
}
