package rita

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Reading one entity subject by subject.
//
// An entity's events are stored on a few literal subjects, one per event
// type, and the server's per-block index finds the first message of a
// literal subject in a block without a walk; for a wildcard filter it walks
// the block from where it is. So where an entity's events are sparse (each
// of its subjects once or so per block of the stream, as in a large store
// where many entities interleave), one batch get per subject skips almost
// all of the stream: in the 1M-event file store of the benchmarks, 2 ms
// instead of 105 ms (BENCHMARKS.md). Where they are dense it costs one walk
// per subject instead of one in all: about 1.5 times the wildcard read in
// the 100k-event file store, still faster in memory stores.
//
// The leader's count of the entity's messages per subject (the answer to
// countRequest) names every subject and says how many messages to ask for on
// each: the batch gets go out together, and their answers are merged by
// sequence. The read is complete if it holds the entity's last message and
// as many messages as were counted; if not (messages were stored or removed
// between the lookups, or a replica behind the leader answered) nothing has
// been delivered and the caller reads with the wildcard filter instead.

const (
	// maxLiteralSubjects is the most subjects read one by one; an entity
	// with more event types is read with its wildcard filter.
	maxLiteralSubjects = 8
	// maxLiteralEvents is the most events read subject by subject: they
	// are merged in memory before they are delivered.
	maxLiteralEvents = 4096
)

func useLiteral(c *subjectCounts) bool {
	return len(c.subjects) > 0 && len(c.subjects) <= maxLiteralSubjects && c.total <= maxLiteralEvents
}

// readLiteral reads the messages counted in c, every one up to last, and
// delivers them in stream order. It returns false, having delivered
// nothing, if the answers do not add up to a complete read.
func (s *EventStore) readLiteral(r *directReader, c *subjectCounts, last uint64, fn func(directMsg) error) (bool, error) {
	subjects := make([]string, 0, len(c.subjects))
	for subj := range c.subjects {
		subjects = append(subjects, subj)
	}
	slices.Sort(subjects)
	open := 0
	for i, subj := range subjects {
		if n := c.subjects[subj]; n > 0 {
			if err := r.batchRequest("lit"+strconv.Itoa(i), subj, 1, int(n)); err != nil {
				return false, fmt.Errorf("rita: read store %q: %w", s.name, err)
			}
			open++
		}
	}
	msgs := make([]directMsg, 0, c.total)
	for open > 0 {
		msg, err := r.next()
		if err != nil {
			return false, fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		if !strings.Contains(msg.Subject, ".lit") {
			continue // an answer to an earlier request
		}
		done, _, err := directStatus(s.name, msg)
		if err != nil {
			return false, err
		}
		if done {
			open--
			continue
		}
		m, err := newDirectMsg(msg)
		if err != nil {
			return false, err
		}
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b directMsg) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	// Keep what is up to last; it must end at last and be all there was.
	n := len(msgs)
	for n > 0 && msgs[n-1].seq > last {
		n--
	}
	if n == 0 || msgs[n-1].seq != last || uint64(n) != c.total {
		return false, nil
	}
	for i, m := range msgs[:n] {
		if i > 0 && m.seq == msgs[i-1].seq {
			return false, nil
		}
	}
	for _, m := range msgs[:n] {
		if err := fn(m); err != nil {
			return true, err
		}
	}
	return true, nil
}
