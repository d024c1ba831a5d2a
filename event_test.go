package rita_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/types"
)

// Three versions of a deposit event, all registered as "deposited": v1 had
// whole units, v2 cents, v3 (the current one) a currency as well.
type (
	depositV1 struct {
		Amount int `json:"amount"`
	}
	depositV2 struct {
		Cents int `json:"cents"`
	}
	depositV3 struct {
		Cents    int    `json:"cents"`
		Currency string `json:"currency"`
	}
)

func regV1(t *testing.T) *types.Registry {
	return newRegistry(t, map[string]*types.Type{
		"deposited": {Init: func() any { return new(depositV1) }},
	})
}

var (
	upcast1to2 = types.UpcastValue("deposited", 1, func(old *depositV1) (*depositV2, error) {
		return &depositV2{Cents: old.Amount * 100}, nil
	})
	upcast2to3 = types.UpcastValue("deposited", 2, func(old *depositV2) (*depositV3, error) {
		return &depositV3{Cents: old.Cents, Currency: "EUR"}, nil
	})
)

func regV3(t *testing.T, upcasters ...types.RegistryOption) *types.Registry {
	return newRegistry(t, map[string]*types.Type{
		"deposited": {Init: func() any { return new(depositV3) }, Version: 3},
	}, upcasters...)
}

func TestUpcastVersion1StoreReadAsVersion3(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	old := e.manager(t, rita.WithRegistry(regV1(t)))
	cur := e.manager(t, rita.WithRegistry(regV3(t, upcast1to2, upcast2to3)))
	oldStore := createStore(t, old, "bank")
	curStore, err := cur.GetEventStore(ctx, "bank")
	requireNoError(t, err)

	// Written by the old program: version 1, without a Rita-Version header.
	_, err = oldStore.Append(ctx, []*rita.Event{
		{Entity: "account.1", Data: &depositV1{Amount: 1}},
		{Entity: "account.2", Data: &depositV1{Amount: 2}},
	})
	requireNoError(t, err)
	appendEach(t, oldStore, &rita.Event{Entity: "account.1", Data: &depositV1{Amount: 3}})
	// Written by the current one: version 3, with the header.
	appendEach(t, curStore, &rita.Event{Entity: "account.2", Data: &depositV3{Cents: 450, Currency: "USD"}})
	for seq, want := range map[uint64]string{1: "", 2: "", 3: "", 4: "3"} {
		if got := e.rawMsg(t, "bank", seq).Header.Get("Rita-Version"); got != want {
			t.Fatalf("sequence %d: Rita-Version %q, want %q", seq, got, want)
		}
	}

	want := []*depositV3{{100, "EUR"}, {200, "EUR"}, {300, "EUR"}, {450, "USD"}}
	check := func(how string, got []*rita.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", how, len(got), len(want))
		}
		for i, ev := range got {
			if ev.Type != "deposited" || !reflect.DeepEqual(ev.Data, want[i]) {
				t.Fatalf("%s: event %d: %s %#v, want deposited %#v", how, ev.Sequence(), ev.Type, ev.Data, want[i])
			}
		}
	}
	evolved := &recorder{}
	last, err := curStore.Evolve(ctx, evolved)
	requireNoError(t, err)
	if last != 4 {
		t.Fatalf("Evolve returned %d", last)
	}
	check("Evolve", evolved.all())

	watched := &recorder{}
	w, err := curStore.Watch(ctx, watched, rita.WithErrHandler(func(err error, _ *rita.Event, _ jetstream.Msg) {
		t.Errorf("watch: %v", err)
	}))
	requireNoError(t, err)
	defer w.Stop()
	check("Watch", watched.all())

	// The old program cannot read what the new one wrote.
	_, err = oldStore.Evolve(ctx, &recorder{}, rita.WithAfterSequence(3))
	requireErrorIs(t, err, rita.ErrEventDecode)
	requireErrorIs(t, err, types.ErrVersionUnsupported)
	if !strings.Contains(err.Error(), `"deposited" version 3`) {
		t.Fatalf("error %q does not name the type and version", err)
	}

	// Without a registry, the payload is as stored and the header ignored.
	raw := &recorder{}
	_, err = createStore(t, e.m, "bank").Evolve(ctx, raw)
	requireNoError(t, err)
	if got := raw.all(); len(got) != 4 || string(got[0].Data.([]byte)) != `{"amount":1}` || got[3].Type != "deposited" {
		t.Fatalf("raw read: %d events", len(got))
	}
}

// orderCreatedEvt is what "order-placed" (placedEvt) is called from version 2 on.
type orderCreatedEvt struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

