package jsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Acks publishes messages to streams and hands each publisher its own
// acknowledgement, so that many goroutines publishing at once pipeline on
// one connection: each publish carries a reply subject of one wildcard
// subscription, and the acknowledgements of all of them come back on it.
//
// The subscription is made by Subscribe or the first Publish and kept until
// the connection closes (nats.go makes it again after a reconnect). Its
// handler hands each acknowledgement to the caller it belongs to (a
// buffered channel of one), many in a row when they come together.
//
// Invariants:
//   - a pending publish is in the table from before it is sent until its
//     caller stops waiting, and only a caller in the table is handed a
//     message, under the table's lock, without blocking;
//   - an acknowledgement that comes after its caller stopped waiting (a
//     timeout, a cancelled context) is dropped by whoever reads it;
//   - an answer is parsed as JetStream's publish acknowledgement: a
//     *jetstream.APIError for a refusal, nats.ErrNoResponders for a stream
//     nobody serves.
type Acks struct {
	nc *nats.Conn

	mu      sync.Mutex
	prefix  string // the subscription's subject, without its last token
	sub     *nats.Subscription
	pending map[uint64]chan *nats.Msg
	next    uint64

	timers sync.Pool // stopped timers for Wait to reuse
}

// NewAcks returns the acknowledgement table of publishes on nc. It makes
// no subscription until the first Publish.
func NewAcks(nc *nats.Conn) *Acks {
	a := &Acks{nc: nc, pending: map[uint64]chan *nats.Msg{}}
	a.timers.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}
	return a
}

// Ack is a stream's acknowledgement of a stored message.
type Ack struct {
	Stream    string              `json:"stream"`
	Sequence  uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate,omitempty"`
	Error     *jetstream.APIError `json:"error,omitempty"`
}

// Pending is a message published and not yet acknowledged.
type Pending struct {
	a  *Acks
	id uint64
	ch chan *nats.Msg // its acknowledgement
}

// Publish sends msg with a reply subject of the table's subscription. The
// caller must Wait for the returned Pending (which also releases it). msg
// is sent as it is, with its Reply set for the send and cleared after.
func (a *Acks) Publish(msg *nats.Msg) (*Pending, error) {
	p := &Pending{a: a, ch: make(chan *nats.Msg, 1)}
	a.mu.Lock()
	if a.sub == nil || !a.sub.IsValid() {
		if err := a.subscribe(); err != nil {
			a.mu.Unlock()
			return nil, err
		}
	}
	a.next++
	p.id = a.next
	a.pending[p.id] = p.ch
	prefix := a.prefix
	a.mu.Unlock()
	var buf [96]byte
	msg.Reply = string(strconv.AppendUint(append(buf[:0], prefix...), p.id, 36))
	err := a.nc.PublishMsg(msg)
	msg.Reply = ""
	if err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

// Subscribe makes the table's subscription now, if it has none, rather than
// at the first Publish (which makes it again if this one failed).
func (a *Acks) Subscribe() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sub != nil && a.sub.IsValid() {
		return nil
	}
	return a.subscribe()
}

// subscribe makes the table's subscription. a.mu is held.
func (a *Acks) subscribe() error {
	inbox := a.nc.NewInbox()
	sub, err := a.nc.Subscribe(inbox+".*", a.deliver)
	if err != nil {
		return err
	}
	a.prefix, a.sub = inbox+".", sub
	return nil
}

// release takes p out of the table.
func (p *Pending) release() {
	p.a.mu.Lock()
	delete(p.a.pending, p.id)
	p.a.mu.Unlock()
}

// deliver hands m to the caller it answers, if it still waits.
func (a *Acks) deliver(m *nats.Msg) {
	i := strings.LastIndexByte(m.Subject, '.')
	id, err := strconv.ParseUint(m.Subject[i+1:], 36, 64)
	if err != nil {
		return
	}
	a.mu.Lock()
	if ch, ok := a.pending[id]; ok {
		select {
		case ch <- m:
		default:
		}
	}
	a.mu.Unlock()
}

// Wait waits for p's acknowledgement, and returns it, or a refusal, until
// timeout passes (an error matching context.DeadlineExceeded and
// nats.ErrTimeout), ctx ends (its error), or w sees a violation that scope
// (called only then) covers (the *Denied). It releases p.
func (p *Pending) Wait(ctx context.Context, timeout time.Duration, w *Watch, scope func() *Scope) (*Ack, error) {
	defer p.release()
	t := p.a.timers.Get().(*time.Timer)
	t.Reset(timeout)
	defer func() {
		t.Stop()
		p.a.timers.Put(t)
	}()
	for {
		select {
		case m := <-p.ch:
			return parseAck(m)
		case <-t.C:
			return nil, fmt.Errorf("%w: %w: no acknowledgement within %v", context.DeadlineExceeded, nats.ErrTimeout, timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.Done():
			if d := w.Denied(scope()); d != nil {
				return nil, d
			}
		}
	}
}

// parseAck reads a stream's answer to a publish.
func parseAck(m *nats.Msg) (*Ack, error) {
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return nil, nats.ErrNoResponders
	}
	var ack Ack
	if err := json.Unmarshal(m.Data, &ack); err != nil {
		return nil, fmt.Errorf("%w: %w", jetstream.ErrInvalidJSAck, err)
	}
	if ack.Error != nil {
		return nil, ack.Error
	}
	if ack.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return &ack, nil
}
