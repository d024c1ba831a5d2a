package rita_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/ritatest"
	"github.com/synadia-labs/rita/types"
)

func TestAppendValidation(t *testing.T) {
	e := newEnv(t)
	raw := e.store(t, "raw")
	typed := createStore(t, e.manager(t, rita.WithRegistry(newRegistry(t, orderTypes()))), "typed")

	valid := func() *rita.Event { return rawEvent("order.1", "placed", "ok") }
	validTyped := func() *rita.Event {
		return &rita.Event{Entity: "order.1", Data: &placedEvt{OrderID: "1", Amount: 5}}
	}
	tooMany := make([]*rita.Event, rita.MaxBatchSize+1)
	for i := range tooMany {
		tooMany[i] = valid()
	}

	tests := []struct {
		name   string
		store  *rita.EventStore
		events []*rita.Event
		want   error
	}{
		{"nil slice", raw, nil, rita.ErrNoEvents},
		{"empty slice", raw, []*rita.Event{}, rita.ErrNoEvents},
		{"nil event", raw, []*rita.Event{nil}, rita.ErrEventNil},
		{"nil event after a valid one", raw, []*rita.Event{valid(), nil}, rita.ErrEventNil},
		{"no data", raw, []*rita.Event{{Entity: "order.1", Type: "placed"}}, rita.ErrEventDataRequired},
		{"no data with registry", typed, []*rita.Event{{Entity: "order.1"}}, rita.ErrEventDataRequired},
		{"no entity", raw, []*rita.Event{{Type: "placed", Data: []byte("x")}}, rita.ErrEventEntityRequired},
		{"no type without registry", raw, []*rita.Event{{Entity: "order.1", Data: []byte("x")}}, rita.ErrEventTypeRequired},
		{"string data without registry", raw, []*rita.Event{{Entity: "order.1", Type: "placed", Data: "x"}}, rita.ErrEventDataInvalid},
		{"struct data without registry", raw, []*rita.Event{{Entity: "order.1", Type: "placed", Data: &placedEvt{}}}, rita.ErrEventDataInvalid},
		{"type disagrees with registry", typed, []*rita.Event{{Entity: "order.1", Type: "order-shipped", Data: &placedEvt{}}}, rita.ErrEventTypeInvalid},
		{"unregistered data type", typed, []*rita.Event{{Entity: "order.1", Data: &unregisteredEvt{X: 1}}}, rita.ErrEventTypeInvalid},
		{"unregistered type name for bytes", typed, []*rita.Event{{Entity: "order.1", Type: "nope", Data: []byte("{}")}}, rita.ErrEventTypeInvalid},
		{"type with wildcard", raw, []*rita.Event{{Entity: "order.1", Type: "pla*ced", Data: []byte("x")}}, rita.ErrEventTypeInvalid},
		{"type with space", raw, []*rita.Event{{Entity: "order.1", Type: "pla ced", Data: []byte("x")}}, rita.ErrEventTypeInvalid},
		{"meta key with space", raw, []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte("x"), Meta: map[string]string{"a b": "v"}}}, rita.ErrEventMetaInvalid},
		{"meta key with colon", raw, []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte("x"), Meta: map[string]string{"a:b": "v"}}}, rita.ErrEventMetaInvalid},
		{"empty meta key", raw, []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte("x"), Meta: map[string]string{"": "v"}}}, rita.ErrEventMetaInvalid},
		{"meta value with line break", raw, []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte("x"), Meta: map[string]string{"k": "a\r\nb"}}}, rita.ErrEventMetaInvalid},
		{"too many events", raw, tooMany, rita.ErrTooManyEvents},
		{"last event of a batch invalid", raw, []*rita.Event{valid(), valid(), {Entity: "order", Type: "placed", Data: []byte("x")}}, rita.ErrEventEntityInvalid},
		{"last typed event of a batch unregistered", typed, []*rita.Event{validTyped(), validTyped(), {Entity: "order.1", Data: &unregisteredEvt{}}}, rita.ErrEventTypeInvalid},
		{"bad expect pattern", raw, []*rita.Event{{Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequenceSubject(0, "a.b.c.d")}}, rita.ErrSubjectTooManyTokens},
		{"bad expect pattern in the last event", raw, []*rita.Event{valid(), {Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequenceSubject(0, "or der")}}, rita.ErrFilterInvalid},
	}
	for _, entity := range []string{"order", "order.1.x", "order.*", "order.>", "*.1", "or der.1", "order.1 ", ".1", "order.", ".", "order..1"} {
		tests = append(tests, struct {
			name   string
			store  *rita.EventStore
			events []*rita.Event
			want   error
		}{"entity " + entity, raw, []*rita.Event{{Entity: entity, Type: "placed", Data: []byte("x")}}, rita.ErrEventEntityInvalid})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, err := tt.store.Append(testCtx(t), tt.events)
			requireErrorIs(t, err, tt.want)
			if seq != 0 {
				t.Fatalf("refused Append returned sequence %d", seq)
			}
			for _, ev := range tt.events {
				if ev != nil && (ev.Sequence() != 0 || ev.Subject() != "") {
					t.Fatalf("refused event has Sequence %d Subject %q", ev.Sequence(), ev.Subject())
				}
			}
			if n := e.msgs(t, "raw") + e.msgs(t, "typed"); n != 0 {
				t.Fatalf("a refused Append stored %d messages", n)
			}
		})
	}
}

