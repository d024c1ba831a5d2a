package rita

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/read"
	"github.com/synadia-labs/rita/internal/wire"
)

// The direct read of one entity (read.Entity, which Evolve uses for a
// filter of one entity) must give exactly the events, in order, that the
// consumer read (read.Read) gives, for every filter of one entity and every
// after and stop sequence.

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
// read (read.Read) of the same read.Source and read.Spec, the reference the
// direct read is compared with.
func consumerEvolve(ctx context.Context, s *EventStore, model Evolver, opts ...EvolveOption) (uint64, error) {
	cfg, err := begin(s, ctx, opEvolve, "model", model == nil, opts)
	if err != nil {
		return 0, err
	}
	if cfg.stop != 0 && cfg.stop <= cfg.after {
		return 0, nil
	}
	spec, err := s.readSpec(cfg.filters)
	if err != nil {
		return 0, err
	}
	spec.After, spec.Stop = cfg.after, cfg.stop
	var last uint64
	err = read.Read(ctx, s.src, spec, func(m *read.Msg) error {
		e, err := decodeEvent(context.Background(), s.m.types, nil, &m.Msg)
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

// apiRequest is a JetStream API request an apiProbe saw.
type apiRequest struct {
	subject string
	body    string
}

// apiProbe sees the JetStream API requests a store's connection makes to its
// stream: a second connection to the same server subscribes to the API
// subjects of that stream, which the server delivers to it as well as to
// the API. It tells which way a read went.
//
// It subscribes only to requests the stream answers (not to $JS.API.>):
// a subscriber to a request nobody else answers would keep the requester
// from its no-responders status, which a read relies on (a snapshot get on
// a bucket not made yet, a direct get on a stream without AllowDirect).
type apiProbe struct {
	nc, mon *nats.Conn
	ch      chan *nats.Msg
	mu      sync.Mutex
}

func newAPIProbe(t *testing.T, s *EventStore) *apiProbe {
	t.Helper()
	nc := s.m.nc
	mon, err := nats.Connect(nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mon.Close)
	p := &apiProbe{nc: nc, mon: mon, ch: make(chan *nats.Msg, 1<<16)}
	stream := s.src.Stream
	subjects := []string{
		jsapi.MsgGetSubject(stream),
		jsapi.StreamInfoSubject(stream),
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
	}
	if s.src.Direct {
		subjects = append(subjects, jsapi.DirectGetSubject(stream))
	}
	for _, subj := range subjects {
		if _, err := mon.ChanSubscribe(subj, p.ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}
	return p
}

// settle returns once every request nc has sent so far is in p.ch: the
// server has processed them (nc's flush) and delivered their copies to the
// monitor, in the order it processed them, before its answer to the
// monitor's flush; and the monitor's read loop puts a message in a channel
// subscription before it reads on.
func (p *apiProbe) settle(t *testing.T) {
	t.Helper()
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.mon.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (p *apiProbe) drain() []apiRequest {
	var reqs []apiRequest
	for {
		select {
		case m := <-p.ch:
			reqs = append(reqs, apiRequest{subject: m.Subject, body: string(m.Data)})
		default:
			return reqs
		}
	}
}

// record runs fn and returns the API requests made while it ran.
func (p *apiProbe) record(t *testing.T, fn func()) []apiRequest {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settle(t)
	p.drain()
	fn()
	p.settle(t)
	return p.drain()
}

// Which way a read of stream went, by its first request: a direct read
// begins with the leader's last message on the entity (a message get), a
// consumer read on a store of one replica with the consumer's creation.
const (
	pathNone     = "no read"
	pathDirect   = "direct"
	pathConsumer = "consumer"
)

func readPath(reqs []apiRequest, stream string) string {
	for _, r := range reqs {
		switch {
		case r.subject == jsapi.MsgGetSubject(stream):
			return pathDirect
		case strings.HasPrefix(r.subject, "$JS.API.CONSUMER.CREATE."+stream+"."):
			return pathConsumer
		}
	}
	return pathNone
}

// consumersCreated counts the consumers a read of stream created.
func consumersCreated(reqs []apiRequest, stream string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r.subject, "$JS.API.CONSUMER.CREATE."+stream+".") {
			n++
		}
	}
	return n
}

// batchGet is a direct batch get as a request body says it.
type batchGet struct {
	Seq        uint64 `json:"seq"`
	NextBySubj string `json:"next_by_subj"`
	Batch      int    `json:"batch"`
}

// batchGets returns the direct batch gets of stream among reqs, in order.
func batchGets(t *testing.T, reqs []apiRequest, stream string) []batchGet {
	t.Helper()
	var gets []batchGet
	for _, r := range reqs {
		if r.subject != jsapi.DirectGetSubject(stream) {
			continue
		}
		var g batchGet
		if err := json.Unmarshal([]byte(r.body), &g); err != nil {
			t.Fatalf("direct get %q: %v", r.body, err)
		}
		if g.Batch > 0 {
			gets = append(gets, g)
		}
	}
	return gets
}

// compareReads runs Evolve with opts, and the consumer read with the same
// options, and fails t if the events applied or the sequences returned
// differ, or if Evolve did not read with direct gets (or, with nothing
// between after and stop, read at all).
func compareReads(t *testing.T, p *apiProbe, s *EventStore, opts ...EvolveOption) {
	t.Helper()
	ctx := t.Context()
	var direct, consumer seenRecorder
	var dlast, clast uint64
	var derr, cerr error
	dreqs := p.record(t, func() { dlast, derr = s.Evolve(ctx, &direct, opts...) })
	creqs := p.record(t, func() { clast, cerr = consumerEvolve(ctx, s, &consumer, opts...) })
	if (derr == nil) != (cerr == nil) {
		t.Fatalf("direct read error %v, consumer read error %v", derr, cerr)
	}
	if dlast != clast || !slices.Equal(direct.events, consumer.events) {
		t.Fatalf("direct read returned %d and applied\n%v\nconsumer read returned %d and applied\n%v", dlast, direct.events, clast, consumer.events)
	}
	cfg, err := configure(opEvolve, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantDirect, wantConsumer := pathDirect, pathConsumer
	if cfg.stop != 0 && cfg.stop <= cfg.after {
		wantDirect, wantConsumer = pathNone, pathNone
	}
	if got := readPath(dreqs, s.src.Stream); got != wantDirect {
		t.Fatalf("Evolve read %s, want %s; requests %v", got, wantDirect, dreqs)
	}
	if got := readPath(creqs, s.src.Stream); got != wantConsumer {
		t.Fatalf("the reference read %s, want %s; requests %v", got, wantConsumer, creqs)
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
			p := newAPIProbe(t, s)
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
				for _, after := range seqs {
					for _, stop := range append([]uint64{0}, seqs...) {
						if stop != 0 && stop < after {
							continue
						}
						compareReads(t, p, s, WithFilters(f), WithAfterSequence(after), WithStopSequence(stop))
					}
				}
			}
		})
	}
}

func TestDirectReadUsedOnlyForOneEntity(t *testing.T) {
	m := newDirectTestManager(t)
	ctx := t.Context()
	s, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "which"})
	if err != nil {
		t.Fatal(err)
	}
	p := newAPIProbe(t, s)
	for _, e := range []*Event{
		{Entity: "order.1", Type: "placed", Data: []byte("a")},
		{Entity: "order.2", Type: "placed", Data: []byte("b")},
		{Entity: "order.1", Type: "paid", Data: []byte("c")},
	} {
		if _, err := s.Append(ctx, []*Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		filters []string
		direct  bool
		seqs    []uint64
	}{
		{nil, false, []uint64{1, 2, 3}},
		{[]string{"order"}, false, []uint64{1, 2, 3}},
		{[]string{"order.*"}, false, []uint64{1, 2, 3}},
		{[]string{"*.1"}, false, []uint64{1, 3}},
		{[]string{"order.>"}, false, []uint64{1, 2, 3}},
		{[]string{"*.*.placed"}, false, []uint64{1, 2}},
		{[]string{"order.1", "order.2"}, false, []uint64{1, 2, 3}},
		{[]string{"order.1"}, true, []uint64{1, 3}},
		{[]string{"order.1.placed"}, true, []uint64{1}},
		{[]string{"order.1.*"}, true, []uint64{1, 3}},
		{[]string{"order.1", "order.1.placed"}, true, []uint64{1, 3}}, // one covers the other
	} {
		var r seenRecorder
		var err error
		reqs := p.record(t, func() { _, err = s.Evolve(ctx, &r, WithFilters(tc.filters...)) })
		if err != nil {
			t.Fatalf("filters %q: %v", tc.filters, err)
		}
		want := pathConsumer
		if tc.direct {
			want = pathDirect
		}
		if got := readPath(reqs, s.src.Stream); got != want {
			t.Errorf("filters %q: read %s, want %s", tc.filters, got, want)
		}
		var got []uint64
		for _, e := range r.events {
			got = append(got, e.seq)
		}
		if !slices.Equal(got, tc.seqs) {
			t.Errorf("filters %q: read sequences %v, want %v", tc.filters, got, tc.seqs)
		}
	}
}

