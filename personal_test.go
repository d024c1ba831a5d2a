package rita_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// The personal data of these tests: a customer's e-mail address in the
// payload of "registered" events; "ordered" events hold none.
const email = "ada@example.com"

func testKeys(t *testing.T, id string, fill byte) rita.KeyProvider {
	t.Helper()
	p, err := rita.NewAESKeyProvider(id, map[string][]byte{id: bytes.Repeat([]byte{fill}, 32)})
	requireNoError(t, err)
	return p
}

func encryption(t *testing.T, ttl time.Duration) rita.ManagerOption {
	return rita.WithEncryption(rita.EncryptionConfig{
		Keys:          testKeys(t, "k1", 7),
		PersonalTypes: []string{"registered"},
		KeyCacheTTL:   ttl,
	})
}

func registered(entity string) *rita.Event {
	return &rita.Event{Entity: entity, Type: "registered", Data: []byte(`{"email":"` + email + `"}`)}
}

func ordered(entity string) *rita.Event {
	return &rita.Event{Entity: entity, Type: "ordered", Data: []byte(`{"item":"tea"}`)}
}

// collect replays the store and returns every event.
func collect(t *testing.T, s *rita.EventStore, opts ...rita.EvolveOption) []*rita.Event {
	t.Helper()
	var out []*rita.Event
	_, err := s.Evolve(testCtx(t), rita.EvolverFunc(func(e *rita.Event) error { out = append(out, e); return nil }), opts...)
	requireNoError(t, err)
	return out
}

func dataOf(e *rita.Event) string {
	b, _ := e.Data.([]byte)
	return string(b)
}

