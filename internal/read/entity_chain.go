package read

import (
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Reading a whole entity by its chain of expectations.
//
// Any read by subject is a walk of the stream on the server (see entity.go
// and literal.go): a memory store walks every message between the entity's
// first event and its last; a file store skips the blocks a subject is not
// in, but walks the stretch between two messages of a subject in the same
// block. Following the entity's expectations back from its last event
// (chain.go) costs one round trip per event (per atomic batch) instead,
// whatever the store holds in between: in the benchmarks' stores of 100k
// and 1M events, 100 events in 5 to 8 ms, where the walks took 12 to 600 ms
// (BENCHMARKS.md).
//
// It is the slower read where the walk is short: where the entity's events
// are close together in the stream, and, in a file store, where each of the
// entity's subjects is at most once in a block, so that the server finds
// every event by its block's index (2.1 to 2.6 ms for 100 events). The
// read chooses from what it already has when the chain would start (the
// entity's count per subject and its last event, whose expectation says
// how far back the event before it is) and from the stream's storage, with
// the rule of worthChaining. A chain that breaks, or whose count of events
// is not the entity's count, is thrown away, nothing delivered, and the
// entity read by subject as if it had not been tried: results never depend
// on the choice, only the time does.

const (
	// maxChainEvents is the most events read by their chain: it costs
	// one round trip per event, about 50 to 80 µs on loopback.
	maxChainEvents = 1024
	// maxChainBatch is the most messages of an atomic batch the chain gets
	// to find the entity's events before one in the batch: those made by
	// Model.Decide are small, and the messages of a large one (an import)
	// cost more to get than a read by subject.
	maxChainBatch = 64
	// minChainGap is the fewest messages of the stream per event of the
	// entity (its events' average distance) for which the chain is read:
	// walking a few hundred messages on the server costs about what one
	// round trip does (0.1 to 0.2 µs a message, BENCHMARKS.md).
	minChainGap = 512
	// fileBlockBytes is the size of a file store's blocks (the server's
	// default for a stream with limits retention and no byte limit).
	fileBlockBytes = 8 << 20
	// recordOverhead is what a file store adds to each message's subject,
	// headers and data.
	recordOverhead = 22 + 8
)

// readChain reads the entity (every one of its events up to last, the
// bound) by its chain, and delivers them, if that is worth it and the chain
// holds. It returns false, having delivered nothing, otherwise; an error
// only from fn.
func (d *direct) readChain(c *jsapi.Collector, last *jsapi.Msg, counts *jsapi.Counts) (bool, error) {
	ch := d.startChain(c, last, counts)
	if ch == nil || !ch.end && !d.worthChaining(ch, counts) {
		return false, nil
	}
	return d.finishChain(ch, counts)
}

// startChain starts the entity's chain from last and follows it through
// the atomic batch of the last event, if that has no expectation of its
// own, to the first that has: its expectation says how far back the
// entity's events go. It returns nil if the chain cannot be read.
func (d *direct) startChain(c *jsapi.Collector, last *jsapi.Msg, counts *jsapi.Counts) *chain {
	n := counts.Total
	if n == 0 || n > maxChainEvents || last.Seq != d.bound || !wire.Matches(d.filter, last.Subject) {
		return nil
	}
	ch := newChain(c, d.src, d.filter, 0, last, int(n), maxChainBatch)
	for !ch.end && !ch.broken && ch.cur.Header.Get(wire.HdrExpectSeq) == "" {
		ch.step()
	}
	if ch.broken {
		return nil
	}
	return ch
}

// finishChain follows ch to the entity's first event and delivers what it
// found if that is all the entity's events (counts); otherwise it returns
// false, having delivered nothing.
func (d *direct) finishChain(ch *chain, counts *jsapi.Counts) (bool, error) {
	ch.follow(int(counts.Total) + 1)
	if !ch.end || uint64(len(ch.found)) != counts.Total {
		return false, nil
	}
	for i := len(ch.found) - 1; i >= 0; i-- {
		d.msg = Msg{Msg: ch.found[i]}
		if err := d.deliver(&d.msg); err != nil {
			return true, err
		}
	}
	return true, nil
}

// worthChaining estimates whether the chain that has reached ch.cur reads
// the rest of the entity faster than the read by subject would.
func (d *direct) worthChaining(ch *chain, counts *jsapi.Counts) bool {
	exp, ok := expectedPrevious(ch.cur, d.filter)
	if !ok || exp >= ch.cur.Seq {
		return false
	}
	// The stream's messages per event of the entity, from the stretch the
	// chain has covered: exp is the event before the earliest found.
	gap := float64(d.bound-exp) / float64(len(ch.found))
	switch {
	case gap < minChainGap:
		return false // the walk is short
	case d.src.Memory || !useLiteral(counts):
		return true // the walk goes through every message
	}
	// A file store read subject by subject walks only where a subject is
	// more than once in a block.
	blockMsgs := float64(fileBlockBytes) / float64(recordSize(&ch.found[0]))
	n := float64(counts.Total)
	for _, k := range counts.Subjects {
		if k > 0 && gap*n/float64(k) < blockMsgs {
			return true
		}
	}
	return false
}

// serverHeader reports whether a get's answer adds header k to the stored
// ones.
func serverHeader(k string) bool {
	switch k {
	case "Nats-Stream", "Nats-Subject", "Nats-Sequence", "Nats-Time-Stamp", "Nats-Last-Sequence", "Nats-Num-Pending":
		return true
	}
	return false
}

// recordSize estimates the bytes a file store's record of m takes.
func recordSize(m *jsapi.Msg) int {
	size := recordOverhead + len(m.Subject) + len(m.Data)
	if len(m.Header) > 0 {
		size += len("NATS/1.0\r\n\r\n")
		for k, vs := range m.Header {
			if serverHeader(k) {
				continue
			}
			for _, v := range vs {
				size += len(k) + len(": \r\n") + len(v)
			}
		}
	}
	return size
}
