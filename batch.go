package rita

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Headers of JetStream's atomic batch publish.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// batchAck is the server's answer to the commit of an atomic batch.
type batchAck struct {
	Error    *jetstream.APIError `json:"error,omitempty"`
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"seq"`
	Batch    string              `json:"batch"`
	Count    int                 `json:"count"`
}

// publishBatch stores events as one atomic batch. Every message carries the
// batch ID and its place in the batch; the last one also carries the commit
// header and is sent as a request. The server stages the others and, on the
// commit, stores all of them or none: a gap, a failed expectation or a
// duplicate ID anywhere fails the whole batch in the commit's answer.
//
// The staged messages are published without a reply subject, so a batch
// costs one round trip. The price is that the server cannot say why it
// refused one of them (too many batches in flight on the stream, say): the
// commit then only reports an incomplete batch. In that case the batch is
// sent again under a new batch ID with its first message as a request,
// which gets the real reason; a transient one (too many in flight) is
// retried with backoff until ctx ends. Nothing was stored by the failed
// attempt, and the event IDs stay the same, so no retry can store an event
// twice.
func (s *EventStore) publishBatch(ctx context.Context, events []encodedEvent) (uint64, error) {
	if err := s.m.checkBatchServer(); err != nil {
		return 0, err
	}
	// ctx has a deadline: each attempt of publish (append_retry.go) has one.
	ack, err := s.sendBatch(ctx, events, false)
	if isIncompleteBatch(err) {
		for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
			ack, err = s.sendBatch(ctx, events, true)
			if !isTooManyBatches(err) {
				break
			}
			if werr := wait(ctx, backoff); werr != nil {
				return 0, fmt.Errorf("rita: append to store %q: %w (last error: %w)", s.name, werr, err)
			}
		}
	}
	if err != nil {
		// A duplicate is told apart from a retry of this very batch by
		// the caller (publish, in retry.go).
		return 0, s.publishError(err)
	}
	if ack.Count != len(events) || ack.Sequence < uint64(len(events)) {
		return 0, fmt.Errorf("rita: append to store %q: %w: batch of %d acknowledged with count %d at sequence %d",
			s.name, jetstream.ErrInvalidJSAck, len(events), ack.Count, ack.Sequence)
	}
	first := ack.Sequence - uint64(len(events)) + 1
	for i, ev := range events {
		ev.event.sequence = first + uint64(i)
		ev.event.subject = ev.msg.Subject
	}
	return ack.Sequence, nil
}

// sendBatch publishes events under a new batch ID and returns the commit's
// answer. With confirmFirst the first message is a request too, and a
// refusal of it is returned without sending the rest.
func (s *EventStore) sendBatch(ctx context.Context, events []encodedEvent, confirmFirst bool) (*batchAck, error) {
	id := []string{nuid.Next()} // header values are only read: one for all
	seqs := make(headerValues, 0, len(events))
	for i, ev := range events {
		ev.msg.Header[hdrBatchID] = id
		ev.msg.Header[hdrBatchSeq] = seqs.one(strconv.Itoa(i + 1))
	}
	last := events[len(events)-1].msg
	last.Header[hdrBatchCommit] = []string{"1"}
	staged := events[:len(events)-1]
	if confirmFirst {
		resp, err := s.m.nc.RequestMsgWithContext(ctx, staged[0].msg)
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
	for _, ev := range staged {
		if err := s.m.nc.PublishMsg(ev.msg); err != nil {
			return nil, err
		}
	}
	resp, err := s.m.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return nil, requestError(err)
	}
	return parseBatchAck(resp.Data)
}

// parseBatchAck decodes the server's answer to a batch message; an error
// answer is returned as a *jetstream.APIError.
func parseBatchAck(data []byte) (*batchAck, error) {
	var ack batchAck
	if err := json.Unmarshal(data, &ack); err != nil {
		return nil, fmt.Errorf("%w: %w", jetstream.ErrInvalidJSAck, err)
	}
	if ack.Error != nil {
		return nil, fmt.Errorf("nats: %w", ack.Error)
	}
	return &ack, nil
}

func requestError(err error) error {
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w: %w", jetstream.ErrNoStreamResponse, err)
	}
	return err
}

func isIncompleteBatch(err error) bool { return hasErrorCode(err, errCodeBatchIncomplete) }

func isTooManyBatches(err error) bool { return hasErrorCode(err, errCodeBatchTooManyInflight) }

func hasErrorCode(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// wait returns after d, or earlier with ctx's error.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// duplicateError says which IDs of a refused batch are already stored. The
// server does not name them, so it looks for them among the messages stored
// on the batch's subjects within the stream's duplicate window.
func (s *EventStore) duplicateError(ctx context.Context, events []encodedEvent) error {
	ids := make(map[string]bool, len(events))
	subjects := make([]string, 0, len(events))
	for _, ev := range events {
		ids[ev.event.ID] = true
		subjects = append(subjects, ev.msg.Subject)
	}
	slices.Sort(subjects)
	subjects = slices.Compact(subjects)

	window := 2 * time.Minute
	if info := s.stream.CachedInfo(); info != nil && info.Config.Duplicates > 0 {
		window = info.Config.Duplicates
	}
	var found []string
	spec := readSpec{
		subjects:    subjects,
		startTime:   time.Now().Add(-window - time.Minute),
		headersOnly: true,
	}
	err := s.read(ctx, spec, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) error {
		if id := msg.Headers().Get(hdrMsgID); ids[id] {
			found = append(found, id)
		}
		return nil
	})
	if err != nil || len(found) == 0 {
		all := make([]string, 0, len(events))
		for _, ev := range events {
			all = append(all, ev.event.ID)
		}
		return fmt.Errorf("%w: store %q: one of the batch's IDs is already stored: %s", ErrDuplicateEvent, s.name, strings.Join(all, ", "))
	}
	return fmt.Errorf("%w: store %q: ID %s already stored", ErrDuplicateEvent, s.name, strings.Join(found, ", "))
}
