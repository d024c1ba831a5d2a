package ritatest

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/internal/eventdiff"
)

// Spec is a given/when/then specification of a decider: given the events of
// the past, when a command is decided, then these events are decided, or
// this error is returned. T is the state type, usually a pointer to a struct
// with Decide and Evolve methods; it is wrapped in a rita.Model, as in
// production.
//
// Run checks the specification on the state alone, without a server; RunStore
// checks it again through a real event store, so that one specification
// proves both the domain logic and its wiring (registration, encoding,
// expectations):
//
//	func TestWithdraw(t *testing.T) {
//		spec := ritatest.Spec[*Account]{
//			Given: []*rita.Event{
//				{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}},
//				{Entity: "account.alice", Data: &Deposited{Amount: 100}},
//			},
//			When: &Withdraw{Account: "alice", Amount: 30},
//			Then: []*rita.Event{{Entity: "account.alice", Data: &Withdrawn{Amount: 30}}},
//		}
//		spec.Run(t, newAccount)
//		spec.RunStore(t, registry, newAccount)
//	}
//
// Events are compared by Entity, Type and Data, in order. Type is compared
// only when both events have one (Run leaves the decider's as it returned
// them; the store fills them in from the registry). Data is compared with
// reflect.DeepEqual (proto.Equal for protocol buffers), a pointer to a struct
// being equal to the struct. Meta is compared only for the keys the expected
// event has. IDs, times, sequences and expectations are ignored. A Spec is a
// value: running it does not modify it or the events it holds.
type Spec[T any] struct {
	// Given are the events of the past, in order. The state evolves with
	// them before the command is decided. Their Data should be what a read
	// returns: with a type registry, a pointer to the registered type.
	Given []*rita.Event

	// When is the command: a *rita.Command, or any other value, which is
	// then the Data of a command of its own. A command without ID or Time
	// gets them filled in, as EventStore.Decide does.
	When any

	// Then are the events the decision must return, in order. Nil (with a
	// nil ThenError) means the decider must decide no events.
	Then []*rita.Event

	// ThenError, when set, is the error the decision must return, matched
	// with errors.Is; no events may then be stored. Then must be empty.
	ThenError error
}

// Run checks s on a fresh state from newState, without a server, and fails
// t with a description of every difference if it does not hold.
//
// The state, wrapped in a rita.Model, evolves with the Given events, decides
// on the command, and must then accept the events it decided (its Evolve
// must not fail on them). As EventStore.Decide does, each decided event gets
// the command's causation and correlation IDs in Meta unless the decider set
// them.
func (s Spec[T]) Run(t testing.TB, newState func() T) {
	t.Helper()
	if err := s.Check(newState); err != nil {
		t.Error(err)
	}
}

// Check is Run that returns the differences as an error instead of failing
// a test, for use outside tests or in frameworks of one's own. It returns nil
// when s holds.
func (s Spec[T]) Check(newState func() T) error {
	cmd, err := s.prepare(newState)
	if err != nil {
		return err
	}
	model := rita.NewModel(newState())
	for i, e := range s.Given {
		if err := model.Evolve(specCopyEvent(e)); err != nil {
			return s.failf("given event %d (%s): the state refused it: %v", i+1, eventdiff.Event(e), err)
		}
	}
	specFillCommand(cmd)
	events, err := model.Decide(cmd)
	if err == nil {
		specCorrelate(cmd, events)
	}
	if msg := s.compare(events, err); msg != "" {
		return s.failf("%s", msg)
	}
	for i, e := range events {
		if err := model.Evolve(e); err != nil {
			return s.failf("decided event %d (%s): the state refused it: %v", i+1, eventdiff.Event(e), err)
		}
	}
	return nil
}

// prepare checks that s can be run and returns a copy of its command.
func (s Spec[T]) prepare(newState func() T) (*rita.Command, error) {
	switch {
	case newState == nil:
		return nil, errors.New("ritatest: invalid spec: nil newState")
	case s.When == nil:
		return nil, errors.New("ritatest: invalid spec: no When command")
	case s.ThenError != nil && len(s.Then) > 0:
		return nil, errors.New("ritatest: invalid spec: both Then events and a ThenError")
	}
	for i, e := range s.Given {
		if e == nil {
			return nil, fmt.Errorf("ritatest: invalid spec: Given event %d is nil", i+1)
		}
	}
	for i, e := range s.Then {
		if e == nil {
			return nil, fmt.Errorf("ritatest: invalid spec: Then event %d is nil", i+1)
		}
	}
	return s.command(), nil
}

// command returns a copy of the When command.
func (s Spec[T]) command() *rita.Command {
	if c, ok := s.When.(*rita.Command); ok && c != nil {
		cp := *c
		cp.Meta = maps.Clone(c.Meta)
		return &cp
	}
	return &rita.Command{Data: s.When}
}

// specFillCommand fills an empty ID and Time as EventStore.Decide does.
func specFillCommand(cmd *rita.Command) {
	if cmd.ID == "" {
		cmd.ID = id.NUID.New()
	}
	if cmd.Time.IsZero() {
		cmd.Time = clock.Time.Now()
	}
}

// specCorrelate adds the command's causation and correlation IDs to the events'
// Meta, as EventStore.Decide does, leaving the keys a decider set alone.
func specCorrelate(cmd *rita.Command, events []*rita.Event) {
	correlation := cmd.Meta[rita.MetaCorrelationID]
	if correlation == "" {
		correlation = cmd.ID
	}
	for _, e := range events {
		if e == nil {
			continue
		}
		meta := maps.Clone(e.Meta)
		if meta == nil {
			meta = make(map[string]string, 2)
		}
		if _, ok := meta[rita.MetaCausationID]; !ok {
			meta[rita.MetaCausationID] = cmd.ID
		}
		if _, ok := meta[rita.MetaCorrelationID]; !ok {
			meta[rita.MetaCorrelationID] = correlation
		}
		e.Meta = meta
	}
}

// specCopyEvent returns a copy of e that can be appended or evolved without
// touching e: its ID, Entity, Time, Type, Data and Meta (a copy), no Expect.
func specCopyEvent(e *rita.Event) *rita.Event {
	return &rita.Event{ID: e.ID, Entity: e.Entity, Time: e.Time, Type: e.Type, Data: e.Data, Meta: maps.Clone(e.Meta)}
}

// failf returns the failure of s when run without a store: what was given
// and done, then the message.
func (s Spec[T]) failf(format string, args ...any) error {
	return s.fail("ritatest", format, args...)
}

// storeFailf returns the failure of s when run through a store.
func (s Spec[T]) storeFailf(format string, args ...any) error {
	return s.fail("ritatest (through a store)", format, args...)
}

func (s Spec[T]) fail(prefix, format string, args ...any) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: given %s, when %s:\n", prefix, eventdiff.Plural(len(s.Given), "event"), eventdiff.Data(s.command().Data))
	fmt.Fprintf(&b, format, args...)
	return errors.New(strings.TrimRight(b.String(), "\n"))
}

// compare returns "" when the decision (events, err) is the one s expects.
func (s Spec[T]) compare(events []*rita.Event, err error) string {
	return eventdiff.Decision("decided", s.Then, s.ThenError, events, err)
}
