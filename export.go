package rita

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsonl"
	"github.com/synadia-labs/rita/internal/wire"
)

// Export and Import: a store's events as JSON lines, one event a line, to
// move a store to another server or cluster, keep a copy, or look at it with
// the tools of JSON. docs/export-format.md has the form of a line.
//
// Import's invariants: the store always holds a prefix of the lines, in
// their order, with their IDs. Every event it publishes expects the stream's
// last sequence to be the one before it (Nats-Expected-Last-Sequence), so
// nothing else is stored in between, nothing is stored out of order, and
// after a failure nothing later than the first event refused is stored.
// Before it publishes, it reads the events the store holds and checks them,
// one by one, against the first lines; so running it again, also long after
// the stream's duplicate window, stores only the lines that are not stored
// yet, and nothing twice.

// ExportResult is what an Export wrote.
type ExportResult struct {
	// Events is the number of events (lines) written, LastSequence the
	// sequence of the last one (0: none).
	Events       uint64
	LastSequence uint64
}

// Export writes the store's events to w, one JSON line each, in stream
// order, with every field Import needs to store them again (ID, time,
// entity, type, version, codec, metadata and the payload's exact bytes).
// It takes the options of Evolve that select events (WithFilters,
// WithAfterSequence, WithStopSequence) and, like Evolve, reads up to the
// last matching event stored when it began, riding out faults. It holds one
// event at a time, whatever the size of the store; w is written through a
// buffer, and the caller flushes or closes w.
//
// An event that cannot be read fails it with ErrEventDecode, and a failing
// write with the writer's error; what was written before stays written.
func (s *EventStore) Export(ctx context.Context, w io.Writer, opts ...EvolveOption) (ExportResult, error) {
	var res ExportResult
	if w == nil {
		return res, fmt.Errorf("%w: nil writer", ErrInvalidArgument)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var line []byte
	var ev jsonl.Event
	for e, err := range s.RawEvents(ctx, opts...) {
		if err != nil {
			return res, fmt.Errorf("rita: export store %q: %w", s.Name(), err)
		}
		ev = jsonl.Event{Seq: e.Sequence, ID: e.ID, Time: e.Time, Entity: e.Entity, Type: e.Type, Version: e.Version, Codec: e.Codec, Meta: e.Meta, Key: e.Key, Data: e.Data}
		line = jsonl.Append(line[:0], &ev)
		if _, err := bw.Write(line); err != nil {
			return res, fmt.Errorf("rita: export store %q: %w", s.name, err)
		}
		res.Events++
		res.LastSequence = e.Sequence
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("rita: export store %q: %w", s.name, err)
	}
	return res, nil
}

// ImportResult is what an Import did.
type ImportResult struct {
	// Lines is the number of events read (blank lines are not counted).
	Lines uint64

	// Present counts the lines found stored already, in their place (by an
	// earlier Import of the same lines); Stored the events stored now.
	Present uint64
	Stored  uint64
}

// importWindow is how many events Import has in flight at once.
const importWindow = 3000

// importAckWait is how long Import waits for the store to acknowledge an
// event before it gives up (run it again to go on).
const importAckWait = 30 * time.Second

// maxImportLine bounds a line of an import, to bound Import's memory: a
// payload of the largest message JetStream takes, in base64, with its
// headers, fits.
const maxImportLine = 64 << 20

// Import stores the events of an export (the JSON lines Export writes) in
// the store, in their order, keeping their IDs, times, metadata, codecs and
// payloads; each gets the next sequence of the store. It reads r one line at
// a time, whatever its size.
//
// Import can be run again with the same lines, and goes on where the
// store is: it first reads the events the store holds and checks that they
// are the first lines, in order (same ID, entity and type), and stores only
// the lines after them. So an Import that was interrupted is finished by
// running it again, and one that is run twice stores nothing the second
// time, however long after the first. A store that holds other events, or
// the same ones in another order, is refused with ErrSequenceConflict, and
// nothing is stored. Each event it stores expects the store's last
// sequence to be the one before it, so an event appended to the store by
// anyone else while Import runs stops it (ErrSequenceConflict) rather than
// mixing in.
//
// A line that cannot be read or is not a valid event (a bad entity, type,
// time or payload encoding) fails Import with an error that names the line
// (counting from 1) and wraps ErrEventDecode and, where there is one, the
// sentinel of the fault (ErrEventEntityInvalid, say); nothing of that line
// or of the lines after it is stored, and the lines before it are. An event
// whose ID the store has stored already elsewhere, within its duplicate
// window, fails with ErrDuplicateEvent. A failure to reach the store fails
// it too; run it again to go on.
func (s *EventStore) Import(ctx context.Context, r io.Reader) (ImportResult, error) {
	var res ImportResult
	if err := s.check(ctx); err != nil {
		return res, err
	}
	if r == nil {
		return res, fmt.Errorf("%w: nil reader", ErrInvalidArgument)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return res, err
	}
	im := &importer{s: s, ctx: ctx, last: info.LastSequence}
	var next func() (*RawEvent, error, bool)
	if info.Events > 0 {
		var stop func()
		next, stop = iter.Pull2(s.RawEvents(ctx, WithStopSequence(info.LastSequence)))
		defer stop()
	}
	// Lines are read and parsed on a goroutine of their own, ahead of the
	// publishing, so that the two overlap.
	lines, stopReading := readImportLines(ctx, r)
	defer stopReading()
	var n uint64
	for l := range lines {
		n = l.n
		if l.err != nil {
			return im.end(&res, fmt.Errorf("rita: import into store %q: line %d: %w", s.name, n, l.err))
		}
		e := l.e
		res.Lines++
		if next != nil {
			stored, err, ok := next()
			if err != nil {
				return im.end(&res, fmt.Errorf("rita: import into store %q: %w", s.name, err))
			}
			if ok {
				if stored.ID != e.ID || stored.Entity != e.Entity || stored.Type != e.Type {
					return im.end(&res, fmt.Errorf("%w: import into store %q: line %d is event %s (%s %s), but the store holds event %s (%s %s) at sequence %d in its place: the store holds other events than these lines (import into an empty store, or one that holds the first lines)",
						ErrSequenceConflict, s.name, n, e.ID, e.Entity, e.Type, stored.ID, stored.Entity, stored.Type, stored.Sequence))
				}
				res.Present++
				continue
			}
			next = nil // every stored event is checked: from here on, store
		}
		if err := im.publish(n, e); err != nil {
			return im.end(&res, err)
		}
	}
	if next != nil {
		if stored, err, ok := next(); err != nil {
			return im.end(&res, fmt.Errorf("rita: import into store %q: %w", s.name, err))
		} else if ok {
			return im.end(&res, fmt.Errorf("%w: import into store %q: the store holds more events than the %d lines (event %s at sequence %d is not among them)",
				ErrSequenceConflict, s.name, n, stored.ID, stored.Sequence))
		}
	}
	return im.end(&res, nil)
}

// importLine is a line of an import, read and parsed: its event, or why it
// cannot be stored. n counts lines from 1.
type importLine struct {
	n   uint64
	e   *jsonl.Event
	err error
}

// importAhead is how many parsed lines wait for the publisher.
const importAhead = 256

// readImportLines reads and parses the lines of r on a goroutine of its
// own, skipping blank ones, and sends them in order; a line that fails is
// the last sent. stop ends the reading early and waits for the goroutine.
func readImportLines(ctx context.Context, r io.Reader) (lines <-chan importLine, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan importLine, importAhead)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		send := func(l importLine) bool {
			select {
			case out <- l:
				return true
			case <-ctx.Done():
				return false
			}
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
		var n uint64
		for sc.Scan() {
			n++
			b := sc.Bytes()
			if len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			e, err := parseImportLine(b) // copies what it keeps of b
			if !send(importLine{n: n, e: e, err: err}) || err != nil {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("%w: %w", ErrEventDecode, err)
			}
			send(importLine{n: n + 1, err: err})
		}
	}()
	return out, func() {
		cancel()
		<-done
	}
}

