package rita_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

// RawEvents reads every field as stored, without a registry: the codec and
// version a registry wrote, the metadata, the payload's bytes.
func TestRawEvents(t *testing.T) {
	e := newEnv(t)
	reg, data, _ := codecFixture(t, "msgpack")
	typed := createStore(t, e.manager(t, rita.WithRegistry(reg)), "raw")
	ev := &rita.Event{Entity: "sensor.1", Data: data, Meta: map[string]string{"k": "v"}}
	_, err := typed.Append(testCtx(t), []*rita.Event{ev})
	requireNoError(t, err)
	s, err := e.m.GetEventStore(testCtx(t), "raw")
	requireNoError(t, err)
	appendEach(t, s, rawEvent("order.1", "placed", `{"n":1}`), rawEvent("order.2", "placed", `{"n":2}`))

	var got []*rita.RawEvent
	for r, err := range s.RawEvents(testCtx(t)) {
		requireNoError(t, err)
		got = append(got, r)
	}
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	first := got[0]
	if first.Sequence != 1 || first.ID != ev.ID || first.Entity != "sensor.1" || first.Type != ev.Type || first.Codec != "msgpack" ||
		first.Version != 1 || first.Meta["k"] != "v" || !first.Time.Equal(ev.Time) || first.Stored.IsZero() || len(first.Data) == 0 {
		t.Fatalf("first event = %+v", first)
	}
	if got[2].Codec != "" || string(got[2].Data) != `{"n":2}` || got[2].Sequence != 3 {
		t.Fatalf("third event = %+v", got[2])
	}

	// Filters and bounds select as Evolve's do.
	var seqs []uint64
	for r, err := range s.RawEvents(testCtx(t), rita.WithFilters("order"), rita.WithAfterSequence(2)) {
		requireNoError(t, err)
		seqs = append(seqs, r.Sequence)
	}
	requireSeqs(t, seqs, []uint64{3})
	for _, err := range s.RawEvents(testCtx(t), rita.WithSnapshot(rita.SnapshotConfig{Version: "1"})) {
		requireErrorIs(t, err, rita.ErrInvalidOption)
	}
	// Breaking out of the loop ends the read.
	for range s.RawEvents(testCtx(t)) {
		break
	}
	e.requireNoConsumers(t, "raw")
}

// FollowRawEvents goes on with events stored after it began, and ends
// without an error when its context does.
func TestFollowRawEvents(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "follow")
	appendN(t, s, "order.1", "placed", 2)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	got := make(chan *rita.RawEvent, 10)
	done := make(chan error, 1)
	go func() {
		var last error
		for r, err := range s.FollowRawEvents(ctx, rita.WithFilters("order.1")) {
			if err != nil {
				last = err
				continue
			}
			got <- r
		}
		done <- last
	}()
	for i := range 2 {
		if r := <-got; r.Sequence != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, r.Sequence)
		}
	}
	appendEach(t, s, rawEvent("order.2", "placed", "x"), rawEvent("order.1", "shipped", "y"))
	select {
	case r := <-got:
		if r.Sequence != 4 || r.Type != "shipped" {
			t.Fatalf("followed %+v, want the event at 4", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the event appended after the start did not come")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("FollowRawEvents ended with %v", err)
	}
	e.requireNoConsumers(t, "follow")
}

// SequenceAt finds the first event stored at or after a time.
func TestSequenceAt(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "at")
	before := time.Now()
	appendN(t, s, "order.1", "placed", 3)
	var stored []time.Time
	for r, err := range s.RawEvents(testCtx(t)) {
		requireNoError(t, err)
		stored = append(stored, r.Stored)
	}
	ctx := testCtx(t)
	seq, err := s.SequenceAt(ctx, before.Add(-time.Hour))
	requireNoError(t, err)
	if seq != 1 {
		t.Fatalf("SequenceAt(an hour before) = %d, want 1", seq)
	}
	seq, err = s.SequenceAt(ctx, stored[2])
	requireNoError(t, err)
	if seq == 0 || seq > 3 {
		t.Fatalf("SequenceAt(the last stored time) = %d", seq)
	}
	seq, err = s.SequenceAt(ctx, time.Now().Add(time.Hour))
	requireNoError(t, err)
	if seq != 0 {
		t.Fatalf("SequenceAt(an hour from now) = %d, want 0", seq)
	}
}

// The tools' calls leave no goroutine behind (the server's own, started
// lazily, are warmed up first; so is the Manager's asynchronous publish
// reply handler, which lives as long as its connection).
func TestToolsLeaveNoGoroutine(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "tools")
	appendN(t, s, "order.1", "placed", 700)
	state := &replSnapState{}
	seq, err := s.Evolve(testCtx(t), state, rita.WithFilters("order.1"))
	requireNoError(t, err)
	requireNoError(t, s.SaveSnapshot(testCtx(t), state, "order.1", seq, rita.SnapshotConfig{Version: "1"}))
	var export bytes.Buffer
	_, err = s.Export(testCtx(t), &export)
	requireNoError(t, err)
	warm := e.store(t, "warm")
	_, err = warm.Import(testCtx(t), bytes.NewReader(export.Bytes()))
	requireNoError(t, err)
	for range s.Snapshots(testCtx(t), "") {
	}
	dst := e.store(t, "dst")
	warmUp(t, s)
	warmUp(t, dst)
	verify := leakCheck(t)

	ctx := testCtx(t)
	for range s.RawEvents(ctx) {
	}
	for range s.RawEvents(ctx) {
		break
	}
	fctx, cancel := context.WithCancel(ctx)
	for range s.FollowRawEvents(fctx) {
		cancel()
	}
	cancel()
	_, err = s.SequenceAt(ctx, time.Now())
	requireNoError(t, err)
	_, err = s.Durables(ctx)
	requireNoError(t, err)
	_, _, err = s.EntityCount(ctx, 1000)
	requireNoError(t, err)
	for range s.Snapshots(ctx, "") {
	}
	for range s.Snapshots(ctx, "") {
		break
	}
	_, err = dst.Import(ctx, bytes.NewReader(export.Bytes()))
	requireNoError(t, err)
	_, err = dst.Import(ctx, bytes.NewReader(export.Bytes()))
	requireNoError(t, err)
	_, err = s.Export(ctx, io.Discard)
	requireNoError(t, err)

	e.eventuallyNoConsumers(t, "tools")
	e.eventuallyNoConsumers(t, "dst")
	eventually(t, waitFor, func() bool {
		info, err := e.js.Stream(ctx, "KV_rita-snapshots-tools")
		return err == nil && info.CachedInfo().State.Consumers == 0
	}, "the snapshot bucket's consumers are removed")
	verify()
}