// TestEncryptionStoresCiphertext checks that a personal payload is stored
// encrypted (raw JetStream never sees the plaintext) and that every read
// path gives it back: Evolve through a consumer and through direct gets,
// Watch, a durable consumer, a projection and a snapshot.
func TestEncryptionStoresCiphertext(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, encryption(t, time.Minute))
	s := createStore(t, m, "crm")
	ctx := testCtx(t)
	appendEach(t, s, registered("customer.1"), ordered("customer.1"), registered("customer.2"))

	for seq := uint64(1); seq <= 3; seq++ {
		msg := e.rawMsg(t, "crm", seq)
		personal := msg.Header.Get("Rita-Type") == "registered"
		if personal && bytes.Contains(msg.Data, []byte(email)) {
			t.Fatalf("event %d: personal data stored in the clear: %q", seq, msg.Data)
		}
		if !personal && string(msg.Data) != `{"item":"tea"}` {
			t.Fatalf("event %d: a payload that is not personal is stored as %q", seq, msg.Data)
		}
		if got := msg.Header.Get("Rita-Encrypted"); (got != "") != personal {
			t.Fatalf("event %d: Rita-Encrypted %q for a personal payload: %v", seq, got, personal)
		}
	}
	// The keys are in the store's key bucket, wrapped: the bucket holds
	// no key that opens a payload by itself.
	kv, err := e.js.KeyValue(ctx, "rita-keys-crm")
	requireNoError(t, err)
	entry, err := kv.Get(ctx, "customer.1")
	requireNoError(t, err)
	if !strings.Contains(string(entry.Value()), `"kid":"k1"`) || !strings.Contains(string(entry.Value()), `"v":`) {
		t.Fatalf("key entry %q, want a version and a key wrapped by k1", entry.Value())
	}
	if v := e.rawMsg(t, "crm", 1).Header.Get("Rita-Encrypted"); !strings.Contains(string(entry.Value()), `"v":`+v+`,`) {
		t.Fatalf("the payload names key version %s; the key entry is %s", v, entry.Value())
	}

	want := []string{`{"email":"` + email + `"}`, `{"item":"tea"}`, `{"email":"` + email + `"}`}
	check := func(path string, got []*rita.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", path, len(got), len(want))
		}
		for i, ev := range got {
			if dataOf(ev) != want[i] || ev.Forgotten() {
				t.Fatalf("%s: event %d: %q (forgotten %v), want %q", path, i+1, dataOf(ev), ev.Forgotten(), want[i])
			}
		}
	}
	check("Evolve", collect(t, s))
	one := collect(t, s, rita.WithFilters("customer.1")) // direct gets
	if len(one) != 2 || dataOf(one[0]) != want[0] {
		t.Fatalf("Evolve of customer.1: %v", one)
	}

	rec := &recorder{}
	w, err := s.Watch(ctx, rec)
	requireNoError(t, err)
	check("Watch", rec.all())
	w.Stop()

	var mu sync.Mutex
	var reacted []*rita.Event
	sub, err := s.Durable("mailer").React(ctx, func(_ context.Context, ev *rita.Event) error {
		mu.Lock()
		defer mu.Unlock()
		reacted = append(reacted, ev)
		return nil
	})
	requireNoError(t, err)
	requireNoError(t, s.Durable("mailer").WaitCaughtUp(ctx))
	requireNoError(t, sub.Stop(ctx))
	mu.Lock()
	// Entities are handled in parallel: in sequence order per entity only.
	slices.SortFunc(reacted, func(a, b *rita.Event) int { return cmp.Compare(a.Sequence(), b.Sequence()) })
	check("React", reacted)
	mu.Unlock()

	// A snapshot of an entity with personal events is sealed with its key.
	snap := rita.SnapshotConfig{Version: "1", Every: 1}
	_, err = s.Evolve(ctx, rita.NewModel(&snapState{}), rita.WithFilters("customer.1"), rita.WithSnapshot(snap))
	requireNoError(t, err)
	raw, err := e.js.KeyValue(ctx, "rita-snapshots-crm")
	requireNoError(t, err)
	keys, err := raw.ListKeys(ctx)
	requireNoError(t, err)
	for k := range keys.Keys() {
		v, err := raw.Get(ctx, k)
		requireNoError(t, err)
		if bytes.Contains(v.Value(), []byte("customer")) || bytes.Contains(v.Value(), []byte(`"ids"`)) {
			t.Fatalf("snapshot %s stored in the clear: %q", k, v.Value())
		}
	}
	restored := rita.NewModel(&snapState{})
	_, err = s.Evolve(ctx, restored, rita.WithFilters("customer.1"), rita.WithSnapshot(snap))
	requireNoError(t, err)
	var calls, ids int
	_ = restored.View(func(st *snapState) error { calls, ids = st.calls, len(st.IDs); return nil })
	if calls != 0 || ids != 2 {
		t.Fatalf("restored from the snapshot with %d events applied and %d recorded; want 0 and 2", calls, ids)
	}
}

