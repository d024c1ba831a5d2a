package rita_test

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// Snapshots lists what is saved, with the model's bytes; DeleteSnapshot
// removes one.
func TestSnapshotsListDelete(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "snaps")
	var none int
	for _, err := range s.Snapshots(testCtx(t), "") {
		requireNoError(t, err)
		none++
	}
	if none != 0 {
		t.Fatalf("a store without snapshots lists %d", none)
	}
	appendN(t, s, "order.1", "placed", 3)
	appendN(t, s, "order.ä_1", "placed", 2)
	for _, entity := range []string{"order.1", "order.ä_1"} {
		state := &replSnapState{}
		seq, err := s.Evolve(testCtx(t), state, rita.WithFilters(entity))
		requireNoError(t, err)
		requireNoError(t, s.SaveSnapshot(testCtx(t), state, entity, seq, rita.SnapshotConfig{Version: "v1"}))
	}
	var got []*rita.SnapshotInfo
	for snap, err := range s.Snapshots(testCtx(t), "") {
		requireNoError(t, err)
		got = append(got, snap)
	}
	if len(got) != 2 || got[0].Entity != "order.1" || got[1].Entity != "order.ä_1" {
		t.Fatalf("Snapshots = %+v", got)
	}
	first := got[0]
	var state replSnapState
	requireNoError(t, json.Unmarshal(first.Data, &state))
	if first.Name != "default" || first.Version != "v1" || first.Sequence != 3 || first.Count != 3 || first.Stale || first.Saved.IsZero() || len(state.IDs) != 3 {
		t.Fatalf("snapshot of order.1 = %+v (%s)", first, first.Data)
	}
	got = got[:0]
	for snap, err := range s.Snapshots(testCtx(t), "order.ä_1") {
		requireNoError(t, err)
		got = append(got, snap)
	}
	if len(got) != 1 || got[0].Sequence != 5 {
		t.Fatalf("Snapshots(order.ä_1) = %+v", got)
	}

	requireNoError(t, s.DeleteSnapshot(testCtx(t), "order.1", ""))
	requireErrorIs(t, s.DeleteSnapshot(testCtx(t), "order.1", ""), jetstream.ErrKeyNotFound)
	requireErrorIs(t, s.DeleteSnapshot(testCtx(t), "order", ""), rita.ErrEventEntityInvalid)
	var left []string
	for snap, err := range s.Snapshots(testCtx(t), "") {
		requireNoError(t, err)
		left = append(left, snap.Entity)
	}
	if len(left) != 1 || left[0] != "order.ä_1" {
		t.Fatalf("after the delete, Snapshots = %v", left)
	}
	for _, err := range s.Snapshots(testCtx(t), "order") {
		requireErrorIs(t, err, rita.ErrEventEntityInvalid)
	}
}
