package rita

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading one entity with the stream's direct get API instead of a consumer.
//
// Loading one entity is the hot path of every command. The server has no
// index from a subject to all its sequences: whatever reads the events of
// one subject filter (a consumer, a direct get) walks the stretch of the
// stream between them. What it does index is the first and the last message
// of a subject, and the number of messages matching a filter. A direct batch
// get ("next_by_subj" with "batch") walks the same stretch as a consumer but
// is measurably faster on file stores (see BENCHMARKS.md), needs no consumer
// to be created and removed, and costs two round trips:
//
//  1. in flight together: the last message matching the filter, from the
//     stream leader (the bound: what was stored when the read began), and
//     how many messages to ask for. From the start of the stream that is the
//     number of matching messages, an indexed count from the leader; after a
//     sequence, a batch get of the first matching message after it, whose
//     answer says how many more there are;
//  2. batch gets of exactly that many messages, so that the server stops at
//     the last one instead of walking on to the end of the stream. From the
//     start, when the entity has few subjects (event types), one batch get
//     per subject, which on large stores skips most of the walk (see
//     directliteral.go).
//
// Invariants: messages are applied in stream order, each once, none after
// the bound; a read that ends short of the bound (a replica behind the
// leader answered, or events were stored between the lookups) is finished
// by the consumer read, from where it stopped.

// directBatchMax is the most messages one batch get asks for; a read of more
// asks again from where the last answer ended.
const directBatchMax = 8192

// directIdleTimeout bounds the wait for the next answer of a direct get. A
// server that stays silent that long (it stopped, or lost its leadership)
// gets no more time: the read goes on with a consumer, which recovers.
const directIdleTimeout = attemptTimeout

// useDirect reports whether a read of subjects can use direct gets: the store
// allows them, and the read names one subject filter of one entity (its
// entity type and ID are literal), the case whose speed matters.
func (s *EventStore) useDirect(spec readSpec) bool {
	if len(spec.subjects) != 1 || spec.match != nil || spec.headersOnly || !spec.startTime.IsZero() {
		return false
	}
	info := s.stream.CachedInfo()
	if info == nil || !info.Config.AllowDirect {
		return false
	}
	return isEntitySubject(s.name, spec.subjects[0])
}

// isEntitySubject reports whether subject is $ES.<store>.<type>.<id>.<event>
// with a literal type and id.
func isEntitySubject(store, subject string) bool {
	rest, ok := strings.CutPrefix(subject, subjectPrefix+store+".")
	if !ok {
		return false
	}
	typ, rest, ok1 := strings.Cut(rest, ".")
	id, evt, ok2 := strings.Cut(rest, ".")
	return ok1 && ok2 && evt != "" && !strings.Contains(evt, ".") &&
		typ != "*" && typ != ">" && id != "*" && id != ">"
}

// directMsg is one stored message read by a direct get (or, when a direct
// read is finished by a consumer, by the consumer).
type directMsg struct {
	subject string
	header  nats.Header
	data    []byte
	seq     uint64
	stamp   string    // Nats-Time-Stamp of a direct get answer
	ts      time.Time // the consumer's timestamp
}

// newDirectMsg reads the stored message out of a direct get answer.
func newDirectMsg(msg *nats.Msg) (directMsg, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return directMsg{}, fmt.Errorf("%w: direct get: sequence: %w", ErrEventDecode, err)
	}
	return directMsg{
		subject: msg.Header.Get(jetstream.SubjectHeader),
		header:  msg.Header,
		data:    msg.Data,
		seq:     seq,
		stamp:   msg.Header.Get(jetstream.TimeStampHeaer),
	}, nil
}

// timestamp returns the time the server stored the message.
func (m directMsg) timestamp() (time.Time, error) {
	if m.stamp == "" {
		return m.ts, nil
	}
	return time.Parse(time.RFC3339Nano, m.stamp)
}

// directReader holds the subscription a direct read gets its answers on:
// the reply subjects inbox.<tag>, one tag per request. Answers are queued
// as they arrive, without limit: the requests ask for at most
// directBatchMax messages each.
type directReader struct {
	s     *EventStore
	sub   *nats.Subscription
	inbox string
	ctx   context.Context
	timer *time.Timer

	mu    sync.Mutex
	queue []*nats.Msg
	head  int
	ready chan struct{} // signalled when a message is queued
}