// TestForget checks forgetting an entity: its personal events replay as
// forgotten, in order, with their non-personal parts; its other events and
// other entities are untouched; its key and snapshots are gone from the
// server; its next events get a new key.
func TestForget(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, encryption(t, time.Minute))
	s := createStore(t, m, "crm")
	ctx := testCtx(t)
	appendEach(t, s, registered("customer.1"), ordered("customer.1"), registered("customer.2"))
	snap := rita.SnapshotConfig{Version: "1", Every: 1}
	_, err := s.Evolve(ctx, rita.NewModel(&snapState{}), rita.WithFilters("customer.1"), rita.WithSnapshot(snap))
	requireNoError(t, err)

	requireNoError(t, s.Forget(ctx, "customer.1"))

	got := collect(t, s)
	if len(got) != 3 {
		t.Fatalf("replayed %d events after Forget, want all 3", len(got))
	}
	first := got[0]
	if !first.Forgotten() || first.Data != nil || first.Entity != "customer.1" || first.Type != "registered" || first.ID == "" || first.Sequence() != 1 {
		t.Fatalf("forgotten event: forgotten %v, data %v, entity %q, type %q, ID %q, sequence %d",
			first.Forgotten(), first.Data, first.Entity, first.Type, first.ID, first.Sequence())
	}
	if got[1].Forgotten() || dataOf(got[1]) != `{"item":"tea"}` {
		t.Fatalf("the entity's non-personal event: forgotten %v, %q", got[1].Forgotten(), dataOf(got[1]))
	}
	if got[2].Forgotten() || !strings.Contains(dataOf(got[2]), email) {
		t.Fatalf("another entity's event: forgotten %v, %q", got[2].Forgotten(), dataOf(got[2]))
	}

	// Nothing of the key is left on the server, and no snapshot.
	info, err := e.stream(t, "crm").Info(ctx) // the store itself is untouched
	requireNoError(t, err)
	if info.State.Msgs != 3 {
		t.Fatalf("the store holds %d events, want 3", info.State.Msgs)
	}
	keyStream, err := e.js.Stream(ctx, "KV_rita-keys-crm")
	requireNoError(t, err)
	ki, err := keyStream.Info(ctx, jetstream.WithSubjectFilter("$KV.rita-keys-crm.>"))
	requireNoError(t, err)
	if _, left := ki.State.Subjects["$KV.rita-keys-crm.customer.1"]; left || ki.State.Msgs != 1 {
		t.Fatalf("key stream after Forget: %d messages, subjects %v; want customer.2's only", ki.State.Msgs, ki.State.Subjects)
	}
	snapStream, err := e.js.Stream(ctx, "KV_rita-snapshots-crm")
	requireNoError(t, err)
	si, err := snapStream.Info(ctx)
	requireNoError(t, err)
	if si.State.Msgs != 0 {
		t.Fatalf("%d snapshots left after Forget, want 0", si.State.Msgs)
	}

	// A snapshot load of the entity reads its events, forgotten.
	model := rita.NewModel(&snapState{})
	_, err = s.Evolve(ctx, model, rita.WithFilters("customer.1"), rita.WithSnapshot(snap))
	requireNoError(t, err)

	// New events of the entity get a new key; the old ones stay forgotten.
	appendEach(t, s, registered("customer.1"))
	got = collect(t, s, rita.WithFilters("customer.1"))
	if len(got) != 3 || !got[0].Forgotten() || got[2].Forgotten() || !strings.Contains(dataOf(got[2]), email) {
		t.Fatalf("after a new event: %d events, first forgotten %v, new one forgotten %v", len(got), got[0].Forgotten(), got[2].Forgotten())
	}

	// Forgetting again, or an entity without a key, is no error.
	requireNoError(t, s.Forget(ctx, "customer.9"))
	requireErrorIs(t, s.Forget(ctx, "customer"), rita.ErrEventEntityInvalid)
	plain := e.manager(t)
	ps, err := plain.GetEventStore(ctx, "crm")
	requireNoError(t, err)
	requireErrorIs(t, ps.Forget(ctx, "customer.1"), rita.ErrInvalidOption)

	// Deleting the store deletes its key bucket.
	requireNoError(t, m.DeleteEventStore(ctx, "crm"))
	if _, err := e.js.KeyValue(ctx, "rita-keys-crm"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("the key bucket after DeleteEventStore: %v, want ErrBucketNotFound", err)
	}
}

// TestForgetAcrossProcesses checks that a process that has the key cached
// stops decrypting within its KeyCacheTTL once another process forgets
// the entity; a reactor there keeps going, with the marker.
func TestForgetAcrossProcesses(t *testing.T) {
	e := newEnv(t)
	const ttl = 500 * time.Millisecond
	a := e.manager(t, encryption(t, ttl))
	sa := createStore(t, a, "crm")
	ctx := testCtx(t)
	ncB := e.srv.Connect(t)
	b, err := rita.New(ncB, encryption(t, ttl))
	requireNoError(t, err)
	sb, err := b.GetEventStore(ctx, "crm")
	requireNoError(t, err)

	appendEach(t, sa, registered("customer.1"))
	if got := collect(t, sb); got[0].Forgotten() || !strings.Contains(dataOf(got[0]), email) {
		t.Fatalf("process B reads %q before Forget", dataOf(got[0]))
	}
	type seen struct {
		forgotten bool
		data      string
	}
	events := make(chan seen, 10)
	sub, err := sb.Durable("mailer").React(ctx, func(_ context.Context, ev *rita.Event) error {
		events <- seen{ev.Forgotten(), dataOf(ev)}
		return nil
	})
	requireNoError(t, err)
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	if s := <-events; s.forgotten || !strings.Contains(s.data, email) {
		t.Fatalf("B's reactor before Forget: %+v", s)
	}

	requireNoError(t, sa.Forget(ctx, "customer.1"))
	forgotAt := time.Now()
	if got := collect(t, sa); !got[0].Forgotten() {
		t.Fatal("the process that forgot still decrypts")
	}
	eventually(t, 5*time.Second, func() bool { return collect(t, sb)[0].Forgotten() }, "process B stops decrypting")
	if took := time.Since(forgotAt); took > ttl+time.Second {
		t.Fatalf("process B decrypted for %v after Forget, want at most its TTL %v (and a little)", took, ttl)
	}
	// B's reactor, on an event of the forgotten entity appended with A's
	// cached key... there is none: A forgot it, so the event gets a new
	// key, and B reads it.
	appendEach(t, sa, registered("customer.1"))
	if s := <-events; s.forgotten || !strings.Contains(s.data, email) {
		t.Fatalf("B's reactor on the entity's new event: %+v", s)
	}
}

