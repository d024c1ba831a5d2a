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

// pullMessages is how many messages an ordered reader keeps asked for
// ahead of the one it hands out, four times jetstream's default of 500:
// the server sends bigger batches for fewer pull requests. Raw reads of
// the bench's 100k store, interleaved with reads using the default, were
// 15% (file) and 7% (memory) faster this way (BENCHMARKS.md, "Replay: the
// pull size"). A limit in bytes alone (4 MiB) was about as fast, but the
// library's peak heap while reading was 27 to 41 MB above raw's, for the
// messages it buffers; counted in messages, a reader holds 2000 at most.
const pullMessages = 2000

// pullBytes caps each pull request of an ordered reader, so that a store of
// large events is not asked for 2000 of them at once: 4 MiB, or four times
// the largest message the stream can hold if that is more (the larger of
// its own limit and the connected server's maximum payload, which bounds
// what any server of a cluster configured alike accepts). A message larger
// than the cap could never be delivered: the consumer would stall.
func (src *Source) pullBytes() int {
	largest := src.NC.MaxPayload()
	if src.MaxMsgSize > 0 {
		largest = max(largest, src.MaxMsgSize)
	}
	return int(max(4<<20, 4*largest))
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