// parseImportLine reads one line and checks its event as Append would.
func parseImportLine(b []byte) (*jsonl.Event, error) {
	e, err := jsonl.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventDecode, err)
	}
	if err := validateEntity(e.Entity); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventDecode, err)
	}
	if err := validateEventType(e.Type); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventDecode, err)
	}
	if strings.ContainsAny(e.ID, "\r\n") || strings.ContainsAny(e.Codec, "\r\n") {
		return nil, fmt.Errorf("%w: the id or codec holds a line break", ErrEventDecode)
	}
	for k, v := range e.Meta {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("%w: %w: key %q is not a valid header name", ErrEventDecode, ErrEventMetaInvalid, k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("%w: %w: value of %q holds a line break", ErrEventDecode, ErrEventMetaInvalid, k)
		}
	}
	return e, nil
}

// importer publishes the events of an Import, a window of them in flight,
// each expecting the one before it.
type importer struct {
	s        *EventStore
	ctx      context.Context
	last     uint64 // the sequence the next event expects before it
	inflight []pending
	head     int
	stored   uint64
	failed   error
}

// pending is an event in flight.
type pending struct {
	line   uint64
	id     string
	seq    uint64 // the sequence it must get
	future jetstream.PubAckFuture
}

// publish sends the event of line n.
func (im *importer) publish(n uint64, e *jsonl.Event) error {
	if len(im.inflight)-im.head >= importWindow {
		if err := im.settle(1); err != nil {
			return err
		}
	}
	s := im.s
	msg := wire.Message(s.name, &wire.Fields{ID: e.ID, Entity: e.Entity, Type: e.Type, Time: e.Time, Codec: e.Codec, Version: e.Version, Meta: e.Meta}, e.Data)
	if e.Key != 0 {
		msg.Header[wire.HdrEncrypted] = []string{strconv.FormatUint(e.Key, 10)}
	}
	msg.Header[jetstream.ExpectedStreamHeader] = []string{wire.StreamName(s.name)}
	msg.Header[jetstream.ExpectedLastSeqHeader] = []string{strconv.FormatUint(im.last, 10)}
	f, err := s.m.js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("rita: import into store %q: line %d: %w", s.name, n, err)
	}
	im.last++
	if im.head >= importWindow {
		// Drop the settled ones from the front, so that the queue (and
		// what its futures hold) stays within the window.
		k := copy(im.inflight, im.inflight[im.head:])
		clear(im.inflight[k:])
		im.inflight, im.head = im.inflight[:k], 0
	}
	im.inflight = append(im.inflight, pending{line: n, id: e.ID, seq: im.last, future: f})
	return nil
}