// failingKeys is a KeyProvider that fails.
type failingKeys struct{ err error }

func (f failingKeys) WrapKey(context.Context, []byte) ([]byte, string, error) {
	return nil, "", f.err
}

func (f failingKeys) UnwrapKey(context.Context, []byte, string) ([]byte, error) {
	return nil, f.err
}

// TestEncryptionKeyErrors checks the failures: a provider that fails or
// holds the wrong key is a clear error that stores nothing; a reader
// without keys sees ciphertext, never plaintext; bad configurations are
// refused.
func TestEncryptionKeyErrors(t *testing.T) {
	e := newEnv(t)
	good := e.manager(t, encryption(t, time.Minute))
	s := createStore(t, good, "crm")
	ctx := testCtx(t)
	appendEach(t, s, registered("customer.1"))

	errKMS := errors.New("kms unreachable")
	for i, tc := range []struct {
		name string
		keys rita.KeyProvider
	}{
		{"failing provider", failingKeys{errKMS}},
		{"wrong key", testKeys(t, "k1", 9)},
		{"unknown key ID", testKeys(t, "k2", 7)},
	} {
		name, keys := tc.name, tc.keys
		t.Run(name, func(t *testing.T) {
			m := e.manager(t, rita.WithEncryption(rita.EncryptionConfig{Keys: keys, PersonalTypes: []string{"registered"}}))
			ws, err := m.GetEventStore(ctx, "crm")
			requireNoError(t, err)
			before := e.msgs(t, "crm")
			// customer.1 has a key this provider cannot unwrap; a new
			// entity needs a new key, which a failing provider cannot wrap.
			fresh := fmt.Sprintf("customer.new%d", i)
			for _, entity := range []string{"customer.1", fresh} {
				_, err = ws.Append(ctx, []*rita.Event{ordered(entity), registered(entity)})
				if name != "failing provider" && entity == fresh {
					requireNoError(t, err) // a new key, wrapped by this provider
					before += 2
					continue
				}
				requireErrorIs(t, err, rita.ErrEncryptionKey)
				if name == "failing provider" && !errors.Is(err, errKMS) {
					t.Fatalf("error %v does not wrap the provider's", err)
				}
			}
			if n := e.msgs(t, "crm"); n != before {
				t.Fatalf("the store holds %d events after refused appends, want %d", n, before)
			}
			_, err = ws.Evolve(ctx, rita.EvolverFunc(func(*rita.Event) error { return nil }), rita.WithFilters("customer.1"))
			requireErrorIs(t, err, rita.ErrEncryptionKey)
			requireErrorIs(t, err, rita.ErrEventDecode)
		})
	}

	// A Manager without keys reads the ciphertext.
	plain := e.manager(t)
	ps, err := plain.GetEventStore(ctx, "crm")
	requireNoError(t, err)
	got := collect(t, ps, rita.WithFilters("customer.1"))
	if got[0].Forgotten() || strings.Contains(dataOf(got[0]), email) || len(dataOf(got[0])) == 0 {
		t.Fatalf("a reader without keys got %q (forgotten %v), want the ciphertext", dataOf(got[0]), got[0].Forgotten())
	}

	for name, cfg := range map[string]rita.EncryptionConfig{
		"no provider":  {PersonalTypes: []string{"registered"}},
		"negative TTL": {Keys: testKeys(t, "k", 1), KeyCacheTTL: -time.Second},
		"bad type":     {Keys: testKeys(t, "k", 1), PersonalTypes: []string{"a.b"}},
	} {
		if _, err := rita.New(e.nc, rita.WithEncryption(cfg)); !errors.Is(err, rita.ErrInvalidOption) {
			t.Errorf("%s: New = %v, want ErrInvalidOption", name, err)
		}
	}
	for name, keys := range map[string]map[string][]byte{
		"short key":       {"k": make([]byte, 16)},
		"current missing": {"other": make([]byte, 32)},
	} {
		if _, err := rita.NewAESKeyProvider("k", keys); !errors.Is(err, rita.ErrInvalidOption) {
			t.Errorf("%s: NewAESKeyProvider = %v, want ErrInvalidOption", name, err)
		}
	}
}

