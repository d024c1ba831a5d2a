package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synadia-labs/rita"
)

// rita stores and rita info show what the store holds.
func TestStoresAndInfo(t *testing.T) {
	e := newEnv(t)
	e.fails(t, exitOK, "stores") // none yet: fine
	_, all := e.fixture(t)
	if _, err := e.m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "empty", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	info, err := e.m.GetEventStore(testCtx(t), "bank")
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}

	rows := tableRows(e.ok(t, "stores").stdout)
	if len(rows) != 3 || rows[0][0] != "STORE" || rows[1][0] != "bank" || rows[2][0] != "empty" {
		t.Fatalf("rita stores:\n%v", rows)
	}
	if rows[1][1] != strconv.Itoa(len(all)) || rows[1][2] != "4" || rows[1][4] != "1" || rows[1][6] != when(st.LastTime) {
		t.Fatalf("bank's row: %q", rows[1])
	}
	list := jsonLines[storeJSON](t, e.ok(t, "stores", "--json").stdout)
	if len(list) != 2 || list[0].Name != "bank" || list[0].Events != uint64(len(all)) || *list[0].Entities != 4 ||
		list[0].Bytes != st.Bytes || list[0].LastSequence != st.LastSequence || !list[0].LastTime.Equal(st.LastTime) || list[1].Events != 0 {
		t.Fatalf("rita stores --json: %+v", list)
	}

	out := e.ok(t, "info", "bank").stdout
	for _, want := range []string{"Store bank", "ES_bank on $ES.bank.>", "File, 1 replica(s)", "Duplicate window:  2m0s",
		"Events:            6 (", "sequences 1 to 6", "Entities:          4", "Parked events:     0", "Snapshots:         0 in bucket rita-snapshots-bank", "No durable consumers."} {
		if !strings.Contains(out, want) {
			t.Errorf("rita info bank lacks %q:\n%s", want, out)
		}
	}
	ij := jsonLines[infoJSON](t, e.ok(t, "info", "bank", "--json").stdout)
	if len(ij) != 1 || ij[0].Stream != "ES_bank" || ij[0].Events != 6 || ij[0].Duplicates != "2m0s" || len(ij[0].Consumers) != 0 {
		t.Fatalf("rita info --json: %+v", ij)
	}

	// No such store: the ones there are, and exit code 3.
	res := e.fails(t, exitNotFound, "info", "bnak")
	if !strings.Contains(res.stderr, `no event store "bnak": the stores are: bank, empty`) {
		t.Fatalf("stderr: %s", res.stderr)
	}
	e.fails(t, exitUsage, "info")
	e.fails(t, exitUsage, "info", "a.b")
}

// rita events shows every event with its fields and decoded payload.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	_, all := e.fixture(t)
	protos := protoSet(t)

	got := jsonLines[eventJSON](t, e.ok(t, "events", "bank", "--json", "--proto", protos).stdout)
	if len(got) != len(all) {
		t.Fatalf("%d events, want %d", len(got), len(all))
	}
	for i, g := range got {
		w := all[i]
		if g.Seq != w.Sequence || g.ID != w.ID || g.Entity != w.Entity || g.Type != w.Type || g.Codec != w.Codec ||
			!g.Time.Equal(w.Time) || !g.Stored.Equal(w.Stored) || len(g.Meta) != len(w.Meta) {
			t.Fatalf("event %d: %+v, want %+v", i, g, w)
		}
	}
	want := []string{`{"owner":"Alice"}`, `{"amount":100}`, `{"owner":"Bob"}`, `{"orderId":"o1","amount":"42","items":["tea"]}`, "", `{"amount":30}`}
	as := []string{"json", "json", "msgpack", "protobuf", "raw", "json"}
	for i, g := range got {
		if string(g.Data) != want[i] || g.DecodedAs != as[i] {
			t.Errorf("event %d: data %s as %s, want %s as %s", i+1, g.Data, g.DecodedAs, want[i], as[i])
		}
	}
	if got[4].DataBase64 == nil || *got[4].DataBase64 != base64.StdEncoding.EncodeToString([]byte{0xff, 0, 1}) {
		t.Errorf("raw event: %+v", got[4])
	}
	if got[0].Meta["by"] != "teller-1" {
		t.Errorf("metadata: %v", got[0].Meta)
	}

	// The table: one row per event, with the same cells.
	rows := tableRows(e.ok(t, "events", "bank").stdout)
	if len(rows) != len(all)+1 || strings.Join(rows[0], " ") != "SEQ STORED ENTITY TYPE ID META DATA" {
		t.Fatalf("table:\n%v", rows)
	}
	first := rows[1]
	if first[0] != "1" || first[1] != when(all[0].Stored) || first[2] != "account.alice" || first[3] != "opened" || first[4] != all[0].ID ||
		first[5] != "by=teller-1" || first[6] != `{"owner":"Alice"}` {
		t.Fatalf("first row: %q", first)
	}
	if rows[4][6] != "base64:"+base64.StdEncoding.EncodeToString(all[3].Data) { // protobuf without --proto
		t.Fatalf("protobuf row without descriptors: %q", rows[4])
	}

	// Filters, --since, --last.
	seqs := func(args ...string) []uint64 {
		t.Helper()
		var out []uint64
		for _, g := range jsonLines[eventJSON](t, e.ok(t, append([]string{"events", "bank", "--json"}, args...)...).stdout) {
			out = append(out, g.Seq)
		}
		return out
	}
	check := func(got []uint64, want ...uint64) {
		t.Helper()
		if fmtSeqs(got) != fmtSeqs(want) {
			t.Fatalf("sequences %v, want %v", got, want)
		}
	}
	check(seqs("account"), 1, 2, 3, 6)
	check(seqs("account.alice.deposited"), 2, 6)
	check(seqs("--since", "3"), 3, 4, 5, 6)
	check(seqs("--since", all[3].Stored.Format(time.RFC3339Nano)), 4, 5, 6)
	check(seqs("--since", "1h"), 1, 2, 3, 4, 5, 6)
	check(seqs("--since", time.Now().Add(time.Hour).Format(time.RFC3339)))
	check(seqs("--last", "2"), 5, 6)
	check(seqs("account.alice", "--last", "2"), 2, 6)
	check(seqs("account", "--last", "10"), 1, 2, 3, 6)
	check(seqs("account", "--last", "2", "--since", "5"), 6)
	e.fails(t, exitUsage, "events", "bank", "--since", "yesterday")
	e.fails(t, exitUsage, "events", "bank", "a.b.c.d")
}

