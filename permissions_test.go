package rita_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
)

// authServer starts a server whose users and accounts are those of conf, a
// nats-server configuration (its authorization or accounts block), and
// returns its client URL.
func authServer(t *testing.T, conf string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("configuration refused: %v\n%s", err, conf)
	}
	srv, err := embedded.Start(context.Background(), embedded.Options{
		Configure: func(o *server.Options) {
			o.Users, o.Accounts, o.Nkeys = parsed.Users, parsed.Accounts, parsed.Nkeys
			o.NoAuthUser = parsed.NoAuthUser
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// userEntry is a user of an authorization block with the permissions of
// roles on store, as Permissions prints them.
func userEntry(t *testing.T, name, store string, roles ...rita.Role) string {
	t.Helper()
	p, err := rita.Permissions(store, roles...)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("{ user: %s, password: %s\n%s}\n", name, name, p)
}

// connectAs connects to url as user (whose password is its name) and makes
// a Manager with the bank's types.
func connectAs(t *testing.T, url, user string) *rita.Manager {
	t.Helper()
	return connectWith(t, url, user, rita.WithRegistry(newRegistry(t, bankTypes())))
}

// connectWith connects to url as user and makes a Manager with opts.
func connectWith(t *testing.T, url, user string, opts ...rita.ManagerOption) *rita.Manager {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { t.Logf("%s: async error: %v", user, err) }))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	m, err := rita.New(nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// roleServer runs a server with a user per role on store "a", an admin of
// store "b", and a reader of "a" that may not subscribe to its inboxes.
func roleServer(t *testing.T) string {
	t.Helper()
	var users strings.Builder
	for _, r := range rita.Roles() {
		users.WriteString(userEntry(t, string(r), "a", r))
	}
	users.WriteString(userEntry(t, "adminb", "b", rita.RoleAdmin))
	users.WriteString(userEntry(t, "writerb", "b", rita.RoleWriter))
	p, _ := rita.Permissions("a", rita.RoleReader)
	p.Subscribe = []string{"nothing.>"}
	fmt.Fprintf(&users, "{ user: noinbox, password: noinbox\n%s}\n", p)
	return authServer(t, "authorization {\n users = [\n"+users.String()+"]\n}\n")
}

func depositOf(account string, amount int) *rita.Command {
	return &rita.Command{Data: &depositCmd{Account: account, Amount: amount}}
}

// TestPermissionsRoles runs the work of each role with exactly the
// permissions Permissions gives it.
func TestPermissionsRoles(t *testing.T) {
	url := roleServer(t)
	ctx := testCtx(t)

	// admin: create, update, inspect.
	admin := connectAs(t, url, "admin")
	if _, err := admin.CreateEventStore(ctx, rita.EventStoreConfig{Name: "a"}); err != nil {
		t.Fatalf("admin: create: %v", err)
	}
	if err := admin.UpdateEventStore(ctx, rita.EventStoreConfig{Name: "a", Description: "accounts"}); err != nil {
		t.Fatalf("admin: update: %v", err)
	}
	for info, err := range admin.EventStores(ctx) {
		if err != nil || info.Config.Name != "a" {
			t.Fatalf("admin: list: %v, %+v", err, info)
		}
	}

	// writer: append, decide, a conflict, a duplicate.
	writer := connectAs(t, url, "writer")
	ws, err := writer.GetEventStore(ctx, "a")
	requireNoError(t, err)
	model := rita.NewModel(newLedger())
	for i := range 3 {
		if _, _, err := ws.DecideAndEvolveWithRetry(ctx, model, depositOf(fmt.Sprint(i%2), 10)); err != nil {
			t.Fatalf("writer: decide: %v", err)
		}
	}
	batch := []*rita.Event{
		{Entity: accountEntity("0"), Data: &depositedEvt{Amount: 1}},
		{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 1}},
	}
	if _, err := ws.Append(ctx, batch); err != nil {
		t.Fatalf("writer: batch: %v", err)
	}
	if _, err := ws.Append(ctx, batch); !errors.Is(err, rita.ErrDuplicateEvent) {
		t.Fatalf("writer: batch again: %v, want ErrDuplicateEvent", err)
	}
	stale := []*rita.Event{{Entity: accountEntity("0"), Data: &depositedEvt{Amount: 1}, Expect: rita.ExpectSequence(1)}}
	if _, err := ws.Append(ctx, stale); !errors.Is(err, rita.ErrSequenceConflict) {
		t.Fatalf("writer: stale append: %v, want ErrSequenceConflict", err)
	}
	stale2 := rita.NewModel(newLedger())
	if _, _, err := ws.DecideAndEvolveWithRetry(ctx, stale2, depositOf("0", 5)); err != nil {
		t.Fatalf("writer: decide on a stale model: %v", err)
	}

	// reader: evolve one entity, a filter, with a snapshot; watch.
	reader := connectAs(t, url, "reader")
	rs, err := reader.GetEventStore(ctx, "a")
	requireNoError(t, err)
	info, err := rs.Info(ctx)
	requireNoError(t, err)
	snap := rita.SnapshotConfig{Version: "1", Every: 1}
	for _, opts := range [][]rita.EvolveOption{
		{rita.WithFilters("account.0")},
		{rita.WithFilters("account.*")},
	} {
		if _, err := rs.Evolve(ctx, rita.NewModel(newLedger()), opts...); err != nil {
			t.Fatalf("reader: evolve %v: %v", opts, err)
		}
	}
	for range 2 { // saves a snapshot, then starts from it
		if _, err := rs.Evolve(ctx, rita.NewModel(&total{}), rita.WithFilters("account.0"), rita.WithSnapshot(snap)); err != nil {
			t.Fatalf("reader: evolve with a snapshot: %v", err)
		}
	}
	watched := rita.NewModel(newLedger())
	w, err := rs.Watch(ctx, watched)
	requireNoError(t, err)
	seq, err := ws.Append(ctx, []*rita.Event{{Entity: accountEntity("2"), Data: &depositedEvt{Amount: 7}}})
	requireNoError(t, err)
	requireNoError(t, w.WaitFor(ctx, seq))
	w.Stop()
	if watched.Sequence() != seq || info.LastSequence == 0 {
		t.Fatalf("reader: watched up to %d, want %d", watched.Sequence(), seq)
	}

	// consumer: durable watch, react (parking one event), project, parked.
	consumer := connectAs(t, url, "consumer")
	cs, err := consumer.GetEventStore(ctx, "a")
	requireNoError(t, err)
	d := cs.Durable("ledger")
	sub, err := d.Watch(ctx, rita.NewModel(newLedger()))
	requireNoError(t, err)
	requireNoError(t, d.WaitCaughtUp(ctx))
	requireNoError(t, sub.Stop(ctx))
	if _, err := d.Progress(ctx); err != nil {
		t.Fatalf("consumer: progress: %v", err)
	}
	r := cs.Durable("mailer")
	rsub, err := r.React(ctx, func(_ context.Context, e *rita.Event) error {
		if e.Entity == accountEntity("2") {
			return fmt.Errorf("no address: %w", rita.ErrUnprocessable)
		}
		return nil
	})
	requireNoError(t, err)
	requireNoError(t, r.WaitCaughtUp(ctx))
	requireNoError(t, rsub.Stop(ctx))
	parked, err := r.Parked(ctx)
	requireNoError(t, err)
	if len(parked) != 1 {
		t.Fatalf("consumer: %d parked, want 1", len(parked))
	}
	if _, err := r.GetParked(ctx, parked[0].Event.Sequence()); err != nil {
		t.Fatalf("consumer: get parked: %v", err)
	}
	requireNoError(t, r.DeleteParked(ctx, parked[0].Event.Sequence()))
	db := newMemDB()
	psub, err := cs.Project(ctx, db)
	requireNoError(t, err)
	requireNoError(t, psub.Stop(ctx))
	if last, _ := db.state(); last != seq {
		t.Fatalf("consumer: projected up to %d, want %d", last, seq)
	}

	// admin: rebuild and delete a durable consumer, delete the store.
	as, err := admin.GetEventStore(ctx, "a")
	requireNoError(t, err)
	requireNoError(t, as.Durable("ledger").Rebuild(ctx, 0))
	requireNoError(t, as.Durable("mailer").Delete(ctx))
	requireNoError(t, admin.DeleteEventStore(ctx, "a"))
}

// TestPermissionsRefused checks that a call outside a role's permissions
// fails at once with ErrPermissionDenied, naming the subject refused.
func TestPermissionsRefused(t *testing.T) {
	url := roleServer(t)
	ctx := testCtx(t)
	admin := connectAs(t, url, "admin")
	_, err := admin.CreateEventStore(ctx, rita.EventStoreConfig{Name: "a"})
	requireNoError(t, err)
	_, err = connectAs(t, url, "adminb").CreateEventStore(ctx, rita.EventStoreConfig{Name: "b"})
	requireNoError(t, err)
	seq := appendN(t, mustGet(t, connectAs(t, url, "writer"), "a"), "account.1", "deposited", 3)
	// A durable consumer that ran and stopped, for the admin's calls.
	x := mustGet(t, connectAs(t, url, "consumer"), "a").Durable("x")
	sub, err := x.React(ctx, func(context.Context, *rita.Event) error { return nil })
	requireNoError(t, err)
	requireNoError(t, x.WaitCaughtUp(ctx)) // it learnt its pin, which Stop releases
	requireNoError(t, sub.Stop(ctx))
	eventually(t, 10*time.Second, func() bool {
		p, err := x.Progress(ctx)
		return err == nil && !p.Active
	}, "x still active after Stop")

	event := func() []*rita.Event {
		return []*rita.Event{{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 1}}}
	}
	tests := []struct {
		name, user string
		call       func(ctx context.Context, m *rita.Manager) error
		subject    string
	}{
		{"a reader cannot append", "reader", func(ctx context.Context, m *rita.Manager) error {
			_, err := mustGet(t, m, "a").Append(ctx, event())
			return err
		}, `"$ES.a.account.1.deposited"`},
		{"a reader cannot append a batch", "reader", func(ctx context.Context, m *rita.Manager) error {
			_, err := mustGet(t, m, "a").Append(ctx, append(event(), event()...))
			return err
		}, `"$ES.a.account.1.deposited"`},
		{"a writer of b cannot open a", "writerb", func(ctx context.Context, m *rita.Manager) error {
			_, err := m.GetEventStore(ctx, "a")
			return err
		}, `"$JS.API.STREAM.INFO.ES_a"`},
		{"a writer of a cannot create b", "writer", func(ctx context.Context, m *rita.Manager) error {
			_, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "b"})
			return err
		}, `"$JS.API.STREAM.CREATE.ES_b"`},
		{"a consumer cannot delete the store", "consumer", func(ctx context.Context, m *rita.Manager) error {
			return m.DeleteEventStore(ctx, "a")
		}, `"$JS.API.STREAM.DELETE.ES_a"`},
		{"a consumer cannot rebuild", "consumer", func(ctx context.Context, m *rita.Manager) error {
			return mustGet(t, m, "a").Durable("x").Rebuild(ctx, 0)
		}, `"$JS.API.STREAM.PURGE.ES_a_PARKED"`},
		{"a reader cannot run a durable consumer", "reader", func(ctx context.Context, m *rita.Manager) error {
			_, err := mustGet(t, m, "a").Durable("x").React(ctx, func(context.Context, *rita.Event) error { return nil })
			return err
		}, `"$JS.API.STREAM.INFO.ES_a_PARKED"`},
		{"a reader cannot list the stores", "reader", func(ctx context.Context, m *rita.Manager) error {
			for _, err := range m.EventStores(ctx) {
				return err
			}
			return nil
		}, `"$JS.API.STREAM.LIST"`},
		{"without its inbox a reader reads nothing", "noinbox", func(ctx context.Context, m *rita.Manager) error {
			_, err := m.GetEventStore(ctx, "a")
			return err
		}, `subscribe "_INBOX.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			m := connectAs(t, url, tt.user)
			start := time.Now()
			err := tt.call(ctx, m)
			took := time.Since(start)
			requireErrorIs(t, err, rita.ErrPermissionDenied)
			if !strings.Contains(err.Error(), tt.subject) {
				t.Fatalf("error does not name %s: %v", tt.subject, err)
			}
			// The first attempt of a request waits a second for an answer:
			// a refusal must not.
			if took >= time.Second {
				t.Fatalf("refused after %v, want at once", took)
			}
			t.Logf("%v after %v", err, took)
		})
	}

	// Nothing of the refused appends was stored.
	if info, err := mustGet(t, admin, "a").Info(ctx); err != nil || info.LastSequence != seq {
		t.Fatalf("store a at %v (%v), want %d", info, err, seq)
	}
}

// TestPermissionsAccounts checks that stores of the same name in two
// accounts are two stores.
func TestPermissionsAccounts(t *testing.T) {
	url := authServer(t, `accounts {
  red: { jetstream: enabled, users: [ { user: red, password: red } ] }
  blue: { jetstream: enabled, users: [ { user: blue, password: blue } ] }
}`)
	ctx := testCtx(t)
	red, blue := connectWith(t, url, "red"), connectWith(t, url, "blue")
	rs, err := red.CreateEventStore(ctx, rita.EventStoreConfig{Name: "orders"})
	requireNoError(t, err)
	bs, err := blue.CreateEventStore(ctx, rita.EventStoreConfig{Name: "orders"})
	requireNoError(t, err)
	appendN(t, rs, "account.red", "deposited", 3)
	appendN(t, bs, "account.blue", "deposited", 2)
	for _, tt := range []struct {
		s      *rita.EventStore
		entity string
		n      int
	}{{rs, "account.red", 3}, {bs, "account.blue", 2}} {
		rec := &recorder{}
		if _, err := tt.s.Evolve(ctx, rec); err != nil {
			t.Fatal(err)
		}
		for _, e := range rec.all() {
			if e.Entity != tt.entity {
				t.Fatalf("saw %s's event %s", tt.entity, e.Entity)
			}
		}
		if rec.count() != tt.n {
			t.Fatalf("%d events, want %d", rec.count(), tt.n)
		}
	}
}

func mustGet(t *testing.T, m *rita.Manager, name string) *rita.EventStore {
	t.Helper()
	s, err := m.GetEventStore(testCtx(t), name)
	if err != nil {
		t.Fatalf("GetEventStore(%q): %v", name, err)
	}
	return s
}

// total sums the deposits of one account, and snapshots as a whole.
type total struct{ Amount int }

func (s *total) Evolve(e *rita.Event) error {
	if d, ok := e.Data.(*depositedEvt); ok {
		s.Amount += d.Amount
	}
	return nil
}

func (s *total) MarshalBinary() ([]byte, error) { return []byte(strconv.Itoa(s.Amount)), nil }

func (s *total) UnmarshalBinary(b []byte) (err error) {
	s.Amount, err = strconv.Atoi(string(b))
	return err
}

// TestPermissionsErrorHandler checks that a refusal still fails at once
// after the application replaced the connection's error handler, and that
// its handler still hears of it.
func TestPermissionsErrorHandler(t *testing.T) {
	url := roleServer(t)
	ctx := testCtx(t)
	_, err := connectAs(t, url, "admin").CreateEventStore(ctx, rita.EventStoreConfig{Name: "a"})
	requireNoError(t, err)
	nc, err := nats.Connect(url, nats.UserInfo("reader", "reader"))
	requireNoError(t, err)
	t.Cleanup(nc.Close)
	m, err := rita.New(nc, rita.WithRegistry(newRegistry(t, bankTypes())))
	requireNoError(t, err)
	s := mustGet(t, m, "a")
	heard := make(chan error, 10)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { heard <- err })
	start := time.Now()
	_, err = s.Append(ctx, []*rita.Event{{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 1}}})
	requireErrorIs(t, err, rita.ErrPermissionDenied)
	if took := time.Since(start); took >= time.Second {
		t.Fatalf("refused after %v, want at once", took)
	}
	select {
	case err := <-heard:
		requireErrorIs(t, err, nats.ErrPermissionViolation)
	case <-ctx.Done():
		t.Fatal("the application's error handler did not hear of the refusal")
	}
}

// TestPermissionsDoc checks that docs/permissions.md shows the blocks
// Permissions prints.
func TestPermissionsDoc(t *testing.T) {
	doc, err := os.ReadFile("docs/permissions.md")
	requireNoError(t, err)
	for _, r := range rita.Roles() {
		p, err := rita.Permissions("orders", r)
		requireNoError(t, err)
		if !strings.Contains(string(doc), "```text\n"+p.String()+"```\n") {
			t.Errorf("docs/permissions.md lacks the %s block:\n%s", r, p)
		}
	}
}

func TestPermissionsRefusesBadInput(t *testing.T) {
	tests := []struct {
		store string
		roles []rita.Role
		want  error
	}{
		{"", nil, rita.ErrEventStoreNameRequired},
		{"a.b", nil, rita.ErrEventStoreNameInvalid},
		{"a", []rita.Role{"owner"}, rita.ErrInvalidArgument},
	}
	for _, tt := range tests {
		_, err := rita.Permissions(tt.store, tt.roles...)
		requireErrorIs(t, err, tt.want)
	}
	all, err := rita.Permissions("a")
	requireNoError(t, err)
	for _, r := range rita.Roles() {
		p, _ := rita.Permissions("a", r)
		for _, subj := range p.Publish {
			if !slices.Contains(all.Publish, subj) {
				t.Errorf("every role's permissions lack %s of %s", subj, r)
			}
		}
	}
}
