package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// Pair 5: loading one entity, order.42, from the prebuilt stores, where its
// 100 events are spread over the whole store.

const loadEntity = 42

// BenchmarkLoadEntity is pair 5: Evolve with WithFilters("order.42") against
// the fastest raw read of the same events found (a direct batch get, see
// BenchmarkLoadEntityOptions for the others).
func BenchmarkLoadEntity(b *testing.B) {
	for _, be := range backends(b) {
		for _, st := range storages {
			for _, size := range be.sizes() {
				b.Run(fmt.Sprintf("%sstorage=%s/events=%s", be.prefix, st.name, sizeName(size)), func(b *testing.B) {
					f := be.fixture(b, st.typ, size, shapeOrders)
					// Untimed loads first: with benchtime 1s, a cold 1M
					// file store's first load (about a second) would be
					// the only one measured on the side that runs first.
					warm(b, f)
					pair(b, func(b *testing.B) {
						loadLib(b, f)
					}, func(b *testing.B) {
						loadRaw(b, f, rawBatchGetLoad)
					})
				})
			}
		}
	}
}

// BenchmarkLoadEntitySnapshot loads the same entity with WithSnapshot, from
// a snapshot taken at its last event (tail=0: the snapshot is current), or
// 1 or 10 events before it; the events after the snapshot are found by
// following the expectations they carry.
func BenchmarkLoadEntitySnapshot(b *testing.B) {
	for _, st := range storages {
		for _, size := range the.sizes() {
			for _, tail := range []int{0, 1, 10} {
				b.Run(fmt.Sprintf("storage=%s/events=%s/tail=%d", st.name, sizeName(size), tail), func(b *testing.B) {
					f := getFixture(b, st.typ, size)
					cfg := rita.SnapshotConfig{Name: "bench-tail" + strconv.Itoa(tail), Version: "1"}
					seqs := f.entitySeqs(loadEntity)
					at := seqs[len(seqs)-1-tail]
					ctx := context.Background()
					m := manager(b, the.connect(b))
					s, err := m.GetEventStore(ctx, f.name)
					if err != nil {
						b.Fatal(err)
					}
					base := &libOrder{}
					entity := "order." + strconv.Itoa(loadEntity)
					if _, err := s.Evolve(ctx, base, rita.WithFilters(entity), rita.WithStopSequence(at)); err != nil {
						b.Fatal(err)
					}
					if err := s.SaveSnapshot(ctx, base, entity, at, cfg); err != nil {
						b.Fatal(err)
					}
					loadLib(b, f, rita.WithSnapshot(cfg))
				})
			}
		}
	}
}

// loadLib loads the entity with Evolve and the given options.
func loadLib(b *testing.B, f *fixture, opts ...rita.EvolveOption) {
	ctx := context.Background()
	m := manager(b, f.be.connect(b))
	s, err := m.GetEventStore(ctx, f.name)
	if err != nil {
		b.Fatal(err)
	}
	opts = append([]rita.EvolveOption{rita.WithFilters("order." + strconv.Itoa(loadEntity))}, opts...)
	want := f.entitySeqs(loadEntity)
	var lat latencies
	b.ReportAllocs()
	for b.Loop() {
		o := &libOrder{}
		start := time.Now()
		last, err := s.Evolve(ctx, o, opts...)
		lat.add(time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if last != want[len(want)-1] || o.Last != last || o.Events != len(want) {
			b.Fatalf("loaded %d events up to %d (model at %d), want %d up to %d", o.Events, last, o.Last, len(want), want[len(want)-1])
		}
	}
	lat.report(b, "")
}

// rawLoader reads every event of order n of the fixture into o.
type rawLoader func(ctx context.Context, c *rawClient, n int, o *Order) error

// rawClient is what the raw loaders work with.
type rawClient struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	f      *fixture
}

