package read

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/synadia-labs/rita/internal/jsapi"
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
//     literal.go). Or, from the start, where the entity's events carry
//     expectations and a read by subject would walk far, no walk at all:
//     the entity's chain of expectations, followed back from its last
//     event one get at a time (see entity_chain.go).
//
// Invariants: messages are delivered in stream order, each once, none after
// the bound. Any failure of a direct get (a server that stops, a leader
// election, an answer that is late or out of order, a store that does not
// answer direct gets) hands what is left, from the last message delivered,
// to the consumer read (Read), which rides out faults; only fn's error and
// the end of the context end an Entity read early.

// directBatchMax is the most messages one batch get asks for; a read of more
// asks again from where the last answer ended.
const directBatchMax = 8192

// Known is what a caller already knows of an entity when it reads it: the
// leader's last message on the filter (nil: unknown) and its per-subject
// counts (nil: unknown).
type Known struct {
	Last   *jsapi.Msg
	Counts *jsapi.Counts
}

// Entity delivers, in stream order, every message on filter (the subjects of
// one entity) after after and up to stop (0: no stop) that was stored when
// it began.
func Entity(ctx context.Context, src *Source, filter string, after, stop uint64, known Known, fn func(*Msg) error) error {
	ctx, release := src.guard(ctx)
	defer release()
	return denied(ctx, entity(ctx, src, filter, after, stop, known, fn))
}

func entity(ctx context.Context, src *Source, filter string, after, stop uint64, known Known, fn func(*Msg) error) error {
	d := &direct{src: src, filter: filter, after: after, stop: stop, last: after, fn: fn}
	err := d.read(ctx, known)
	switch {
	case d.fnErr != nil:
		return d.fnErr
	case d.done:
		return nil
	case ctx.Err() != nil:
		return jsapi.Ended("a direct read", ctx.Err(), err, 1)
	}
	if err != nil && src.Notify != nil {
		src.Notify("a direct read", 1, err)
	}
	// The rest, from where it got to, with a consumer.
	spec := &Spec{Subjects: []string{filter}, After: d.last, Stop: d.bound}
	if stop > 0 && (d.bound == 0 || stop < d.bound) {
		spec.Stop = stop
	}
	return Read(ctx, src, spec, d.deliver)
}

// direct is one direct read of an entity.
type direct struct {
	src          *Source
	filter       string
	after, stop  uint64
	fn           func(*Msg) error
	fnErr        error  // fn's error, which ends the read
	msg          Msg    // handed to fn
	bound        uint64 // the last sequence to read; 0 until known
	last         uint64 // the last sequence delivered (or after)
	done         bool   // everything up to bound was delivered
	reachedBound bool
}

// deliver hands m to fn, unless it is past the bound or was delivered.
func (d *direct) deliver(m *Msg) error {
	switch {
	case d.bound > 0 && m.Seq > d.bound:
		d.reachedBound = true
		return nil
	case m.Seq <= d.last:
		return fmt.Errorf("direct get answered sequence %d after %d", m.Seq, d.last)
	}
	d.last = m.Seq
	d.reachedBound = m.Seq == d.bound
	if err := d.fn(m); err != nil {
		d.fnErr = err
		return err
	}
	return nil
}

// read reads with direct gets as far as it can. It sets done when it has
// delivered everything; otherwise the caller goes on from d.last.
func (d *direct) read(ctx context.Context, known Known) error {
	if !d.src.Direct {
		return errors.New("the store does not allow direct gets")
	}
	c, err := jsapi.NewCollector(ctx, d.src.NC, 0)
	if err != nil {
		return err
	}
	defer c.Close()

	// Step 1, one round trip: the bound and how many messages to ask for.
	var tags []string
	if known.Last == nil {
		if err := c.Request(jsapi.MsgGetSubject(d.src.Stream), "last", jsapi.LastBody(d.filter, false)); err != nil {
			return err
		}
		tags = append(tags, "last")
	} else {
		d.bound = known.Last.Seq
	}
	counts := known.Counts
	switch {
	case d.after == 0 && counts != nil:
	case d.after == 0:
		if err := c.Request(jsapi.StreamInfoSubject(d.src.Stream), "count", jsapi.CountBody(d.filter)); err != nil {
			return err
		}
		tags = append(tags, "count")
	default:
		if err := c.Request(jsapi.DirectGetSubject(d.src.Stream), "first", jsapi.BatchBody(d.after+1, d.filter, 1)); err != nil {
			return err
		}
		tags = append(tags, "first")
	}
	answers, err := c.Gather(tags...)
	if err != nil {
		return err
	}
	var pending uint64
	var first *Msg
	last := known.Last
	if msg := answers["last"]; msg != nil {
		if last, err = jsapi.ParseLast(msg); err != nil {
			return err
		}
		if last == nil {
			d.done = true // no message at all
			return nil
		}
		d.bound = last.Seq
	}
	if msg := answers["count"]; msg != nil {
		if counts, err = jsapi.ParseCount(msg); err != nil {
			return err
		}
	}
	if msg := answers["first"]; msg != nil {
		m, err := jsapi.ParseOne(msg)
		if err != nil {
			return err
		}
		if m != nil {
			pending = jsapi.NumPending(msg)
			first = &Msg{Msg: *m} // one, before the batch gets
		}
	}
	if d.bound <= d.after {
		d.done = true
		return nil
	}
	if counts != nil {
		pending = counts.Total
		if d.after == 0 && (d.stop == 0 || d.stop >= d.bound) && last != nil {
			if ok, err := d.readChain(c, last, counts); ok || err != nil {
				d.done = ok && d.fnErr == nil
				return err
			}
		}
		if d.stop == 0 && useLiteral(counts) {
			if ok, err := d.literal(c, counts); ok || err != nil {
				d.done = ok && d.fnErr == nil
				return err
			}
		}
	}
	if d.stop > 0 && d.stop < d.bound {
		d.bound = d.stop
	}
	if d.bound <= d.after {
		d.done = true
		return nil
	}

	// Step 2: the rest, at most up to the bound, in batch gets of at most
	// directBatchMax.
	if first != nil {
		if err := d.deliver(first); err != nil || d.reachedBound {
			d.done = d.reachedBound && err == nil
			return err
		}
	}
	for tag := 1; pending > 0 && !d.reachedBound; tag++ {
		t := "b" + strconv.Itoa(tag)
		if err := c.Request(jsapi.DirectGetSubject(d.src.Stream), t, jsapi.BatchBody(d.last+1, d.filter, int(min(pending, directBatchMax)))); err != nil {
			return err
		}
		got := 0
		for !d.reachedBound {
			at, msg, err := c.Next()
			if err != nil {
				return err
			}
			if at != t {
				continue // the rest of an earlier answer
			}
			done, left, err := jsapi.DirectStatus(msg)
			if err != nil {
				return err
			}
			if done {
				pending = left
				if got == 0 {
					pending = 0
				}
				break
			}
			m, err := jsapi.ParseDirect(msg)
			if err != nil {
				return err
			}
			got++
			d.msg = Msg{Msg: m}
			if err := d.deliver(&d.msg); err != nil {
				return err
			}
		}
	}
	// Short of the bound: the server that answered has fewer messages than
	// the leader (a replica behind it), or messages were stored between
	// the lookups; the consumer read finishes it.
	d.done = d.reachedBound
	return nil
}
