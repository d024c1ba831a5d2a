package rita

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The direct read must give exactly the events, in order, that the consumer
// read gives, for every filter of one entity and every after and stop
// sequence.

// seenEvent is what the comparisons look at of an applied event.
type seenEvent struct {
	seq    uint64
	id     string
	entity string
	typ    string
	data   string
	meta   string
	time   time.Time
}

func (e seenEvent) String() string { return fmt.Sprintf("%d %s %s %s", e.seq, e.entity, e.typ, e.id) }

type seenRecorder struct{ events []seenEvent }

func (r *seenRecorder) Evolve(e *Event) error {
	r.events = append(r.events, seenEvent{
		seq: e.Sequence(), id: e.ID, entity: e.Entity, typ: e.Type,
		data: string(e.Data.([]byte)), meta: fmt.Sprint(e.Meta), time: e.Time,
	})
	return nil
}

// consumerEvolve is Evolve as it reads without direct gets: the consumer
// read, the reference the direct read is compared with.
func consumerEvolve(ctx context.Context, s *EventStore, model Evolver, opts ...EvolveOption) (uint64, error) {
	cfg, err := newEvolveConfig(opts)
	if err != nil {
		return 0, err
	}
	if cfg.stopSeq != 0 && cfg.stopSeq == cfg.afterSeq {
		return 0, nil
	}
	subjects, match, err := s.selectSubjects(cfg.filters)
	if err != nil {
		return 0, err
	}
	var last uint64
	spec := readSpec{subjects: subjects, match: match, afterSeq: cfg.afterSeq, stopSeq: cfg.stopSeq}
	err = s.read(ctx, spec, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
		e, err := decodeEvent(s.m.types, msg.Subject(), msg.Headers(), msg.Data(), md.Sequence.Stream, md.Timestamp)
		if err != nil {
			return err
		}
		if err := model.Evolve(e); err != nil {
			return err
		}
		last = e.sequence
		return nil
	})
	return last, err
}

func newDirectTestManager(t *testing.T) *Manager {
	t.Helper()
	nc := internalTestConn(t)
	m, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// compareReads runs Evolve with opts both ways and fails t if the events
// applied or the sequences returned differ.
func compareReads(t *testing.T, s *EventStore, opts ...EvolveOption) {
	t.Helper()
	ctx := t.Context()
	var direct, consumer seenRecorder
	dlast, derr := s.Evolve(ctx, &direct, opts...)
	clast, cerr := consumerEvolve(ctx, s, &consumer, opts...)
	if (derr == nil) != (cerr == nil) {
		t.Fatalf("direct read error %v, consumer read error %v", derr, cerr)
	}
	if dlast != clast || !slices.Equal(direct.events, consumer.events) {
		t.Fatalf("direct read returned %d and applied\n%v\nconsumer read returned %d and applied\n%v", dlast, direct.events, clast, consumer.events)
	}
}

func TestDirectReadMatchesConsumerRead(t *testing.T) {
	m := newDirectTestManager(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 42))
	for _, storage := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		t.Run(storage.String(), func(t *testing.T) {
			s, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "cmp_" + storage.String(), Storage: storage})
			if err != nil {
				t.Fatal(err)
			}
			entities := []string{"order.1", "order.2", "order.3", "customer.1", "customer.x-y"}
			types := []string{"placed", "paid", "shipped"}
			perEntity := map[string][]uint64{}
			for len(perEntity["order.1"]) < 60 {
				n := 1 + rng.IntN(4)
				events := make([]*Event, n)
				for i := range events {
					events[i] = &Event{
						Entity: entities[rng.IntN(len(entities))],
						Type:   types[rng.IntN(len(types))],
						Data:   []byte(strconv.Itoa(rng.IntN(1000))),
						Meta:   map[string]string{"k": strconv.Itoa(i)},
					}
				}
				if _, err := s.Append(ctx, events); err != nil {
					t.Fatal(err)
				}
				for _, e := range events {
					perEntity[e.Entity] = append(perEntity[e.Entity], e.Sequence())
				}
			}
			// Holes: delete some events of order.1, including its first.
			for _, i := range []int{0, 7, 8, 30} {
				if err := s.stream.DeleteMsg(ctx, perEntity["order.1"][i]); err != nil {
					t.Fatal(err)
				}
			}
			info, err := s.stream.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			end := info.State.LastSeq
			o1 := perEntity["order.1"]
			seqs := []uint64{0, 1, o1[0], o1[1], o1[7], o1[8], o1[20] - 1, o1[20], o1[20] + 1, o1[len(o1)-1] - 1, o1[len(o1)-1], end, end + 10}
			filters := []string{"order.1", "order.1.paid", "order.2", "customer.x-y", "customer.x-y.placed", "order.9", "order.1.*"}
			for _, f := range filters {
				if !s.useDirect(readSpec{subjects: mustSubjects(t, s, f)}) {
					t.Fatalf("filter %q does not read with direct gets", f)
				}
				for _, after := range seqs {
					for _, stop := range append([]uint64{0}, seqs...) {
						if stop != 0 && stop < after {
							continue
						}
						compareReads(t, s, WithFilters(f), WithAfterSequence(after), WithStopSequence(stop))
					}
				}
			}
		})
	}
}

