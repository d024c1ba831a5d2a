package read_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"pgregory.net/rapid"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// chainStore is an event store whose entities' events are appended by rita
// with the expectations Model.Decide stamps (the first event of each entity
// in an Append expects the entity's last sequence), or without, and what
// the test knows of it.
type chainStore struct {
	name   string
	s      *rita.EventStore
	src    *read.Source
	stream jetstream.Stream
	seqs   map[string][]uint64 // each entity's events still stored
}

// startChainServer starts an embedded server and connects to it.
func startChainServer(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := embedded.Start(t.Context(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newChainStore creates the store name on nc, in storage.
func newChainStore(t tb, nc *nats.Conn, name string, storage jetstream.StorageType) *chainStore {
	t.Helper()
	ctx := context.Background()
	m, err := rita.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: name, Storage: storage})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, wire.StreamName(name))
	if err != nil {
		t.Fatal(err)
	}
	info := stream.CachedInfo()
	src := &read.Source{
		NC:         nc,
		JS:         js,
		Stream:     wire.StreamName(name),
		Replicated: info.Config.Replicas > 1,
		Direct:     info.Config.AllowDirect,
		Memory:     info.Config.Storage == jetstream.MemoryStorage,
	}
	if !src.Direct {
		t.Fatal("the store does not answer direct gets; the chain needs them")
	}
	return &chainStore{name: name, s: s, src: src, stream: stream, seqs: map[string][]uint64{}}
}

// last is the sequence of entity's last stored event; 0 if none.
func (cs *chainStore) last(entity string) uint64 {
	if s := cs.seqs[entity]; len(s) > 0 {
		return s[len(s)-1]
	}
	return 0
}

// spec is one event to append: its entity and type, and whether the
// Append stamps it (if it is the entity's first in the Append).
type spec struct {
	entity, typ string
	expect      bool
}

// add appends one Append of events (an atomic batch if several), stamped as
// Model.Decide stamps them where asked to be.
func (cs *chainStore) add(t tb, specs ...spec) {
	t.Helper()
	events := make([]*rita.Event, len(specs))
	seen := map[string]bool{}
	for i, sp := range specs {
		typ := sp.typ
		if typ == "" {
			typ = "line"
		}
		events[i] = &rita.Event{Entity: sp.entity, Type: typ, Data: []byte("x")}
		if sp.expect && !seen[sp.entity] {
			events[i].Expect = rita.ExpectSequence(cs.last(sp.entity))
		}
		seen[sp.entity] = true
	}
	if _, err := cs.s.Append(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		cs.seqs[e.Entity] = append(cs.seqs[e.Entity], e.Sequence())
	}
}

// del deletes the stored message seq of entity.
func (cs *chainStore) del(t tb, entity string, seq uint64) {
	t.Helper()
	if err := cs.stream.DeleteMsg(context.Background(), seq); err != nil {
		t.Fatal(err)
	}
	cs.seqs[entity] = slices.DeleteFunc(cs.seqs[entity], func(s uint64) bool { return s == seq })
}

// purge purges entity.
func (cs *chainStore) purge(t tb, entity string) {
	t.Helper()
	if err := cs.s.PurgeEntity(context.Background(), entity); err != nil {
		t.Fatal(err)
	}
	delete(cs.seqs, entity)
}

// reads returns what a consumer, Entity and the chain alone read of
// pattern, as sequences and subjects, and whether the chain held.
func (cs *chainStore) reads(t tb, pattern string) (consumer, direct, chain []string, held bool) {
	t.Helper()
	ctx := context.Background()
	key := func(m *jsapi.Msg) string { return fmt.Sprintf("%d %s %s", m.Seq, m.Subject, m.Data) }
	err := read.Read(ctx, cs.src, &read.Spec{Subjects: []string{pattern}}, func(m *read.Msg) error {
		consumer = append(consumer, key(&m.Msg))
		return nil
	})
	if err != nil {
		t.Fatalf("consumer read of %s: %v", pattern, err)
	}
	err = read.Entity(ctx, cs.src, pattern, 0, 0, read.Known{}, func(m *read.Msg) error {
		direct = append(direct, key(&m.Msg))
		return nil
	})
	if err != nil {
		t.Fatalf("direct read of %s: %v", pattern, err)
	}
	msgs, held, err := read.ChainEntity(ctx, cs.src, pattern)
	if err != nil {
		t.Fatalf("chain of %s: %v", pattern, err)
	}
	for i := range msgs {
		chain = append(chain, key(&msgs[i]))
	}
	return consumer, direct, chain, held
}

