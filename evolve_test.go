package rita_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/clock"
)

// evolveFixture is the content of the store the Evolve tests read:
//
//	1 order.1 placed     5 order.2 shipped
//	2 order.2 placed     6 user.2 created
//	3 order.1 shipped    7 order.1 cancelled
//	4 user.1 created     8 user.1 shipped
var evolveFixture = []struct{ entity, typ string }{
	{"order.1", "placed"},
	{"order.2", "placed"},
	{"order.1", "shipped"},
	{"user.1", "created"},
	{"order.2", "shipped"},
	{"user.2", "created"},
	{"order.1", "cancelled"},
	{"user.1", "shipped"},
}

func fillEvolveFixture(t *testing.T, s *rita.EventStore) {
	t.Helper()
	for i, f := range evolveFixture {
		seqs := appendEach(t, s, rawEvent(f.entity, f.typ, fmt.Sprint(i+1)))
		if seqs[0] != uint64(i+1) {
			t.Fatalf("fixture event %d stored at %d", i+1, seqs[0])
		}
	}
}

func TestEvolveSelection(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "sel")
	fillEvolveFixture(t, s)

	all := seqRange(1, 8)
	tests := []struct {
		name string
		opts []rita.EvolveOption
		want []uint64
	}{
		{"whole store", nil, all},
		{"no filters given", []rita.EvolveOption{rita.WithFilters()}, all},
		{"entity type", []rita.EvolveOption{rita.WithFilters("order")}, []uint64{1, 2, 3, 5, 7}},
		{"entity", []rita.EvolveOption{rita.WithFilters("order.1")}, []uint64{1, 3, 7}},
		{"entity and event type", []rita.EvolveOption{rita.WithFilters("order.1.shipped")}, []uint64{3}},
		{"wildcard type", []rita.EvolveOption{rita.WithFilters("*")}, all},
		{"wildcard type, one id", []rita.EvolveOption{rita.WithFilters("*.1")}, []uint64{1, 3, 4, 7, 8}},
		{"wildcard id", []rita.EvolveOption{rita.WithFilters("order.*")}, []uint64{1, 2, 3, 5, 7}},
		{"wildcard id, one event type", []rita.EvolveOption{rita.WithFilters("order.*.shipped")}, []uint64{3, 5}},
		{"one event type anywhere", []rita.EvolveOption{rita.WithFilters("*.*.shipped")}, []uint64{3, 5, 8}},
		{"all wildcards", []rita.EvolveOption{rita.WithFilters("*.*.*")}, all},
		{"entity, any event type", []rita.EvolveOption{rita.WithFilters("user.1.*")}, []uint64{4, 8}},
		{"two filters", []rita.EvolveOption{rita.WithFilters("order.2", "user.1")}, []uint64{2, 4, 5, 8}},
		{"three filters", []rita.EvolveOption{rita.WithFilters("order.1.placed", "order.2.shipped", "user.2")}, []uint64{1, 5, 6}},
		{"filters given twice: the last replace the first", []rita.EvolveOption{rita.WithFilters("order.2"), rita.WithFilters("user.2")}, []uint64{6}},
		{"an empty filter is every event", []rita.EvolveOption{rita.WithFilters("")}, all},
		{"stop before after: nothing between them", []rita.EvolveOption{rita.WithAfterSequence(5), rita.WithStopSequence(2)}, nil},
		{"overlapping: type and entity", []rita.EvolveOption{rita.WithFilters("order", "order.1")}, []uint64{1, 2, 3, 5, 7}},
		{"overlapping: entity and type", []rita.EvolveOption{rita.WithFilters("order.1", "order")}, []uint64{1, 2, 3, 5, 7}},
		{"overlapping: the same filter twice", []rita.EvolveOption{rita.WithFilters("user", "user")}, []uint64{4, 6, 8}},
		{"partially overlapping", []rita.EvolveOption{rita.WithFilters("*.1", "order.*")}, []uint64{1, 2, 3, 4, 5, 7, 8}},
		{"partially overlapping, three", []rita.EvolveOption{rita.WithFilters("*.*.shipped", "order.1", "*.2")}, []uint64{1, 2, 3, 5, 6, 7, 8}},
		{"no match", []rita.EvolveOption{rita.WithFilters("invoice")}, nil},
		{"no match for the event type", []rita.EvolveOption{rita.WithFilters("order.1.refunded")}, nil},

		{"after 0", []rita.EvolveOption{rita.WithAfterSequence(0)}, all},
		{"after 3", []rita.EvolveOption{rita.WithAfterSequence(3)}, seqRange(4, 8)},
		{"after the last", []rita.EvolveOption{rita.WithAfterSequence(8)}, nil},
		{"after beyond the last", []rita.EvolveOption{rita.WithAfterSequence(100)}, nil},
		{"stop 0 is no limit", []rita.EvolveOption{rita.WithStopSequence(0)}, all},
		{"stop 5", []rita.EvolveOption{rita.WithStopSequence(5)}, seqRange(1, 5)},
		{"stop 1", []rita.EvolveOption{rita.WithStopSequence(1)}, []uint64{1}},
		{"stop at the last", []rita.EvolveOption{rita.WithStopSequence(8)}, all},
		{"stop beyond the last", []rita.EvolveOption{rita.WithStopSequence(100)}, all},
		{"after 2 stop 6", []rita.EvolveOption{rita.WithAfterSequence(2), rita.WithStopSequence(6)}, seqRange(3, 6)},
		{"after 4 stop 5", []rita.EvolveOption{rita.WithAfterSequence(4), rita.WithStopSequence(5)}, []uint64{5}},
		{"after 5 stop 5", []rita.EvolveOption{rita.WithAfterSequence(5), rita.WithStopSequence(5)}, nil},
		{"filter and after", []rita.EvolveOption{rita.WithFilters("order"), rita.WithAfterSequence(3)}, []uint64{5, 7}},
		{"filter and after a non-matching sequence", []rita.EvolveOption{rita.WithFilters("order.1"), rita.WithAfterSequence(4)}, []uint64{7}},
		{"filter and stop", []rita.EvolveOption{rita.WithFilters("order"), rita.WithStopSequence(4)}, []uint64{1, 2, 3}},
		{"filter and stop before any match", []rita.EvolveOption{rita.WithFilters("user"), rita.WithStopSequence(3)}, nil},
		{"filter, after and stop", []rita.EvolveOption{rita.WithFilters("*.1"), rita.WithAfterSequence(1), rita.WithStopSequence(7)}, []uint64{3, 4, 7}},
		{"overlapping filters, after and stop", []rita.EvolveOption{rita.WithFilters("*.1", "order.*"), rita.WithAfterSequence(2), rita.WithStopSequence(7)}, []uint64{3, 4, 5, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			last, err := s.Evolve(testCtx(t), &r, tt.opts...)
			requireNoError(t, err)
			requireSeqs(t, r.seqs(), tt.want)
			var wantLast uint64
			if len(tt.want) > 0 {
				wantLast = tt.want[len(tt.want)-1]
			}
			if last != wantLast {
				t.Fatalf("Evolve returned %d, want %d", last, wantLast)
			}
			for _, ev := range r.all() {
				f := evolveFixture[ev.Sequence()-1]
				if ev.Entity != f.entity || ev.Type != f.typ || string(ev.Data.([]byte)) != fmt.Sprint(ev.Sequence()) {
					t.Fatalf("event %d = %s %s %q, want %s %s", ev.Sequence(), ev.Entity, ev.Type, ev.Data, f.entity, f.typ)
				}
			}
			e.requireNoConsumers(t, "sel")
		})
	}
}

