package rita

import (
	"fmt"
	"sync"
)

// Decider is an interface that application-defined models can implement to
// decide on state transitions. Zero or more events can be returned that
// represents the state transitions to be stored.
//
// A decider that returns events without an Expect gets no optimistic
// concurrency check: two deciders working from the same stale state both
// succeed. Wrap the state in a Model, whose Decide stamps each entity's
// first event with the last sequence it has seen of it, or set Expect
// yourself.
type Decider interface {
	Decide(*Command) ([]*Event, error)
}

// Evolver is an interface that application-defined models can implement to
// evolve their state based on events.
type Evolver interface {
	Evolve(*Event) error
}

// DeciderEvolver combines Decider and Evolver for use with DecideAndEvolve.
type DeciderEvolver interface {
	Decider
	Evolver
}

// Viewer represents a read-only view of the state of an entity.
type Viewer[T any] interface {
	View(func(T) error) error
}

// Model combines an Evolver, Decider, and Viewer for a specific type T. It
// provides thread-safe access to the underlying interfaces and keeps track of
// the last sequence number of events applied to the model.
//
// A Model is safe for concurrent use by multiple goroutines: Evolve takes a
// write lock, Decide and View a read lock. It remembers, per entity, the
// sequence of the last event applied, and uses it twice:
//   - Evolve skips an event whose sequence it has already applied for that
//     entity, so a Watch and a DecideAndEvolve feeding the same model never
//     apply an event twice;
//   - Decide sets Expect on the first event it returns for each entity (unless
//     the decider set one) to that entity's last sequence, so a decision taken
//     on stale state fails with ErrSequenceConflict instead of being stored.
//
// The methods of a nil *Model fail with ErrInvalidArgument (Sequence and
// EntitySequence return 0).
type Model[T any] struct {
	mu       sync.RWMutex
	t        T
	last     map[string]uint64
	sequence uint64
}

// NewModel returns a Model wrapping t. T is usually a pointer to the
// application's state type, which implements Evolver, Decider or both. A
// nil pointer is wrapped as it is: its methods are called on it, which
// suits a decider without state.
func NewModel[T any](t T) *Model[T] {
	return &Model[T]{t: t, last: make(map[string]uint64)}
}

// Decide asks the wrapped value to decide on cmd under the read lock. It
// returns ErrDeciderNotImplemented if T does not implement Decider. The
// first returned event of each entity gets an Expect of the last sequence the
// model has applied for that entity, unless it already has an Expect. A nil
// cmd is passed to the decider as it is.
func (m *Model[T]) Decide(cmd *Command) ([]*Event, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil *Model", ErrInvalidArgument)
	}
	d, ok := any(m.t).(Decider)
	if !ok {
		return nil, fmt.Errorf("rita: model of %T: %w", m.t, ErrDeciderNotImplemented)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	events, err := d.Decide(cmd)
	if err != nil {
		return nil, err
	}
	stamped := make(map[string]bool, 1)
	for i, e := range events {
		if e == nil {
			return nil, fmt.Errorf("%w: decider returned a nil event at index %d", ErrEventNil, i)
		}
		if stamped[e.Entity] {
			continue
		}
		stamped[e.Entity] = true
		if e.Expect == nil {
			e.Expect = ExpectSequence(m.last[e.Entity])
		}
	}
	return events, nil
}

// Evolve applies event to the wrapped value under the write lock. It returns
// ErrEvolverNotImplemented if T does not implement Evolver. An event with a
// sequence the model has already applied for its entity is skipped (nil
// error). An event without a sequence (one that was never stored) is always
// applied. The model's sequences advance only when the evolver succeeds.
func (m *Model[T]) Evolve(event *Event) error {
	if m == nil {
		return fmt.Errorf("%w: nil *Model", ErrInvalidArgument)
	}
	ev, ok := any(m.t).(Evolver)
	if !ok {
		return fmt.Errorf("rita: model of %T: %w", m.t, ErrEvolverNotImplemented)
	}
	if event == nil {
		return ErrEventNil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := event.sequence
	if seq != 0 && seq <= m.last[event.Entity] {
		return nil
	}
	if err := ev.Evolve(event); err != nil {
		return err
	}
	if seq != 0 {
		m.last[event.Entity] = seq
		m.sequence = max(m.sequence, seq)
	}
	return nil
}

// View calls fn with the wrapped value under the read lock and returns fn's
// error. fn must not keep the value nor modify it.
func (m *Model[T]) View(fn func(T) error) error {
	if m == nil {
		return fmt.Errorf("%w: nil *Model", ErrInvalidArgument)
	}
	if fn == nil {
		return fmt.Errorf("%w: nil view function", ErrInvalidArgument)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fn(m.t)
}

// Sequence returns the highest stream sequence the model has applied, over
// all entities; 0 if none.
//
// It is a safe WithAfterSequence to catch up only for a model fed in stream
// order by one reader (Evolve or Watch with the same filters). A model that
// DecideAndEvolve also wrote to may have applied a later event of one entity
// before earlier events of another: catch up per entity with
// EntitySequence instead.
func (m *Model[T]) Sequence() uint64 {
	if m == nil {
		return 0
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sequence
}

// EntitySequence returns the sequence of the last event the model has applied
// for entity; 0 if none. Evolve with WithFilters(entity) and
// WithAfterSequence(EntitySequence(entity)) brings that entity up to date.
func (m *Model[T]) EntitySequence(entity string) uint64 {
	if m == nil {
		return 0
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.last[entity]
}