// check reads entity (or, with typ, its events of that type) each way:
// all must read what the test knows is stored, and the chain hold or not
// as said.
func (cs *chainStore) check(t tb, entity, typ string, holds bool) {
	t.Helper()
	pattern := wire.EntityPattern(cs.name, entity)
	if typ != "" {
		pattern = wire.SubjectPrefix + cs.name + "." + entity + "." + typ
	}
	consumer, direct, chain, held := cs.reads(t, pattern)
	var want []string
	if typ == "" {
		for _, seq := range cs.seqs[entity] {
			want = append(want, fmt.Sprint(seq))
		}
		if len(consumer) != len(want) {
			t.Fatalf("%s: consumer read %d events %v, want %d: %v", entity, len(consumer), consumer, len(want), want)
		}
		for i := range want {
			if got := fmt.Sprint(seqOf(consumer[i])); got != want[i] {
				t.Fatalf("%s: consumer read %v, want sequences %v", entity, consumer, want)
			}
		}
	}
	if !slices.Equal(direct, consumer) {
		t.Fatalf("%s: Entity read %v, consumer %v", pattern, direct, consumer)
	}
	if held != holds {
		t.Fatalf("%s: chain held %v, want %v (read %v)", pattern, held, holds, chain)
	}
	if held && !slices.Equal(chain, consumer) {
		t.Fatalf("%s: chain read %v, consumer %v", pattern, chain, consumer)
	}
}

func seqOf(key string) uint64 {
	var seq uint64
	fmt.Sscan(key, &seq)
	return seq
}

// An entity is read by its chain of expectations when it holds, through
// atomic batches of the entity and of several entities, and not when it
// breaks (an event appended without Expect, a deleted event, a filter of
// one event type whose events expect those of another); either way Entity
// reads what a consumer reads. In file and memory storage.
func TestEntityChain(t *testing.T) {
	nc := startChainServer(t)
	for _, storage := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		t.Run(storage.String(), func(t *testing.T) {
			cs := newChainStore(t, nc, "chain_"+storage.String(), storage)
			e := func(entity string) spec { return spec{entity: entity, expect: true} }

			// Single events, interleaved with other entities'.
			for range 5 {
				cs.add(t, e("order.1"))
				cs.add(t, e("order.2"))
				cs.add(t, e("order.3"), e("order.9"))
			}
			cs.check(t, "order.1", "", true)
			cs.check(t, "order.2", "", true)
			cs.check(t, "order.nothing", "", true)

			// Atomic batches of one entity, and of several.
			cs.add(t, e("order.1"), e("order.1"), e("order.1"))
			cs.add(t, e("order.2"), e("order.1"), e("order.2"), e("order.3"), e("order.1"))
			cs.add(t, e("order.3"), e("order.3"))
			for _, entity := range []string{"order.1", "order.2", "order.3", "order.9"} {
				cs.check(t, entity, "", true)
			}

			// An event without an expectation breaks the chain, for good.
			cs.add(t, e("order.2"), spec{entity: "order.1"})
			cs.check(t, "order.1", "", false)
			cs.add(t, e("order.1"))
			cs.check(t, "order.1", "", false)
			cs.check(t, "order.2", "", true)
			// So does one that is the entity's first in a batch.
			cs.add(t, spec{entity: "order.3"}, e("order.3"))
			cs.check(t, "order.3", "", false)

			// A deleted event breaks it; deleting the last leaves the rest.
			for range 4 {
				cs.add(t, e("order.4"), e("order.9"))
			}
			cs.del(t, "order.4", cs.last("order.4"))
			cs.check(t, "order.4", "", true)
			cs.del(t, "order.4", cs.seqs["order.4"][1])
			cs.check(t, "order.4", "", false)
			// A deleted event of another entity inside a batch breaks the
			// walk through the batch.
			cs.add(t, e("order.5"), e("order.6"), e("order.5"))
			cs.check(t, "order.5", "", true)
			cs.del(t, "order.6", cs.last("order.6"))
			cs.check(t, "order.5", "", false)

			// An entity's event deep in a large batch (an import) is not
			// worth the get of the batch: read by subject.
			big := []spec{e("order.10")}
			for range 70 {
				big = append(big, e("order.9"))
			}
			cs.add(t, append(big, e("order.10"))...)
			cs.check(t, "order.10", "", false)
			cs.check(t, "order.9", "", false)

			// A purged entity starts anew, from an expectation of 0.
			cs.add(t, e("order.7"), e("order.9"))
			cs.add(t, e("order.7"))
			cs.purge(t, "order.7")
			cs.check(t, "order.7", "", true)
			cs.add(t, e("order.7"))
			cs.add(t, e("order.9"), e("order.7"))
			cs.check(t, "order.7", "", true)

			// One event type of an entity: its chain holds only while its
			// events expect events of the same type.
			cs.add(t, spec{entity: "order.8", typ: "a", expect: true})
			cs.add(t, spec{entity: "order.8", typ: "a", expect: true})
			cs.check(t, "order.8", "a", true)
			cs.add(t, spec{entity: "order.8", typ: "b", expect: true})
			cs.add(t, spec{entity: "order.8", typ: "a", expect: true})
			cs.check(t, "order.8", "a", false)
			cs.check(t, "order.8", "b", false)
			cs.check(t, "order.8", "", true)
		})
	}
}