func TestEvolveEmptyStore(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "empty")
	for _, opts := range [][]rita.EvolveOption{
		nil,
		{rita.WithFilters("order")},
		{rita.WithAfterSequence(5)},
		{rita.WithStopSequence(5)},
	} {
		var r recorder
		last, err := s.Evolve(testCtx(t), &r, opts...)
		if last != 0 || err != nil || r.count() != 0 {
			t.Fatalf("Evolve of an empty store = (%d, %v) with %d events, want (0, nil) and none", last, err, r.count())
		}
	}
	e.requireNoConsumers(t, "empty")
}

func TestEvolveInvalidOptions(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "opts")
	fillEvolveFixture(t, s)
	tests := []struct {
		name string
		opts []rita.EvolveOption
		want error
	}{
		{"four tokens", []rita.EvolveOption{rita.WithFilters("order.1.placed.x")}, rita.ErrSubjectTooManyTokens},
		{"four tokens among valid ones", []rita.EvolveOption{rita.WithFilters("order", "a.b.c.d")}, rita.ErrSubjectTooManyTokens},
		{"empty token", []rita.EvolveOption{rita.WithFilters("order..placed")}, rita.ErrFilterInvalid},
		{"leading dot", []rita.EvolveOption{rita.WithFilters(".order")}, rita.ErrFilterInvalid},
		{"trailing dot", []rita.EvolveOption{rita.WithFilters("order.")}, rita.ErrFilterInvalid},
		{"space", []rita.EvolveOption{rita.WithFilters("or der")}, rita.ErrFilterInvalid},
		{"wildcard inside a token", []rita.EvolveOption{rita.WithFilters("order*")}, rita.ErrFilterInvalid},
		{"full wildcard not last", []rita.EvolveOption{rita.WithFilters(">.1")}, rita.ErrFilterInvalid},
		{"nil option", []rita.EvolveOption{nil}, rita.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			last, err := s.Evolve(testCtx(t), &r, tt.opts...)
			requireErrorIs(t, err, tt.want)
			if last != 0 || r.count() != 0 {
				t.Fatalf("refused Evolve returned %d and applied %d events", last, r.count())
			}
			e.requireNoConsumers(t, "opts")
		})
	}

	_, err := s.Evolve(testCtx(t), nil)
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	_, err = s.Evolve(nilCtx(), &recorder{})
	requireErrorIs(t, err, rita.ErrInvalidArgument)
}