func (s *EventStore) newDirectReader(ctx context.Context) (*directReader, error) {
	r := &directReader{s: s, inbox: s.m.nc.NewInbox(), ctx: ctx, ready: make(chan struct{}, 1)}
	sub, err := s.m.nc.Subscribe(r.inbox+".*", r.receive)
	if err != nil {
		return nil, fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	r.sub = sub
	return r, nil
}

func (r *directReader) receive(msg *nats.Msg) {
	r.mu.Lock()
	r.queue = append(r.queue, msg)
	r.mu.Unlock()
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *directReader) close() {
	_ = r.sub.Unsubscribe()
	if r.timer != nil {
		r.timer.Stop()
	}
}

// next returns the next answer, waiting until ctx ends or for at most
// directIdleTimeout. An answer saying a request had no
// responder is returned with nats.ErrNoResponders.
func (r *directReader) next() (*nats.Msg, error) {
	for {
		r.mu.Lock()
		if r.head < len(r.queue) {
			msg := r.queue[r.head]
			r.queue[r.head] = nil
			if r.head++; r.head == len(r.queue) {
				r.queue, r.head = r.queue[:0], 0
			}
			r.mu.Unlock()
			if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
				return msg, nats.ErrNoResponders
			}
			return msg, nil
		}
		r.mu.Unlock()
		if r.timer == nil {
			r.timer = time.NewTimer(directIdleTimeout)
		} else {
			r.timer.Reset(directIdleTimeout)
		}
		timeout := r.timer.C
		select {
		case <-r.ready:
		case <-r.ctx.Done():
			return nil, r.ctx.Err()
		case <-timeout:
			return nil, nats.ErrTimeout
		}
	}
}

