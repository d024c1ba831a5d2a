package rita_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// Evolve reads one entity with direct gets (any replica answers them) and
// anything wider with a consumer. On a replicated store both must see every
// event whose Append has returned; tested here through the exported API on
// a cluster, which the tests inside the package cannot start (ritatest
// imports rita).

// replSnapState records the IDs and sequences of the events applied to it;
// its snapshots hold that record.
type replSnapState struct {
	IDs  []string `json:"ids"`
	Seqs []uint64 `json:"seqs"`
}

func (s *replSnapState) Evolve(e *rita.Event) error {
	s.IDs = append(s.IDs, e.ID)
	s.Seqs = append(s.Seqs, e.Sequence())
	return nil
}

func (s *replSnapState) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

func (s *replSnapState) UnmarshalBinary(data []byte) error {
	*s = replSnapState{}
	return json.Unmarshal(data, s)
}

// seenOf is what the comparison looks at of the events a recorder applied.
func seenOf(r *recorder) []string {
	var out []string
	for _, e := range r.all() {
		out = append(out, fmt.Sprintf("%d %s %s %s %s %v", e.Sequence(), e.ID, e.Entity, e.Type, e.Data, e.Meta))
	}
	return out
}

// requestProbe sees requests a connection makes on subjects: a second
// connection to the same server subscribes to them, and the server delivers
// them to it as well as to whoever answers. Only subjects that always have
// a responder: one more subscriber on a subject nobody answers would keep
// the requester from its no-responders status (a snapshot get on a bucket
// not made yet relies on it).
type requestProbe struct {
	nc, mon *nats.Conn
	ch      chan *nats.Msg
}

func newRequestProbe(t *testing.T, nc *nats.Conn, subjects ...string) *requestProbe {
	t.Helper()
	mon, err := nats.Connect(nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mon.Close)
	p := &requestProbe{nc: nc, mon: mon, ch: make(chan *nats.Msg, 1<<16)}
	for _, subj := range subjects {
		if _, err := mon.ChanSubscribe(subj, p.ch); err != nil {
			t.Fatal(err)
		}
	}
	requireNoError(t, mon.Flush())
	return p
}

// record runs fn and returns the subjects of the API requests nc made
// meanwhile. After nc's flush the server has handled them, and so sent
// their copies to the monitor before its answer to the monitor's flush; the
// monitor's read loop puts each in the channel before it reads on.
func (p *requestProbe) record(t *testing.T, fn func()) []string {
	t.Helper()
	drain := func() []string {
		requireNoError(t, p.nc.Flush())
		requireNoError(t, p.mon.Flush())
		var subjects []string
		for {
			select {
			case m := <-p.ch:
				subjects = append(subjects, m.Subject)
			default:
				return subjects
			}
		}
	}
	drain()
	fn()
	return drain()
}

// countPrefix counts the subjects that begin with prefix.
func countPrefix(subjects []string, prefix string) int {
	n := 0
	for _, s := range subjects {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// On a replicated store, an Evolve of one entity that begins after an
// acknowledged Append sees it, whichever server answers the direct gets,
// and a load from a snapshot does too; and the direct read applies what
// the consumer read applies.
func TestDirectReadReplicated(t *testing.T) {
	c := ritatest.NewCluster(t, 3)
	managers := make([]*rita.Manager, len(c.Servers))
	conns := make([]*nats.Conn, len(c.Servers))
	for i, srv := range c.Servers {
		conns[i] = srv.Connect(t)
		m, err := rita.New(conns[i])
		if err != nil {
			t.Fatal(err)
		}
		managers[i] = m
	}
	ctx := t.Context()
	writer, err := managers[0].CreateEventStore(ctx, rita.EventStoreConfig{Name: "replicated", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitStoreLeader("replicated")
	const (
		directGet      = "$JS.API.DIRECT.GET.ES_replicated"
		createConsumer = "$JS.API.CONSUMER.CREATE.ES_replicated."
	)
	readers := make([]*rita.EventStore, 0, 2)
	probes := make([]*requestProbe, 0, 2)
	for i, m := range managers[1:] {
		s, err := m.GetEventStore(ctx, "replicated")
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, s)
		probes = append(probes, newRequestProbe(t, conns[1+i], directGet, createConsumer+">"))
	}
	cfg := rita.SnapshotConfig{Version: "v1", Every: 3}
	var ids []string
	for i := range 40 {
		e := &rita.Event{Entity: "order.1", Type: "line", Data: []byte(strconv.Itoa(i))}
		seq, err := writer.Append(ctx, []*rita.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		r, probe := readers[i%len(readers)], probes[i%len(readers)]

		// The entity, with direct gets.
		direct := &recorder{}
		var last uint64
		reqs := probe.record(t, func() { last, err = r.Evolve(ctx, direct, rita.WithFilters("order.1")) })
		if err != nil {
			t.Fatal(err)
		}
		if countPrefix(reqs, directGet) == 0 {
			t.Fatalf("after append %d: Evolve of one entity made no direct get: %q", i, reqs)
		}
		if last != seq || direct.count() != i+1 {
			t.Fatalf("after append %d at %d: Evolve read %d events up to %d", i, seq, direct.count(), last)
		}

		// From a snapshot.
		st := &replSnapState{}
		last, err = r.Evolve(ctx, st, rita.WithFilters("order.1"), rita.WithSnapshot(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if last != seq || len(st.IDs) != i+1 {
			t.Fatalf("after append %d at %d: Evolve from a snapshot has %d events up to %d", i, seq, len(st.IDs), last)
		}
		if !slices.Equal(st.IDs, ids) {
			t.Fatalf("after append %d: Evolve from a snapshot has IDs %v, want %v", i, st.IDs, ids)
		}

		// The entity type, which is not one entity: with a consumer. The
		// store holds only order.1, so it must apply the same events.
		consumer := &recorder{}
		var clast uint64
		reqs = probe.record(t, func() { clast, err = r.Evolve(ctx, consumer, rita.WithFilters("order")) })
		if err != nil {
			t.Fatal(err)
		}
		if countPrefix(reqs, directGet) != 0 || countPrefix(reqs, createConsumer) == 0 {
			t.Fatalf("after append %d: Evolve of an entity type did not read with a consumer alone: %q", i, reqs)
		}
		if d, c := seenOf(direct), seenOf(consumer); clast != last || !slices.Equal(d, c) {
			t.Fatalf("after append %d: direct read up to %d applied\n%v\nconsumer read up to %d applied\n%v", i, last, d, clast, c)
		}
	}
}
