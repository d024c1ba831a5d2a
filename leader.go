package rita

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Reading your own writes on a replicated store.
//
// A read ends at the last matching event that existed when it began. On a
// store with one replica the consumer's own count of pending messages says
// where that is. On a replicated store the consumer may live on a replica
// that has not yet stored the newest events (the leader acknowledges an
// append once a majority has it), so its count can miss an event whose
// Append has already returned. There the read is bounded by what the stream
// leader reports instead: the last message on each filter subject, from the
// stream's message get API (which, unlike a direct get, only the leader
// answers), and it waits for the consumer to deliver through it.

// errCodeNoMessageFound is the message get API's answer when no message
// matches.
const errCodeNoMessageFound jetstream.ErrorCode = 10037

// readIdle is how long a read bounded by the leader waits for a message
// before it asks the leader again (the message it waits for may have been
// removed by a limit meanwhile); after readStallIdles such waits it replaces
// its consumer.
const (
	readIdle       = time.Second
	readStallIdles = 2
)

// replicated reports whether the store keeps more than one replica, so that
// reads are bounded by the leader.
func (s *EventStore) replicated() bool {
	info := s.stream.CachedInfo()
	return info != nil && info.Config.Replicas > 1
}

type msgGetRequest struct {
	LastFor   string `json:"last_by_subj"`
	NoHeaders bool   `json:"no_hdr,omitempty"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Sequence uint64    `json:"seq"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// leaderLastSeq returns the sequence of the last message on any of the
// subject patterns, as the stream leader has it; 0 if there is none. A
// subject whose last message was stored before since does not count. It
// makes one request per subject, each within attemptTimeout.
func (s *EventStore) leaderLastSeq(ctx context.Context, subjects []string, since time.Time) (uint64, error) {
	return s.leaderLastSeqWithin(ctx, subjects, since, attemptTimeout)
}

func (s *EventStore) leaderLastSeqWithin(ctx context.Context, subjects []string, since time.Time, timeout time.Duration) (uint64, error) {
	var last uint64
	for _, subj := range subjects {
		seq, ts, err := s.leaderLastMsg(ctx, subj, timeout)
		if err != nil {
			return 0, err
		}
		if seq > last && (since.IsZero() || !ts.Before(since)) {
			last = seq
		}
	}
	return last, nil
}

func (s *EventStore) leaderLastMsg(ctx context.Context, subject string, timeout time.Duration) (uint64, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := json.Marshal(msgGetRequest{LastFor: subject, NoHeaders: true})
	if err != nil {
		return 0, time.Time{}, err
	}
	resp, err := s.m.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+streamName(s.name), req)
	if err != nil {
		return 0, time.Time{}, err
	}
	var r msgGetResponse
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: message get: %w", jetstream.ErrInvalidJSAck, err)
	}
	switch {
	case r.Error != nil && r.Error.ErrorCode == errCodeNoMessageFound:
		return 0, time.Time{}, nil
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return 0, time.Time{}, fmt.Errorf("%w: %w", jetstream.ErrStreamNotFound, r.Error)
	case r.Error != nil:
		return 0, time.Time{}, fmt.Errorf("nats: %w", r.Error)
	case r.Message == nil:
		return 0, time.Time{}, fmt.Errorf("%w: message get answered without a message", jetstream.ErrInvalidJSAck)
	}
	return r.Message.Sequence, r.Message.Time, nil
}

// leaderBound is leaderLastSeq retried, with backoff and a timeout that
// doubles (up to four times attemptTimeout), while it fails for want of an
// answer (the stream is electing a leader, the server is restarting), until
// ctx ends or, if giveUpAfter > 0, for that long.
func (s *EventStore) leaderBound(ctx context.Context, subjects []string, since time.Time, giveUpAfter time.Duration) (uint64, error) {
	start := time.Now()
	backoff := retryBackoffMin
	for attempt := 1; ; attempt++ {
		seq, err := s.leaderLastSeqWithin(ctx, subjects, since, attemptTimeout<<min(attempt-1, 2))
		if err == nil {
			return seq, nil
		}
		if ctx.Err() != nil {
			return 0, contextEnded(ctx.Err(), err, attempt)
		}
		if !retryableError(err) || (giveUpAfter > 0 && time.Since(start) >= giveUpAfter) {
			return 0, fmt.Errorf("last sequence of the stream leader: %w", err)
		}
		if werr := wait(ctx, jitter(backoff)); werr != nil {
			return 0, contextEnded(werr, err, attempt)
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}
