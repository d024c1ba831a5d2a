package rita_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/ritatest"
)

// Creating a store that exists with another configuration says which
// fields differ and what to call.
func TestCreateEventStoreNamesDifferences(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	base := rita.EventStoreConfig{Name: "orders", Description: "orders", MaxAge: time.Hour}
	_, err := e.m.CreateEventStore(ctx, base)
	requireNoError(t, err)

	// The same configuration returns the store.
	_, err = e.m.CreateEventStore(ctx, base)
	requireNoError(t, err)
	// Defaults spelt out are the same configuration too.
	same := base
	same.Replicas, same.Duplicates = 1, 2*time.Minute
	_, err = e.m.CreateEventStore(ctx, same)
	requireNoError(t, err)

	tests := []struct {
		name   string
		change func(*rita.EventStoreConfig)
		want   []string
	}{
		{"max age", func(c *rita.EventStoreConfig) { c.MaxAge = 2 * time.Hour }, []string{"MaxAge: 1h0m0s, asked 2h0m0s"}},
		{"storage and duplicates", func(c *rita.EventStoreConfig) {
			c.Storage, c.Duplicates = jetstream.MemoryStorage, time.Minute
		}, []string{"Storage: File, asked Memory", "Duplicates: 2m0s, asked 1m0s"}},
		{"description and metadata", func(c *rita.EventStoreConfig) {
			c.Description, c.Metadata = "", map[string]string{"team": "shop"}
		}, []string{`Description: "orders", asked ""`, "Metadata: map[], asked map[team:shop]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			_, err := e.m.CreateEventStore(ctx, cfg)
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				t.Fatalf("error %v does not match jetstream.ErrStreamNameAlreadyInUse", err)
			}
			for _, part := range append(tt.want, "UpdateEventStore") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q lacks %q", err, part)
				}
			}
			if strings.Count(err.Error(), "asked") != len(tt.want) {
				t.Errorf("error %q names other differences than %q", err, tt.want)
			}
		})
	}
}

func TestNewManager(t *testing.T) {
	if _, err := rita.New(nil); !errors.Is(err, rita.ErrInvalidArgument) {
		t.Fatalf("New(nil) error = %v, want ErrInvalidArgument", err)
	}

	e := newEnv(t)
	valid := []rita.ManagerOption{
		rita.WithClock(clock.Time),
		rita.WithIDer(id.UUID),
		rita.WithRegistry(newRegistry(t, orderTypes())),
		rita.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	if _, err := rita.New(e.nc, valid...); err != nil {
		t.Fatalf("New with valid options: %v", err)
	}

	// A nil option is refused; an option given nil means its default, as
	// in the first rita (WithRegistry(nil): no registry).
	m, err := rita.New(e.nc, nil)
	if !errors.Is(err, rita.ErrInvalidOption) || m != nil {
		t.Fatalf("New(nil option) = %v, %v; want nil, ErrInvalidOption", m, err)
	}
	m, err = rita.New(e.nc, rita.WithRegistry(nil), rita.WithClock(nil), rita.WithIDer(nil), rita.WithLogger(nil))
	requireNoError(t, err)
	s, err := m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "defaults"})
	requireNoError(t, err)
	events := []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte("raw")}}
	_, err = s.Append(testCtx(t), events)
	requireNoError(t, err)
	if events[0].ID == "" || events[0].Time.IsZero() {
		t.Fatalf("defaults did not fill ID %q and Time %v", events[0].ID, events[0].Time)
	}
	var r recorder
	_, err = s.Evolve(testCtx(t), &r)
	requireNoError(t, err)
	if got := r.all(); len(got) != 1 || string(got[0].Data.([]byte)) != "raw" {
		t.Fatalf("read back %+v, want the raw bytes (no registry)", got)
	}
}

