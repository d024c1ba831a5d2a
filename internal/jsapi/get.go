package jsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Requests that get stored messages: the stream leader's last message on a
// subject (STREAM.MSG.GET, which only the leader answers, so that its answer
// includes every message whose publish was acknowledged), direct gets of
// messages by sequence or by subject, one or a batch at a time (DIRECT.GET,
// answered by any replica), and the per-subject counts of a filter
// (STREAM.INFO with a subjects filter, an index the leader keeps).

// MsgGetSubject is the subject of the stream's message get API.
func MsgGetSubject(stream string) string { return "$JS.API.STREAM.MSG.GET." + stream }

// DirectGetSubject is the subject of the stream's direct get API.
func DirectGetSubject(stream string) string { return "$JS.API.DIRECT.GET." + stream }

// StreamInfoSubject is the subject of the stream's info API.
func StreamInfoSubject(stream string) string { return "$JS.API.STREAM.INFO." + stream }

// ConsumerDeleteSubject is the subject that deletes a consumer.
func ConsumerDeleteSubject(stream, consumer string) string {
	return "$JS.API.CONSUMER.DELETE." + stream + "." + consumer
}

// LastBody asks the message get API for the last message on filter.
func LastBody(filter string, noHeaders bool) []byte {
	if noHeaders {
		return fmt.Appendf(nil, `{"last_by_subj":%q,"no_hdr":true}`, filter)
	}
	return fmt.Appendf(nil, `{"last_by_subj":%q}`, filter)
}

// BatchBody asks the direct get API for up to batch messages on filter from
// seq on.
func BatchBody(seq uint64, filter string, batch int) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q,"batch":%d}`, seq, filter, batch)
}

// SeqBody asks the direct get API for the message at seq.
func SeqBody(seq uint64) []byte { return fmt.Appendf(nil, `{"seq":%d}`, seq) }

// RangeBody asks the direct get API for the n messages from seq on.
func RangeBody(seq uint64, n int) []byte { return fmt.Appendf(nil, `{"seq":%d,"batch":%d}`, seq, n) }

// CountBody asks the stream info API for the per-subject counts of filter.
func CountBody(filter string) []byte { return fmt.Appendf(nil, `{"subjects_filter":%q}`, filter) }

// Msg is a stored message as a get returned it.
type Msg struct {
	Subject string
	Header  nats.Header
	Data    []byte
	Seq     uint64
	Time    time.Time // when stored; zero if Stamp holds it unparsed
	Stamp   string    // the Nats-Time-Stamp of a direct get answer
}

// Stored returns when the message was stored.
func (m *Msg) Stored() (time.Time, error) {
	if m.Stamp == "" {
		return m.Time, nil
	}
	return time.Parse(time.RFC3339Nano, m.Stamp)
}

// ParseDirect reads the stored message out of a direct get answer that
// carries one (DirectStatus said it is not a status).
func ParseDirect(msg *nats.Msg) (Msg, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return Msg{}, fmt.Errorf("direct get: header %s: %w", jetstream.SequenceHeader, err)
	}
	return Msg{
		Subject: msg.Header.Get(jetstream.SubjectHeader),
		Header:  msg.Header,
		Data:    msg.Data,
		Seq:     seq,
		Stamp:   msg.Header.Get(jetstream.TimeStampHeaer),
	}, nil
}

// DirectStatus interprets a message of a direct get answer: a stored
// message (done false, err nil), the end of a batch (done true, with the
// number of matching messages after it), no message (done true), or an
// error (a 408 or 5xx status, say).
func DirectStatus(msg *nats.Msg) (done bool, pending uint64, err error) {
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
	case "503":
		return true, 0, nats.ErrNoResponders
	default:
		return true, 0, fmt.Errorf("direct get: status %s %s", status, msg.Header.Get("Description"))
	}
}

// ParseOne reads a direct get answer that holds at most one message: the
// message, or nil if there is none.
func ParseOne(msg *nats.Msg) (*Msg, error) {
	done, _, err := DirectStatus(msg)
	if err != nil || done {
		return nil, err
	}
	m, err := ParseDirect(msg)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// NumPending returns the matching messages after the one a direct batch
// get answered with.
func NumPending(msg *nats.Msg) uint64 {
	n, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
	return n
}

// msgGetAnswer is the message get API's answer.
type msgGetAnswer struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs"`
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// ParseLast reads the answer to a message get (a LastBody request, or one
// by sequence and subject): the message, or nil if none matches. A stream
// that does not exist fails with an error matching
// jetstream.ErrStreamNotFound.
func ParseLast(msg *nats.Msg) (*Msg, error) {
	if err := noResponse(msg); err != nil {
		return nil, err
	}
	var a msgGetAnswer
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		return nil, fmt.Errorf("%w: message get: %w", jetstream.ErrInvalidJSAck, err)
	}
	switch {
	case a.Error != nil && a.Error.ErrorCode == CodeMessageNotFound:
		return nil, nil
	case a.Error != nil && a.Error.ErrorCode == CodeStreamNotFound:
		return nil, fmt.Errorf("%w: %w", jetstream.ErrStreamNotFound, a.Error)
	case a.Error != nil:
		return nil, a.Error
	case a.Message == nil:
		return nil, fmt.Errorf("%w: message get answered without a message", jetstream.ErrInvalidJSAck)
	}
	m := &Msg{Subject: a.Message.Subject, Data: a.Message.Data, Seq: a.Message.Seq, Time: a.Message.Time}
	if len(a.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(a.Message.Header)
		if err != nil {
			return nil, fmt.Errorf("message get: sequence %d: headers: %w", m.Seq, err)
		}
		m.Header = h
	}
	return m, nil
}