func TestAppendMaxBatch(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "big")
	events := make([]*rita.Event, rita.MaxBatchSize)
	for i := range events {
		events[i] = rawEvent(fmt.Sprintf("order.%d", i%7), "placed", fmt.Sprint(i))
	}
	seq, err := s.Append(testCtx(t), events)
	requireNoError(t, err)
	if seq != rita.MaxBatchSize {
		t.Fatalf("Append of %d events returned %d", rita.MaxBatchSize, seq)
	}
	for i, ev := range events {
		if ev.Sequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d, want %d", i, ev.Sequence(), i+1)
		}
	}
	if n := e.msgs(t, "big"); n != rita.MaxBatchSize {
		t.Fatalf("stored %d messages, want %d", n, rita.MaxBatchSize)
	}
}

func TestAppendFillsIDAndTime(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	ider := &countingIDer{}
	e := newEnv(t, rita.WithIDer(ider), rita.WithClock(clock.Fixed(now)))
	s := e.store(t, "fill")
	ctx := testCtx(t)

	// One event: ID and Time are filled.
	one := rawEvent("order.1", "placed", "a")
	_, err := s.Append(ctx, []*rita.Event{one})
	requireNoError(t, err)
	if one.ID != "id-1" {
		t.Errorf("ID = %q, want id-1", one.ID)
	}
	if !one.Time.Equal(now) {
		t.Errorf("Time = %v, want %v", one.Time, now)
	}

	// A batch: each empty ID gets its own, set ones are kept.
	own := time.Date(2020, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	batch := []*rita.Event{
		rawEvent("order.1", "shipped", "b"),
		{ID: "mine", Time: own, Entity: "order.2", Type: "placed", Data: []byte("c")},
		rawEvent("order.2", "shipped", "d"),
	}
	_, err = s.Append(ctx, batch)
	requireNoError(t, err)
	wantIDs := []string{"id-2", "mine", "id-3"}
	wantTimes := []time.Time{now, own, now}
	for i, ev := range batch {
		if ev.ID != wantIDs[i] {
			t.Errorf("batch[%d].ID = %q, want %q", i, ev.ID, wantIDs[i])
		}
		if !ev.Time.Equal(wantTimes[i]) {
			t.Errorf("batch[%d].Time = %v, want %v", i, ev.Time, wantTimes[i])
		}
	}

	// What was stored carries the same ID and time.
	wantStored := []struct {
		id string
		t  time.Time
	}{{"id-1", now}, {"id-2", now}, {"mine", own}, {"id-3", now}}
	for i, w := range wantStored {
		msg := e.rawMsg(t, "fill", uint64(i+1))
		if got := msg.Header.Get(jetstream.MsgIDHeader); got != w.id {
			t.Errorf("seq %d: Nats-Msg-Id = %q, want %q", i+1, got, w.id)
		}
		ts, err := time.Parse(time.RFC3339Nano, msg.Header.Get("Rita-Time"))
		if err != nil {
			t.Errorf("seq %d: Rita-Time %q: %v", i+1, msg.Header.Get("Rita-Time"), err)
		} else if !ts.Equal(w.t) {
			t.Errorf("seq %d: Rita-Time = %v, want %v", i+1, ts, w.t)
		}
	}

	// The next event gets a fresh ID.
	next := rawEvent("order.3", "placed", "e")
	_, err = s.Append(ctx, []*rita.Event{next})
	requireNoError(t, err)
	if next.ID == "" || next.ID == "id-1" || next.ID == "id-2" || next.ID == "id-3" {
		t.Errorf("next ID = %q, want a new one", next.ID)
	}

	// Events read back carry the filled fields.
	var r recorder
	_, err = s.Evolve(ctx, &r)
	requireNoError(t, err)
	got := r.all()
	if len(got) != 5 || got[0].ID != "id-1" || !got[0].Time.Equal(now) || got[2].ID != "mine" || !got[2].Time.Equal(own) {
		t.Errorf("read back %d events, first %q %v, third %q %v", len(got), got[0].ID, got[0].Time, got[2].ID, got[2].Time)
	}
}

func TestAppendWireFormat(t *testing.T) {
	now := time.Date(2025, 2, 3, 4, 5, 6, 7008009, time.UTC)
	e := newEnv(t)
	ctx := testCtx(t)

	t.Run("raw", func(t *testing.T) {
		s := createStore(t, e.manager(t, rita.WithClock(clock.Fixed(now))), "wire")
		ev := &rita.Event{
			ID:     "evt-1",
			Entity: "order.42",
			Type:   "placed",
			Data:   []byte(`{"any":"bytes"}`),
			Meta:   map[string]string{"region": "eu-west", "Trace-Id": "abc"},
		}
		seq, err := s.Append(ctx, []*rita.Event{ev})
		requireNoError(t, err)
		msg := e.rawMsg(t, "wire", seq)
		if msg.Subject != "$ES.wire.order.42.placed" {
			t.Errorf("subject = %q, want $ES.wire.order.42.placed", msg.Subject)
		}
		if ev.Subject() != msg.Subject {
			t.Errorf("Subject() = %q, want %q", ev.Subject(), msg.Subject)
		}
		wantHeaders := map[string]string{
			"Nats-Msg-Id":        "evt-1",
			"Rita-Type":          "placed",
			"Rita-Entity":        "order.42",
			"Rita-Meta-region":   "eu-west",
			"Rita-Meta-Trace-Id": "abc",
		}
		for k, v := range wantHeaders {
			if got := msg.Header.Get(k); got != v {
				t.Errorf("header %s = %q, want %q", k, got, v)
			}
		}
		ts, err := time.Parse(time.RFC3339Nano, msg.Header.Get("Rita-Time"))
		if err != nil || !ts.Equal(now) {
			t.Errorf("Rita-Time = %q (%v), want %v", msg.Header.Get("Rita-Time"), err, now)
		}
		if string(msg.Data) != `{"any":"bytes"}` {
			t.Errorf("payload = %q", msg.Data)
		}
	})

	t.Run("registry", func(t *testing.T) {
		for _, codec := range []string{"json", "msgpack", "protobuf", "binary"} {
			t.Run(codec, func(t *testing.T) {
				reg, data, typ := codecFixture(t, codec)
				store := "wire_" + codec
				s := createStore(t, e.manager(t, rita.WithRegistry(reg), rita.WithClock(clock.Fixed(now))), store)
				ev := &rita.Event{Entity: "sensor.7", Data: data, Meta: map[string]string{"unit": "C"}}
				seq, err := s.Append(ctx, []*rita.Event{ev})
				requireNoError(t, err)
				if ev.Type != typ {
					t.Errorf("Type = %q, want %q taken from the registry", ev.Type, typ)
				}
				msg := e.rawMsg(t, store, seq)
				if want := "$ES." + store + ".sensor.7." + typ; msg.Subject != want {
					t.Errorf("subject = %q, want %q", msg.Subject, want)
				}
				for k, v := range map[string]string{
					"Rita-Codec":     codec,
					"Rita-Type":      typ,
					"Rita-Entity":    "sensor.7",
					"Nats-Msg-Id":    ev.ID,
					"Rita-Meta-unit": "C",
				} {
					if got := msg.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				if ev.ID == "" {
					t.Errorf("ID not filled")
				}
				want, err := reg.Marshal(data)
				requireNoError(t, err)
				if string(msg.Data) != string(want) {
					t.Errorf("payload = %x, want the registry's encoding %x", msg.Data, want)
				}
			})
		}
	})
}

func TestAppendResults(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "results")
	ctx := testCtx(t)

	one := rawEvent("order.1", "placed", "a")
	seq, err := s.Append(ctx, []*rita.Event{one})
	requireNoError(t, err)
	if seq != 1 || one.Sequence() != 1 || one.Subject() != "$ES.results.order.1.placed" {
		t.Fatalf("one event: seq %d, Sequence %d, Subject %q", seq, one.Sequence(), one.Subject())
	}
	if n := e.msgs(t, "results"); n != 1 {
		t.Fatalf("one event stored %d messages", n)
	}

	batch := []*rita.Event{
		rawEvent("order.1", "shipped", "b"),
		rawEvent("order.2", "placed", "c"),
		rawEvent("user.9", "created", "d"),
	}
	seq, err = s.Append(ctx, batch)
	requireNoError(t, err)
	if seq != 4 {
		t.Fatalf("batch returned %d, want 4", seq)
	}
	wantSubjects := []string{"$ES.results.order.1.shipped", "$ES.results.order.2.placed", "$ES.results.user.9.created"}
	for i, ev := range batch {
		if ev.Sequence() != uint64(i+2) || ev.Subject() != wantSubjects[i] {
			t.Errorf("batch[%d]: Sequence %d Subject %q, want %d %q", i, ev.Sequence(), ev.Subject(), i+2, wantSubjects[i])
		}
		msg := e.rawMsg(t, "results", ev.Sequence())
		if msg.Subject != wantSubjects[i] || msg.Header.Get(jetstream.MsgIDHeader) != ev.ID {
			t.Errorf("stored at %d: %q id %q, want %q id %q", ev.Sequence(), msg.Subject, msg.Header.Get(jetstream.MsgIDHeader), wantSubjects[i], ev.ID)
		}
	}
	if n := e.msgs(t, "results"); n != 4 {
		t.Fatalf("stored %d messages, want 4", n)
	}

	// A two-event batch.
	pair := []*rita.Event{rawEvent("order.3", "placed", "e"), rawEvent("order.3", "shipped", "f")}
	seq, err = s.Append(ctx, pair)
	requireNoError(t, err)
	if seq != 6 || pair[0].Sequence() != 5 || pair[1].Sequence() != 6 {
		t.Fatalf("pair: seq %d, sequences %d %d; want 6, 5 6", seq, pair[0].Sequence(), pair[1].Sequence())
	}
}

func TestAppendExpect(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "occ")
	ctx := testCtx(t)
	count := func() uint64 { return e.msgs(t, "occ") }

	appendExpect := func(entity, typ string, expect *rita.Expect) (uint64, error) {
		return s.Append(ctx, []*rita.Event{{Entity: entity, Type: typ, Data: []byte("x"), Expect: expect}})
	}

	// A new entity has no event: 0 is expected.
	seq, err := appendExpect("order.1", "placed", rita.ExpectSequence(0))
	requireNoError(t, err)
	if seq != 1 {
		t.Fatalf("seq = %d, want 1", seq)
	}
	// 0 again fails: order.1 has an event now.
	_, err = appendExpect("order.1", "shipped", rita.ExpectSequence(0))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	if count() != 1 {
		t.Fatalf("conflict stored something: %d messages", count())
	}
	// The right last sequence succeeds.
	seq, err = appendExpect("order.1", "shipped", rita.ExpectSequence(1))
	requireNoError(t, err)
	if seq != 2 {
		t.Fatalf("seq = %d, want 2", seq)
	}
	// A stale one fails.
	_, err = appendExpect("order.1", "cancelled", rita.ExpectSequence(1))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	// A sequence from the future fails too.
	_, err = appendExpect("order.1", "cancelled", rita.ExpectSequence(99))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	// Another entity is independent of order.1.
	seq, err = appendExpect("order.2", "placed", rita.ExpectSequence(0))
	requireNoError(t, err)
	if seq != 3 {
		t.Fatalf("seq = %d, want 3", seq)
	}
	// An entity of another type with the same id too.
	seq, err = appendExpect("user.1", "created", rita.ExpectSequence(0))
	requireNoError(t, err)
	if seq != 4 {
		t.Fatalf("seq = %d, want 4", seq)
	}
	if count() != 4 {
		t.Fatalf("stored %d messages, want 4", count())
	}

	// Pattern "order": the last event of all orders is 3.
	_, err = appendExpect("order.3", "placed", rita.ExpectSequenceSubject(2, "order"))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	_, err = appendExpect("order.3", "placed", rita.ExpectSequenceSubject(4, "order"))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	seq, err = appendExpect("order.3", "placed", rita.ExpectSequenceSubject(3, "order"))
	requireNoError(t, err)
	if seq != 5 {
		t.Fatalf("seq = %d, want 5", seq)
	}

	// Pattern "*.*.shipped": the last shipped event anywhere is 2.
	_, err = appendExpect("order.2", "shipped", rita.ExpectSequenceSubject(0, "*.*.shipped"))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	seq, err = appendExpect("order.2", "shipped", rita.ExpectSequenceSubject(2, "*.*.shipped"))
	requireNoError(t, err)
	if seq != 6 {
		t.Fatalf("seq = %d, want 6", seq)
	}
	// No event of type "refunded" yet.
	seq, err = appendExpect("user.1", "refunded", rita.ExpectSequenceSubject(0, "*.*.refunded"))
	requireNoError(t, err)
	if seq != 7 {
		t.Fatalf("seq = %d, want 7", seq)
	}
	// Pattern of another entity: "user.1" last is 7.
	seq, err = appendExpect("order.9", "placed", rita.ExpectSequenceSubject(7, "user.1"))
	requireNoError(t, err)
	if seq != 8 {
		t.Fatalf("seq = %d, want 8", seq)
	}
	if count() != 8 {
		t.Fatalf("stored %d messages, want 8", count())
	}

	// An atomic batch where one event's expectation fails stores none.
	for i := range 3 {
		t.Run(fmt.Sprintf("batch conflict at %d", i), func(t *testing.T) {
			batch := []*rita.Event{
				{Entity: "order.1", Type: "note", Data: []byte("a"), Expect: rita.ExpectSequence(2)},
				{Entity: "order.2", Type: "note", Data: []byte("b"), Expect: rita.ExpectSequence(6)},
				{Entity: "order.3", Type: "note", Data: []byte("c"), Expect: rita.ExpectSequence(5)},
			}
			batch[i].Expect = rita.ExpectSequence(1) // stale
			_, err := s.Append(ctx, batch)
			requireErrorIs(t, err, rita.ErrSequenceConflict)
			if count() != 8 {
				t.Fatalf("a conflicting batch stored %d messages, want still 8", count())
			}
			for _, ev := range batch {
				if ev.Sequence() != 0 {
					t.Fatalf("event of a refused batch has sequence %d", ev.Sequence())
				}
			}
		})
	}

	// A multi-entity batch with correct expectations succeeds.
	batch := []*rita.Event{
		{Entity: "order.1", Type: "note", Data: []byte("a"), Expect: rita.ExpectSequence(2)},
		{Entity: "order.2", Type: "note", Data: []byte("b"), Expect: rita.ExpectSequence(6)},
		{Entity: "order.4", Type: "note", Data: []byte("c"), Expect: rita.ExpectSequence(0)},
		{Entity: "user.1", Type: "note", Data: []byte("d"), Expect: rita.ExpectSequenceSubject(7, "user")},
	}
	seq, err = s.Append(ctx, batch)
	requireNoError(t, err)
	if seq != 12 || count() != 12 {
		t.Fatalf("batch: seq %d, %d messages; want 12, 12", seq, count())
	}

	// Two events of one entity in one batch: the first expects the stored
	// state, the second has no expectation.
	batch = []*rita.Event{
		{Entity: "order.1", Type: "a", Data: []byte("a"), Expect: rita.ExpectSequence(9)},
		{Entity: "order.1", Type: "b", Data: []byte("b")},
	}
	seq, err = s.Append(ctx, batch)
	requireNoError(t, err)
	if seq != 14 {
		t.Fatalf("seq = %d, want 14", seq)
	}
}

