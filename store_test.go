package rita_test

import (
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
