package rita_test

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/types"
)

// Hostile input: every exported function and method given nil, empty,
// oversized and malformed arguments returns an error matching the sentinel
// that says what was wrong, stores nothing, and does not panic.

// hostileCase is one call that must fail with want.
type hostileCase struct {
	name string
	call func(ctx context.Context) error
	want error
}

// callSafely runs call, turning a panic into an error that says so.
func callSafely(ctx context.Context, call func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return call(ctx)
}

func runHostile(t *testing.T, cases []hostileCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := callSafely(testCtx(t), tc.call)
			if err != nil && strings.HasPrefix(err.Error(), "panic: ") {
				t.Fatalf("%v", err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one matching %v", err, tc.want)
			}
			if err.Error() == tc.want.Error() && !selfExplaining[tc.want] {
				// The sentinel alone would not say which argument was wrong.
				t.Errorf("error %q is the bare sentinel", err)
			}
		})
	}
}

// selfExplaining are the sentinels that say all there is to say.
var selfExplaining = map[error]bool{
	rita.ErrNoEvents: true, rita.ErrEventStoreNameRequired: true, rita.ErrEventDataRequired: true,
	rita.ErrEventEntityRequired: true, rita.ErrEventTypeRequired: true, rita.ErrEventNil: true,
}

// hostileEvent is a valid raw event to spoil.
func hostileEvent() *rita.Event { return rawEvent("order.1", "placed", "x") }

func spoiled(change func(*rita.Event)) []*rita.Event {
	e := hostileEvent()
	change(e)
	return []*rita.Event{e}
}

