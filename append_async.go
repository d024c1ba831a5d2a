package rita

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// AppendAsync sends one event to the store and returns without waiting for
// the server's acknowledgement; Wait on the returned PendingAppend gives
// the outcome. It is for bulk ingestion from one goroutine: keeping many
// events in flight (a few hundred) lets the server store them in the time
// a synchronous Append of each would spend waiting. Concurrent callers of
// Append pipeline by themselves and need it not.
//
// The event is checked, encoded (and encrypted, WithEncryption) as Append
// does it, and an error for it is returned at once, with nothing sent.
// Once sent, the event has Append's guarantees, given by Wait: it rides
// out transient failures by sending the event again under the same ID,
// maps a refused Expect to ErrSequenceConflict, and an ID already stored
// gives the sequence it was first stored at. Events that need to be stored
// together belong in one Append, as an atomic batch: AppendAsync takes one
// event, and events sent one after the other are stored in that order only
// if none has to be sent again, so each that must follow another should
// carry an Expect.
//
// Every PendingAppend must be waited for: until then, it holds a place in
// the Manager's table of acknowledgements.
func (s *EventStore) AppendAsync(ctx context.Context, e *Event) (*PendingAppend, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rita: append to store %q: %w", s.name, err)
	}
	p := &PendingAppend{s: s, events: []*Event{e}, start: time.Now()}
	ctx, p.span = s.tel.startSpan(ctx, s.tel.appendName, "append", "send", s.tel.producer)
	if err := p.send(ctx); err != nil {
		s.tel.appended(ctx, p.span, p.start, p.events, 0, appendOutcome{}, err)
		return nil, err
	}
	return p, nil
}

// PendingAppend is an event AppendAsync sent, whose outcome Wait gives.
type PendingAppend struct {
	s      *EventStore
	events []*Event // the one event
	msgs   []*nats.Msg
	ownID  bool
	start  time.Time
	span   trace.Span

	sent    *jsapi.Pending // the first attempt; nil if it was not sent
	sendErr error          // why it was not
	watch   jsapi.Watch    // of permission violations since it was sent

	once sync.Once
	seq  uint64
	err  error
}

// send prepares the event and sends its first attempt. A failure to send
// it (the connection is down, say) is left for Wait to retry; an error is
// returned only for what a retry cannot change.
func (p *PendingAppend) send(ctx context.Context) error {
	s := p.s
	msgs, ownID, err := s.encode(ctx, p.events)
	if err != nil {
		return err
	}
	p.msgs, p.ownID = msgs, ownID
	w, refused := s.m.denials.Watch()
	if refused != nil {
		return fmt.Errorf("rita: append to store %q: %w", s.name, refused)
	}
	p.watch = w
	p.sent, p.sendErr = s.m.acks.Publish(msgs[0])
	return nil
}

// Wait waits until the event is stored, or has failed for good, or ctx
// ends, and returns its sequence. The outcome is that of Append for the
// same event (an error matching context.DeadlineExceeded does not tell
// whether the event was stored, see Append). Once it has returned, Wait
// returns the same again; the event's Sequence and Subject are set when it
// was stored.
func (p *PendingAppend) Wait(ctx context.Context) (uint64, error) {
	p.once.Do(func() { p.seq, p.err = p.wait(ctx) })
	return p.seq, p.err
}

// wait is Wait's first call.
func (p *PendingAppend) wait(ctx context.Context) (uint64, error) {
	s := p.s
	seq, out, err := p.first(ctx)
	if err != nil {
		seq, out, err = s.publishAgain(ctx, p.events, p.msgs, p.ownID, p.start, nil, err)
	}
	if err == nil {
		stored(p.events, p.msgs, seq)
	}
	s.tel.appended(ctx, p.span, p.start, p.events, seq, out, err)
	return seq, err
}

// first waits for the first attempt's acknowledgement, until the first
// attempt's timeout from when it was sent.
func (p *PendingAppend) first(ctx context.Context) (uint64, appendOutcome, error) {
	if p.sent == nil {
		return 0, appendOutcome{}, p.sendErr
	}
	timeout := max(firstAppendTimeout-time.Since(p.start), time.Millisecond)
	ack, err := p.sent.Wait(ctx, timeout, &p.watch, func() *jsapi.Scope { return appendScope(p.s, p.msgs) })
	if err != nil {
		return 0, appendOutcome{published: true}, err
	}
	return ack.Sequence, appendOutcome{published: true, duplicate: ack.Duplicate}, nil
}