func TestAppendExpectConcurrent(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "race")
	ctx := testCtx(t)

	// Many writers expect order.1 to be empty; exactly one wins.
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = s.Append(ctx, []*rita.Event{{
				Entity: "order.1", Type: "placed", Data: []byte(fmt.Sprint(i)), Expect: rita.ExpectSequence(0),
			}})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, rita.ErrSequenceConflict):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 || e.msgs(t, "race") != 1 {
		t.Fatalf("%d writers won, %d stored; want 1 and 1", won, e.msgs(t, "race"))
	}
}

func TestAppendDeduplication(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "dedup")
	ctx := testCtx(t)
	count := func() uint64 { return e.msgs(t, "dedup") }

	first := &rita.Event{ID: "dup-1", Entity: "order.1", Type: "placed", Data: []byte("first")}
	seq1, err := s.Append(ctx, []*rita.Event{first})
	requireNoError(t, err)
	appendEach(t, s, rawEvent("order.2", "placed", "other"))

	// The same ID again: nothing new, the first sequence back.
	again := &rita.Event{ID: "dup-1", Entity: "order.1", Type: "placed", Data: []byte("second")}
	seq, err := s.Append(ctx, []*rita.Event{again})
	requireNoError(t, err)
	if seq != seq1 {
		t.Fatalf("re-append returned %d, want the first sequence %d", seq, seq1)
	}
	if again.Sequence() != seq1 {
		t.Fatalf("re-appended event has Sequence %d, want %d", again.Sequence(), seq1)
	}
	if count() != 2 {
		t.Fatalf("re-append stored something: %d messages, want 2", count())
	}
	if got := string(e.rawMsg(t, "dedup", seq1).Data); got != "first" {
		t.Fatalf("stored payload = %q, want the first one", got)
	}

	// A batch holding an ID that is already stored: nothing stored, the ID named.
	batch := []*rita.Event{
		rawEvent("order.3", "placed", "new"),
		{ID: "dup-1", Entity: "order.1", Type: "shipped", Data: []byte("x")},
		rawEvent("order.4", "placed", "new"),
	}
	_, err = s.Append(ctx, batch)
	requireErrorIs(t, err, rita.ErrDuplicateEvent)
	if !strings.Contains(err.Error(), "dup-1") {
		t.Fatalf("error %q does not name the duplicate ID dup-1", err)
	}
	if count() != 2 {
		t.Fatalf("a batch with a stored ID stored something: %d messages", count())
	}

	// The duplicate first in the batch.
	batch = []*rita.Event{
		{ID: "dup-1", Entity: "order.9", Type: "placed", Data: []byte("x")},
		rawEvent("order.3", "placed", "new"),
	}
	_, err = s.Append(ctx, batch)
	requireErrorIs(t, err, rita.ErrDuplicateEvent)
	if !strings.Contains(err.Error(), "dup-1") {
		t.Fatalf("error %q does not name the duplicate ID dup-1", err)
	}
	if count() != 2 {
		t.Fatalf("stored %d messages, want 2", count())
	}

	// The same ID twice in one batch.
	batch = []*rita.Event{
		{ID: "twice", Entity: "order.5", Type: "placed", Data: []byte("a")},
		{ID: "twice", Entity: "order.5", Type: "shipped", Data: []byte("b")},
	}
	_, err = s.Append(ctx, batch)
	requireErrorIs(t, err, rita.ErrDuplicateEvent)
	if !strings.Contains(err.Error(), "twice") {
		t.Fatalf("error %q does not name the duplicate ID", err)
	}
	if count() != 2 {
		t.Fatalf("stored %d messages, want 2", count())
	}

	// A batch of fresh IDs still goes through, and re-sending the same
	// batch is refused as a whole.
	batch = []*rita.Event{
		{ID: "b-1", Entity: "order.6", Type: "placed", Data: []byte("a")},
		{ID: "b-2", Entity: "order.6", Type: "shipped", Data: []byte("b")},
	}
	seq, err = s.Append(ctx, batch)
	requireNoError(t, err)
	if seq != 4 || count() != 4 {
		t.Fatalf("fresh batch: seq %d, %d messages; want 4, 4", seq, count())
	}
	resend := []*rita.Event{
		{ID: "b-1", Entity: "order.6", Type: "placed", Data: []byte("a")},
		{ID: "b-2", Entity: "order.6", Type: "shipped", Data: []byte("b")},
	}
	_, err = s.Append(ctx, resend)
	requireErrorIs(t, err, rita.ErrDuplicateEvent)
	if count() != 4 {
		t.Fatalf("re-sent batch stored something: %d messages", count())
	}
}