func loadRaw(b *testing.B, f *fixture, load rawLoader) {
	ctx := context.Background()
	nc := f.be.connect(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	stream, err := js.Stream(ctx, "ES_"+f.name)
	if err != nil {
		b.Fatal(err)
	}
	c := &rawClient{nc: nc, js: js, stream: stream, f: f}
	want := f.entitySeqs(loadEntity)
	var lat latencies
	b.ReportAllocs()
	for b.Loop() {
		o := &Order{}
		start := time.Now()
		err := load(ctx, c, loadEntity, o)
		lat.add(time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if o.Events != len(want) || o.Last != want[len(want)-1] {
			b.Fatalf("read %d events up to %d, want %d up to %d", o.Events, o.Last, len(want), want[len(want)-1])
		}
	}
	lat.report(b, "")
}

func entitySubject(f *fixture, n int) string {
	return "$ES." + f.name + ".order." + strconv.Itoa(n)
}

// directGet sends one direct get request for the stream and calls fn with
// each message of the answer, up to the end-of-batch marker (for a batch)
// or the one message (otherwise). A 404 answer is no message.
func directGet(ctx context.Context, nc *nats.Conn, stream string, req map[string]any, fn func(*nats.Msg) error) error {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return err
	}
	_, batch := req["batch"]
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return err
		}
		if len(msg.Data) == 0 {
			switch msg.Header.Get("Status") {
			case "":
			case "204", "404":
				return nil
			default:
				return fmt.Errorf("direct get: %s %s", msg.Header.Get("Status"), msg.Header.Get("Description"))
			}
		}
		if err := fn(msg); err != nil {
			return err
		}
		if !batch {
			return nil
		}
	}
}

// applyDirect applies a direct get answer to o.
func applyDirect(o *Order, msg *nats.Msg) error {
	v, err := rawDecode(msg.Header, msg.Data)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return err
	}
	o.Last = seq
	return o.apply(v)
}

// rawBatchGetLoad reads the entity with one direct batch get over its
// subjects: the fastest raw read measured.
func rawBatchGetLoad(ctx context.Context, c *rawClient, n int, o *Order) error {
	req := map[string]any{"next_by_subj": entitySubject(c.f, n) + ".*", "batch": 1 << 20}
	return directGet(ctx, c.nc, "ES_"+c.f.name, req, func(m *nats.Msg) error { return applyDirect(o, m) })
}

// rawConsumerLoad reads the entity with an ordered consumer.
func rawConsumerLoad(ctx context.Context, c *rawClient, n int, o *Order) error {
	return rawOrderedRead(ctx, c.js, c.stream, []string{entitySubject(c.f, n) + ".*"}, o)
}

// rawConsumerLiteralLoad reads the entity with an ordered consumer filtered
// on the literal subject of each event type instead of a wildcard.
func rawConsumerLiteralLoad(ctx context.Context, c *rawClient, n int, o *Order) error {
	subs := make([]string, 0, len(eventTypes))
	for _, t := range eventTypes {
		subs = append(subs, entitySubject(c.f, n)+"."+t)
	}
	return rawOrderedRead(ctx, c.js, c.stream, subs, o)
}

// rawBatchGetLiteralLoad reads the entity with one direct batch get per
// event type (literal subjects), in parallel, and applies the events in
// stream order.
func rawBatchGetLiteralLoad(ctx context.Context, c *rawClient, n int, o *Order) error {
	type got struct {
		msgs []*nats.Msg
		err  error
	}
	results := make(chan got, len(eventTypes))
	for _, t := range eventTypes {
		go func() {
			var g got
			req := map[string]any{"next_by_subj": entitySubject(c.f, n) + "." + t, "batch": 1 << 20}
			g.err = directGet(ctx, c.nc, "ES_"+c.f.name, req, func(m *nats.Msg) error {
				g.msgs = append(g.msgs, m)
				return nil
			})
			results <- g
		}()
	}
	var all []*nats.Msg
	for range eventTypes {
		g := <-results
		if g.err != nil {
			return g.err
		}
		all = append(all, g.msgs...)
	}
	seqOf := func(m *nats.Msg) uint64 {
		s, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		return s
	}
	sortMsgs(all, seqOf)
	for _, m := range all {
		if err := applyDirect(o, m); err != nil {
			return err
		}
	}
	return nil
}

