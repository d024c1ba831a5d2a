package rita

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// Raw events: an event as the store holds it, its payload not decoded, for
// tools that know none of the application's types (the rita command, an
// export, a copy to another store).

// RawEvent is an event as it is stored: its fields as the headers carry
// them (see docs/wire-format.md) and its payload as encoded bytes.
type RawEvent struct {
	// Sequence is where the event is stored, and Stored when.
	Sequence uint64
	Stored   time.Time

	// ID, Entity ("<type>.<id>"), Type and Time are the event's.
	ID     string
	Entity string
	Type   string
	Time   time.Time

	// Version is the version of the event's type (1 when none was
	// written), Codec the codec its payload was encoded with ("" for an
	// event appended without a type registry).
	Version int
	Codec   string

	// Meta is the event's metadata; nil if it has none.
	Meta map[string]string

	// Key is, for a payload stored encrypted (WithEncryption), the
	// version of its entity's data key it is sealed with (the
	// Rita-Encrypted header); 0 for a payload stored as it is.
	Key uint64

	// Data is the payload as stored: for an encrypted one, the
	// ciphertext.
	Data []byte
}

// rawEvent reads the event of a stored message.
func rawEvent(m *jsapi.Msg) (*RawEvent, error) {
	f, err := wire.Parse(m.Subject, m.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: %w", ErrEventDecode, m.Seq, err)
	}
	stored, err := m.Stored()
	if err != nil {
		return nil, fmt.Errorf("%w: sequence %d: time stamp: %w", ErrEventDecode, m.Seq, err)
	}
	e := &RawEvent{
		Sequence: m.Seq, Stored: stored,
		ID: f.ID, Entity: f.Entity, Type: f.Type, Time: f.Time,
		Version: f.Version, Codec: f.Codec, Meta: f.Meta, Data: m.Data,
	}
	if e.Time.IsZero() {
		e.Time = stored
	}
	if f.Encrypted != "" {
		if e.Key, err = strconv.ParseUint(f.Encrypted, 10, 64); err != nil || e.Key == 0 {
			return nil, fmt.Errorf("%w: sequence %d: %s %q is not a key version", ErrEventDecode, m.Seq, wire.HdrEncrypted, f.Encrypted)
		}
	}
	return e, nil
}

// rawSpec checks the options of a raw read (those of Evolve, less
// WithSnapshot) and turns them into what the read delivers.
func (s *EventStore) rawSpec(ctx context.Context, op string, opts []EvolveOption) (*read.Spec, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	cfg, err := configure(opEvolve, opts)
	if err != nil {
		return nil, err
	}
	if cfg.snapshot != nil {
		return nil, fmt.Errorf("%w: WithSnapshot does not apply to %s", ErrInvalidOption, op)
	}
	spec, err := s.readSpec(cfg.filters)
	if err != nil {
		return nil, err
	}
	spec.After, spec.Stop = cfg.after, cfg.stop
	return spec, nil
}

// errStopRead ends a read whose loop stopped.
var errStopRead = errors.New("the loop stopped")

// RawEvents returns an iterator over the store's events as stored, in
// stream order, with their payloads undecoded; no type registry is needed.
// It takes the options of Evolve that select events (WithFilters,
// WithAfterSequence, WithStopSequence) and reads as Evolve does: up to the
// last matching event stored when the iteration began, riding out faults
// without skipping or repeating an event.
//
// A message that cannot be read as an event (a malformed rita header) is
// yielded as an error wrapping ErrEventDecode, and the iteration goes on if
// the loop does. Any other failure, an invalid option included, is yielded
// once and ends it. Each RawEvent is the caller's.
//
//	for e, err := range store.RawEvents(ctx, rita.WithFilters("account.alice")) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(e.Sequence, e.Type, e.Codec, len(e.Data))
//	}
func (s *EventStore) RawEvents(ctx context.Context, opts ...EvolveOption) iter.Seq2[*RawEvent, error] {
	return func(yield func(*RawEvent, error) bool) {
		spec, err := s.rawSpec(ctx, "RawEvents", opts)
		if err != nil {
			yield(nil, err)
			return
		}
		if spec.Stop != 0 && spec.Stop <= spec.After {
			return
		}
		err = read.Read(ctx, s.src, spec, func(m *read.Msg) error {
			e, err := rawEvent(&m.Msg)
			if !yield(e, err) {
				return errStopRead
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopRead) {
			yield(nil, fmt.Errorf("rita: read store %q: %w", s.name, err))
		}
	}
}

// FollowRawEvents is RawEvents that does not end at the last event stored:
// after the stored events it yields each new one as it is stored, until ctx
// ends or the loop stops. It takes WithFilters and WithAfterSequence
// (WithStopSequence makes it RawEvents). The end of ctx ends it without an
// error; a closed connection or a deleted store end it with one.
func (s *EventStore) FollowRawEvents(ctx context.Context, opts ...EvolveOption) iter.Seq2[*RawEvent, error] {
	return func(yield func(*RawEvent, error) bool) {
		spec, err := s.rawSpec(ctx, "FollowRawEvents", opts)
		if err != nil {
			yield(nil, err)
			return
		}
		if spec.Stop != 0 {
			for e, err := range s.RawEvents(ctx, opts...) {
				if !yield(e, err) {
					return
				}
			}
			return
		}
		r := read.NewOrdered(ctx, s.src, spec)
		r.Unbounded()
		fail := func(err error) {
			if ctx.Err() == nil {
				yield(nil, fmt.Errorf("rita: follow store %q: %w", s.name, err))
			}
		}
		if err := r.Connect(ctx); err != nil {
			fail(err)
			return
		}
		defer func() { _ = r.Close(ctx) }()
		for {
			m, err := r.Next(ctx, 0)
			if err != nil {
				fail(err)
				return
			}
			if spec.Match != nil && !wire.MatchesAny(spec.Match, m.Subject) {
				continue
			}
			e, err := rawEvent(&m.Msg)
			if !yield(e, err) {
				return
			}
		}
	}
}

// SequenceAt returns the sequence of the first event the store stored at
// or after t, or 0 if it has stored none since. It tells where to start
// reading to see what happened after a moment: WithAfterSequence(seq-1).
// Times are those the server stored the events at (RawEvent.Stored), not
// the events' own Time.
func (s *EventStore) SequenceAt(ctx context.Context, t time.Time) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	body := fmt.Appendf(nil, `{"start_time":%q}`, t.UTC().Format(time.RFC3339Nano))
	var seq uint64
	err := s.src.Do(ctx, "the first event after a time", func(ctx context.Context) error {
		c, err := jsapi.NewCollector(ctx, s.m.nc, 0)
		if err != nil {
			return err
		}
		defer c.Close()
		m, err := c.GetOne(jsapi.DirectGetSubject(wire.StreamName(s.name)), "at", body)
		if err != nil {
			return err
		}
		seq = 0
		if m != nil {
			seq = m.Seq
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rita: sequence at %s in store %q: %w", t.Format(time.RFC3339), s.name, err)
	}
	return seq, nil
}