// TestKeyRotation checks that a provider given a new current key wraps new
// data keys with it and still unwraps those the old one wrapped.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	old := bytes.Repeat([]byte{1}, 32)
	p1, err := rita.NewAESKeyProvider("2025", map[string][]byte{"2025": old})
	requireNoError(t, err)
	m1 := e.manager(t, rita.WithEncryption(rita.EncryptionConfig{Keys: p1, PersonalTypes: []string{"registered"}}))
	s1 := createStore(t, m1, "crm")
	appendEach(t, s1, registered("customer.1"))

	p2, err := rita.NewAESKeyProvider("2026", map[string][]byte{"2025": old, "2026": bytes.Repeat([]byte{2}, 32)})
	requireNoError(t, err)
	m2 := e.manager(t, rita.WithEncryption(rita.EncryptionConfig{Keys: p2, PersonalTypes: []string{"registered"}}))
	s2, err := m2.GetEventStore(testCtx(t), "crm")
	requireNoError(t, err)
	appendEach(t, s2, registered("customer.2"))
	for _, ev := range collect(t, s2) {
		if !strings.Contains(dataOf(ev), email) {
			t.Fatalf("event of %s not read after rotation: %q", ev.Entity, dataOf(ev))
		}
	}
	kv, err := e.js.KeyValue(testCtx(t), "rita-keys-crm")
	requireNoError(t, err)
	entry, err := kv.Get(testCtx(t), "customer.2")
	requireNoError(t, err)
	if !strings.Contains(string(entry.Value()), `"kid":"2026"`) {
		t.Fatalf("a new data key is wrapped as %s, want by 2026", entry.Value())
	}
}

// TestPurgeEntity checks the physical removal of an entity: its events,
// key and snapshots are gone, other entities stay, and an expectation on
// the entity sees it as new.
func TestPurgeEntity(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, encryption(t, time.Minute))
	s := createStore(t, m, "crm")
	ctx := testCtx(t)
	appendEach(t, s, registered("customer.1"), ordered("customer.2"), ordered("customer.1"), registered("customer.2"))

	requireNoError(t, s.PurgeEntity(ctx, "customer.1"))
	got := collect(t, s)
	var seqs []uint64
	for _, ev := range got {
		if ev.Entity != "customer.2" {
			t.Fatalf("event %d of %s left after the purge", ev.Sequence(), ev.Entity)
		}
		seqs = append(seqs, ev.Sequence())
	}
	requireSeqs(t, seqs, []uint64{2, 4})
	kv, err := e.js.KeyValue(ctx, "rita-keys-crm")
	requireNoError(t, err)
	if _, err := kv.Get(ctx, "customer.1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the purged entity's key: %v, want ErrKeyNotFound", err)
	}

	// The entity starts anew: an expectation of no events holds, and new
	// events take new sequences.
	ev := ordered("customer.1")
	ev.Expect = rita.ExpectSequence(0)
	seq, err := s.Append(ctx, []*rita.Event{ev})
	requireNoError(t, err)
	if seq != 5 {
		t.Fatalf("the first event after the purge is at %d, want 5", seq)
	}
	requireErrorIs(t, s.PurgeEntity(ctx, "customer"), rita.ErrEventEntityInvalid)
	// Without WithEncryption, a purge removes the events alone.
	plain := e.manager(t)
	ps, err := plain.GetEventStore(ctx, "crm")
	requireNoError(t, err)
	requireNoError(t, ps.PurgeEntity(ctx, "customer.2"))
	if n := e.msgs(t, "crm"); n != 1 {
		t.Fatalf("%d events after purging customer.2, want 1", n)
	}
}