var errModel = errors.New("model refuses event")

func TestEvolveModelError(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "fail")
	fillEvolveFixture(t, s)

	tests := []struct {
		name     string
		opts     []rita.EvolveOption
		failAt   int // 0-based index of the applied event that fails
		wantLast uint64
		wantSeqs []uint64
	}{
		{"first event", nil, 0, 0, nil},
		{"fourth event", nil, 3, 3, []uint64{1, 2, 3}},
		{"last event", nil, 7, 7, seqRange(1, 7)},
		{"filtered, fourth match", []rita.EvolveOption{rita.WithFilters("order")}, 3, 3, []uint64{1, 2, 3}},
		{"filtered, fifth match", []rita.EvolveOption{rita.WithFilters("order")}, 4, 5, []uint64{1, 2, 3, 5}},
		{"after and filter", []rita.EvolveOption{rita.WithFilters("*.1"), rita.WithAfterSequence(3)}, 2, 7, []uint64{4, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recorder{fail: func(_ *rita.Event, applied int) error {
				if applied == tt.failAt {
					return errModel
				}
				return nil
			}}
			last, err := s.Evolve(testCtx(t), &r, tt.opts...)
			requireErrorIs(t, err, errModel)
			if last != tt.wantLast {
				t.Fatalf("Evolve returned %d, want %d (the last event applied)", last, tt.wantLast)
			}
			requireSeqs(t, r.seqs(), tt.wantSeqs)
			e.requireNoConsumers(t, "fail")
		})
	}
}

func TestEvolveContext(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "ctx")
	appendN(t, s, "order.1", "placed", 200)

	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var r recorder
		last, err := s.Evolve(ctx, &r)
		if err == nil {
			t.Fatalf("Evolve with a cancelled context succeeded, applied %d", r.count())
		}
		requireErrorIs(t, err, context.Canceled)
		if last != 0 || r.count() != 0 {
			t.Fatalf("Evolve returned %d and applied %d events", last, r.count())
		}
		e.requireNoConsumers(t, "ctx")
	})

	t.Run("cancelled while running", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := recorder{fail: func(_ *rita.Event, applied int) error {
			if applied == 10 {
				cancel()
			}
			return nil
		}}
		last, err := s.Evolve(ctx, &r)
		requireErrorIs(t, err, context.Canceled)
		n := r.count()
		if n >= 200 {
			t.Fatalf("Evolve went on through all %d events after its context was cancelled", n)
		}
		if last != uint64(n) {
			t.Fatalf("Evolve returned %d, want %d, the last event applied", last, n)
		}
		e.requireNoConsumers(t, "ctx")
	})

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		// The model blocks until the deadline has passed.
		r := recorder{fail: func(_ *rita.Event, applied int) error {
			if applied == 5 {
				<-ctx.Done()
			}
			return nil
		}}
		last, err := s.Evolve(ctx, &r)
		requireErrorIs(t, err, context.DeadlineExceeded)
		if n := r.count(); n >= 200 || last != uint64(n) {
			t.Fatalf("Evolve returned %d after applying %d events", last, n)
		}
		e.requireNoConsumers(t, "ctx")
	})
}