// noResponse returns nats.ErrNoResponders for an answer that says its
// request found no responder (a 503 status).
func noResponse(msg *nats.Msg) error {
	if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
		return fmt.Errorf("%w: %w", jetstream.ErrNoStreamResponse, nats.ErrNoResponders)
	}
	return nil
}

// Counts is the number of messages matching a filter, in all and per
// subject.
type Counts struct {
	Total    uint64
	Subjects map[string]uint64
}

// ParseCount reads the answer to a CountBody request.
func ParseCount(msg *nats.Msg) (*Counts, error) {
	if err := noResponse(msg); err != nil {
		return nil, err
	}
	var a struct {
		Error *jetstream.APIError `json:"error"`
		State struct {
			Subjects map[string]uint64 `json:"subjects"`
		} `json:"state"`
	}
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		return nil, fmt.Errorf("%w: stream info: %w", jetstream.ErrInvalidJSAck, err)
	}
	if a.Error != nil {
		if a.Error.ErrorCode == CodeStreamNotFound {
			return nil, fmt.Errorf("%w: %w", jetstream.ErrStreamNotFound, a.Error)
		}
		return nil, a.Error
	}
	c := &Counts{Subjects: a.State.Subjects}
	for _, n := range c.Subjects {
		c.Total += n
	}
	return c, nil
}

// LastSeq returns the sequence of the last message on any of subjects, as
// the stream leader has it; 0 if there is none. A subject whose last
// message was stored before since does not count. The requests go out
// together; an attempt that goes unanswered fails with nats.ErrTimeout
// after timeout.
func LastSeq(ctx context.Context, nc *nats.Conn, stream string, subjects []string, since time.Time, timeout time.Duration) (uint64, error) {
	bodies := make([][]byte, len(subjects))
	for i, subj := range subjects {
		bodies[i] = LastBody(subj, true)
	}
	msgs, err := getAll(ctx, nc, stream, bodies, timeout)
	if err != nil {
		return 0, err
	}
	var last uint64
	for _, m := range msgs {
		if m != nil && m.Seq > last && (since.IsZero() || !m.Time.Before(since)) {
			last = m.Seq
		}
	}
	return last, nil
}

// NextSeq returns the sequence of the first message after after on any of
// subjects, as the stream leader has it; 0 if there is none. Like LastSeq,
// its requests go out together, each attempt bounded by timeout.
func NextSeq(ctx context.Context, nc *nats.Conn, stream string, subjects []string, after uint64, timeout time.Duration) (uint64, error) {
	bodies := make([][]byte, len(subjects))
	for i, subj := range subjects {
		bodies[i] = fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q,"no_hdr":true}`, after+1, subj)
	}
	msgs, err := getAll(ctx, nc, stream, bodies, timeout)
	if err != nil {
		return 0, err
	}
	var next uint64
	for _, m := range msgs {
		if m != nil && (next == 0 || m.Seq < next) {
			next = m.Seq
		}
	}
	return next, nil
}

// getAll sends the message get requests of bodies to the stream leader,
// together, and returns their answers in order: nil where no message
// matched.
func getAll(ctx context.Context, nc *nats.Conn, stream string, bodies [][]byte, timeout time.Duration) ([]*Msg, error) {
	if len(bodies) == 1 {
		// One request needs no inbox of its own.
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		resp, err := nc.RequestWithContext(ctx, MsgGetSubject(stream), bodies[0])
		if err != nil {
			return nil, requestError(err)
		}
		m, err := ParseLast(resp)
		if err != nil {
			return nil, err
		}
		return []*Msg{m}, nil
	}
	c, err := NewCollector(ctx, nc, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	tags := make([]string, len(bodies))
	for i, body := range bodies {
		tags[i] = "g" + strconv.Itoa(i)
		if err := c.Request(MsgGetSubject(stream), tags[i], body); err != nil {
			return nil, err
		}
	}
	answers, err := c.Gather(tags...)
	if err != nil {
		return nil, err
	}
	msgs := make([]*Msg, len(bodies))
	for i, tag := range tags {
		if msgs[i], err = ParseLast(answers[tag]); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}