// settle waits for the oldest k events in flight (all, for k < 0) to be
// acknowledged, and fails with the first that is refused.
func (im *importer) settle(k int) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for ; k != 0 && im.head < len(im.inflight); k-- {
		p := im.inflight[im.head]
		im.inflight[im.head] = pending{}
		im.head++
		if timer == nil {
			timer = time.NewTimer(importAckWait)
		} else {
			timer.Reset(importAckWait)
		}
		var err error
		select {
		case ack := <-p.future.Ok():
			switch {
			case ack.Duplicate:
				err = fmt.Errorf("%w: event %s is stored already at sequence %d", ErrDuplicateEvent, p.id, ack.Sequence)
			case ack.Sequence != p.seq:
				err = fmt.Errorf("%w: event %s was stored at sequence %d, not %d", ErrSequenceConflict, p.id, ack.Sequence, p.seq)
			default:
				im.stored++
				continue
			}
		case err = <-p.future.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				err = fmt.Errorf("%w: the store holds an event after sequence %d that this import did not store (something else appends to it): %w", ErrSequenceConflict, p.seq-1, err)
			}
		case <-im.ctx.Done():
			err = im.ctx.Err()
		case <-timer.C:
			err = fmt.Errorf("%w: no acknowledgement in %v", context.DeadlineExceeded, importAckWait)
		}
		return fmt.Errorf("rita: import into store %q: line %d: %w", im.s.name, p.line, err)
	}
	return nil
}

// end waits for the events in flight and fills res. The first failure
// wins: err, or the refusal of an event in flight. After a failure, the
// events after the one refused are refused too (they expect it), so the
// store holds a prefix of the lines.
func (im *importer) end(res *ImportResult, err error) (ImportResult, error) {
	var first error
	for im.head < len(im.inflight) {
		if e := im.settle(1); e != nil && first == nil {
			first = e
		}
	}
	res.Stored = im.stored
	if first != nil {
		// An event in flight was refused before the line that failed (if
		// one did) was read: that is the first failure.
		return *res, first
	}
	return *res, err
}