func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	raw := e.store(t, "hostile")
	typedM := e.manager(t, rita.WithRegistry(newRegistry(t, orderTypes())))
	typed, err := typedM.GetEventStore(testCtx(t), "hostile")
	requireNoError(t, err)
	model := rita.NewModel(newLedger())

	badNames := map[string]error{
		"":                       rita.ErrEventStoreNameRequired,
		"a.b":                    rita.ErrEventStoreNameInvalid,
		"a b":                    rita.ErrEventStoreNameInvalid,
		"a*":                     rita.ErrEventStoreNameInvalid,
		"a>":                     rita.ErrEventStoreNameInvalid,
		"a/b":                    rita.ErrEventStoreNameInvalid,
		`a\b`:                    rita.ErrEventStoreNameInvalid,
		"a\tb":                   rita.ErrEventStoreNameInvalid,
		"a\x00b":                 rita.ErrEventStoreNameInvalid,
		"\xff":                   rita.ErrEventStoreNameInvalid,
		strings.Repeat("x", 253): rita.ErrEventStoreNameInvalid,
	}
	var cases []hostileCase
	add := func(name string, want error, call func(ctx context.Context) error) {
		cases = append(cases, hostileCase{name: name, call: call, want: want})
	}

	// Manager.
	add("New nil conn", rita.ErrInvalidArgument, func(context.Context) error { _, err := rita.New(nil); return err })
	add("New nil option", rita.ErrInvalidOption, func(context.Context) error { _, err := rita.New(e.nc, nil); return err })
	add("CreateEventStore nil ctx", rita.ErrInvalidArgument, func(context.Context) error {
		_, err := e.m.CreateEventStore(nilCtx(), rita.EventStoreConfig{Name: "ok"})
		return err
	})
	add("CreateEventStore negative Replicas", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, err := e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "ok", Replicas: -1})
		return err
	})
	add("CreateEventStore negative Duplicates", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, err := e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "ok", Duplicates: -1})
		return err
	})
	add("GetEventStore nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := e.m.GetEventStore(nilCtx(), "hostile"); return err })
	add("UpdateEventStore nil ctx", rita.ErrInvalidArgument, func(context.Context) error {
		return e.m.UpdateEventStore(nilCtx(), rita.EventStoreConfig{Name: "hostile"})
	})
	add("DeleteEventStore nil ctx", rita.ErrInvalidArgument, func(context.Context) error { return e.m.DeleteEventStore(nilCtx(), "hostile") })
	for name, want := range badNames {
		q := fmt.Sprintf("%.20q", name)
		add("CreateEventStore "+q, want, func(ctx context.Context) error {
			_, err := e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: name})
			return err
		})
		add("GetEventStore "+q, want, func(ctx context.Context) error { _, err := e.m.GetEventStore(ctx, name); return err })
		add("UpdateEventStore "+q, want, func(ctx context.Context) error {
			return e.m.UpdateEventStore(ctx, rita.EventStoreConfig{Name: name})
		})
		add("DeleteEventStore "+q, want, func(ctx context.Context) error { return e.m.DeleteEventStore(ctx, name) })
	}

	// Append.
	appendRaw := func(events []*rita.Event) func(context.Context) error {
		return func(ctx context.Context) error { _, err := raw.Append(ctx, events); return err }
	}
	appendTyped := func(events []*rita.Event) func(context.Context) error {
		return func(ctx context.Context) error { _, err := typed.Append(ctx, events); return err }
	}
	add("Append nil ctx", rita.ErrInvalidArgument, func(context.Context) error {
		_, err := raw.Append(nilCtx(), []*rita.Event{hostileEvent()})
		return err
	})
	add("Append nil slice", rita.ErrNoEvents, appendRaw(nil))
	add("Append empty slice", rita.ErrNoEvents, appendRaw([]*rita.Event{}))
	add("Append nil event", rita.ErrEventNil, appendRaw([]*rita.Event{nil}))
	add("Append nil event in a batch", rita.ErrEventNil, appendRaw([]*rita.Event{hostileEvent(), nil}))
	tooMany := make([]*rita.Event, rita.MaxBatchSize+1)
	for i := range tooMany {
		tooMany[i] = hostileEvent()
	}
	add("Append 1001 events", rita.ErrTooManyEvents, appendRaw(tooMany))
	add("Append nil Data", rita.ErrEventDataRequired, appendRaw(spoiled(func(e *rita.Event) { e.Data = nil })))
	add("Append typed nil Data", rita.ErrEventDataRequired, appendTyped([]*rita.Event{{Entity: "order.1", Data: (*placedEvt)(nil)}}))
	add("Append string Data without registry", rita.ErrEventDataInvalid, appendRaw(spoiled(func(e *rita.Event) { e.Data = "x" })))
	add("Append no entity", rita.ErrEventEntityRequired, appendRaw(spoiled(func(e *rita.Event) { e.Entity = "" })))
	for _, entity := range []string{"order", "order.", ".1", "order.1.x", "order.*", "order.>", "or der.1", "order.\n", "order.\x00"} {
		add(fmt.Sprintf("Append entity %q", entity), rita.ErrEventEntityInvalid, appendRaw(spoiled(func(e *rita.Event) { e.Entity = entity })))
	}
	add("Append no type", rita.ErrEventTypeRequired, appendRaw(spoiled(func(e *rita.Event) { e.Type = "" })))
	for _, typ := range []string{"a.b", "a*", "a>", "a b", "\x00"} {
		add(fmt.Sprintf("Append type %q", typ), rita.ErrEventTypeInvalid, appendRaw(spoiled(func(e *rita.Event) { e.Type = typ })))
	}
	for _, key := range []string{"", "bad key", "a:b", "ü", "a\r\nb", "a\x00"} {
		add(fmt.Sprintf("Append meta key %q", key), rita.ErrEventMetaInvalid,
			appendRaw(spoiled(func(e *rita.Event) { e.Meta = map[string]string{key: "v"} })))
	}
	add("Append meta value with a line break", rita.ErrEventMetaInvalid,
		appendRaw(spoiled(func(e *rita.Event) { e.Meta = map[string]string{"k": "a\r\nb"} })))
	add("Append huge metadata", rita.ErrEventTooLarge, appendRaw(spoiled(func(e *rita.Event) {
		e.Meta = map[string]string{}
		for i := range 2000 {
			e.Meta[fmt.Sprintf("k%d", i)] = strings.Repeat("v", 40)
		}
	})))
	add("Append data beyond the server's max payload", rita.ErrEventTooLarge,
		appendRaw(spoiled(func(ev *rita.Event) { ev.Data = make([]byte, e.nc.MaxPayload()+1) })))
	add("Append expect pattern of four tokens", rita.ErrSubjectTooManyTokens,
		appendRaw(spoiled(func(e *rita.Event) { e.Expect = rita.ExpectSequenceSubject(0, "a.b.c.d") })))
	add("Append expect pattern with an empty token", rita.ErrFilterInvalid,
		appendRaw(spoiled(func(e *rita.Event) { e.Expect = rita.ExpectSequenceSubject(0, "a..b") })))
	add("Append one ID twice", rita.ErrDuplicateEvent, appendRaw([]*rita.Event{
		{ID: "same", Entity: "order.1", Type: "a", Data: []byte("x")},
		{ID: "same", Entity: "order.2", Type: "a", Data: []byte("x")},
	}))
	add("Append unregistered data", rita.ErrEventTypeInvalid, appendTyped([]*rita.Event{{Entity: "order.1", Data: &unregisteredEvt{}}}))
	add("Append type disagreeing with the registry", rita.ErrEventTypeInvalid,
		appendTyped([]*rita.Event{{Entity: "order.1", Type: "order-shipped", Data: &placedEvt{}}}))
	add("Append bytes of an unregistered type", rita.ErrEventTypeInvalid,
		appendTyped([]*rita.Event{{Entity: "order.1", Type: "nope", Data: []byte("{}")}}))

	// Evolve and Watch.
	add("Evolve nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := raw.Evolve(nilCtx(), &recorder{}); return err })
	add("Evolve nil model", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := raw.Evolve(ctx, nil); return err })
	add("Evolve nil option", rita.ErrInvalidOption, func(ctx context.Context) error { _, err := raw.Evolve(ctx, &recorder{}, nil); return err })
	for filter, want := range map[string]error{"a..b": rita.ErrFilterInvalid, ".": rita.ErrFilterInvalid, "a.>.b": rita.ErrFilterInvalid,
		"a b": rita.ErrFilterInvalid, "a.b.c.d": rita.ErrSubjectTooManyTokens, "order.1.placed.x": rita.ErrSubjectTooManyTokens} {
		add(fmt.Sprintf("Evolve filter %q", filter), want, func(ctx context.Context) error {
			_, err := raw.Evolve(ctx, &recorder{}, rita.WithFilters(filter))
			return err
		})
		add(fmt.Sprintf("Watch filter %q", filter), want, func(ctx context.Context) error {
			_, err := raw.Watch(ctx, &recorder{}, rita.WithFilters(filter))
			return err
		})
	}
	add("Watch nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := raw.Watch(nilCtx(), &recorder{}); return err })
	add("Watch nil model", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := raw.Watch(ctx, nil); return err })
	add("Watch nil option", rita.ErrInvalidOption, func(ctx context.Context) error { _, err := raw.Watch(ctx, &recorder{}, nil); return err })
	add("Watch with a stop sequence", rita.ErrInvalidOption, func(ctx context.Context) error {
		_, err := raw.Watch(ctx, &recorder{}, rita.WithStopSequence(3))
		return err
	})

	// Decide and DecideAndEvolve.
	add("Decide nil ctx", rita.ErrInvalidArgument, func(context.Context) error {
		_, _, err := typed.Decide(nilCtx(), model, &rita.Command{Data: &depositCmd{Account: "1", Amount: 1}})
		return err
	})
	add("Decide nil model", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, _, err := typed.Decide(ctx, nil, &rita.Command{})
		return err
	})
	add("DecideAndEvolve nil model", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, _, err := typed.DecideAndEvolve(ctx, nil, &rita.Command{})
		return err
	})
	add("Decide a nil event", rita.ErrEventNil, func(ctx context.Context) error {
		_, _, err := raw.Decide(ctx, deciderFunc(func(*rita.Command) ([]*rita.Event, error) { return []*rita.Event{nil}, nil }), &rita.Command{})
		return err
	})
	add("Decide an invalid event", rita.ErrEventEntityInvalid, func(ctx context.Context) error {
		_, _, err := typed.Decide(ctx, model, &rita.Command{Data: badEventCmd{}})
		return err
	})

	// Nil receivers.
	var (
		nilManager *rita.Manager
		nilStore   *rita.EventStore
		nilModelP  *rita.Model[*ledger]
	)
	add("nil Manager CreateEventStore", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, err := nilManager.CreateEventStore(ctx, rita.EventStoreConfig{Name: "x"})
		return err
	})
	add("nil Manager GetEventStore", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := nilManager.GetEventStore(ctx, "x"); return err })
	add("nil Manager UpdateEventStore", rita.ErrInvalidArgument, func(ctx context.Context) error {
		return nilManager.UpdateEventStore(ctx, rita.EventStoreConfig{Name: "x"})
	})
	add("nil Manager DeleteEventStore", rita.ErrInvalidArgument, func(ctx context.Context) error { return nilManager.DeleteEventStore(ctx, "x") })
	add("nil EventStore Append", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, err := nilStore.Append(ctx, []*rita.Event{hostileEvent()})
		return err
	})
	add("nil EventStore Evolve", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := nilStore.Evolve(ctx, &recorder{}); return err })
	add("nil EventStore Watch", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := nilStore.Watch(ctx, &recorder{}); return err })
	add("nil EventStore Decide", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, _, err := nilStore.Decide(ctx, model, &rita.Command{})
		return err
	})
	add("nil EventStore DecideAndEvolve", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, _, err := nilStore.DecideAndEvolve(ctx, model, &rita.Command{})
		return err
	})
	add("nil Model Decide", rita.ErrInvalidArgument, func(context.Context) error { _, err := nilModelP.Decide(&rita.Command{}); return err })
	add("nil Model Evolve", rita.ErrInvalidArgument, func(context.Context) error { return nilModelP.Evolve(hostileEvent()) })
	add("nil Model View", rita.ErrInvalidArgument, func(context.Context) error { return nilModelP.View(func(*ledger) error { return nil }) })
	if nilStore.Name() != "" || nilModelP.Sequence() != 0 || nilModelP.EntitySequence("a.b") != 0 {
		t.Errorf("accessors of nil receivers return something")
	}

	// Model.
	add("Model Evolve nil event", rita.ErrEventNil, func(context.Context) error { return model.Evolve(nil) })
	add("Model View nil func", rita.ErrInvalidArgument, func(context.Context) error { return model.View(nil) })
	add("Model of nil interface", rita.ErrEvolverNotImplemented, func(context.Context) error {
		return rita.NewModel[rita.Evolver](nil).Evolve(hostileEvent())
	})

	// The types package.
	add("NewRegistry nil option", types.ErrOptionInvalid, func(context.Context) error { _, err := types.NewRegistry(nil, nil); return err })
	add("NewRegistry unknown codec", types.ErrCodecUnknown, func(context.Context) error {
		_, err := types.NewRegistry(nil, types.Codec("yaml"))
		return err
	})
	add("NewRegistry nil type", types.ErrTypeInvalid, func(context.Context) error {
		_, err := types.NewRegistry(map[string]*types.Type{"a": nil})
		return err
	})
	add("NewRegistry nil Init", types.ErrTypeInvalid, func(context.Context) error {
		_, err := types.NewRegistry(map[string]*types.Type{"a": {}})
		return err
	})
	add("NewRegistry name with a space", types.ErrTypeNameInvalid, func(context.Context) error {
		_, err := types.NewRegistry(map[string]*types.Type{"a b": {Init: func() any { return new(placedEvt) }}})
		return err
	})
	reg := newRegistry(t, orderTypes())
	add("Registry Lookup nil", types.ErrTypeNotRegistered, func(context.Context) error { _, err := reg.Lookup(nil); return err })
	add("Registry Marshal nil", types.ErrTypeNotRegistered, func(context.Context) error { _, err := reg.Marshal(nil); return err })
	add("Registry Marshal nil pointer", types.ErrValueInvalid, func(context.Context) error { _, err := reg.Marshal((*placedEvt)(nil)); return err })
	add("Registry Init empty", types.ErrTypeNotRegistered, func(context.Context) error { _, err := reg.Init(""); return err })
	add("Registry UnmarshalType unknown", types.ErrTypeNotRegistered, func(context.Context) error {
		_, err := reg.UnmarshalType([]byte("{}"), "nope")
		return err
	})
	var nilReg *types.Registry
	add("nil Registry Unmarshal", types.ErrTypeNotRegistered, func(context.Context) error { return nilReg.Unmarshal(nil, nil) })

	runHostile(t, cases)

	// Nothing was stored, no store was made, and nothing panics on a nil
	// registry's or a nil event's accessors.
	if n := e.msgs(t, "hostile"); n != 0 {
		t.Errorf("store holds %d messages after refused calls, want 0", n)
	}
	if names := e.streamNames(t); len(names) != 1 || names[0] != "ES_hostile" {
		t.Errorf("streams = %v, want only ES_hostile", names)
	}
	e.requireNoConsumers(t, "hostile")
	var nilEvent *rita.Event
	if nilEvent.Sequence() != 0 || nilEvent.Subject() != "" || nilReg.Codec() != "" || nilReg.Names() != nil {
		t.Errorf("accessors of nil values return something")
	}
	if err := reg.Unmarshal([]byte("{}"), nil); err == nil {
		t.Errorf("Unmarshal into nil succeeded")
	}
}

