// Package read reads the events of a store in stream order: with an
// ordered consumer that is replaced after any failure (Ordered, Read), or,
// for one entity, with direct gets (Entity), always bounded by what the
// store held when the read began. Every read rides out the faults of a live
// cluster (a restarting server, a leader election, a reconnect) by trying
// again from where it got to, under the retry rules of package jsapi.
package read

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// Source is the store a read reads from.
type Source struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Stream string // the store's stream

	// Replicated stores are bounded by what their stream leader reports
	// (see Bound); others by the pending count of the first consumer.
	Replicated bool

	// Direct says whether the stream answers direct gets.
	Direct bool

	// Memory says whether the stream keeps its messages in memory, where
	// every read by subject walks the stream (there is no per-block index
	// of subjects), which makes an entity's chain of expectations worth
	// following more often (see entity_chain.go).
	Memory bool

	// MaxMsgSize is the stream's limit on the size of a message (0: none
	// but the servers' maximum payload).
	MaxMsgSize int64

	// Notify, if set, is told of each failure a read tries again after,
	// with what it was waiting for.
	Notify func(what string, attempt int, err error)

	// Guard, if set, derives from a read's context one that a permission
	// violation of the store ends at once (jsapi.Denials.Guard), and the
	// function that releases it.
	Guard jsapi.GuardFunc
}

// pullBuffer is how many bytes of messages an ordered reader has asked for
// and not yet handed out, at most, unless the largest message a store can
// hold needs more (see pullBytes): up to 4 MiB in memory while a read is
// behind, nothing once it has caught up. On a store of 400-byte events a
// whole-store read is about 15% faster than with jetstream's default of
// 500 messages, the same from 2 MiB to 8 MiB: the server sends bigger
// batches for fewer pull requests.
const pullBuffer = 4 << 20

// pullBytes is the byte limit of an ordered reader's pulls. The client asks
// for more once half of it has come, so every request is for at least half
// of it, and a message larger than a request would stall the consumer: the
// limit is kept at four times the largest message the stream can hold (its
// own limit, or else the connected server's maximum payload, which bounds
// what any server of a cluster configured alike accepts).
func (src *Source) pullBytes() int {
	largest := src.NC.MaxPayload()
	if src.MaxMsgSize > 0 {
		largest = max(largest, src.MaxMsgSize)
	}
	return int(max(pullBuffer, 4*largest))
}

// guard guards ctx with Guard, if set.
func (src *Source) guard(ctx context.Context) (context.Context, context.CancelFunc) {
	return src.Guard.Guard(ctx)
}

// denied returns the permission violation that ended ctx, if one did and
// err is not nil; otherwise err.
func denied(ctx context.Context, err error) error { return jsapi.DeniedOr(ctx, err) }

// notifier returns the retry notification for what.
func (src *Source) notifier(what string) func(int, error) {
	if src.Notify == nil {
		return nil
	}
	return func(attempt int, err error) { src.Notify(what, attempt, err) }
}

// Do runs one request under jsapi's retry rules, telling Notify of each
// retry.
func (src *Source) Do(ctx context.Context, what string, req func(context.Context) error) error {
	ctx, release := src.guard(ctx)
	defer release()
	return denied(ctx, jsapi.Do(ctx, what, src.notifier(what), req))
}

// Spec says which stored messages a read delivers.
type Spec struct {
	Subjects    []string // the consumer's filter subjects
	Match       []string // if set, deliver only messages matching one of these
	After       uint64   // start after this sequence
	Stop        uint64   // 0: no stop
	StartTime   time.Time
	HeadersOnly bool
}

// Bounds are the subject patterns whose last messages bound a read of spec.
func (spec *Spec) Bounds() []string {
	if spec.Match != nil {
		return spec.Match
	}
	return spec.Subjects
}

// Msg is a stored message as a read delivers it. A read hands out the same
// Msg for every message: it is valid until the read delivers the next one.
type Msg struct {
	jsapi.Msg

	// Raw is the consumer's message; nil for a direct get.
	Raw jetstream.Msg

	// NumPending is the number of matching messages the consumer had
	// after this one when it delivered it (0 for a direct get).
	NumPending uint64
}

// set makes m the Msg of a consumer's message.
func (m *Msg) set(raw jetstream.Msg, md *jetstream.MsgMetadata) {
	*m = Msg{
		Msg:        jsapi.Msg{Subject: raw.Subject(), Header: raw.Headers(), Data: raw.Data(), Seq: md.Sequence.Stream, Time: md.Timestamp},
		Raw:        raw,
		NumPending: md.NumPending,
	}
}