func TestEvolveIgnoresConcurrentAppends(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "live")
	appendN(t, s, "order.1", "placed", 200)

	r := recorder{fail: func(_ *rita.Event, applied int) error {
		if applied != 0 {
			return nil
		}
		// While Evolve runs, more events are stored; the model waits until
		// they are.
		if _, err := s.Append(context.Background(), []*rita.Event{
			rawEvent("order.1", "shipped", "late"),
			rawEvent("order.2", "placed", "late"),
		}); err != nil {
			return err
		}
		_, err := s.Append(context.Background(), []*rita.Event{rawEvent("order.1", "cancelled", "late")})
		return err
	}}
	last, err := s.Evolve(testCtx(t), &r)
	requireNoError(t, err)
	if r.count() != 200 || last != 200 {
		t.Fatalf("Evolve applied %d events and returned %d, want the 200 present when it began", r.count(), last)
	}
	if n := e.msgs(t, "live"); n != 203 {
		t.Fatalf("store holds %d, want 203", n)
	}
	// With a filter the bound is the last matching event.
	var f recorder
	last, err = s.Evolve(testCtx(t), &f, rita.WithFilters("order.2"))
	requireNoError(t, err)
	if f.count() != 1 || last != 202 {
		t.Fatalf("filtered Evolve applied %d, returned %d; want 1, 202", f.count(), last)
	}
	e.requireNoConsumers(t, "live")
}

func TestEvolveDecodedEvent(t *testing.T) {
	now := time.Date(2023, 11, 12, 13, 14, 15, 161718192, time.UTC)
	e := newEnv(t, rita.WithRegistry(newRegistry(t, orderTypes())), rita.WithClock(clock.Fixed(now)))
	s := e.store(t, "decode")
	ctx := testCtx(t)

	own := time.Date(2001, 2, 3, 4, 5, 6, 7, time.FixedZone("CET", 3600))
	in := []*rita.Event{
		{ID: "e-1", Entity: "order.1", Data: &placedEvt{OrderID: "1", Amount: 99, Items: []string{"x", "y"}}, Meta: map[string]string{"user": "ann", "source": "web"}},
		{Entity: "order.1", Time: own, Data: &shippedEvt{OrderID: "1", Carrier: "ups"}},
	}
	_, err := s.Append(ctx, in)
	requireNoError(t, err)

	var r recorder
	last, err := s.Evolve(ctx, &r)
	requireNoError(t, err)
	if last != 2 {
		t.Fatalf("Evolve returned %d, want 2", last)
	}
	got := r.all()
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	first := got[0]
	if first.ID != "e-1" || first.Entity != "order.1" || first.Type != "order-placed" {
		t.Errorf("first: ID %q Entity %q Type %q", first.ID, first.Entity, first.Type)
	}
	if !first.Time.Equal(now) {
		t.Errorf("first.Time = %v, want %v", first.Time, now)
	}
	if len(first.Meta) != 2 || first.Meta["user"] != "ann" || first.Meta["source"] != "web" {
		t.Errorf("first.Meta = %v", first.Meta)
	}
	if first.Sequence() != 1 || first.Subject() != "$ES.decode.order.1.order-placed" {
		t.Errorf("first: Sequence %d Subject %q", first.Sequence(), first.Subject())
	}
	if d, ok := first.Data.(*placedEvt); !ok || !sameData(d, in[0].Data) {
		t.Errorf("first.Data = %#v, want %#v", first.Data, in[0].Data)
	}
	if first.Expect != nil {
		t.Errorf("first.Expect = %+v, want nil", first.Expect)
	}
	second := got[1]
	if second.ID != in[1].ID || second.ID == "" || second.Type != "order-shipped" || !second.Time.Equal(own) {
		t.Errorf("second: ID %q (appended %q) Type %q Time %v", second.ID, in[1].ID, second.Type, second.Time)
	}
	if len(second.Meta) != 0 {
		t.Errorf("second.Meta = %v, want none", second.Meta)
	}
	if second.Sequence() != 2 || second.Subject() != "$ES.decode.order.1.order-shipped" {
		t.Errorf("second: Sequence %d Subject %q", second.Sequence(), second.Subject())
	}
	if d, ok := second.Data.(*shippedEvt); !ok || d.Carrier != "ups" || d.OrderID != "1" {
		t.Errorf("second.Data = %#v", second.Data)
	}
}