func mustSubjects(t *testing.T, s *EventStore, filter string) []string {
	t.Helper()
	subjects, _, err := s.selectSubjects([]string{filter})
	if err != nil {
		t.Fatal(err)
	}
	return subjects
}

func TestDirectReadUsedOnlyForOneEntity(t *testing.T) {
	m := newDirectTestManager(t)
	s, err := m.CreateEventStore(t.Context(), EventStoreConfig{Name: "which"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filters []string
		direct  bool
	}{
		{nil, false},
		{[]string{"order"}, false},
		{[]string{"order.*"}, false},
		{[]string{"*.1"}, false},
		{[]string{"order.>"}, false},
		{[]string{"*.*.placed"}, false},
		{[]string{"order.1", "order.2"}, false},
		{[]string{"order.1"}, true},
		{[]string{"order.1.placed"}, true},
		{[]string{"order.1.*"}, true},
		{[]string{"order.1", "order.1.placed"}, true}, // one covers the other
	} {
		subjects, match, err := s.selectSubjects(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.useDirect(readSpec{subjects: subjects, match: match}); got != tc.direct {
			t.Errorf("filters %q: direct read %v, want %v", tc.filters, got, tc.direct)
		}
	}
}

// An entity with more events than one batch get asks for is read in several.
func TestDirectReadLargeEntity(t *testing.T) {
	m := newDirectTestManager(t)
	ctx := t.Context()
	s, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "large", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	const n = directBatchMax + 1500
	var batch []*Event
	for i := range n {
		batch = append(batch, &Event{Entity: "order.1", Type: "line", Data: []byte(strconv.Itoa(i))})
		if i%3 == 0 {
			batch = append(batch, &Event{Entity: "order.2", Type: "line", Data: []byte("x")})
		}
		if len(batch) >= MaxBatchSize-1 || i == n-1 {
			if _, err := s.Append(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	var r seenRecorder
	if _, err := s.Evolve(ctx, &r, WithFilters("order.1")); err != nil {
		t.Fatal(err)
	}
	if len(r.events) != n {
		t.Fatalf("read %d events, want %d", len(r.events), n)
	}
	for i, e := range r.events {
		if e.data != strconv.Itoa(i) {
			t.Fatalf("event %d has data %q", i, e.data)
		}
	}
	compareReads(t, s, WithFilters("order.1"), WithAfterSequence(5000))
	compareReads(t, s, WithFilters("order.1"), WithAfterSequence(100), WithStopSequence(9000))
}

// Events appended while a direct read runs are not applied.
func TestDirectReadIgnoresConcurrentAppends(t *testing.T) {
	m := newDirectTestManager(t)
	ctx := t.Context()
	s, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "live"})
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for i := range 50 {
		want, err = s.Append(ctx, []*Event{{Entity: "order.1", Type: "line", Data: []byte(strconv.Itoa(i))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	applied := 0
	model := evolverFunc(func(e *Event) error {
		applied++
		if applied == 1 || applied == 50 {
			_, err := s.Append(context.Background(), []*Event{{Entity: "order.1", Type: "line", Data: []byte("late")}})
			return err
		}
		return nil
	})
	last, err := s.Evolve(ctx, model, WithFilters("order.1"))
	if err != nil {
		t.Fatal(err)
	}
	if applied != 50 || last != want {
		t.Fatalf("applied %d up to %d, want 50 up to %d", applied, last, want)
	}
}

// A store whose stream does not allow direct gets (one made by hand, or by
// another tool) is read with a consumer.
func TestDirectReadFallsBackWithoutAllowDirect(t *testing.T) {
	m := newDirectTestManager(t)
	ctx := t.Context()
	if _, err := m.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:               streamName("plain"),
		Subjects:           []string{storeSubjects("plain")},
		AllowAtomicPublish: true,
	}); err != nil {
		t.Fatal(err)
	}
	s, err := m.GetEventStore(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Append(ctx, []*Event{{Entity: "order.1", Type: "line", Data: []byte(strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if s.useDirect(readSpec{subjects: mustSubjects(t, s, "order.1")}) {
		t.Fatal("a store without AllowDirect reads with direct gets")
	}
	var r seenRecorder
	last, err := s.Evolve(ctx, &r, WithFilters("order.1"))
	if err != nil || last != 5 || len(r.events) != 5 {
		t.Fatalf("Evolve = %d, %v with %d events; want 5, nil, 5", last, err, len(r.events))
	}
}

// An entity is read subject by subject when it has few event types, with
// its wildcard filter otherwise; either way the events are the consumer's.
func TestDirectReadLiteral(t *testing.T) {
	m := newDirectTestManager(t)
	ctx := t.Context()
	s, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "literal"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		events := []*Event{
			{Entity: "order.1", Type: "t" + strconv.Itoa(i%3), Data: []byte(strconv.Itoa(i))},
			{Entity: "order.2", Type: "t" + strconv.Itoa(i%12), Data: []byte(strconv.Itoa(i))},
			{Entity: "order.3", Type: "t0", Data: []byte(strconv.Itoa(i))},
		}
		if _, err := s.Append(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"order.1", "order.2", "order.3", "order.1.t1", "order.4"} {
		compareReads(t, s, WithFilters(f))
		compareReads(t, s, WithFilters(f), WithStopSequence(100))
	}

	count := func(entity string) (*subjectCounts, uint64) {
		t.Helper()
		r, err := s.newDirectReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		filter := entityPattern("literal", entity)
		if err := r.countRequest(filter); err != nil {
			t.Fatal(err)
		}
		if err := r.lastRequest(filter); err != nil {
			t.Fatal(err)
		}
		var c *subjectCounts
		var last uint64
		for range 2 {
			msg, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(msg.Subject, ".count") {
				c, err = parseCount("literal", msg)
			} else {
				var m *directMsg
				m, err = parseLast("literal", msg)
				last = m.seq
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return c, last
	}
	c1, last1 := count("order.1")
	c2, _ := count("order.2")
	if !useLiteral(c1) || len(c1.subjects) != 3 || c1.total != 60 {
		t.Fatalf("order.1: %d subjects, %d events; read by subject %v", len(c1.subjects), c1.total, useLiteral(c1))
	}
	if useLiteral(c2) {
		t.Fatalf("order.2 has %d subjects and is read by subject", len(c2.subjects))
	}

	read := func(c *subjectCounts, last uint64) (bool, int) {
		t.Helper()
		r, err := s.newDirectReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		n := 0
		done, err := s.readLiteral(r, c, last, func(directMsg) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return done, n
	}
	if done, n := read(c1, last1); !done || n != 60 {
		t.Fatalf("read by subject: done %v with %d events", done, n)
	}
	// Counts or a bound that do not add up: nothing is delivered.
	wrong := &subjectCounts{total: c1.total + 1, subjects: c1.subjects}
	if done, n := read(wrong, last1); done || n != 0 {
		t.Fatalf("with a wrong count: done %v with %d events", done, n)
	}
	if done, n := read(c1, last1-1); done || n != 0 {
		t.Fatalf("with a wrong last sequence: done %v with %d events", done, n)
	}
}
