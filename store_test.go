package rita_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// Info reports what a store holds and how it is configured, as the server
// has it.
func TestEventStoreInfo(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second)
	s, err := e.m.CreateEventStore(testCtx(t), rita.EventStoreConfig{
		Name: "info", Description: "orders", MaxMsgs: 100, Duplicates: time.Minute, Storage: jetstream.MemoryStorage,
	})
	requireNoError(t, err)
	info, err := s.Info(testCtx(t))
	requireNoError(t, err)
	if info.Events != 0 || info.LastSequence != 0 || info.Config.Metadata != nil {
		t.Fatalf("empty store: %+v", info)
	}
	appendN(t, s, "order.1", "placed", 3)
	info, err = s.Info(testCtx(t))
	requireNoError(t, err)
	c := info.Config
	if c.Name != "info" || c.Description != "orders" || c.MaxMsgs != 100 || c.MaxBytes != 0 || c.Duplicates != time.Minute ||
		c.Storage != jetstream.MemoryStorage || c.Replicas != 1 {
		t.Fatalf("config %+v", c)
	}
	if info.Events != 3 || info.FirstSequence != 1 || info.LastSequence != 3 || info.Bytes == 0 ||
		info.Created.Before(before) || info.LastTime.Before(info.FirstTime) || info.FirstTime.Before(before) {
		t.Fatalf("info %+v", info)
	}
	requireNoError(t, e.m.DeleteEventStore(testCtx(t), "info"))
	_, err = s.Info(testCtx(t))
	requireErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = (*rita.EventStore)(nil).Info(testCtx(t))
	requireErrorIs(t, err, rita.ErrInvalidArgument)
}

// EventStores lists the stores of the connection, with their info, and
// nothing else: not other streams, not a store's parked events.
func TestManagerEventStores(t *testing.T) {
	e := newEnv(t)
	a := e.store(t, "a")
	e.store(t, "b_PARKED") // a store whose name looks like a parked stream
	appendN(t, a, "order.1", "placed", 2)
	// A reactor that parks an event makes the parked stream of a.
	react(t, a, "r", func(ctx context.Context, ev *rita.Event) error { return rita.ErrUnprocessable }, rita.WithErrHandler(quiet))
	waitCaughtUp(t, a, "r")
	js, err := jetstream.New(e.nc)
	requireNoError(t, err)
	_, err = js.CreateStream(testCtx(t), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
	requireNoError(t, err)

	got := map[string]uint64{}
	for info, err := range e.m.EventStores(testCtx(t)) {
		requireNoError(t, err)
		got[info.Config.Name] = info.Events
	}
	if len(got) != 2 || got["a"] != 2 || got["b_PARKED"] != 0 {
		t.Fatalf("EventStores listed %v, want a (2 events) and b_PARKED (0)", got)
	}
	// Breaking off the iteration is fine.
	for range e.m.EventStores(testCtx(t)) {
		break
	}
	for _, err := range (*rita.Manager)(nil).EventStores(testCtx(t)) {
		requireErrorIs(t, err, rita.ErrInvalidArgument)
	}
}