func TestEvolveCodecs(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	for _, codec := range []string{"json", "msgpack", "protobuf", "binary"} {
		t.Run(codec, func(t *testing.T) {
			reg, data, typ := codecFixture(t, codec)
			s := createStore(t, e.manager(t, rita.WithRegistry(reg)), "codec_"+codec)
			_, err := s.Append(ctx, []*rita.Event{{Entity: "thing.1", Data: data}})
			requireNoError(t, err)
			var r recorder
			last, err := s.Evolve(ctx, &r)
			requireNoError(t, err)
			got := r.all()
			if last != 1 || len(got) != 1 {
				t.Fatalf("Evolve returned %d with %d events", last, len(got))
			}
			if got[0].Type != typ {
				t.Errorf("Type = %q, want %q", got[0].Type, typ)
			}
			if !sameData(got[0].Data, data) {
				t.Errorf("Data = %#v, want %#v", got[0].Data, data)
			}
		})
	}
}

func TestEvolveRawData(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "raw")
	payloads := []string{"", "plain", "\x00\x01\xff"}
	for _, p := range payloads {
		appendEach(t, s, &rita.Event{Entity: "blob.1", Type: "stored", Data: []byte(p)})
	}
	var r recorder
	_, err := s.Evolve(testCtx(t), &r)
	requireNoError(t, err)
	got := r.all()
	if len(got) != len(payloads) {
		t.Fatalf("read %d events, want %d", len(got), len(payloads))
	}
	for i, ev := range got {
		b, ok := ev.Data.([]byte)
		if !ok || string(b) != payloads[i] {
			t.Errorf("event %d Data = %#v, want []byte %q", i, ev.Data, payloads[i])
		}
	}
}

func TestEvolveUndecodableEvent(t *testing.T) {
	e := newEnv(t)
	raw := e.store(t, "mixed")
	typed, err := e.manager(t, rita.WithRegistry(newRegistry(t, orderTypes()))).GetEventStore(testCtx(t), "mixed")
	requireNoError(t, err)

	_, err = typed.Append(testCtx(t), []*rita.Event{
		{Entity: "order.1", Data: &placedEvt{OrderID: "1"}},
		{Entity: "order.1", Data: &shippedEvt{OrderID: "1"}},
	})
	requireNoError(t, err)
	// An event whose type the registry does not know.
	appendEach(t, raw, rawEvent("order.1", "mystery", "?"))
	// One whose payload does not decode.
	_, err = typed.Append(testCtx(t), []*rita.Event{{Entity: "order.2", Type: "order-placed", Data: []byte("not json")}})
	requireNoError(t, err)

	var r recorder
	last, err := typed.Evolve(testCtx(t), &r)
	requireErrorIs(t, err, rita.ErrEventDecode)
	if last != 2 || r.count() != 2 {
		t.Fatalf("Evolve returned %d after %d events, want 2 and 2", last, r.count())
	}
	var r2 recorder
	last, err = typed.Evolve(testCtx(t), &r2, rita.WithFilters("order.2"))
	requireErrorIs(t, err, rita.ErrEventDecode)
	if last != 0 || r2.count() != 0 {
		t.Fatalf("Evolve returned %d after %d events, want 0 and 0", last, r2.count())
	}
	e.requireNoConsumers(t, "mixed")

	// Without a registry, everything reads as bytes.
	var r3 recorder
	last, err = raw.Evolve(testCtx(t), &r3)
	requireNoError(t, err)
	if last != 4 || r3.count() != 4 {
		t.Fatalf("raw Evolve returned %d after %d events", last, r3.count())
	}
}

