package rita_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

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
