package read

import (
	"strconv"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Following an entity's expectations back from its last event.
//
// Most events say which event of their entity came before them: Model.Decide
// stamps the first event of each entity it decides with Expect, the entity's
// last sequence, and the server checked, when it stored the event, that no
// event of the entity came in between (if the expected subject covers all
// the entity's subjects). Following those expectations back, with one
// direct get by sequence per step, finds the entity's events without a walk
// of the stream: the server finds each message by its sequence. The other
// events of an atomic batch are found by their place in it: a batch's
// messages are stored together, in order, each with the batch's ID and its
// place in the batch, so one get of the batch's messages before an event
// finds the entity's events among them.
//
// The chain breaks at an event without such an expectation (appended
// without Expect, or with one on a narrower subject), at a get that fails or
// finds no message (purged, deleted, removed by a limit, or not yet on the
// replica that answered), and at any answer that does not fit (a sequence
// not before the one that expected it, a message of another entity, a batch
// whose messages are not where their places say), and, for a caller that
// says so, at a batch with more messages to get than it will spend. A chain that does not
// break ends at from: an expectation of from (0: the entity's first event),
// or, inside a batch, the message at from itself. The messages it found are
// then the entity's messages after from, each once; the callers still check
// how many there are against the entity's count, which also catches events
// removed or appended while the chain was followed.

// chain is one walk back along an entity's expectations.
type chain struct {
	c       *jsapi.Collector
	src     *Source
	pattern string      // the entity's subjects
	from    uint64      // the walk ends at this sequence
	limit   int         // the most messages it may find; more breaks it
	span    int         // the most messages of a batch it gets in one step
	found   []jsapi.Msg // newest first; found[0] is the last
	cur     *jsapi.Msg  // the earliest message found
	end     bool        // reached from: found is complete
	broken  bool
	gets    int // round trips taken
}

// newChain starts a walk back from last (a message on pattern) to from. It
// breaks rather than find more than limit messages, or get more than span
// messages of an atomic batch at once.
func newChain(c *jsapi.Collector, src *Source, pattern string, from uint64, last *jsapi.Msg, limit, span int) *chain {
	ch := &chain{c: c, src: src, pattern: pattern, from: from, limit: limit, span: span}
	ch.add(*last)
	return ch
}

// add appends m to the messages found and makes it the current one.
func (ch *chain) add(m jsapi.Msg) {
	ch.found = append(ch.found, m)
	ch.cur = &ch.found[len(ch.found)-1]
	if len(ch.found) > ch.limit {
		ch.broken = true
	}
}

// follow takes steps until the walk ends or breaks, at most max.
func (ch *chain) follow(max int) {
	for i := 0; i < max && !ch.end && !ch.broken; i++ {
		ch.step()
	}
}

// events returns the messages found, oldest first.
func (ch *chain) events() []jsapi.Msg {
	out := make([]jsapi.Msg, len(ch.found))
	for i := range ch.found {
		out[len(out)-1-i] = ch.found[i]
	}
	return out
}

// step takes one round trip back: through the atomic batch of the current
// message if it has no expectation of its own, otherwise to the message it
// expected.
func (ch *chain) step() {
	if k := batchPlace(ch.cur); k > 1 && ch.cur.Header.Get(wire.HdrExpectSeq) == "" {
		ch.batch(k)
		return
	}
	exp, ok := expectedPrevious(ch.cur, ch.pattern)
	switch {
	case !ok || exp < ch.from || exp >= ch.cur.Seq:
		ch.broken = true
		return
	case exp == ch.from:
		ch.end = true
		return
	}
	ch.gets++
	m, err := getSeq(ch.c, ch.src, "c"+strconv.Itoa(ch.gets), exp)
	if err != nil || m == nil || m.Seq != exp || !wire.Matches(ch.pattern, m.Subject) {
		ch.broken = true
		return
	}
	ch.add(*m)
}

// batch gets the k-1 messages before the current one in its atomic batch
// (it is the k-th) and takes the entity's among them, back to the first
// that carries an expectation.
func (ch *chain) batch(k int) {
	cur := ch.cur
	if k-1 > ch.span || uint64(k-1) >= cur.Seq {
		ch.broken = true
		return
	}
	start := cur.Seq - uint64(k-1)
	ch.gets++
	msgs, err := getRange(ch.c, ch.src, "r"+strconv.Itoa(ch.gets), start, k-1)
	if err != nil || len(msgs) != k-1 {
		ch.broken = true
		return
	}
	id := cur.Header.Get(jsapi.HdrBatchID)
	for i, m := range msgs {
		if m.Seq != start+uint64(i) || m.Header.Get(jsapi.HdrBatchID) != id {
			ch.broken = true
			return
		}
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if !wire.Matches(ch.pattern, m.Subject) {
			continue
		}
		switch {
		case m.Seq == ch.from:
			ch.end = true
			return
		case m.Seq < ch.from:
			ch.broken = true
			return
		}
		ch.add(m)
		if ch.broken || ch.cur.Header.Get(wire.HdrExpectSeq) != "" {
			return
		}
	}
	// No event of the entity before it in the batch says what came before
	// the batch.
	ch.broken = true
}

// batchPlace returns m's place in its atomic batch (from 1); 0 if it was not
// stored in one.
func batchPlace(m *jsapi.Msg) int {
	k, err := strconv.Atoi(m.Header.Get(jsapi.HdrBatchSeq))
	if err != nil || k < 1 || k > jsapi.MaxBatch {
		return 0
	}
	return k
}

// expectedPrevious returns the sequence m expected to be the last of its
// entity's events before it, if m carries an expectation that covers every
// subject of the entity (pattern).
func expectedPrevious(m *jsapi.Msg, pattern string) (uint64, bool) {
	v := m.Header.Get(wire.HdrExpectSeq)
	subj := m.Header.Get(wire.HdrExpectSubject)
	if v == "" || subj == "" || !wire.Covers(subj, pattern) {
		return 0, false
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	return seq, err == nil
}

// getSeq gets the message at seq; nil if there is none.
func getSeq(c *jsapi.Collector, src *Source, tag string, seq uint64) (*jsapi.Msg, error) {
	return c.GetOne(jsapi.DirectGetSubject(src.Stream), tag, jsapi.SeqBody(seq))
}

// getRange gets the n messages from seq on.
func getRange(c *jsapi.Collector, src *Source, tag string, seq uint64, n int) ([]jsapi.Msg, error) {
	return c.Get(jsapi.DirectGetSubject(src.Stream), tag, jsapi.RangeBody(seq, n))
}