func TestEvolveManyEvents(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "many")
	ctx := testCtx(t)
	// 1500 events over three entities, in two batches.
	for b := range 2 {
		batch := make([]*rita.Event, 750)
		for i := range batch {
			batch[i] = rawEvent(fmt.Sprintf("order.%d", (b*750+i)%3), "placed", "x")
		}
		_, err := s.Append(ctx, batch)
		requireNoError(t, err)
	}
	var r recorder
	last, err := s.Evolve(ctx, &r)
	requireNoError(t, err)
	if last != 1500 || r.count() != 1500 {
		t.Fatalf("Evolve returned %d with %d events, want 1500", last, r.count())
	}
	requireSeqs(t, r.seqs(), seqRange(1, 1500))

	var f recorder
	last, err = s.Evolve(ctx, &f, rita.WithFilters("order.2"))
	requireNoError(t, err)
	if f.count() != 500 || last != 1500 {
		t.Fatalf("filtered Evolve returned %d with %d events, want 1500 and 500", last, f.count())
	}
	for _, ev := range f.all() {
		if ev.Entity != "order.2" || (ev.Sequence()-1)%3 != 2 {
			t.Fatalf("filtered Evolve read %s at %d", ev.Entity, ev.Sequence())
		}
	}
	e.requireNoConsumers(t, "many")
}

// An Evolver can be reused to catch up: Evolve from the returned sequence.
func TestEvolveIncremental(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "inc")
	ctx := testCtx(t)
	appendN(t, s, "order.1", "placed", 5)
	var r recorder
	last, err := s.Evolve(ctx, &r)
	requireNoError(t, err)
	appendN(t, s, "order.1", "shipped", 3)
	last, err = s.Evolve(ctx, &r, rita.WithAfterSequence(last))
	requireNoError(t, err)
	if last != 8 {
		t.Fatalf("second Evolve returned %d, want 8", last)
	}
	requireSeqs(t, r.seqs(), seqRange(1, 8))
	last, err = s.Evolve(ctx, &r, rita.WithAfterSequence(last))
	if last != 0 || err != nil {
		t.Fatalf("Evolve with nothing new = (%d, %v), want (0, nil)", last, err)
	}
}

// The option types are usable where the documentation says.
var (
	_ rita.WatchOption  = rita.WithFilters("order")
	_ rita.WatchOption  = rita.WithAfterSequence(1)
	_ rita.EvolveOption = rita.WithStopSequence(1)
)

// A message published by anything that follows the wire format is read as an
// event.
func TestEvolveReadsWireFormat(t *testing.T) {
	e := newEnv(t, rita.WithRegistry(newRegistry(t, orderTypes())))
	s := e.store(t, "wire")
	ctx := testCtx(t)
	at := time.Date(2021, 7, 8, 9, 10, 11, 120000000, time.FixedZone("X", -7200))
	msg := nats.NewMsg("$ES.wire.order.5.order-shipped")
	msg.Header.Set(jetstream.MsgIDHeader, "external-1")
	msg.Header.Set("Rita-Type", "order-shipped")
	msg.Header.Set("Rita-Entity", "order.5")
	msg.Header.Set("Rita-Time", at.Format(time.RFC3339Nano))
	msg.Header.Set("Rita-Codec", "json")
	msg.Header.Set("Rita-Meta-origin", "legacy")
	msg.Data = []byte(`{"order_id":"5","carrier":"post"}`)
	ack, err := e.js.PublishMsg(ctx, msg)
	requireNoError(t, err)

	var r recorder
	last, err := s.Evolve(ctx, &r)
	requireNoError(t, err)
	got := r.all()
	if last != ack.Sequence || len(got) != 1 {
		t.Fatalf("Evolve returned %d with %d events", last, len(got))
	}
	ev := got[0]
	if ev.ID != "external-1" || ev.Entity != "order.5" || ev.Type != "order-shipped" || !ev.Time.Equal(at) ||
		ev.Meta["origin"] != "legacy" || ev.Sequence() != ack.Sequence || ev.Subject() != msg.Subject {
		t.Fatalf("decoded %+v (sequence %d, subject %q)", ev, ev.Sequence(), ev.Subject())
	}
	if d, ok := ev.Data.(*shippedEvt); !ok || d.OrderID != "5" || d.Carrier != "post" {
		t.Fatalf("Data = %#v", ev.Data)
	}

	// And the stored event counts for expectations and de-duplication.
	_, err = s.Append(ctx, []*rita.Event{{Entity: "order.5", Data: &shippedEvt{}, Expect: rita.ExpectSequence(0)}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	seq, err := s.Append(ctx, []*rita.Event{{ID: "external-1", Entity: "order.5", Data: &shippedEvt{}}})
	requireNoError(t, err)
	if seq != ack.Sequence || e.msgs(t, "wire") != 1 {
		t.Fatalf("duplicate of the external event: seq %d, %d stored", seq, e.msgs(t, "wire"))
	}
}
