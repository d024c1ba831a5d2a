package jsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Headers of JetStream's atomic batch publish.
const (
	HdrBatchID     = "Nats-Batch-Id"
	HdrBatchSeq    = "Nats-Batch-Sequence"
	HdrBatchCommit = "Nats-Batch-Commit"
)

// MaxBatch is the most messages the server takes in one atomic batch.
const MaxBatch = 1000

// BatchAck is the server's answer to the commit of an atomic batch.
type BatchAck struct {
	Error    *jetstream.APIError `json:"error,omitempty"`
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"seq"`
	Batch    string              `json:"batch"`
	Count    int                 `json:"count"`
}

// PublishBatch stores msgs as one atomic batch and returns the sequence of
// the last one. Every message carries the batch ID and its place in the
// batch; the last one also the commit header, and it is sent as a request.
// The server stages the others and, on the commit, stores all of them or
// none: a gap, a failed expectation or a duplicate ID anywhere fails the
// whole batch in the commit's answer. ctx must have a deadline.
//
// The staged messages are published without a reply subject, so a batch
// costs one round trip. The price is that the server cannot say why it
// refused one of them (too many batches in flight on the stream, say): the
// commit then only reports an incomplete batch. In that case the batch is
// sent again under a new batch ID with its first message as a request,
// which gets the real reason; a transient one (too many in flight) is
// retried with backoff until ctx ends. Nothing was stored by the failed
// attempt, and the messages are the same, so no retry stores one twice.
//
// It sets the batch headers on msgs (replacing those of an earlier call).
func PublishBatch(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) (uint64, error) {
	ack, err := sendBatch(ctx, nc, msgs, false)
	if HasCode(err, CodeBatchIncomplete) {
		for n := 1; ; n++ {
			ack, err = sendBatch(ctx, nc, msgs, true)
			if !HasCode(err, CodeBatchTooManyInflight) {
				break
			}
			if werr := Wait(ctx, TransientBackoff().Delay(n)); werr != nil {
				return 0, Ended("", werr, err, n)
			}
		}
	}
	if err != nil {
		return 0, err
	}
	if ack.Count != len(msgs) || ack.Sequence < uint64(len(msgs)) || ack.Batch != msgs[0].Header.Get(HdrBatchID) {
		return 0, fmt.Errorf("%w: batch %s of %d acknowledged as batch %s with count %d at sequence %d",
			jetstream.ErrInvalidJSAck, msgs[0].Header.Get(HdrBatchID), len(msgs), ack.Batch, ack.Count, ack.Sequence)
	}
	return ack.Sequence, nil
}

// sendBatch publishes msgs under a new batch ID and returns the commit's
// answer. With confirmFirst the first message is a request too, and a
// refusal of it is returned without sending the rest.
func sendBatch(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg, confirmFirst bool) (*BatchAck, error) {
	id := []string{nuid.Next()} // header values are only read: one for all
	seqs := make([]string, len(msgs))
	for i, m := range msgs {
		seqs[i] = strconv.Itoa(i + 1)
		m.Header[HdrBatchID] = id
		m.Header[HdrBatchSeq] = seqs[i : i+1 : i+1]
	}
	last := msgs[len(msgs)-1]
	last.Header[HdrBatchCommit] = []string{"1"}
	staged := msgs[:len(msgs)-1]
	if confirmFirst {
		resp, err := nc.RequestMsgWithContext(ctx, staged[0])
		if err != nil {
			return nil, requestError(err)
		}
		if len(resp.Data) > 0 {
			if _, err := parseBatchAck(resp.Data); err != nil {
				return nil, err
			}
		}
		staged = staged[1:]
	}
	for _, m := range staged {
		if err := nc.PublishMsg(m); err != nil {
			return nil, err
		}
	}
	resp, err := nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return nil, requestError(err)
	}
	return parseBatchAck(resp.Data)
}

// parseBatchAck decodes the server's answer to a batch message; an error
// answer is returned as a *jetstream.APIError.
func parseBatchAck(data []byte) (*BatchAck, error) {
	var ack BatchAck
	if err := json.Unmarshal(data, &ack); err != nil {
		return nil, fmt.Errorf("%w: %w", jetstream.ErrInvalidJSAck, err)
	}
	if ack.Error != nil {
		return nil, ack.Error
	}
	return &ack, nil
}
