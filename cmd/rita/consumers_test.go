package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// react runs durable consumer name of s with handler, quietly, until the
// test ends or the returned stop is called.
func react(t *testing.T, s *rita.EventStore, name string, handler func(context.Context, *rita.Event) error) func() {
	t.Helper()
	sub, err := s.Durable(name).React(testCtx(t), handler, rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) {}), rita.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := sub.Stop(ctx); err != nil {
				t.Errorf("stop %s: %v", name, err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds, failing t after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rita consumers, rita parked (list, show, retry, delete) and rita rebuild
// against a store whose consumers parked events.
func TestConsumersParkedRebuild(t *testing.T) {
	e := newEnv(t)
	s, all := e.fixture(t)
	var failBob atomic.Bool
	failBob.Store(true)
	var handled atomic.Int64
	mailer := func(_ context.Context, ev *rita.Event) error {
		if ev.Entity == "account.bob" && failBob.Load() {
			return fmt.Errorf("bob's mail bounced: %w", rita.ErrUnprocessable)
		}
		handled.Add(1)
		return nil
	}
	stopMailer := react(t, s, "mailer", mailer)
	if err := s.Durable("mailer").WaitCaughtUp(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	react(t, s, "audit", func(context.Context, *rita.Event) error { return nil })
	if err := s.Durable("audit").WaitCaughtUp(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	// consumers: table and JSON agree with the library.
	list := jsonLines[consumerJSON](t, e.ok(t, "consumers", "bank", "--json").stdout)
	if len(list) != 2 || list[0].Name != "audit" || list[1].Name != "mailer" || list[1].Parked != 1 || !list[1].Active ||
		list[1].Applied != uint64(len(all)) || list[1].StoreSeq != uint64(len(all)) || list[1].Lag != 0 {
		t.Fatalf("rita consumers --json: %+v", list)
	}
	rows := tableRows(e.ok(t, "consumers", "bank").stdout)
	if len(rows) != 3 || strings.Join(rows[2], " ") != "mailer yes 6 6 0 0 0 1" {
		t.Fatalf("rita consumers:\n%v", rows)
	}
	info := jsonLines[infoJSON](t, e.ok(t, "info", "bank", "--json").stdout)[0]
	if info.Parked != 1 || len(info.Consumers) != 2 {
		t.Fatalf("rita info --json: %+v", info)
	}

	// parked: list (the default), show.
	parked := jsonLines[parkedJSON](t, e.ok(t, "parked", "bank", "--json").stdout)
	if len(parked) != 1 || parked[0].Consumer != "mailer" || parked[0].Seq != 3 || parked[0].Entity != "account.bob" ||
		parked[0].ID != all[2].ID || !strings.Contains(parked[0].Reason, "bounced") {
		t.Fatalf("rita parked --json: %+v", parked)
	}
	rows = tableRows(e.ok(t, "parked", "list", "bank", "mailer").stdout)
	if len(rows) != 2 || rows[1][0] != "mailer" || rows[1][1] != "3" || rows[1][2] != "account.bob" {
		t.Fatalf("rita parked list bank mailer:\n%v", rows)
	}
	show := jsonLines[parkedJSON](t, e.ok(t, "parked", "show", "bank", "mailer", "3", "--json").stdout)
	if len(show) != 1 || show[0].Event == nil || string(show[0].Event.Data) != `{"owner":"Bob"}` || show[0].Event.DecodedAs != "msgpack" {
		t.Fatalf("rita parked show --json: %+v", show)
	}
	out := e.ok(t, "parked", "show", "bank", "mailer", "3").stdout
	if !strings.Contains(out, "Reason:") || !strings.Contains(out, `{"owner":"Bob"}`) {
		t.Fatalf("rita parked show:\n%s", out)
	}
	e.fails(t, exitNotFound, "parked", "show", "bank", "mailer", "4")
	res := e.fails(t, exitNotFound, "parked", "bank", "mailr")
	if !strings.Contains(res.stderr, "its durable consumers are: audit, mailer") {
		t.Fatalf("stderr: %s", res.stderr)
	}

	// retry: the consumer handles it again.
	failBob.Store(false)
	before := handled.Load()
	e.ok(t, "parked", "retry", "bank", "mailer", "3")
	eventually(t, "the retried event is handled", func() bool { return handled.Load() == before+1 })
	eventually(t, "the retried event is no longer parked", func() bool {
		return len(jsonLines[parkedJSON](t, e.ok(t, "parked", "bank", "--json").stdout)) == 0
	})

	// delete: asks, refuses without a yes, deletes with one or --force.
	failBob.Store(true)
	if _, err := s.Append(testCtx(t), []*rita.Event{{Entity: "account.bob", Type: "closed", Data: []byte(`{}`)}, {Entity: "account.bob", Type: "noted", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Durable("mailer").WaitCaughtUp(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	res = e.run(t, "n\n", "parked", "delete", "bank", "mailer", "7")
	if res.code != exitFailed || !strings.Contains(res.stderr, "Delete parked event 7") {
		t.Fatalf("declined delete: %+v", res)
	}
	res = e.run(t, "yes\n", "parked", "delete", "bank", "mailer", "7")
	if res.code != 0 {
		t.Fatalf("confirmed delete: %+v", res)
	}
	e.ok(t, "parked", "delete", "bank", "mailer", "8", "--force", "--json")
	if left := jsonLines[parkedJSON](t, e.ok(t, "parked", "bank", "--json").stdout); len(left) != 0 {
		t.Fatalf("parked after deletes: %+v", left)
	}

	// rebuild: refused while the consumer runs; once it is stopped, it
	// starts it again and waits until a process running it caught up.
	res = e.fails(t, exitConflict, "rebuild", "bank", "mailer")
	if !strings.Contains(res.stderr, "while a process runs it") {
		t.Fatalf("stderr: %s", res.stderr)
	}
	stopMailer()
	failBob.Store(false)
	ctx := testCtx(t)
	c := e.cmd(ctx, "rebuild", "bank", "mailer", "--from", "2", "--json")
	var out2, errOut strings.Builder
	c.Stdout, c.Stderr = &out2, &errOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the consumer is reset", func() bool {
		p, err := s.Durable("mailer").Progress(ctx)
		return err == nil && p.Applied < 2
	})
	handled.Store(0)
	react(t, s, "mailer", mailer)
	if err := c.Wait(); err != nil {
		t.Fatalf("rita rebuild: %v\n%s", err, errOut.String())
	}
	done := jsonLines[consumerJSON](t, out2.String())
	if len(done) != 1 || done[0].Applied != 8 || done[0].Lag != 0 || handled.Load() != 7 {
		t.Fatalf("rita rebuild --json: %+v, handled %d", done, handled.Load())
	}
	e.fails(t, exitNotFound, "rebuild", "bank", "nobody")
}

// rita snapshots lists and deletes snapshots.
func TestSnapshots(t *testing.T) {
	e := newEnv(t)
	s, _ := e.fixture(t)
	res := e.ok(t, "snapshots", "bank")
	if res.stdout != "" || !strings.Contains(res.stderr, "no snapshots") {
		t.Fatalf("rita snapshots of none: %+v", res)
	}
	for _, entity := range []string{"account.alice", "account.bob"} {
		state := &balance{}
		seq, err := s.Evolve(testCtx(t), state, rita.WithFilters(entity))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSnapshot(testCtx(t), state, entity, seq, rita.SnapshotConfig{Version: "v2", Name: "stmt"}); err != nil {
			t.Fatal(err)
		}
	}
	list := jsonLines[snapshotJSON](t, e.ok(t, "snapshots", "bank", "--json").stdout)
	if len(list) != 2 || list[0].Entity != "account.alice" || list[0].Name != "stmt" || list[0].Version != "v2" || list[0].Seq != 6 ||
		list[0].Count != 3 || list[1].Entity != "account.bob" || list[1].Seq != 3 || list[1].Stale || list[0].Size != len(`{"events":3}`) {
		t.Fatalf("rita snapshots --json: %+v", list)
	}
	rows := tableRows(e.ok(t, "snapshots", "list", "bank", "account.bob").stdout)
	if len(rows) != 2 || strings.Join(rows[1][:5], " ") != "account.bob stmt v2 3 1" {
		t.Fatalf("rita snapshots list bank account.bob:\n%v", rows)
	}
	e.fails(t, exitNotFound, "snapshots", "delete", "bank", "account.alice", "--force") // "default": there is none
	e.ok(t, "snapshots", "delete", "bank", "account.alice", "stmt", "--force")
	if left := jsonLines[snapshotJSON](t, e.ok(t, "snapshots", "bank", "--json").stdout); len(left) != 1 || left[0].Entity != "account.bob" {
		t.Fatalf("after delete: %+v", left)
	}
	if info := jsonLines[infoJSON](t, e.ok(t, "info", "bank", "--json").stdout)[0]; info.Snapshots != 1 {
		t.Fatalf("rita info counts %d snapshots", info.Snapshots)
	}
}