// TestHostileInputExtended extends the hostile-input table to the API of
// retries, durable watches, reactors, parked events, progress and
// projections.
func TestHostileInputExtended(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "hostile2")
	var nilStore *rita.EventStore
	model := rita.NewModel(newLedger())
	cmd := func() *rita.Command { return &rita.Command{Data: []byte("x")} }
	handler := func(context.Context, *rita.Event) error { return nil }

	var cases []hostileCase
	add := func(name string, want error, call func(ctx context.Context) error) {
		cases = append(cases, hostileCase{name: name, call: call, want: want})
	}

	// Retry on conflict.
	for name, decide := range map[string]func(*rita.EventStore, context.Context, rita.DeciderEvolver, *rita.Command, ...rita.DecideOption) ([]*rita.Event, uint64, error){
		"DecideWithRetry":          (*rita.EventStore).DecideWithRetry,
		"DecideAndEvolveWithRetry": (*rita.EventStore).DecideAndEvolveWithRetry,
	} {
		add(name+" nil store", rita.ErrInvalidArgument, func(ctx context.Context) error { _, _, err := decide(nilStore, ctx, model, cmd()); return err })
		add(name+" nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, _, err := decide(s, nilCtx(), model, cmd()); return err })
		add(name+" nil model", rita.ErrInvalidArgument, func(ctx context.Context) error { _, _, err := decide(s, ctx, nil, cmd()); return err })
		add(name+" nil option", rita.ErrInvalidOption, func(ctx context.Context) error { _, _, err := decide(s, ctx, model, cmd(), nil); return err })
		add(name+" zero attempts", rita.ErrInvalidOption, func(ctx context.Context) error {
			_, _, err := decide(s, ctx, model, cmd(), rita.WithMaxAttempts(0))
			return err
		})
		add(name+" bad filter", rita.ErrFilterInvalid, func(ctx context.Context) error {
			_, _, err := decide(s, ctx, model, cmd(), rita.WithRetryFilters("a b"))
			return err
		})
	}

	// Durable watch names and options.
	for name, d := range map[string]string{"empty": "", "dotted": "a.b", "wildcard": "a*", "spaced": "a b", "slashed": "a/b"} {
		add("Durable.Watch name "+name, rita.ErrInvalidOption, func(ctx context.Context) error {
			_, err := s.Durable(d).Watch(ctx, model)
			return err
		})
	}
	for name, opt := range map[string]rita.DurableOption{
		"WithConcurrency 0":     rita.WithConcurrency(0),
		"WithMaxAttempts 0":     rita.WithMaxAttempts(0),
		"WithAckWait too short": rita.WithAckWait(time.Millisecond),
		"WithBackoff negative":  rita.WithBackoff(-time.Second, time.Second),
		"WithStopSequence":      rita.WithStopSequence(3),
	} {
		add("Durable.Watch "+name, rita.ErrInvalidOption, func(ctx context.Context) error {
			_, err := s.Durable("ok").Watch(ctx, model, opt)
			return err
		})
	}
	add("Durable.Watch nil model", rita.ErrInvalidArgument, func(ctx context.Context) error {
		_, err := s.Durable("ok").Watch(ctx, nil)
		return err
	})
	add("Durable.React WithNoWait", rita.ErrInvalidOption, func(ctx context.Context) error {
		_, err := s.Durable("ok").React(ctx, handler, rita.WithNoWait())
		return err
	})

	// Reactors.
	add("React nil store", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := nilStore.Durable("r").React(ctx, handler); return err })
	add("React nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := s.Durable("r").React(nilCtx(), handler); return err })
	add("React nil handler", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := s.Durable("r").React(ctx, nil); return err })
	add("React empty name", rita.ErrInvalidOption, func(ctx context.Context) error { _, err := s.Durable("").React(ctx, handler); return err })
	add("React dotted name", rita.ErrInvalidOption, func(ctx context.Context) error { _, err := s.Durable("a.b").React(ctx, handler); return err })
	add("React nil option", rita.ErrInvalidOption, func(ctx context.Context) error { _, err := s.Durable("r").React(ctx, handler, nil); return err })
	add("React bad filter", rita.ErrSubjectTooManyTokens, func(ctx context.Context) error {
		_, err := s.Durable("r").React(ctx, handler, rita.WithFilters("a.b.c.d"))
		return err
	})

	// Parked events, progress, lifecycle, projections.
	add("ListParked nil store", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := nilStore.Durable("r").Parked(ctx); return err })
	add("ListParked nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := s.Durable("r").Parked(nilCtx()); return err })
	add("GetParked nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := s.Durable("r").GetParked(nilCtx(), 1); return err })
	add("GetParked missing", rita.ErrParkedNotFound, func(ctx context.Context) error { _, err := s.Durable("r").GetParked(ctx, 1); return err })
	add("RetryParked nil ctx", rita.ErrInvalidArgument, func(context.Context) error { return s.Durable("r").RetryParked(nilCtx(), 1) })
	add("RetryParked missing", rita.ErrParkedNotFound, func(ctx context.Context) error { return s.Durable("r").RetryParked(ctx, 1) })
	add("DeleteParked nil ctx", rita.ErrInvalidArgument, func(context.Context) error { return s.Durable("r").DeleteParked(nilCtx(), 1) })
	add("DeleteParked missing", rita.ErrParkedNotFound, func(ctx context.Context) error { return s.Durable("r").DeleteParked(ctx, 1) })
	add("Progress nil store", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := nilStore.Durable("r").Progress(ctx); return err })
	add("Progress nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := s.Durable("r").Progress(nilCtx()); return err })
	add("WaitCaughtUp nil ctx", rita.ErrInvalidArgument, func(context.Context) error { return s.Durable("r").WaitCaughtUp(nilCtx()) })
	add("Rebuild nil ctx", rita.ErrInvalidArgument, func(context.Context) error { return s.Durable("r").Rebuild(nilCtx(), 0) })
	add("DeleteDurable nil ctx", rita.ErrInvalidArgument, func(context.Context) error { return s.Durable("r").Delete(nilCtx()) })
	add("Project nil store", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := nilStore.Project(ctx, nil); return err })
	add("Project nil ctx", rita.ErrInvalidArgument, func(context.Context) error { _, err := s.Project(nilCtx(), nil); return err })
	add("Project nil projection", rita.ErrInvalidArgument, func(ctx context.Context) error { _, err := s.Project(ctx, nil); return err })

	runHostile(t, cases)
	if n := e.msgs(t, "hostile2"); n != 0 {
		t.Fatalf("hostile calls stored %d messages", n)
	}
}

func TestHostileNilStoreLifecycle(t *testing.T) {
	var s *rita.EventStore
	ctx := testCtx(t)
	for name, call := range map[string]func() error{
		"Rebuild":       func() error { return s.Durable("r").Rebuild(ctx, 0) },
		"DeleteDurable": func() error { return s.Durable("r").Delete(ctx) },
		"WaitCaughtUp":  func() error { return s.Durable("r").WaitCaughtUp(ctx) },
		"GetParked":     func() error { _, err := s.Durable("r").GetParked(ctx, 1); return err },
		"RetryParked":   func() error { return s.Durable("r").RetryParked(ctx, 1) },
		"DeleteParked":  func() error { return s.Durable("r").DeleteParked(ctx, 1) },
	} {
		if err := callSafely(ctx, func(context.Context) error { return call() }); !errors.Is(err, rita.ErrInvalidArgument) {
			t.Errorf("%s on a nil store: %v, want ErrInvalidArgument", name, err)
		}
	}
}
