package rita_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/synadia-labs/rita"
)

// rawAll reads every event of s as stored.
func rawAll(t *testing.T, s *rita.EventStore) []*rita.RawEvent {
	t.Helper()
	var out []*rita.RawEvent
	for r, err := range s.RawEvents(testCtx(t)) {
		requireNoError(t, err)
		out = append(out, r)
	}
	return out
}

// sameEvents fails t unless b holds a's events in a's order, field for
// field (sequences and stored times aside).
func sameEvents(t *testing.T, a, b []*rita.RawEvent) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d events, want %d", len(b), len(a))
	}
	for i := range a {
		x, y := *a[i], *b[i]
		x.Sequence, y.Sequence, x.Stored = 0, 0, y.Stored
		if !x.Time.Equal(y.Time) {
			t.Fatalf("event %d: time %v, want %v", i, y.Time, x.Time)
		}
		x.Time = y.Time
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("event %d:\n%+v, want\n%+v", i, y, x)
		}
	}
}

// An export imported into another store gives the same events, in the same
// order, under the same IDs, whatever their codecs; importing it again
// stores nothing, and it goes on where an interrupted import stopped.
func TestExportImport(t *testing.T) {
	e := newEnv(t)
	src := e.store(t, "src")
	for _, codec := range []string{"json", "msgpack", "protobuf", "binary"} {
		reg, data, _ := codecFixture(t, codec)
		typed, err := e.manager(t, rita.WithRegistry(reg)).GetEventStore(testCtx(t), "src")
		requireNoError(t, err)
		_, err = typed.Append(testCtx(t), []*rita.Event{{Entity: "order." + codec, Data: data, Meta: map[string]string{"codec": codec}}})
		requireNoError(t, err)
	}
	appendEach(t, src, rawEvent("order.raw", "noted", "  not json\n"), rawEvent("order.raw", "noted", ""))
	appendN(t, src, "order.many", "placed", 50)
	want := rawAll(t, src)

	var out bytes.Buffer
	res, err := src.Export(testCtx(t), &out)
	requireNoError(t, err)
	if res.Events != uint64(len(want)) || res.LastSequence != want[len(want)-1].Sequence {
		t.Fatalf("Export = %+v, want %d events", res, len(want))
	}
	if lines := strings.Count(out.String(), "\n"); lines != len(want) {
		t.Fatalf("export has %d lines, want %d", lines, len(want))
	}
	if !strings.Contains(out.String(), `"data":{"orderId":"7"`) && !strings.Contains(out.String(), `"data":{"`) {
		t.Fatalf("a JSON payload is not readable in the export:\n%s", out.String())
	}

	dst := e.store(t, "dst")
	lines := strings.SplitAfter(out.String(), "\n")
	// Half of it, as if interrupted, then all of it, then all of it again.
	res2, err := dst.Import(testCtx(t), strings.NewReader(strings.Join(lines[:20], "")))
	requireNoError(t, err)
	if res2.Stored != 20 || res2.Present != 0 {
		t.Fatalf("first import = %+v", res2)
	}
	res2, err = dst.Import(testCtx(t), strings.NewReader(out.String()))
	requireNoError(t, err)
	if res2.Stored != uint64(len(want)-20) || res2.Present != 20 || res2.Lines != uint64(len(want)) {
		t.Fatalf("second import = %+v", res2)
	}
	res2, err = dst.Import(testCtx(t), strings.NewReader(out.String()))
	requireNoError(t, err)
	if res2.Stored != 0 || res2.Present != uint64(len(want)) {
		t.Fatalf("third import = %+v", res2)
	}
	sameEvents(t, want, rawAll(t, dst))

	// A filtered export holds only what the filter selects.
	out.Reset()
	res, err = src.Export(testCtx(t), &out, rita.WithFilters("order.raw"))
	requireNoError(t, err)
	if res.Events != 2 {
		t.Fatalf("filtered export wrote %d events, want 2", res.Events)
	}
}

// A line that cannot be read is refused with its number; the lines before
// it are stored and nothing of it or after it.
func TestImportRefusesDamagedLine(t *testing.T) {
	e := newEnv(t)
	src := e.store(t, "src")
	appendN(t, src, "order.1", "placed", 10)
	var out bytes.Buffer
	_, err := src.Export(testCtx(t), &out)
	requireNoError(t, err)
	lines := strings.SplitAfter(out.String(), "\n")
	for _, c := range []struct {
		name, line string
		want       error
	}{
		{"cut", lines[6][:len(lines[6])/2] + "\n", rita.ErrEventDecode},
		{"entity", strings.Replace(lines[6], `"entity":"order.1"`, `"entity":"order"`, 1), rita.ErrEventEntityInvalid},
		{"type", strings.Replace(lines[6], `"type":"placed"`, `"type":"pla ced"`, 1), rita.ErrEventTypeInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := e.store(t, "dst-"+c.name)
			damaged := strings.Join(lines[:6], "") + c.line + strings.Join(lines[7:], "")
			res, err := dst.Import(testCtx(t), strings.NewReader(damaged))
			requireErrorIs(t, err, rita.ErrEventDecode)
			requireErrorIs(t, err, c.want)
			if !strings.Contains(err.Error(), "line 7:") {
				t.Fatalf("error %q does not name line 7", err)
			}
			if got := e.msgs(t, "dst-"+c.name); got != 6 || res.Stored != 6 {
				t.Fatalf("store holds %d events, import stored %d; want the 6 lines before the damaged one", got, res.Stored)
			}
		})
	}
}

// A store that holds other events than the first lines is refused, and
// nothing is stored; so is an event appended by someone else.
func TestImportRefusesOtherStore(t *testing.T) {
	e := newEnv(t)
	src := e.store(t, "src")
	appendN(t, src, "order.1", "placed", 5)
	var out bytes.Buffer
	_, err := src.Export(testCtx(t), &out)
	requireNoError(t, err)

	dst := e.store(t, "dst")
	appendN(t, dst, "order.9", "placed", 1)
	_, err = dst.Import(testCtx(t), strings.NewReader(out.String()))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	if got := e.msgs(t, "dst"); got != 1 {
		t.Fatalf("store holds %d events, want the 1 it had", got)
	}

	// A store with more events than the lines.
	more := e.store(t, "more")
	_, err = more.Import(testCtx(t), strings.NewReader(out.String()))
	requireNoError(t, err)
	appendN(t, more, "order.1", "placed", 1)
	_, err = more.Import(testCtx(t), strings.NewReader(out.String()))
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	if got := e.msgs(t, "more"); got != 6 {
		t.Fatalf("store holds %d events, want 6", got)
	}
}

// Import and Export refuse what they cannot work with.
func TestExportImportArguments(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "args")
	_, err := s.Export(testCtx(t), nil)
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	_, err = s.Import(testCtx(t), nil)
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	var nilStore *rita.EventStore
	_, err = nilStore.Import(testCtx(t), strings.NewReader(""))
	requireErrorIs(t, err, rita.ErrInvalidArgument)
	_, err = s.Export(context.Background(), &bytes.Buffer{}, rita.WithSnapshot(rita.SnapshotConfig{Version: "1"}))
	requireErrorIs(t, err, rita.ErrInvalidOption)
	res, err := s.Import(testCtx(t), strings.NewReader("\n  \n"))
	requireNoError(t, err)
	if res != (rita.ImportResult{}) {
		t.Fatalf("import of blank lines = %+v", res)
	}
}