func TestCreateEventStoreDefaults(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "orders")
	if got := s.Name(); got != "orders" {
		t.Fatalf("Name() = %q, want %q", got, "orders")
	}

	info := e.info(t, "orders")
	cfg := info.Config
	if cfg.Name != "ES_orders" {
		t.Errorf("stream name = %q, want ES_orders", cfg.Name)
	}
	if !slices.Equal(cfg.Subjects, []string{"$ES.orders.>"}) {
		t.Errorf("subjects = %v, want [$ES.orders.>]", cfg.Subjects)
	}
	if !cfg.AllowAtomicPublish {
		t.Errorf("AllowAtomicPublish = false, want true")
	}
	if !cfg.AllowDirect {
		t.Errorf("AllowDirect = false, want true")
	}
	if cfg.Replicas != 1 {
		t.Errorf("Replicas = %d, want 1", cfg.Replicas)
	}
	if cfg.Storage != jetstream.FileStorage {
		t.Errorf("Storage = %v, want file", cfg.Storage)
	}
	if cfg.MaxMsgs != -1 || cfg.MaxBytes != -1 || cfg.MaxAge != 0 {
		t.Errorf("limits MaxMsgs=%d MaxBytes=%d MaxAge=%v, want -1, -1, 0", cfg.MaxMsgs, cfg.MaxBytes, cfg.MaxAge)
	}
	if info.State.Msgs != 0 {
		t.Errorf("new store holds %d messages", info.State.Msgs)
	}
}

func TestCreateEventStoreMapsConfig(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	config := rita.EventStoreConfig{
		Name:        "bank",
		Description: "accounts of the bank",
		Metadata:    map[string]string{"team": "payments", "tier": "gold"},
		Replicas:    1,
		Storage:     jetstream.MemoryStorage,
		RePublish:   &jetstream.RePublish{Source: "$ES.bank.>", Destination: "repub.bank.>"},
		MaxMsgs:     1000,
		MaxAge:      time.Hour,
		MaxBytes:    1 << 20,
		Duplicates:  5 * time.Minute,
	}
	s, err := e.m.CreateEventStore(ctx, config)
	requireNoError(t, err)
	if s.Name() != "bank" {
		t.Fatalf("Name() = %q", s.Name())
	}

	cfg := e.info(t, "bank").Config
	if cfg.Name != "ES_bank" || !slices.Equal(cfg.Subjects, []string{"$ES.bank.>"}) {
		t.Errorf("stream %q on %v, want ES_bank on [$ES.bank.>]", cfg.Name, cfg.Subjects)
	}
	if cfg.Description != config.Description {
		t.Errorf("Description = %q, want %q", cfg.Description, config.Description)
	}
	for k, v := range config.Metadata {
		if cfg.Metadata[k] != v {
			t.Errorf("Metadata[%q] = %q, want %q (metadata %v)", k, cfg.Metadata[k], v, cfg.Metadata)
		}
	}
	if cfg.Replicas != 1 {
		t.Errorf("Replicas = %d, want 1", cfg.Replicas)
	}
	if cfg.Storage != jetstream.MemoryStorage {
		t.Errorf("Storage = %v, want memory", cfg.Storage)
	}
	if cfg.MaxMsgs != 1000 {
		t.Errorf("MaxMsgs = %d, want 1000", cfg.MaxMsgs)
	}
	if cfg.MaxAge != time.Hour {
		t.Errorf("MaxAge = %v, want 1h", cfg.MaxAge)
	}
	if cfg.MaxBytes != 1<<20 {
		t.Errorf("MaxBytes = %d, want %d", cfg.MaxBytes, 1<<20)
	}
	if cfg.Duplicates != 5*time.Minute {
		t.Errorf("Duplicates = %v, want 5m", cfg.Duplicates)
	}
	if cfg.RePublish == nil || cfg.RePublish.Source != "$ES.bank.>" || cfg.RePublish.Destination != "repub.bank.>" {
		t.Errorf("RePublish = %+v, want $ES.bank.> -> repub.bank.>", cfg.RePublish)
	}
	if !cfg.AllowAtomicPublish || !cfg.AllowDirect {
		t.Errorf("AllowAtomicPublish=%v AllowDirect=%v, want both true", cfg.AllowAtomicPublish, cfg.AllowDirect)
	}

	// RePublish really re-publishes appended events.
	sub, err := e.nc.SubscribeSync("repub.bank.>")
	requireNoError(t, err)
	requireNoError(t, e.nc.Flush())
	_, err = s.Append(ctx, []*rita.Event{rawEvent("account.1", "opened", "hello")})
	requireNoError(t, err)
	msg, err := sub.NextMsg(5 * time.Second)
	requireNoError(t, err)
	if msg.Subject != "repub.bank.account.1.opened" || string(msg.Data) != "hello" {
		t.Errorf("republished %q %q, want repub.bank.account.1.opened \"hello\"", msg.Subject, msg.Data)
	}

	// MaxMsgs is enforced by the stream.
	more := make([]*rita.Event, 0, 1000)
	for range 1000 {
		more = append(more, rawEvent("account.1", "deposited", "x"))
	}
	_, err = s.Append(ctx, more)
	requireNoError(t, err)
	if n := e.msgs(t, "bank"); n != 1000 {
		t.Errorf("stream holds %d messages, want MaxMsgs=1000", n)
	}
}