func TestAppendTypedData(t *testing.T) {
	e := newEnv(t, rita.WithRegistry(newRegistry(t, orderTypes())))
	s := e.store(t, "typed")
	ctx := testCtx(t)

	// Type may be left empty, or set to the registered name; a pointer and
	// a value of a registered type are both accepted; pre-encoded bytes
	// with a registered Type too.
	events := []*rita.Event{
		{Entity: "order.1", Data: &placedEvt{OrderID: "1", Amount: 10, Items: []string{"a"}}},
		{Entity: "order.1", Type: "order-shipped", Data: &shippedEvt{OrderID: "1", Carrier: "ups"}},
		{Entity: "order.2", Data: placedEvt{OrderID: "2", Amount: 20}},
		{Entity: "order.2", Type: "order-shipped", Data: mustJSON(t, shippedEvt{OrderID: "2", Carrier: "dhl"})},
	}
	_, err := s.Append(ctx, events)
	requireNoError(t, err)
	wantTypes := []string{"order-placed", "order-shipped", "order-placed", "order-shipped"}
	for i, ev := range events {
		if ev.Type != wantTypes[i] {
			t.Errorf("events[%d].Type = %q, want %q", i, ev.Type, wantTypes[i])
		}
	}

	var r recorder
	_, err = s.Evolve(ctx, &r)
	requireNoError(t, err)
	got := r.all()
	if len(got) != 4 {
		t.Fatalf("read %d events, want 4", len(got))
	}
	if p, ok := got[2].Data.(*placedEvt); !ok || p.OrderID != "2" || p.Amount != 20 {
		t.Errorf("event 3 data = %#v", got[2].Data)
	}
	if p, ok := got[3].Data.(*shippedEvt); !ok || p.Carrier != "dhl" {
		t.Errorf("event 4 data = %#v", got[3].Data)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	requireNoError(t, err)
	return b
}

// orderCancelled validates itself: a cancellation needs a reason.
type orderCancelled struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

var errNoReason = errors.New("a cancellation needs a reason")

func (c *orderCancelled) Validate() error {
	if c.Reason == "" {
		return errNoReason
	}
	return nil
}

func TestAppendValidatesData(t *testing.T) {
	typs := orderTypes()
	typs["order-cancelled"] = &types.Type{Init: func() any { return new(orderCancelled) }}
	e := newEnv(t, rita.WithRegistry(newRegistry(t, typs)))
	s := e.store(t, "valid")
	ctx := testCtx(t)

	_, err := s.Append(ctx, []*rita.Event{{Entity: "order.1", Data: &orderCancelled{OrderID: "1"}}})
	requireErrorIs(t, err, rita.ErrEventDataInvalid)
	requireErrorIs(t, err, errNoReason)
	_, err = s.Append(ctx, []*rita.Event{
		{Entity: "order.1", Data: &placedEvt{OrderID: "1"}},
		{Entity: "order.1", Data: &orderCancelled{OrderID: "1"}},
	})
	requireErrorIs(t, err, errNoReason)
	if n := e.msgs(t, "valid"); n != 0 {
		t.Fatalf("invalid data stored %d messages", n)
	}
	seq, err := s.Append(ctx, []*rita.Event{{Entity: "order.1", Data: &orderCancelled{OrderID: "1", Reason: "changed mind"}}})
	requireNoError(t, err)
	if seq != 1 {
		t.Fatalf("seq = %d, want 1", seq)
	}
}

// An event type is one subject token (so that "<type>.<id>.*" is every event
// of an entity): a type name with dots, even one the registry accepts, is
// refused and nothing is stored.
func TestAppendDottedType(t *testing.T) {
	reg := newRegistry(t, map[string]*types.Type{
		"orders.placed-v2": {Init: func() any { return new(placedEvt) }},
	})
	e := newEnv(t)
	raw := e.store(t, "dotted")
	typed := createStore(t, e.manager(t, rita.WithRegistry(reg)), "dotted_typed")
	ctx := testCtx(t)

	_, err := raw.Append(ctx, []*rita.Event{rawEvent("order.1", "orders.placed", "x")})
	requireErrorIs(t, err, rita.ErrEventTypeInvalid)
	_, err = typed.Append(ctx, []*rita.Event{{Entity: "order.1", Data: &placedEvt{OrderID: "1"}}})
	requireErrorIs(t, err, rita.ErrEventTypeInvalid)
	if n := e.msgs(t, "dotted") + e.msgs(t, "dotted_typed"); n != 0 {
		t.Fatalf("stored %d", n)
	}
}

func TestAppendConcurrentBatches(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "conc")
	ctx := testCtx(t)

	const (
		writers = 4
		batches = 10
		size    = 5
	)
	var wg sync.WaitGroup
	results := make([][][]*rita.Event, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				batch := make([]*rita.Event, size)
				for i := range batch {
					batch[i] = &rita.Event{
						ID:     fmt.Sprintf("w%d-b%d-e%d", w, b, i),
						Entity: fmt.Sprintf("writer.%d", w),
						Type:   "wrote",
						Data:   []byte(fmt.Sprint(i)),
					}
				}
				last, err := s.Append(ctx, batch)
				if err != nil {
					errs[w] = err
					return
				}
				if last != batch[size-1].Sequence() {
					errs[w] = fmt.Errorf("Append returned %d, last event has %d", last, batch[size-1].Sequence())
					return
				}
				results[w] = append(results[w], batch)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		requireNoError(t, err)
	}
	if n := e.msgs(t, "conc"); n != writers*batches*size {
		t.Fatalf("stored %d, want %d", n, writers*batches*size)
	}
	for _, rs := range results {
		for _, batch := range rs {
			for i, ev := range batch {
				if i > 0 && ev.Sequence() != batch[i-1].Sequence()+1 {
					t.Fatalf("batch sequences not consecutive: %d after %d", ev.Sequence(), batch[i-1].Sequence())
				}
				if id := e.rawMsg(t, "conc", ev.Sequence()).Header.Get(jetstream.MsgIDHeader); id != ev.ID {
					t.Fatalf("sequence %d holds %q, want %q", ev.Sequence(), id, ev.ID)
				}
			}
		}
	}
}

