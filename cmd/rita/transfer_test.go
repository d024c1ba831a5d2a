package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synadia-labs/rita"
)

// fill appends n events to s, in batches, of a few entities and with
// metadata, JSON and binary payloads.
func fill(t testing.TB, s *rita.EventStore, n int) {
	t.Helper()
	for done := 0; done < n; {
		k := min(rita.MaxBatchSize, n-done)
		batch := make([]*rita.Event, k)
		for i := range batch {
			j := done + i
			ev := &rita.Event{Entity: fmt.Sprintf("account.a%d", j%100), Type: "deposited", Data: fmt.Appendf(nil, `{"amount":%d}`, j)}
			if j%10 == 0 {
				ev.Type, ev.Data, ev.Meta = "scanned", []byte{byte(j), 0, 0xff, '\n'}, map[string]string{"n": fmt.Sprint(j)}
			}
			batch[i] = ev
		}
		if _, err := s.Append(testCtx(t), batch); err != nil {
			t.Fatal(err)
		}
		done += k
	}
}

// events reads every event of store name on e's server.
func (e *env) events(t *testing.T, name string) []*rita.RawEvent {
	t.Helper()
	s, err := e.m.GetEventStore(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	var out []*rita.RawEvent
	for ev, err := range s.RawEvents(testCtx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// sameStore fails t unless got holds want's events: same IDs, order,
// entities, types, times, metadata, codecs and payloads.
func sameStore(t *testing.T, want, got []*rita.RawEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.ID != w.ID || g.Entity != w.Entity || g.Type != w.Type || !g.Time.Equal(w.Time) || g.Codec != w.Codec ||
			g.Version != w.Version || !bytes.Equal(g.Data, w.Data) || meta(g.Meta) != meta(w.Meta) {
			t.Fatalf("event %d:\n%+v, want\n%+v", i+1, g, w)
		}
	}
}

// An export of a store imported into a store on another server gives the
// same store; importing it again stores nothing; a filtered export holds
// what the filter selects. 100k events (5k with -short).
func TestExportImport(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 5_000
	}
	src := newEnv(t)
	s, err := src.m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "big"})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, n)
	dir := t.TempDir()
	file := filepath.Join(dir, "big.jsonl")
	res := src.ok(t, "export", "big", "--output", file, "--json")
	if !strings.Contains(res.stdout, fmt.Sprintf(`"events":%d`, n)) {
		t.Fatalf("rita export summary: %s", res.stdout)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(data, []byte("\n")); lines != n {
		t.Fatalf("export has %d lines, want %d", lines, n)
	}
	// Standard output holds the same lines.
	if out := src.ok(t, "export", "big", "account.a7").stdout; strings.Count(out, "\n") != n/100 || !strings.Contains(out, `"data":{"amount":7}`) {
		t.Fatalf("filtered export: %d lines", strings.Count(out, "\n"))
	}

	dst := newEnv(t) // another server
	res = dst.fails(t, exitNotFound, "import", "big", "--input", file)
	if !strings.Contains(res.stderr, "there are no event stores") {
		t.Fatalf("stderr: %s", res.stderr)
	}
	res = dst.ok(t, "import", "big", "--input", file, "--create", "--json")
	if !strings.Contains(res.stdout, fmt.Sprintf(`"stored":%d`, n)) {
		t.Fatalf("rita import: %s", res.stdout)
	}
	want := src.events(t, "big")
	sameStore(t, want, dst.events(t, "big"))

	// Twice imported stores nothing twice (from standard input this time).
	res = dst.run(t, string(data), "import", "big")
	if res.code != 0 || !strings.Contains(res.stdout, fmt.Sprintf("Read %d events: %d were in the store already, 0 stored.", n, n)) {
		t.Fatalf("second import: %+v", res)
	}
	if got := len(dst.events(t, "big")); got != n {
		t.Fatalf("after the second import the store holds %d events", got)
	}
}

// A damaged line is refused with its number, nothing of it stored; the
// import goes on from there once it is mended. A store that holds other
// events is refused.
func TestImportDamagedLine(t *testing.T) {
	e := newEnv(t)
	s, err := e.m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "src"})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 50)
	good := e.ok(t, "export", "src").stdout
	lines := strings.SplitAfter(good, "\n")
	damaged := strings.Join(lines[:29], "") + `{"seq":30,"id":"x"` + "\n" + strings.Join(lines[30:], "")
	if _, err := e.m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "dst"}); err != nil {
		t.Fatal(err)
	}
	res := e.run(t, damaged, "import", "dst")
	if res.code != exitBadData || !strings.Contains(res.stderr, "line 30:") {
		t.Fatalf("damaged import: exit %d\n%s", res.code, res.stderr)
	}
	if got := e.events(t, "dst"); len(got) != 29 {
		t.Fatalf("the store holds %d events, want the 29 lines before the damaged one", len(got))
	}
	res = e.run(t, good, "import", "dst")
	if res.code != 0 || !strings.Contains(res.stdout, "Read 50 events: 29 were in the store already, 21 stored.") {
		t.Fatalf("mended import: %+v", res)
	}
	sameStore(t, e.events(t, "src"), e.events(t, "dst"))

	// A store with other events: refused, exit code 4, nothing stored.
	other, err := e.m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, other, 1)
	res = e.run(t, good, "import", "other")
	if res.code != exitConflict || !strings.Contains(res.stderr, "line 1 is event") {
		t.Fatalf("import into another store: exit %d\n%s", res.code, res.stderr)
	}
	if got := e.events(t, "other"); len(got) != 1 {
		t.Fatalf("the other store holds %d events", len(got))
	}
}