// On random histories (single events and atomic batches of several
// entities, mostly stamped, some not; deleted events; purged entities),
// Entity reads what a consumer reads, and the chain, where it holds, reads
// the same. Without deletes and purges it holds exactly for the entities
// whose every event was stamped.
func TestEntityChainProperty(t *testing.T) {
	nc := startChainServer(t)
	stores := []*chainStore{
		newChainStore(t, nc, "prop_file", jetstream.FileStorage),
		newChainStore(t, nc, "prop_memory", jetstream.MemoryStorage),
	}
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		// Each check has entities of its own, in one of the stores.
		n++
		cs := rapid.SampledFrom(stores).Draw(rt, "store")
		cs.seqs = map[string][]uint64{}
		entities := []string{fmt.Sprintf("c%d.1", n), fmt.Sprintf("c%d.2", n), fmt.Sprintf("c%d.3", n)}
		stamped := map[string]bool{}
		for _, e := range entities {
			stamped[e] = true
		}
		removed := false
		single := map[uint64]string{} // events appended alone: which may be deleted
		steps := rapid.IntRange(1, 30).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 19).Draw(rt, "op"); {
			case op < 16:
				k := rapid.IntRange(1, 4).Draw(rt, "events")
				specs := make([]spec, k)
				for i := range specs {
					specs[i] = spec{
						entity: rapid.SampledFrom(entities).Draw(rt, "entity"),
						typ:    rapid.SampledFrom([]string{"a", "b"}).Draw(rt, "type"),
						expect: rapid.IntRange(0, 9).Draw(rt, "expect") > 0,
					}
				}
				seen := map[string]bool{}
				for _, sp := range specs {
					if !seen[sp.entity] && !sp.expect {
						stamped[sp.entity] = false
					}
					seen[sp.entity] = true
				}
				cs.add(rt, specs...)
				if k == 1 {
					single[cs.last(specs[0].entity)] = specs[0].entity
				}
			case op < 18:
				if len(single) == 0 {
					continue
				}
				seqs := make([]uint64, 0, len(single))
				for seq := range single {
					seqs = append(seqs, seq)
				}
				slices.Sort(seqs)
				seq := rapid.SampledFrom(seqs).Draw(rt, "delete")
				cs.del(rt, single[seq], seq)
				delete(single, seq)
				removed = true
			default:
				entity := rapid.SampledFrom(entities).Draw(rt, "purge")
				cs.purge(rt, entity)
				for seq, e := range single {
					if e == entity {
						delete(single, seq)
					}
				}
				removed = true
			}
		}
		for _, entity := range entities {
			pattern := wire.EntityPattern(cs.name, entity)
			consumer, direct, chain, held := cs.reads(rt, pattern)
			if len(consumer) != len(cs.seqs[entity]) {
				rt.Fatalf("%s: consumer read %v, want sequences %v", entity, consumer, cs.seqs[entity])
			}
			if !slices.Equal(direct, consumer) {
				rt.Fatalf("%s: Entity read %v, consumer %v", entity, direct, consumer)
			}
			if held && !slices.Equal(chain, consumer) {
				rt.Fatalf("%s: chain read %v, consumer %v", entity, chain, consumer)
			}
			if !removed && held != stamped[entity] {
				rt.Fatalf("%s: chain held %v, every event stamped %v", entity, held, stamped[entity])
			}
			for _, typ := range []string{"a", "b"} {
				consumer, direct, chain, held := cs.reads(rt, pattern[:len(pattern)-1]+typ)
				if !slices.Equal(direct, consumer) || held && !slices.Equal(chain, consumer) {
					rt.Fatalf("%s.%s: consumer %v, Entity %v, chain (held %v) %v", entity, typ, consumer, direct, held, chain)
				}
			}
		}
	})
}