func TestUpcastRename(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	old := e.manager(t, rita.WithRegistry(newRegistry(t, orderTypes())))
	cur := e.manager(t, rita.WithRegistry(newRegistry(t, map[string]*types.Type{
		"order-created": {Init: func() any { return new(orderCreatedEvt) }, Version: 2},
		"order-shipped": {Init: func() any { return new(shippedEvt) }},
	}, types.Rename("order-placed", 1, "order-created"))))
	oldStore := createStore(t, old, "shop")
	curStore, err := cur.GetEventStore(ctx, "shop")
	requireNoError(t, err)

	appendEach(t, oldStore,
		&rita.Event{Entity: "order.1", Data: &placedEvt{OrderID: "1", Amount: 5, Items: []string{"pen"}}},
		&rita.Event{Entity: "order.1", Data: &shippedEvt{OrderID: "1", Carrier: "ups"}},
	)
	appendEach(t, curStore, &rita.Event{Entity: "order.2", Data: &orderCreatedEvt{OrderID: "2", Amount: 7}})
	if got := e.rawMsg(t, "shop", 3).Header.Get("Rita-Version"); got != "2" {
		t.Fatalf("Rita-Version %q, want 2", got)
	}

	got := &recorder{}
	_, err = curStore.Evolve(ctx, got)
	requireNoError(t, err)
	events := got.all()
	if len(events) != 3 {
		t.Fatalf("%d events", len(events))
	}
	for i, want := range []struct {
		typ, subject string
		data         any
	}{
		{"order-created", "$ES.shop.order.1.order-placed", &orderCreatedEvt{OrderID: "1", Amount: 5}},
		{"order-shipped", "$ES.shop.order.1.order-shipped", &shippedEvt{OrderID: "1", Carrier: "ups"}},
		{"order-created", "$ES.shop.order.2.order-created", &orderCreatedEvt{OrderID: "2", Amount: 7}},
	} {
		ev := events[i]
		if ev.Type != want.typ || ev.Subject() != want.subject || !reflect.DeepEqual(ev.Data, want.data) {
			t.Errorf("event %d: %s on %s %#v; want %s on %s %#v", ev.Sequence(), ev.Type, ev.Subject(), ev.Data, want.typ, want.subject, want.data)
		}
	}

	// Filters match the subject, which keeps the name an event was stored under.
	byOldName := &recorder{}
	_, err = curStore.Evolve(ctx, byOldName, rita.WithFilters("*.*.order-placed"))
	requireNoError(t, err)
	requireSeqs(t, byOldName.seqs(), []uint64{1})
}

func TestUpcastMissing(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	old := e.manager(t, rita.WithRegistry(regV1(t)))
	// Registered at version 3, but only an upcaster from version 2.
	cur := e.manager(t, rita.WithRegistry(regV3(t, upcast2to3)))
	appendEach(t, createStore(t, old, "bank"), &rita.Event{Entity: "account.1", Data: &depositV1{Amount: 1}})
	s, err := cur.GetEventStore(ctx, "bank")
	requireNoError(t, err)

	_, err = s.Evolve(ctx, &recorder{})
	requireErrorIs(t, err, rita.ErrEventDecode)
	requireErrorIs(t, err, types.ErrUpcasterMissing)
	for _, m := range []string{"sequence 1", `"deposited" version 1`, "no upcaster to version 2"} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not say %q", err, m)
		}
	}

	// A watcher hands the same error to its handler, and goes on.
	errs := make(chan error, 1)
	w, err := s.Watch(ctx, &recorder{}, rita.WithErrHandler(func(err error, ev *rita.Event, _ jetstream.Msg) {
		if ev != nil {
			t.Errorf("handler got event %v", ev)
		}
		select {
		case errs <- err:
		default:
		}
	}))
	requireNoError(t, err)
	defer w.Stop()
	select {
	case err := <-errs:
		requireErrorIs(t, err, types.ErrUpcasterMissing)
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher reported no error")
	}
}

func TestUpcastFailsOnStoredData(t *testing.T) {
	boom := errors.New("boom")
	e := newEnv(t, rita.WithRegistry(regV3(t, upcast2to3,
		types.Upcaster("deposited", 1, func(string, []byte) (string, []byte, error) { return "", nil, boom }))))
	s := e.store(t, "bank")
	ctx := testCtx(t)
	publish := func(version string) {
		t.Helper()
		msg := nats.NewMsg("$ES.bank.account.1.deposited")
		msg.Header.Set("Rita-Type", "deposited")
		msg.Header.Set("Rita-Entity", "account.1")
		if version != "" {
			msg.Header.Set("Rita-Version", version)
		}
		msg.Data = []byte(`{"amount":1}`)
		if _, err := e.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		version string
		want    error
		mention string
	}{
		{"", boom, "upcast failed"},
		{"1", types.ErrUpcastFailed, "boom"},
		{"x", rita.ErrEventDecode, `Rita-Version: "x"`},
		{"0", rita.ErrEventDecode, `Rita-Version: "0"`},
		{"-2", rita.ErrEventDecode, `Rita-Version: "-2"`},
		{"4", types.ErrVersionUnsupported, "newer"},
	}
	for i, tt := range tests {
		t.Run("version "+tt.version, func(t *testing.T) {
			publish(tt.version)
			_, err := s.Evolve(ctx, &recorder{}, rita.WithAfterSequence(uint64(i)))
			requireErrorIs(t, err, rita.ErrEventDecode)
			requireErrorIs(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}