func TestCreateEventStorePlacement(t *testing.T) {
	e := newEnv(t)
	// A standalone server has no cluster to choose, but the placement is
	// still part of the stream configuration.
	placement := &jetstream.Placement{Tags: []string{"ssd"}}
	_, err := e.m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "placed", Placement: placement})
	if err != nil {
		t.Skipf("standalone server refuses a placement: %v", err)
	}
	cfg := e.info(t, "placed").Config
	if cfg.Placement == nil || !slices.Equal(cfg.Placement.Tags, []string{"ssd"}) {
		t.Fatalf("Placement = %+v, want tags [ssd]", cfg.Placement)
	}
}

func TestCreateEventStoreInvalidName(t *testing.T) {
	e := newEnv(t)
	before := e.streamNames(t)
	tests := []struct {
		name string
		want error
	}{
		{"", rita.ErrEventStoreNameRequired},
		{"a.b", rita.ErrEventStoreNameInvalid},
		{"a b", rita.ErrEventStoreNameInvalid},
		{"a*", rita.ErrEventStoreNameInvalid},
		{"a>", rita.ErrEventStoreNameInvalid},
		{"a/b", rita.ErrEventStoreNameInvalid},
		{"a\tb", rita.ErrEventStoreNameInvalid},
		{"a\\b", rita.ErrEventStoreNameInvalid},
		{"*", rita.ErrEventStoreNameInvalid},
		{">", rita.ErrEventStoreNameInvalid},
		{strings.Repeat("n", 300), rita.ErrEventStoreNameInvalid},
	}
	for _, tt := range tests {
		desc := fmt.Sprintf("%q", tt.name)
		if len(desc) > 20 {
			desc = "long name"
		}
		t.Run(desc, func(t *testing.T) {
			ctx := testCtx(t)
			s, err := e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: tt.name})
			requireErrorIs(t, err, tt.want)
			if s != nil {
				t.Fatalf("CreateEventStore returned a store with an error")
			}
			_, err = e.m.GetEventStore(ctx, tt.name)
			requireErrorIs(t, err, tt.want)
			err = e.m.UpdateEventStore(ctx, rita.EventStoreConfig{Name: tt.name})
			requireErrorIs(t, err, tt.want)
			err = e.m.DeleteEventStore(ctx, tt.name)
			requireErrorIs(t, err, tt.want)
		})
	}
	if after := e.streamNames(t); !slices.Equal(before, after) {
		t.Fatalf("streams after refused names = %v, want %v", after, before)
	}
	if len(e.streamNames(t)) != 0 {
		t.Fatalf("streams were created for invalid names: %v", e.streamNames(t))
	}
}