func TestAppendNilContext(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "nilctx")
	_, err := s.Append(nilCtx(), []*rita.Event{rawEvent("order.1", "placed", "x")})
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	if n := e.msgs(t, "nilctx"); n != 0 {
		t.Fatalf("stored %d", n)
	}
}

// Append started while the server is gone retries until it is back, and
// stores the event once.
func TestAppendRidesOutRestart(t *testing.T) {
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t, ritatest.Reconnecting())
	var retries retryCounter
	m, err := rita.New(nc, rita.WithLogger(slog.New(&retries)))
	requireNoError(t, err)
	s := createStore(t, m, "restart")
	appendN(t, s, "order.1", "placed", 1)

	srv.Stop()
	type result struct {
		seq uint64
		err error
	}
	done := make(chan result, 1)
	event := rawEvent("order.1", "shipped", "x")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		seq, err := s.Append(ctx, []*rita.Event{event})
		done <- result{seq, err}
	}()
	eventually(t, waitFor, func() bool { return retries.n.Load() >= 1 }, "Append did not retry while the server was gone")
	srv.Restart()
	r := <-done
	requireNoError(t, r.err)
	if r.seq != 2 {
		t.Fatalf("Append returned %d, want 2", r.seq)
	}
	t.Logf("Append retried %d times: %v", retries.n.Load(), &retries)
	var rec recorder
	_, err = s.Evolve(testCtx(t), &rec)
	requireNoError(t, err)
	requireSeqs(t, rec.seqs(), seqRange(1, 2))
}