// directBatchMax is internal/read's directBatchMax, the most messages one
// batch get asks for; the test below checks through the requests that the
// read took more than one.
const directBatchMax = 8192

// An entity with more events than one batch get asks for is read in several.
func TestDirectReadLargeEntity(t *testing.T) {
	m := newDirectTestManager(t)
	ctx := t.Context()
	s, err := m.CreateEventStore(ctx, EventStoreConfig{Name: "large", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	p := newAPIProbe(t, s)
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
	var last uint64
	reqs := p.record(t, func() { last, err = s.Evolve(ctx, &r, WithFilters("order.1")) })
	if err != nil {
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
	if last != r.events[n-1].seq {
		t.Fatalf("Evolve returned %d, the last event read is %d", last, r.events[n-1].seq)
	}
	filter := wire.EntityPattern("large", "order.1")
	gets := batchGets(t, reqs, s.src.Stream)
	if len(gets) < 2 || consumersCreated(reqs, s.src.Stream) != 0 {
		t.Fatalf("read with %d batch gets %+v and %d consumers, want at least 2 batch gets and no consumer", len(gets), gets, consumersCreated(reqs, s.src.Stream))
	}
	for _, g := range gets {
		if g.NextBySubj != filter || g.Batch > directBatchMax {
			t.Fatalf("batch get %+v, want one on %s of at most %d", g, filter, directBatchMax)
		}
	}
	compareReads(t, p, s, WithFilters("order.1"), WithAfterSequence(5000))
	compareReads(t, p, s, WithFilters("order.1"), WithAfterSequence(100), WithStopSequence(9000))
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
	model := EvolverFunc(func(e *Event) error {
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
		Name:               wire.StreamName("plain"),
		Subjects:           []string{wire.StoreSubjects("plain")},
		AllowAtomicPublish: true,
	}); err != nil {
		t.Fatal(err)
	}
	s, err := m.GetEventStore(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	p := newAPIProbe(t, s)
	for i := range 5 {
		if _, err := s.Append(ctx, []*Event{{Entity: "order.1", Type: "line", Data: []byte(strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if s.src.Direct {
		t.Fatal("a store without AllowDirect is marked as answering direct gets")
	}
	var r seenRecorder
	var last uint64
	reqs := p.record(t, func() { last, err = s.Evolve(ctx, &r, WithFilters("order.1")) })
	if err != nil || last != 5 || len(r.events) != 5 {
		t.Fatalf("Evolve = %d, %v with %d events; want 5, nil, 5", last, err, len(r.events))
	}
	for i, e := range r.events {
		if e.seq != uint64(i+1) || e.data != strconv.Itoa(i) {
			t.Fatalf("event %d: sequence %d, data %q", i, e.seq, e.data)
		}
	}
	if got := readPath(reqs, s.src.Stream); got != pathConsumer {
		t.Fatalf("a store without AllowDirect read %s, want %s; requests %v", got, pathConsumer, reqs)
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
	p := newAPIProbe(t, s)
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
		compareReads(t, p, s, WithFilters(f))
		compareReads(t, p, s, WithFilters(f), WithStopSequence(100))
	}

	// What the leader says of an entity: its per-subject counts and its
	// last message, the two lookups a direct read starts with.
	count := func(entity string) (*jsapi.Counts, *jsapi.Msg) {
		t.Helper()
		c, err := jsapi.NewCollector(ctx, m.nc, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		filter := wire.EntityPattern("literal", entity)
		if err := c.Request(jsapi.StreamInfoSubject(s.src.Stream), "count", jsapi.CountBody(filter)); err != nil {
			t.Fatal(err)
		}
		if err := c.Request(jsapi.MsgGetSubject(s.src.Stream), "last", jsapi.LastBody(filter, false)); err != nil {
			t.Fatal(err)
		}
		answers, err := c.Gather("count", "last")
		if err != nil {
			t.Fatal(err)
		}
		counts, err := jsapi.ParseCount(answers["count"])
		if err != nil {
			t.Fatal(err)
		}
		last, err := jsapi.ParseLast(answers["last"])
		if err != nil || last == nil {
			t.Fatalf("last message of %s: %v, %v", entity, last, err)
		}
		return counts, last
	}
	c1, last1 := count("order.1")
	c2, _ := count("order.2")
	if len(c1.Subjects) != 3 || c1.Total != 60 {
		t.Fatalf("order.1: %d subjects, %d events; want 3, 60", len(c1.Subjects), c1.Total)
	}
	if len(c2.Subjects) != 12 || c2.Total != 60 {
		t.Fatalf("order.2: %d subjects, %d events; want 12, 60", len(c2.Subjects), c2.Total)
	}
	literalSubjects := func(c *jsapi.Counts) []string {
		var subjects []string
		for subj := range c.Subjects {
			subjects = append(subjects, subj)
		}
		slices.Sort(subjects)
		return subjects
	}
	// The batch gets an Evolve of an entity makes: one per subject (from
	// the start, as many as counted) when it is read subject by subject,
	// on its wildcard filter otherwise.
	gotSubjects := func(gets []batchGet) []string {
		var subjects []string
		for _, g := range gets {
			subjects = append(subjects, g.NextBySubj)
		}
		slices.Sort(subjects)
		return subjects
	}
	reqs := p.record(t, func() {
		if _, err := s.Evolve(ctx, &seenRecorder{}, WithFilters("order.1")); err != nil {
			t.Fatal(err)
		}
	})
	gets := batchGets(t, reqs, s.src.Stream)
	if got, want := gotSubjects(gets), literalSubjects(c1); !slices.Equal(got, want) {
		t.Fatalf("order.1 (3 subjects): batch gets on %q, want one on each of %q", got, want)
	}
	for _, g := range gets {
		if g.Seq != 1 || uint64(g.Batch) != c1.Subjects[g.NextBySubj] {
			t.Fatalf("order.1: batch get %+v, want from 1 for its %d messages", g, c1.Subjects[g.NextBySubj])
		}
	}
	reqs = p.record(t, func() {
		if _, err := s.Evolve(ctx, &seenRecorder{}, WithFilters("order.2")); err != nil {
			t.Fatal(err)
		}
	})
	// order.2's last event is the second of its atomic batch, without an
	// expectation of its own: the read first looks for one on the entity's
	// event before it in the batch (one get of the batch's first message,
	// by sequence: order.1's), which would let it follow the entity's
	// chain. There is none, so it reads by subject.
	gets2 := batchGets(t, reqs, s.src.Stream)
	if len(gets2) != 2 || gets2[0].NextBySubj != "" || gets2[0].Seq != last1.Seq || gets2[0].Batch != 1 {
		t.Fatalf("order.2: batch gets %+v, want first a get of sequence %d alone", gets2, last1.Seq)
	}
	if got, want := gotSubjects(gets2[1:]), []string{wire.EntityPattern("literal", "order.2")}; !slices.Equal(got, want) {
		t.Fatalf("order.2 (12 subjects): batch gets %+v, want one on %q", gets2, want)
	}

	// read runs read.Entity of order.1 with what the caller says it knows
	// (the counts and the last message) and returns the sequences it
	// delivered and the batch gets it made.
	filter1 := wire.EntityPattern("literal", "order.1")
	read1 := func(c *jsapi.Counts, last *jsapi.Msg) ([]uint64, []batchGet) {
		t.Helper()
		var seqs []uint64
		var err error
		reqs := p.record(t, func() {
			err = read.Entity(ctx, s.src, filter1, 0, 0, read.Known{Last: last, Counts: c}, func(m *read.Msg) error {
				seqs = append(seqs, m.Seq)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := consumersCreated(reqs, s.src.Stream); n != 0 {
			t.Fatalf("the direct read fell back to a consumer (%d created)", n)
		}
		return seqs, batchGets(t, reqs, s.src.Stream)
	}
	var want1 []uint64
	for i := range 60 {
		want1 = append(want1, uint64(3*i+1)) // order.1 is the first of each append of 3
	}
	if last1.Seq != want1[59] {
		t.Fatalf("order.1's last message is %d, want %d", last1.Seq, want1[59])
	}
	seqs, gets := read1(c1, last1)
	if !slices.Equal(seqs, want1) || !slices.Equal(gotSubjects(gets), literalSubjects(c1)) {
		t.Fatalf("read by subject: sequences %v, batch gets %+v", seqs, gets)
	}
	// Counts or a bound that do not add up: the subject-by-subject read
	// delivers nothing, and the wildcard read that follows starts from the
	// beginning and delivers each event once, up to the bound.
	wildcardFromStart := func(gets []batchGet) bool {
		for _, g := range gets {
			if g.NextBySubj == filter1 {
				return g.Seq == 1
			}
		}
		return false
	}
	wrong := &jsapi.Counts{Total: c1.Total + 1, Subjects: c1.Subjects}
	seqs, gets = read1(wrong, last1)
	if !slices.Equal(seqs, want1) || !wildcardFromStart(gets) {
		t.Fatalf("with a wrong count: sequences %v, batch gets %+v", seqs, gets)
	}
	early := *last1
	early.Seq--
	seqs, gets = read1(c1, &early)
	if !slices.Equal(seqs, want1[:59]) || !wildcardFromStart(gets) {
		t.Fatalf("with a wrong last sequence: sequences %v, batch gets %+v", seqs, gets)
	}
}
