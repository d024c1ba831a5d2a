package rita

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tail after a snapshot: the entity's events after the snapshot's
// sequence S, up to its last one, L.
//
// Reading them with a filtered read walks the stream from S to L, which is
// what snapshots are meant to avoid. Most events, though, say which event
// came before them: Model.Decide stamps the first event of each entity it
// decides with Expect, the entity's last sequence, and the server checked,
// when it stored the event, that no event of the entity came in between (if
// the expected subject covers all the entity's subjects). Following those
// expectations back from L, with one direct get by sequence per step, finds
// the tail without a walk. The other events of an atomic batch are found by
// their place in it: a batch's messages are stored together, in order.
//
// When the chain breaks (an event without such an expectation) the tail is
// read with a filtered read after all. Either way, the caller checks the
// snapshot's count of events plus the tail against the entity's count.

const (
	// maxChainSteps bounds the round trips spent following expectations.
	maxChainSteps = 32
	// maxSnapshotTail is the longest tail read after a snapshot; with a
	// longer one the snapshot is not worth it and the entity is read from
	// the start.
	maxSnapshotTail = 10_000
)

// snapshotTail returns the entity's events after from, up to and including
// last, in order; nil if they cannot be had.
func (s *EventStore) snapshotTail(ctx context.Context, entity string, from uint64, last *directMsg) ([]directMsg, error) {
	if last.seq == from {
		return []directMsg{}, nil
	}
	tail, err := s.chainTail(ctx, entity, from, last)
	if err != nil || tail != nil {
		return tail, err
	}
	tail = []directMsg{}
	err = s.readDirect(ctx, entityPattern(s.name, entity), from, 0, last.seq, nil, func(m directMsg) error {
		if len(tail) == maxSnapshotTail {
			return errTailTooLong
		}
		tail = append(tail, m)
		return nil
	})
	if err == errTailTooLong {
		return nil, nil
	}
	return tail, err
}

var errTailTooLong = fmt.Errorf("rita: snapshot tail longer than %d events", maxSnapshotTail)

// chainTail follows expectations back from last to from; nil if the chain
// breaks.
func (s *EventStore) chainTail(ctx context.Context, entity string, from uint64, last *directMsg) ([]directMsg, error) {
	pattern := entityPattern(s.name, entity)
	r, err := s.newDirectReader(ctx)
	if err != nil {
		return nil, err
	}
	defer r.close()
	tail := []directMsg{*last} // newest first
	cur := *last
	for step := 0; step < maxChainSteps; step++ {
		if k, _ := strconv.Atoi(cur.header.Get(hdrBatchSeq)); k > 1 && cur.header.Get(hdrExpectSeq) == "" {
			// The events before cur in its atomic batch, in one request.
			msgs, err := r.getRange(strconv.Itoa(step), cur.seq-uint64(k-1), k-1)
			if err != nil {
				return nil, err
			}
			id := cur.header.Get(hdrBatchID)
			for i, m := range msgs {
				if m.seq != cur.seq-uint64(k-1)+uint64(i) || m.header.Get(hdrBatchID) != id {
					return nil, nil
				}
			}
			for i := len(msgs) - 1; i >= 0 && cur.header.Get(hdrExpectSeq) == ""; i-- {
				if m := msgs[i]; subjectMatches(pattern, m.subject) {
					switch {
					case m.seq == from:
						slices.Reverse(tail)
						return tail, nil
					case m.seq < from:
						return nil, nil
					}
					tail = append(tail, m)
					cur = m
				}
			}
			step++
		}
		exp, ok := expectedPrevious(cur, pattern)
		switch {
		case !ok || exp < from:
			return nil, nil
		case exp == from:
			slices.Reverse(tail)
			return tail, nil
		}
		m, err := r.getSeq(strconv.Itoa(step), exp)
		if err != nil || m == nil || !subjectMatches(pattern, m.subject) {
			return nil, err
		}
		tail = append(tail, *m)
		cur = *m
	}
	return nil, nil
}

// expectedPrevious returns the sequence m expected to be the last of its
// entity's events before it, if m carries an expectation that covers every
// subject of the entity (pattern).
func expectedPrevious(m directMsg, pattern string) (uint64, bool) {
	v := m.header.Get(hdrExpectSeq)
	subj := m.header.Get(hdrExpectSubject)
	if v == "" || subj == "" || !subjectCovers(subj, pattern) {
		return 0, false
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	return seq, err == nil
}

// getSeq gets the message at seq; nil if there is none.
func (r *directReader) getSeq(tag string, seq uint64) (*directMsg, error) {
	body := fmt.Appendf(nil, `{"seq":%d}`, seq)
	if err := r.s.m.nc.PublishRequest(directGetSubject(r.s.name), r.inbox+"."+tag, body); err != nil {
		return nil, fmt.Errorf("rita: read store %q: %w", r.s.name, err)
	}
	for {
		msg, err := r.next()
		if err != nil {
			return nil, fmt.Errorf("rita: read store %q: %w", r.s.name, err)
		}
		if !strings.HasSuffix(msg.Subject, "."+tag) {
			continue
		}
		if done, _, err := directStatus(r.s.name, msg); done || err != nil {
			return nil, err
		}
		m, err := newDirectMsg(msg)
		return &m, err
	}
}

// getRange gets the n messages from seq on.
func (r *directReader) getRange(tag string, seq uint64, n int) ([]directMsg, error) {
	body := fmt.Appendf(nil, `{"seq":%d,"batch":%d}`, seq, n)
	if err := r.s.m.nc.PublishRequest(directGetSubject(r.s.name), r.inbox+"."+tag, body); err != nil {
		return nil, fmt.Errorf("rita: read store %q: %w", r.s.name, err)
	}
	var msgs []directMsg
	for {
		msg, err := r.next()
		if err != nil {
			return nil, fmt.Errorf("rita: read store %q: %w", r.s.name, err)
		}
		if !strings.HasSuffix(msg.Subject, "."+tag) {
			continue
		}
		done, _, err := directStatus(r.s.name, msg)
		if err != nil || done {
			return msgs, err
		}
		m, err := newDirectMsg(msg)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
}

// countRequest asks the stream leader how many messages match filter, per
// subject; the answer arrives on inbox.count.
func (r *directReader) countRequest(filter string) error {
	body := fmt.Appendf(nil, `{"subjects_filter":%q}`, filter)
	return r.s.m.nc.PublishRequest("$JS.API.STREAM.INFO."+streamName(r.s.name), r.inbox+".count", body)
}

// subjectCounts is the number of messages matching a filter, in all and per
// subject (an index the server keeps).
type subjectCounts struct {
	total    uint64
	subjects map[string]uint64
}

// parseCount reads the answer to countRequest.
func parseCount(store string, msg *nats.Msg) (*subjectCounts, error) {
	var resp struct {
		Error *jetstream.APIError `json:"error"`
		State struct {
			Subjects map[string]uint64 `json:"subjects"`
		} `json:"state"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("rita: read store %q: count: %w", store, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("rita: read store %q: count: %w", store, resp.Error)
	}
	c := &subjectCounts{subjects: resp.State.Subjects}
	for _, n := range c.subjects {
		c.total += n
	}
	return c, nil
}