func TestCreateEventStoreTwice(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	config := rita.EventStoreConfig{Name: "twice", Description: "one"}
	_, err := e.m.CreateEventStore(ctx, config)
	requireNoError(t, err)
	// The same configuration again returns the store.
	s, err := e.m.CreateEventStore(ctx, config)
	requireNoError(t, err)
	if s.Name() != "twice" {
		t.Fatalf("Name() = %q", s.Name())
	}
	// Another configuration fails and changes nothing.
	_, err = e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "twice", Description: "two"})
	requireErrorIs(t, err, jetstream.ErrStreamNameAlreadyInUse)
	if d := e.info(t, "twice").Config.Description; d != "one" {
		t.Fatalf("Description = %q, want %q", d, "one")
	}
}

func TestGetEventStore(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)

	_, err := e.m.GetEventStore(ctx, "missing")
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)

	created := e.store(t, "orders")
	_, err = created.Append(ctx, []*rita.Event{rawEvent("order.1", "placed", "a")})
	requireNoError(t, err)

	// Another Manager on the same connection opens the same store.
	got, err := e.manager(t).GetEventStore(ctx, "orders")
	requireNoError(t, err)
	if got.Name() != "orders" {
		t.Fatalf("Name() = %q, want orders", got.Name())
	}
	seq, err := got.Append(ctx, []*rita.Event{rawEvent("order.1", "shipped", "b")})
	requireNoError(t, err)
	if seq != 2 {
		t.Fatalf("Append through the opened store returned %d, want 2", seq)
	}
	var r recorder
	last, err := created.Evolve(ctx, &r)
	requireNoError(t, err)
	if last != 2 || r.count() != 2 {
		t.Fatalf("Evolve = %d with %d events, want 2 and 2", last, r.count())
	}
}

func TestUpdateEventStore(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	e.store(t, "orders")

	err := e.m.UpdateEventStore(ctx, rita.EventStoreConfig{
		Name:        "orders",
		Description: "updated",
		Metadata:    map[string]string{"owner": "ops"},
		MaxMsgs:     50,
		MaxAge:      2 * time.Hour,
		MaxBytes:    4096,
	})
	requireNoError(t, err)
	cfg := e.info(t, "orders").Config
	if cfg.Description != "updated" || cfg.MaxMsgs != 50 || cfg.MaxAge != 2*time.Hour || cfg.MaxBytes != 4096 {
		t.Fatalf("after update: Description=%q MaxMsgs=%d MaxAge=%v MaxBytes=%d", cfg.Description, cfg.MaxMsgs, cfg.MaxAge, cfg.MaxBytes)
	}
	if cfg.Metadata["owner"] != "ops" {
		t.Fatalf("Metadata = %v, want owner=ops", cfg.Metadata)
	}
	if !cfg.AllowAtomicPublish || !cfg.AllowDirect {
		t.Fatalf("update dropped AllowAtomicPublish=%v AllowDirect=%v", cfg.AllowAtomicPublish, cfg.AllowDirect)
	}
	if !slices.Equal(cfg.Subjects, []string{"$ES.orders.>"}) {
		t.Fatalf("subjects = %v", cfg.Subjects)
	}

	err = e.m.UpdateEventStore(ctx, rita.EventStoreConfig{Name: "missing"})
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	if names := e.streamNames(t); !slices.Equal(names, []string{"ES_orders"}) {
		t.Fatalf("streams = %v, want [ES_orders]", names)
	}
}