func fmtSeqs(s []uint64) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.FormatUint(v, 10)
	}
	return strings.Join(parts, " ")
}

// rita events --follow shows an event appended after it started.
func TestEventsFollow(t *testing.T) {
	e := newEnv(t)
	s, _ := e.fixture(t)
	ctx := testCtx(t)
	c := e.cmd(ctx, "events", "bank", "account.alice", "--follow", "--json")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	lines := make(chan eventJSON)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev eventJSON
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				lines <- ev
			}
		}
		close(lines)
	}()
	next := func() eventJSON {
		t.Helper()
		select {
		case ev, ok := <-lines:
			if !ok {
				t.Fatalf("the command ended")
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatalf("no event came")
		}
		return eventJSON{}
	}
	for _, want := range []uint64{1, 2, 6} {
		if ev := next(); ev.Seq != want {
			t.Fatalf("event %d, want %d", ev.Seq, want)
		}
	}
	seq, err := s.Append(ctx, []*rita.Event{{Entity: "account.bob", Type: "noted", Data: []byte("x")}, {Entity: "account.alice", Type: "noted", Data: []byte(`"later"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Seq != seq || ev.Type != "noted" || string(ev.Data) != `"later"` {
		t.Fatalf("followed %+v, want the event appended at %d", ev, seq)
	}
	// Interrupted, it ends with exit code 0.
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("after an interrupt: %v", err)
	}
}

// rita entity shows one entity's history and its snapshot's state.
func TestEntity(t *testing.T) {
	e := newEnv(t)
	s, all := e.fixture(t)
	state := &balance{}
	seq, err := s.Evolve(testCtx(t), state, rita.WithFilters("account.alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(testCtx(t), state, "account.alice", seq, rita.SnapshotConfig{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	got := jsonLines[entityJSON](t, e.ok(t, "entity", "bank", "account.alice", "--json").stdout)
	if len(got) != 1 || len(got[0].Events) != 3 || got[0].Events[2].Seq != 6 || len(got[0].Snapshots) != 1 {
		t.Fatalf("rita entity --json: %+v", got)
	}
	snap := got[0].Snapshots[0]
	if snap.Seq != 6 || snap.Count != 3 || snap.Version != "v1" || string(snap.State) != `{"events":3}` {
		t.Fatalf("snapshot: %+v (%s)", snap, snap.State)
	}
	out := e.ok(t, "entity", "bank", "account.alice").stdout
	rows := tableRows(out[:strings.Index(out, "\nSnapshot")])
	if len(rows) != 4 || rows[3][0] != "6" || rows[3][4] != all[5].ID {
		t.Fatalf("history:\n%s", out)
	}
	if !strings.Contains(out, `Snapshot "default" version v1, as of event 6 (3 events)`) || !strings.Contains(out, `"events": 3`) {
		t.Fatalf("snapshot part:\n%s", out)
	}
	e.fails(t, exitUsage, "entity", "bank", "account")
}

// balance counts an entity's events; its snapshots are JSON.
type balance struct {
	Events int `json:"events"`
}

func (b *balance) Evolve(*rita.Event) error       { b.Events++; return nil }
func (b *balance) MarshalBinary() ([]byte, error) { return json.Marshal(b) }
func (b *balance) UnmarshalBinary(d []byte) error { return json.Unmarshal(d, b) }
