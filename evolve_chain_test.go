package rita_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// Evolve of one entity whose events are far apart in the store (here 600
// events of other entities between two of its own) follows the entity's
// chain of expectations back from its last event, one direct get per event,
// instead of walking the store; and it applies exactly what a read of the
// whole store says the filter selects: through atomic batches of several
// entities, with filters of several entities or of one event type, and
// once the chain is broken by an event appended without Expect. In file and
// memory storage.
func TestEvolveEntityChain(t *testing.T) {
	e := newEnv(t)
	for _, storage := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		t.Run(storage.String(), func(t *testing.T) {
			ctx := testCtx(t)
			name := "chain_" + storage.String()
			s, err := e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: name, Storage: storage})
			requireNoError(t, err)
			last := map[string]uint64{}
			appendAll := func(events ...*rita.Event) {
				t.Helper()
				_, err := s.Append(ctx, events)
				requireNoError(t, err)
				for _, ev := range events {
					last[ev.Entity] = ev.Sequence()
				}
			}
			// stamped is an event of entity that expects the entity's last
			// sequence, as Model.Decide stamps the first of an entity.
			stamped := func(entity, typ string) *rita.Event {
				return &rita.Event{Entity: entity, Type: typ, Data: []byte(`"x"`), Expect: rita.ExpectSequence(last[entity])}
			}
			filler := func(n int) {
				t.Helper()
				events := make([]*rita.Event, n)
				for i := range events {
					events[i] = &rita.Event{Entity: fmt.Sprintf("filler.%d", i%50), Type: "noise", Data: []byte(`"x"`)}
				}
				appendAll(events...)
			}
			for i := range 12 {
				filler(600)
				switch i % 3 {
				case 0:
					appendAll(stamped("order.1", "line"))
					appendAll(stamped("order.2", "line"))
				case 1: // one atomic batch of both entities
					appendAll(stamped("order.1", "line"), stamped("order.2", "paid"),
						&rita.Event{Entity: "order.1", Type: "paid", Data: []byte(`"x"`)})
				default:
					appendAll(stamped("order.2", "line"), stamped("order.1", "line"))
				}
			}

			// What a read of the whole store (a consumer) says each filter
			// selects, and what Evolve applies with it.
			all := &recorder{}
			_, err = s.Evolve(ctx, all)
			requireNoError(t, err)
			want := func(filters ...string) []string {
				var out []string
				for _, ev := range all.all() {
					for _, f := range filters {
						if f == ev.Entity || f == ev.Entity+"."+ev.Type {
							out = append(out, fmt.Sprintf("%d %s %s %s", ev.Sequence(), ev.Entity, ev.Type, ev.Data))
						}
					}
				}
				return out
			}
			probe := newRequestProbe(t, e.nc, "$JS.API.DIRECT.GET.>")
			check := func(chained bool, filters ...string) {
				t.Helper()
				r := &recorder{}
				subjects := probe.record(t, func() {
					_, err := s.Evolve(ctx, r, rita.WithFilters(filters...))
					requireNoError(t, err)
				})
				var got []string
				for _, ev := range r.all() {
					got = append(got, fmt.Sprintf("%d %s %s %s", ev.Sequence(), ev.Entity, ev.Type, ev.Data))
				}
				if w := want(filters...); !slices.Equal(got, w) {
					t.Fatalf("Evolve %v applied %d events %v, want %d: %v", filters, len(got), got, len(w), w)
				}
				// The chain asks for the events one by one (those after the
				// first of an atomic batch in one get of the batch), the read
				// by subject with one get per event type (after a chain that
				// broke at its first step, if one was tried).
				if gets := len(subjects); chained != (gets > 4) {
					t.Fatalf("Evolve %v: %d direct gets for %d events, want the chain %v", filters, gets, len(got), chained)
				}
			}
			check(true, "order.1")
			check(true, "order.2")
			check(false, "order.1", "order.2")
			check(false, "order.1.paid") // its events expect line events
			check(false, "order.1.line") // a paid event comes in between

			// An event without an expectation breaks the chain: read by
			// subject, the same events.
			filler(600)
			appendAll(&rita.Event{Entity: "order.1", Type: "line", Data: []byte(`"y"`)})
			filler(600)
			appendAll(stamped("order.1", "line"))
			all = &recorder{}
			_, err = s.Evolve(ctx, all)
			requireNoError(t, err)
			check(false, "order.1")
			check(true, "order.2")
		})
	}
}

// An entity's chain after Forget (its events stay, their personal data
// unreadable) and after PurgeEntity (gone; the entity starts anew from an
// expectation of 0): Evolve applies what a whole-store read selects, by the
// chain where it holds.
func TestEvolveEntityChainForgetPurge(t *testing.T) {
	e := newEnv(t, encryption(t, 0))
	ctx := testCtx(t)
	s := e.store(t, "chain_forget")
	var last uint64
	round := func(events ...*rita.Event) {
		t.Helper()
		for range 2 { // 550 events of others per event of customer.1
			filler := make([]*rita.Event, 550)
			for i := range filler {
				filler[i] = ordered(fmt.Sprintf("customer.f%d", i%50))
			}
			_, err := s.Append(ctx, filler)
			requireNoError(t, err)
		}
		events[0].Expect = rita.ExpectSequence(last)
		_, err := s.Append(ctx, events)
		requireNoError(t, err)
		last = events[len(events)-1].Sequence()
	}
	key := func(ev *rita.Event) string {
		return fmt.Sprintf("%d %s %s %q %v", ev.Sequence(), ev.Entity, ev.Type, dataOf(ev), ev.Forgotten())
	}
	probe := newRequestProbe(t, e.nc, "$JS.API.DIRECT.GET.>")
	check := func(events int) {
		t.Helper()
		var want, got []string
		for _, ev := range collect(t, s) {
			if ev.Entity == "customer.1" {
				want = append(want, key(ev))
			}
		}
		subjects := probe.record(t, func() {
			for _, ev := range collect(t, s, rita.WithFilters("customer.1")) {
				got = append(got, key(ev))
			}
		})
		if !slices.Equal(got, want) || len(got) != events {
			t.Fatalf("Evolve customer.1: %v, want %d events: %v", got, events, want)
		}
		if events > 4 && len(subjects) < events/2 {
			t.Fatalf("Evolve customer.1: %d direct gets for %d events: not by the chain", len(subjects), events)
		}
	}
	round(registered("customer.1"))
	for range 4 {
		round(ordered("customer.1"), ordered("customer.1"))
	}
	check(9)
	requireNoError(t, s.Forget(ctx, "customer.1"))
	check(9)
	requireNoError(t, s.PurgeEntity(ctx, "customer.1"))
	check(0)
	last = 0
	for range 6 {
		round(ordered("customer.1"))
	}
	check(6)
}
