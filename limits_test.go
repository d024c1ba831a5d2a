package rita_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
)

// rawBatch is n raw events of entity with payloads of size bytes.
func rawBatch(entity string, n, size int) []*rita.Event {
	events := make([]*rita.Event, n)
	for i := range events {
		events[i] = &rita.Event{Entity: entity, Type: "noted", Data: []byte(strings.Repeat("x", size))}
	}
	return events
}

// requireFull checks that an append failed at once with ErrStoreFull.
func requireFull(t *testing.T, s *rita.EventStore, events []*rita.Event) {
	t.Helper()
	start := time.Now()
	_, err := s.Append(testCtx(t), events)
	requireErrorIs(t, err, rita.ErrStoreFull)
	if took := time.Since(start); took >= time.Second {
		t.Fatalf("refused after %v: retried, want at once", took)
	}
	t.Logf("%d events refused after %v: %v", len(events), time.Since(start), err)
}

// TestLimitsStoreFull checks that a store with Discard new refuses an
// append past a limit with ErrStoreFull, a batch as a whole, and keeps what
// it held.
func TestLimitsStoreFull(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		config rita.EventStoreConfig
		fill   int // events stored before
		batch  int // the batch that does not fit
	}{
		{"max events", rita.EventStoreConfig{MaxMsgs: 5}, 3, 3},
		{"max bytes", rita.EventStoreConfig{MaxBytes: 4 << 10}, 2, 4}, // 1 KiB events
		{"max events per subject", rita.EventStoreConfig{MaxMsgsPerSubject: 2}, 1, 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := tt.config
			cfg.Name, cfg.Discard = fmt.Sprintf("full%d", i), jetstream.DiscardNew
			s, err := e.m.CreateEventStore(ctx, cfg)
			requireNoError(t, err)
			info, err := s.Info(ctx)
			requireNoError(t, err)
			if info.Config.Discard != jetstream.DiscardNew || info.Config.MaxMsgsPerSubject != cfg.MaxMsgsPerSubject {
				t.Fatalf("store configured %+v, want %+v", info.Config, cfg)
			}
			seq, err := s.Append(ctx, rawBatch("note.1", tt.fill, 1000))
			requireNoError(t, err)
			// A batch that does not fit is refused as a whole ...
			requireFull(t, s, rawBatch("note.1", tt.batch, 1000))
			// ... and so is one event, once the store is at its limit.
			for {
				_, err := s.Append(ctx, rawBatch("note.1", 1, 1000))
				if errors.Is(err, rita.ErrStoreFull) {
					break
				}
				requireNoError(t, err)
				seq++
			}
			requireFull(t, s, rawBatch("note.1", 1, 1000))
			info, err = s.Info(ctx)
			requireNoError(t, err)
			if info.LastSequence != seq || info.Events != seq {
				t.Fatalf("store holds %d events up to %d, want %d", info.Events, info.LastSequence, seq)
			}
			// Another subject has room of its own under a per-subject limit.
			if cfg.MaxMsgsPerSubject > 0 {
				_, err := s.Append(ctx, rawBatch("note.2", 1, 10))
				requireNoError(t, err)
			}
		})
	}
}

// TestLimitsAccountFull checks that an append the account's JetStream
// storage cannot take fails with ErrStoreFull and stores nothing.
func TestLimitsAccountFull(t *testing.T) {
	url := authServer(t, `accounts {
  small: { jetstream: { max_file: 64KB, max_mem: 64KB }, users: [ { user: small, password: small } ] }
}`)
	ctx := testCtx(t)
	m := connectWith(t, url, "small")
	s, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "small"})
	requireNoError(t, err)
	var seq uint64
	for {
		last, err := s.Append(ctx, rawBatch("note.1", 4, 1000))
		if errors.Is(err, rita.ErrStoreFull) {
			break
		}
		requireNoError(t, err)
		seq = last
		if seq > 1000 {
			t.Fatal("the account's limit never refused an append")
		}
	}
	requireFull(t, s, rawBatch("note.1", 4, 1000))
	info, err := s.Info(ctx)
	requireNoError(t, err)
	if info.LastSequence != seq {
		t.Fatalf("store at %d after refused appends, want %d", info.LastSequence, seq)
	}
}