func TestDeleteEventStore(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	e.store(t, "keep")
	s := e.store(t, "gone")
	_, err := s.Append(ctx, []*rita.Event{rawEvent("order.1", "placed", "a")})
	requireNoError(t, err)

	requireNoError(t, e.m.DeleteEventStore(ctx, "gone"))
	if names := e.streamNames(t); !slices.Equal(names, []string{"ES_keep"}) {
		t.Fatalf("streams = %v, want [ES_keep]", names)
	}
	_, err = e.js.Stream(ctx, "ES_gone")
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = e.m.GetEventStore(ctx, "gone")
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	err = e.m.DeleteEventStore(ctx, "gone")
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)

	// A store handle of a deleted store fails rather than succeed silently.
	if _, err := s.Append(ctx, []*rita.Event{rawEvent("order.1", "placed", "b")}); err == nil {
		t.Fatalf("Append to a deleted store succeeded")
	}
	if _, err := s.Evolve(ctx, &recorder{}); err == nil {
		t.Fatalf("Evolve of a deleted store succeeded")
	}
}

func TestStoresAreIsolated(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	a := e.store(t, "a")
	b := e.store(t, "b")
	appendEach(t, a, rawEvent("order.1", "placed", "in-a"), rawEvent("order.2", "placed", "in-a"))
	appendEach(t, b, rawEvent("order.1", "placed", "in-b"))

	var ra, rb recorder
	lastA, err := a.Evolve(ctx, &ra)
	requireNoError(t, err)
	lastB, err := b.Evolve(ctx, &rb)
	requireNoError(t, err)
	if lastA != 2 || ra.count() != 2 {
		t.Fatalf("store a: last %d, %d events; want 2, 2", lastA, ra.count())
	}
	if lastB != 1 || rb.count() != 1 {
		t.Fatalf("store b: last %d, %d events; want 1, 1", lastB, rb.count())
	}
	for _, ev := range rb.all() {
		if string(ev.Data.([]byte)) != "in-b" || !strings.HasPrefix(ev.Subject(), "$ES.b.") {
			t.Fatalf("store b read %q on %q", ev.Data, ev.Subject())
		}
	}
}

func TestErrorMessages(t *testing.T) {
	// The documented error variables keep their documented messages.
	tests := map[error]string{
		rita.ErrSequenceConflict:       "rita: sequence conflict",
		rita.ErrEventDataRequired:      "rita: event data required",
		rita.ErrEventEntityRequired:    "rita: event entity required",
		rita.ErrEventEntityInvalid:     "rita: event entity invalid",
		rita.ErrEventTypeRequired:      "rita: event type required",
		rita.ErrNoEvents:               "rita: no events provided",
		rita.ErrEventStoreNameRequired: "rita: event store name is required",
		rita.ErrSubjectTooManyTokens:   "rita: subject can have at most three tokens",
		rita.ErrEvolverNotImplemented:  "evolver not implemented",
		rita.ErrDeciderNotImplemented:  "decider not implemented",
		rita.ErrViewerNotImplemented:   "viewer not implemented",
	}
	for err, want := range tests {
		if err.Error() != want {
			t.Errorf("%v: message %q, want %q", err, err.Error(), want)
		}
	}
	// Every sentinel is distinct.
	all := slices.Collect(maps.Keys(tests))
	all = append(all, rita.ErrDuplicateEvent, rita.ErrTooManyEvents, rita.ErrEventNil, rita.ErrEventTypeInvalid,
		rita.ErrEventMetaInvalid, rita.ErrEventDataInvalid, rita.ErrEventDecode, rita.ErrEventStoreNameInvalid,
		rita.ErrFilterInvalid, rita.ErrInvalidOption, rita.ErrInvalidArgument, rita.ErrPermissionDenied, rita.ErrStoreFull)
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
	if rita.MaxBatchSize != 1000 {
		t.Errorf("MaxBatchSize = %d, want 1000", rita.MaxBatchSize)
	}
}

// Manager methods take a context; they refuse a nil one rather than panic.
func TestManagerNilContext(t *testing.T) {
	e := newEnv(t)
	_, err := e.m.CreateEventStore(nilCtx(), rita.EventStoreConfig{Name: "x"})
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	if names := e.streamNames(t); len(names) != 0 {
		t.Fatalf("streams = %v, want none", names)
	}
}