// batchRequest asks for up to batch messages matching filter from seq on;
// the answers arrive on the reply subject inbox.tag.
func (r *directReader) batchRequest(tag, filter string, seq uint64, batch int) error {
	body := fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q,"batch":%d}`, seq, filter, batch)
	return r.s.m.nc.PublishRequest(directGetSubject(r.s.name), r.inbox+"."+tag, body)
}

// lastRequest asks the stream leader for the last message matching filter;
// the answer arrives on inbox.last.
func (r *directReader) lastRequest(filter string) error {
	body := fmt.Appendf(nil, `{"last_by_subj":%q}`, filter)
	return r.s.m.nc.PublishRequest(msgGetSubject(r.s.name), r.inbox+".last", body)
}

func directGetSubject(store string) string { return "$JS.API.DIRECT.GET." + streamName(store) }

func msgGetSubject(store string) string { return "$JS.API.STREAM.MSG.GET." + streamName(store) }

// parseLast reads the leader's answer to lastRequest: the last matching
// message, nil if there is none.
func parseLast(store string, msg *nats.Msg) (*directMsg, error) {
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("rita: read store %q: last sequence: %w", store, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, nil
	case resp.Error != nil:
		return nil, fmt.Errorf("rita: read store %q: last sequence: %w", store, resp.Error)
	case resp.Message == nil:
		return nil, fmt.Errorf("rita: read store %q: last sequence: %w", store, jetstream.ErrInvalidJetStreamResponse)
	}
	m := resp.Message
	var h nats.Header
	if len(m.Header) > 0 {
		var err error
		if h, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, fmt.Errorf("%w: sequence %d: headers: %w", ErrEventDecode, m.Seq, err)
		}
	}
	return &directMsg{subject: m.Subject, header: h, data: m.Data, seq: m.Seq, ts: m.Time}, nil
}

// errNoDirect says the store did not answer a direct get: the caller reads
// with a consumer instead.
var errNoDirect = errors.New("rita: no direct get")

// directStatus interprets a message of a batch answer: a data message
// (done false, err nil), the end of the batch (done true) with the number of
// matching messages after it, or an error.
func directStatus(store string, msg *nats.Msg) (done bool, pending uint64, err error) {
	if len(msg.Data) > 0 || msg.Header.Get(jetstream.SequenceHeader) != "" {
		return false, 0, nil
	}
	switch status := msg.Header.Get("Status"); status {
	case "204": // end of batch
		pending, _ = strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
		return true, pending, nil
	case "404": // no message
		return true, 0, nil
	case "":
		return false, 0, nil
	default:
		return true, 0, fmt.Errorf("rita: read store %q: direct get: status %s %s", store, status, msg.Header.Get("Description"))
	}
}

// readDirect delivers, in stream order, every message matching filter after
// afterSeq and up to stopSeq (0: no stop) that was stored when it began. A
// caller that has looked up the last message matching filter passes its
// sequence as knownLast (0: readDirect looks it up), and one that has looked
// up how many messages match passes that as known (nil: unknown). It
// returns errNoDirect, having delivered nothing, if the store does not
// answer direct gets.
func (s *EventStore) readDirect(ctx context.Context, filter string, afterSeq, stopSeq, knownLast uint64, known *subjectCounts, fn func(directMsg) error) error {
	r, err := s.newDirectReader(ctx)
	if err != nil {
		return err
	}
	defer r.close()

	// Step 1, one round trip: the bound (the leader's last matching
	// sequence), and how many messages to ask for. From the start, that is
	// the number of matching messages (an indexed count); after a sequence,
	// the first matching message after it, whose answer says how many more
	// there are.
	var (
		bound    = knownLast
		counts   = known
		pending  uint64
		first    *directMsg
		answered int
		waiting  int
	)
	if knownLast == 0 {
		if err := r.lastRequest(filter); err != nil {
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		waiting++
	}
	switch {
	case afterSeq == 0 && known != nil:
	case afterSeq == 0:
		if err := r.countRequest(filter); err != nil {
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		waiting++
	default:
		if err := r.batchRequest("0", filter, afterSeq+1, 1); err != nil {
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		waiting++
	}
	for answered < waiting {
		msg, err := r.next()
		if errors.Is(err, nats.ErrNoResponders) && strings.HasSuffix(msg.Subject, ".0") {
			// The batch get had no responder: the store does not answer
			// direct gets.
			return errNoDirect
		}
		if err != nil {
			return errNoDirect // a server that went away, say: the consumer read recovers
		}
		switch {
		case strings.HasSuffix(msg.Subject, ".last"):
			lastMsg, err := parseLast(s.name, msg)
			if err != nil {
				return err
			}
			if lastMsg != nil {
				bound = lastMsg.seq
			}
			answered++
		case strings.HasSuffix(msg.Subject, ".count"):
			if counts, err = parseCount(s.name, msg); err != nil {
				return err
			}
			answered++
		default:
			done, _, err := directStatus(s.name, msg)
			if err != nil {
				return err
			}
			if done {
				answered++
				continue
			}
			m, err := newDirectMsg(msg)
			if err != nil {
				return err
			}
			pending, _ = strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
			first = &m
		}
	}
	if bound <= afterSeq {
		return nil
	}
	if counts != nil {
		pending = counts.total
		if stopSeq == 0 && useLiteral(counts) {
			done, err := s.readLiteral(r, counts, bound, fn)
			if done || err != nil {
				return err
			}
		}
	}
	if stopSeq > 0 && stopSeq < bound {
		bound = stopSeq
	}
	if bound <= afterSeq {
		return nil
	}

	// Step 2: the rest, at most up to the bound. An error of fn ends the
	// read; any other failure (a server that went away, an answer out of
	// order) hands the rest to the consumer read below, which recovers.
	last, reached := afterSeq, false
	var fnErr error
	deliver := func(m directMsg) error {
		switch {
		case m.seq > bound:
			reached = true
			return nil
		case m.seq <= last:
			return fmt.Errorf("rita: read store %q: direct get answered sequence %d after %d", s.name, m.seq, last)
		}
		last = m.seq
		reached = m.seq == bound
		fnErr = fn(m)
		return fnErr
	}
	if err := s.readDirectRest(r, filter, first, &last, &pending, &reached, deliver); err != nil && (fnErr != nil || ctx.Err() != nil) {
		return err
	}
	if reached {
		return nil
	}
	// The server that answered has fewer messages than the leader (a
	// replica behind it), messages were stored between the lookups, or the
	// direct gets failed. Read the rest, up to the bound, with a consumer.
	spec := readSpec{subjects: []string{filter}, afterSeq: last, stopSeq: bound}
	return s.read(ctx, spec, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
		return deliver(directMsg{subject: msg.Subject(), header: msg.Headers(), data: msg.Data(), seq: md.Sequence.Stream, ts: md.Timestamp})
	})
}

// readDirectRest asks for the messages after the first one in batch gets of
// at most directBatchMax, delivering each, until the bound is reached or
// nothing is pending.
func (s *EventStore) readDirectRest(r *directReader, filter string, first *directMsg, last, pending *uint64, reached *bool, deliver func(directMsg) error) error {
	if first != nil {
		if err := deliver(*first); *reached || err != nil {
			return err
		}
	}
	for tag := 1; *pending > 0 && !*reached; tag++ {
		t := strconv.Itoa(tag)
		if err := r.batchRequest(t, filter, *last+1, int(min(*pending, directBatchMax))); err != nil {
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		got := 0
		for !*reached {
			msg, err := r.next()
			if err != nil {
				return fmt.Errorf("rita: read store %q: %w", s.name, err)
			}
			if !strings.HasSuffix(msg.Subject, "."+t) {
				continue // the rest of an earlier answer
			}
			done, left, err := directStatus(s.name, msg)
			if err != nil {
				return err
			}
			if done {
				*pending = left
				if got == 0 {
					*pending = 0
				}
				break
			}
			m, err := newDirectMsg(msg)
			if err != nil {
				return err
			}
			got++
			if err := deliver(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// evolveDirect is Evolve's read of one entity with direct gets. It returns
// errNoDirect, having applied nothing, if the store does not answer them.
func (s *EventStore) evolveDirect(ctx context.Context, spec readSpec, apply func(*Event) error) error {
	return s.readDirect(ctx, spec.subjects[0], spec.afterSeq, spec.stopSeq, 0, nil, func(m directMsg) error {
		e, err := decodeDirect(s, m)
		if err != nil {
			return err
		}
		return apply(e)
	})
}