// TestLimitsDiscardOld checks what a store that removes its oldest events
// (Discard old, the default) does to reads, snapshots and expectations, as
// docs/operating.md says.
func TestLimitsDiscardOld(t *testing.T) {
	e := newEnv(t, rita.WithRegistry(newRegistry(t, bankTypes())))
	ctx := testCtx(t)
	s, err := e.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "old", MaxMsgs: 5})
	requireNoError(t, err)
	dep := func(account string, amount int, expect *rita.Expect) (uint64, error) {
		return s.Append(ctx, []*rita.Event{{Entity: accountEntity(account), Data: &depositedEvt{Amount: amount}, Expect: expect}})
	}
	for _, a := range []int{1, 2, 4} { // alice: 1-3
		_, err := dep("alice", a, nil)
		requireNoError(t, err)
	}
	snap := rita.SnapshotConfig{Version: "1"}
	alice := rita.NewModel(&total{})
	_, err = s.Evolve(ctx, alice, rita.WithFilters("account.alice"))
	requireNoError(t, err)
	requireNoError(t, s.SaveSnapshot(ctx, alice, "account.alice", 0, snap))
	for range 4 { // bob: 4-7; alice's 1 and 2 are removed
		_, err := dep("bob", 10, nil)
		requireNoError(t, err)
	}

	// A replay reads what is left.
	info, err := s.Info(ctx)
	requireNoError(t, err)
	if info.FirstSequence != 3 || info.Events != 5 {
		t.Fatalf("store holds %d events from %d, want 5 from 3", info.Events, info.FirstSequence)
	}
	for _, tt := range []struct {
		opts []rita.EvolveOption
		want int
	}{
		{[]rita.EvolveOption{rita.WithFilters("account.alice")}, 4},                          // alice's last deposit, the only one left
		{[]rita.EvolveOption{rita.WithFilters("account.alice"), rita.WithSnapshot(snap)}, 4}, // the count check refuses the snapshot (1+2+4)
		{[]rita.EvolveOption{rita.WithFilters("account.*")}, 4 + 40},
	} {
		got := rita.NewModel(&total{})
		last, err := s.Evolve(ctx, got, tt.opts...)
		requireNoError(t, err)
		var amount int
		_ = got.View(func(s *total) error { amount = s.Amount; return nil })
		if amount != tt.want {
			t.Fatalf("Evolve(%v) = %d (up to %d), want %d", tt.opts, amount, last, tt.want)
		}
	}

	// An expectation is checked against what is left: alice's last event
	// is still 3 ...
	_, err = dep("alice", 1, rita.ExpectSequence(2))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	// ... until her events are all removed: then she looks new.
	for range 5 {
		_, err := dep("bob", 10, nil)
		requireNoError(t, err)
	}
	_, err = dep("alice", 1, rita.ExpectSequence(3))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	_, err = dep("alice", 1, rita.ExpectSequence(0))
	requireNoError(t, err)
}

// TestLimitsServerPayload checks that an event larger than the server's
// maximum payload is refused before anything is sent.
func TestLimitsServerPayload(t *testing.T) {
	nc, s := storeWithPayload(t, 4<<10)
	ctx := testCtx(t)
	sent := nc.Stats().OutMsgs
	for _, events := range [][]*rita.Event{rawBatch("note.1", 1, 5000), append(rawBatch("note.1", 2, 10), rawBatch("note.1", 1, 5000)...)} {
		_, err := s.Append(ctx, events)
		requireErrorIs(t, err, rita.ErrEventTooLarge)
	}
	if n := nc.Stats().OutMsgs - sent; n != 0 {
		t.Fatalf("%d messages sent for events refused", n)
	}
	_, err := s.Append(ctx, rawBatch("note.1", 1, 3000))
	requireNoError(t, err)
}

// TestLimitsReadEventsAtServerPayload checks that events as large as the
// server takes are read back, by Evolve and by Watch, on a server whose
// maximum payload is above the readers' usual pull size: a reader that
// asked the server for fewer bytes than one message holds would wait for it
// forever.
func TestLimitsReadEventsAtServerPayload(t *testing.T) {
	const payload = 5 << 20 // above the readers' usual pull size
	_, s := storeWithPayload(t, payload)
	ctx := testCtx(t)
	const events, size = 3, payload - 4<<10
	for range events {
		_, err := s.Append(ctx, rawBatch("note.1", 1, size))
		requireNoError(t, err)
	}

	var r recorder
	last, err := s.Evolve(ctx, &r)
	requireNoError(t, err)
	if last != events || len(r.events) != events {
		t.Fatalf("Evolve read %d events up to %d, want %d", len(r.events), last, events)
	}
	for i, e := range r.events {
		if got := len(e.Data.([]byte)); got != size {
			t.Fatalf("event %d has %d bytes, want %d", i+1, got, size)
		}
	}

	var w recorder
	watcher, err := s.Watch(ctx, &w)
	requireNoError(t, err)
	t.Cleanup(watcher.Stop)
	seq, err := s.Append(ctx, rawBatch("note.1", 1, size))
	requireNoError(t, err)
	requireNoError(t, watcher.WaitFor(ctx, seq))
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) != events+1 {
		t.Fatalf("Watch applied %d events, want %d", len(w.events), events+1)
	}
}

// storeWithPayload starts a server whose maximum payload is payload bytes
// and returns a connection to it and a new store on it.
func storeWithPayload(t *testing.T, payload int32) (*nats.Conn, *rita.EventStore) {
	t.Helper()
	srv, err := embedded.Start(context.Background(), embedded.Options{
		Configure: func(o *server.Options) { o.MaxPayload = payload },
	})
	requireNoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	requireNoError(t, err)
	t.Cleanup(nc.Close)
	m, err := rita.New(nc)
	requireNoError(t, err)
	s, err := m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "payload"})
	requireNoError(t, err)
	return nc, s
}