// rawBoundedLoad first looks up, in flight together, the entity's last
// sequence and its number of events (both indexed by the server), then asks
// for exactly that many events from the start: the read stops at the
// entity's last event instead of walking on to the end of the store. (What
// Evolve of one entity does.)
func rawBoundedLoad(ctx context.Context, c *rawClient, n int, o *Order) error {
	filter := entitySubject(c.f, n) + ".*"
	stream := "ES_" + c.f.name
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest("$JS.API.STREAM.MSG.GET."+stream, inbox+".last", []byte(`{"last_by_subj":"`+filter+`"}`)); err != nil {
		return err
	}
	if err := c.nc.PublishRequest("$JS.API.STREAM.INFO."+stream, inbox+".count", []byte(`{"subjects_filter":"`+filter+`"}`)); err != nil {
		return err
	}
	var last, count uint64
	for range 2 {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return err
		}
		if m.Subject == inbox+".last" {
			var resp struct {
				Message struct {
					Seq uint64 `json:"seq"`
				} `json:"message"`
			}
			if err := json.Unmarshal(m.Data, &resp); err != nil {
				return err
			}
			last = resp.Message.Seq
			continue
		}
		var resp struct {
			State struct {
				Subjects map[string]uint64 `json:"subjects"`
			} `json:"state"`
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return err
		}
		for _, c := range resp.State.Subjects {
			count += c
		}
	}
	req := map[string]any{"seq": 1, "next_by_subj": filter, "batch": count}
	return directGet(ctx, c.nc, stream, req, func(m *nats.Msg) error {
		if err := applyDirect(o, m); err != nil {
			return err
		}
		if o.Last > last {
			return fmt.Errorf("read %d, after the last %d", o.Last, last)
		}
		return nil
	})
}

// rawKnownSeqsLoad gets each event by its sequence, all requests in flight
// at once: what a read costs when the sequences are known beforehand (an
// index the server does not have). A lower bound, not a way to load.
func rawKnownSeqsLoad(ctx context.Context, c *rawClient, n int, o *Order) error {
	seqs := c.f.entitySeqs(n)
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	for _, s := range seqs {
		if err := c.nc.PublishRequest("$JS.API.DIRECT.GET.ES_"+c.f.name, inbox, []byte(`{"seq":`+strconv.FormatUint(s, 10)+`}`)); err != nil {
			return err
		}
	}
	msgs := make([]*nats.Msg, 0, len(seqs))
	for range seqs {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	sortMsgs(msgs, func(m *nats.Msg) uint64 {
		s, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		return s
	})
	for _, m := range msgs {
		if err := applyDirect(o, m); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkLoadEntityOptions measures each way of loading one entity the
// issue lists, raw, on the same stores: figures for BENCHMARKS.md, not
// pairs.
func BenchmarkLoadEntityOptions(b *testing.B) {
	raws := []struct {
		name string
		load rawLoader
	}{
		{"raw-consumer", rawConsumerLoad},
		{"raw-consumer-literal", rawConsumerLiteralLoad},
		{"raw-batchget", rawBatchGetLoad},
		{"raw-batchget-literal", rawBatchGetLiteralLoad},
		{"raw-batchget-bounded", rawBoundedLoad},
		{"raw-known-seqs", rawKnownSeqsLoad},
	}
	for _, st := range storages {
		for _, size := range the.sizes() {
			b.Run(fmt.Sprintf("storage=%s/events=%s", st.name, sizeName(size)), func(b *testing.B) {
				f := getFixture(b, st.typ, size)
				for _, r := range raws {
					b.Run("method="+r.name, func(b *testing.B) { loadRaw(b, f, r.load) })
				}
				b.Run("method=last-lookup", func(b *testing.B) {
					ctx := context.Background()
					nc := the.connect(b)
					js, _ := jetstream.New(nc)
					stream, err := js.Stream(ctx, "ES_"+f.name)
					if err != nil {
						b.Fatal(err)
					}
					var lat latencies
					for b.Loop() {
						start := time.Now()
						_, err := stream.GetLastMsgForSubject(ctx, entitySubject(f, loadEntity)+".*")
						lat.add(time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
					}
					lat.report(b, "")
				})
				b.Run("method=count-lookup", func(b *testing.B) {
					ctx := context.Background()
					nc := the.connect(b)
					body := []byte(`{"subjects_filter":"` + entitySubject(f, loadEntity) + `.*"}`)
					var lat latencies
					for b.Loop() {
						start := time.Now()
						resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.INFO.ES_"+f.name, body)
						lat.add(time.Since(start))
						if err != nil || !bytes.Contains(resp.Data, []byte(`"subjects"`)) {
							b.Fatal(err, string(resp.Data))
						}
					}
					lat.report(b, "")
				})
				b.Run("method=last-lookup-leader", func(b *testing.B) {
					ctx := context.Background()
					nc := the.connect(b)
					body := []byte(`{"last_by_subj":"` + entitySubject(f, loadEntity) + `.*"}`)
					var lat latencies
					for b.Loop() {
						start := time.Now()
						resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.ES_"+f.name, body)
						lat.add(time.Since(start))
						if err != nil || !bytes.Contains(resp.Data, []byte(`"seq"`)) {
							b.Fatal(err, string(resp.Data))
						}
					}
					lat.report(b, "")
				})
			})
		}
	}
}