// EventStores lists the stores of the connection, with their info, and
// nothing else: not other streams, not a store's parked events.
func TestManagerEventStores(t *testing.T) {
	e := newEnv(t)
	a := e.store(t, "a")
	e.store(t, "b_PARKED") // a store whose name looks like a parked stream
	appendN(t, a, "order.1", "placed", 2)
	// A reactor that parks an event makes the parked stream of a.
	react(t, a, "r", func(ctx context.Context, ev *rita.Event) error { return rita.ErrUnprocessable }, rita.WithErrHandler(quiet))
	waitCaughtUp(t, a, "r")
	js, err := jetstream.New(e.nc)
	requireNoError(t, err)
	_, err = js.CreateStream(testCtx(t), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
	requireNoError(t, err)

	got := map[string]uint64{}
	for info, err := range e.m.EventStores(testCtx(t)) {
		requireNoError(t, err)
		got[info.Config.Name] = info.Events
	}
	if len(got) != 2 || got["a"] != 2 || got["b_PARKED"] != 0 {
		t.Fatalf("EventStores listed %v, want a (2 events) and b_PARKED (0)", got)
	}
	// Breaking off the iteration is fine.
	for range e.m.EventStores(testCtx(t)) {
		break
	}
	for _, err := range (*rita.Manager)(nil).EventStores(testCtx(t)) {
		requireErrorIs(t, err, rita.ErrInvalidArgument)
	}
}

// signal is a log handler that sends the message of each record whose
// message is msg to ch, without blocking.
type signal struct {
	msg string
	ch  chan string
}

func (s *signal) Enabled(context.Context, slog.Level) bool { return true }
func (s *signal) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *signal) WithGroup(string) slog.Handler            { return s }
func (s *signal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == s.msg {
		select {
		case s.ch <- r.Message:
		default:
		}
	}
	return nil
}

// The Manager's requests ride out a server that stops and comes back: each
// sends its request again until the server answers, and then does what it
// was asked, once.
func TestManagerRidesOutRestart(t *testing.T) {
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t, ritatest.Reconnecting())
	retried := make(chan string, 1)
	m, err := rita.New(nc, rita.WithLogger(slog.New(&signal{msg: "rita: manager: retrying", ch: retried})))
	requireNoError(t, err)
	_, err = m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "kept"})
	requireNoError(t, err)

	ops := []struct {
		name string
		call func(context.Context) error
	}{
		{"CreateEventStore", func(ctx context.Context) error {
			_, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "made"})
			return err
		}},
		{"GetEventStore", func(ctx context.Context) error {
			_, err := m.GetEventStore(ctx, "kept")
			return err
		}},
		{"UpdateEventStore", func(ctx context.Context) error {
			return m.UpdateEventStore(ctx, rita.EventStoreConfig{Name: "kept", MaxAge: time.Hour})
		}},
		{"DeleteEventStore", func(ctx context.Context) error {
			return m.DeleteEventStore(ctx, "kept")
		}},
	}
	for _, op := range ops {
		srv.Stop()
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done <- op.call(ctx)
		}()
		select {
		case <-retried:
		case err := <-done:
			t.Fatalf("%s without a server returned %v, want it to wait", op.name, err)
		case <-time.After(waitFor):
			t.Fatalf("%s logged no retry while the server was stopped", op.name)
		}
		srv.Restart()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s after the server returned: %v", op.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not return after the server came back", op.name)
		}
		select {
		case <-retried: // a retry logged after the first
		default:
		}
	}

	made, err := m.GetEventStore(testCtx(t), "made")
	requireNoError(t, err)
	info, err := made.Info(testCtx(t))
	requireNoError(t, err)
	if info.Config.Name != "made" {
		t.Errorf("store made: config name %q", info.Config.Name)
	}
	if _, err := m.GetEventStore(testCtx(t), "kept"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("GetEventStore of the deleted store: %v, want ErrStreamNotFound", err)
	}
}