// TestExportEncrypted checks that an export carries an encrypted payload as
// its ciphertext with its key version, and that an import keeps both: the
// imported store reads it with the data keys of the store it came from
// (none here, so it reads as forgotten), never as plaintext.
func TestExportEncrypted(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, encryption(t, time.Minute))
	s := createStore(t, m, "crm")
	ctx := testCtx(t)
	appendEach(t, s, registered("customer.1"), ordered("customer.1"))

	var buf bytes.Buffer
	_, err := s.Export(ctx, &buf)
	requireNoError(t, err)
	if strings.Contains(buf.String(), email) || !strings.Contains(buf.String(), `"key":`) {
		t.Fatalf("export of encrypted payloads:\n%s", buf.String())
	}
	copied := createStore(t, m, "crm2")
	_, err = copied.Import(ctx, &buf)
	requireNoError(t, err)
	if got, want := e.rawMsg(t, "crm2", 1).Header.Get("Rita-Encrypted"), e.rawMsg(t, "crm", 1).Header.Get("Rita-Encrypted"); got == "" || got != want {
		t.Fatalf("imported key version %q, want %q", got, want)
	}
	got := collect(t, copied)
	if !got[0].Forgotten() || got[1].Forgotten() || dataOf(got[1]) != `{"item":"tea"}` {
		t.Fatalf("the copy without its keys reads: forgotten %v, %v %q", got[0].Forgotten(), got[1].Forgotten(), dataOf(got[1]))
	}
}

// TestPersonalDataPermissions checks that the roles' documented permissions
// cover personal data: a writer makes keys and appends encrypted events, a
// reader and a durable consumer decrypt them, an administrator forgets and
// purges entities and deletes the store with its key bucket; a reader
// cannot forget.
func TestPersonalDataPermissions(t *testing.T) {
	url := roleServer(t) // users of store "a": reader, writer, consumer, admin
	ctx := testCtx(t)
	enc := encryption(t, time.Minute)
	admin := connectWith(t, url, "admin", enc)
	_, err := admin.CreateEventStore(ctx, rita.EventStoreConfig{Name: "a"})
	requireNoError(t, err)

	ws := mustGet(t, connectWith(t, url, "writer", enc), "a")
	appendEach(t, ws, registered("customer.1"), ordered("customer.1"), registered("customer.2"))

	rs := mustGet(t, connectWith(t, url, "reader", enc), "a")
	if got := collect(t, rs); len(got) != 3 || !strings.Contains(dataOf(got[0]), email) {
		t.Fatalf("reader: %d events, first %q", len(got), dataOf(got[0]))
	}
	requireErrorIs(t, rs.Forget(ctx, "customer.1"), rita.ErrPermissionDenied)

	cs := mustGet(t, connectWith(t, url, "consumer", enc), "a")
	seen := make(chan string, 3)
	sub, err := cs.Durable("mailer").React(ctx, func(_ context.Context, ev *rita.Event) error {
		seen <- dataOf(ev)
		return nil
	})
	requireNoError(t, err)
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	if d := <-seen; !strings.Contains(d, email) && d != `{"item":"tea"}` {
		t.Fatalf("consumer read %q", d)
	}

	as := mustGet(t, admin, "a")
	requireNoError(t, as.Forget(ctx, "customer.1"))
	requireNoError(t, as.PurgeEntity(ctx, "customer.2"))
	requireNoError(t, sub.Stop(ctx))
	requireNoError(t, admin.DeleteEventStore(ctx, "a"))
}