// An event appended again with its ID, and the Expect it had, gets its first
// sequence back, although the Expect no longer holds: a server outside a
// cluster checks the Expect before the ID, so Append looks the ID up.
func TestAppendAgainWithExpect(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "again")
	first := &rita.Event{ID: "mine", Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)}
	seq, err := s.Append(testCtx(t), []*rita.Event{first})
	requireNoError(t, err)
	appendEach(t, s, rawEvent("order.1", "shipped", "y"))

	again := &rita.Event{ID: "mine", Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)}
	got, err := s.Append(testCtx(t), []*rita.Event{again})
	requireNoError(t, err)
	if got != seq || again.Sequence() != seq {
		t.Fatalf("appended again at %d (Sequence %d), want the first sequence %d", got, again.Sequence(), seq)
	}
	if n := e.msgs(t, "again"); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
	// Another ID with a stale Expect is a conflict.
	_, err = s.Append(testCtx(t), []*rita.Event{{ID: "other", Entity: "order.1", Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(0)}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
}

// Append to a store deleted meanwhile fails at once rather than retrying
// the silence.
func TestAppendToDeletedStore(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "gone")
	requireNoError(t, e.m.DeleteEventStore(testCtx(t), "gone"))
	start := time.Now()
	_, err := s.Append(testCtx(t), []*rita.Event{rawEvent("order.1", "placed", "x")})
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Append to a deleted store took %v", took)
	}
	_, err = s.Evolve(testCtx(t), &recorder{})
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = s.Watch(testCtx(t), &recorder{})
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch on a deleted store waited for its context: %v", err)
	}
}
