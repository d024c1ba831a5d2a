// Command sqlite-projection keeps a read model of orders in SQLite with
// rita.Project. Each event's rows and the event's sequence (the checkpoint)
// are written in one transaction, so the projection needs no durable
// consumer: a run that stops, crashes or is started twice applies every event
// exactly once, and each run resumes after the checkpoint in the database.
//
// It starts an embedded nats-server with JetStream (or uses NATS_URL, in a
// store of its own that it deletes at the end) and keeps the SQLite database
// (modernc.org/sqlite, pure Go) in a temporary directory.
//
// It lives in a module of its own, so that the rita module does not depend on
// SQLite:
//
//	cd examples/sqlite-projection && go run .
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/embedded"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/types"
)

// The events of an order.
type (
	OrderPlaced struct {
		Customer string `json:"customer"`
		Total    int    `json:"total"`
	}
	OrderPaid    struct{}
	OrderShipped struct{}
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sqlite-projection:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	storeName, url := "shop", os.Getenv("NATS_URL")
	if url == "" {
		srv, err := embedded.Start(ctx, embedded.Options{})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url = srv.ClientURL()
		say("nats: started an embedded nats-server with JetStream")
	} else {
		storeName = "shop_" + id.NUID.New()
		say("nats: using the server at NATS_URL")
	}
	nc, err := nats.Connect(url, nats.Name("rita sqlite-projection example"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()

	reg, err := types.NewRegistry(map[string]*types.Type{
		"placed":  {Init: func() any { return &OrderPlaced{} }},
		"paid":    {Init: func() any { return &OrderPaid{} }},
		"shipped": {Init: func() any { return &OrderShipped{} }},
	})
	if err != nil {
		return err
	}
	m, err := rita.New(nc, rita.WithRegistry(reg))
	if err != nil {
		return err
	}
	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: storeName})
	if err != nil {
		return err
	}
	if os.Getenv("NATS_URL") != "" {
		defer m.DeleteEventStore(context.Background(), storeName)
	}

	appendEvents := func(events ...*rita.Event) (uint64, error) {
		var last uint64
		for _, e := range events {
			seq, err := store.Append(ctx, []*rita.Event{e})
			if err != nil {
				return 0, err
			}
			last = seq
		}
		return last, nil
	}
	if _, err := appendEvents(
		&rita.Event{Entity: "order.1", Data: &OrderPlaced{Customer: "alice", Total: 30}},
		&rita.Event{Entity: "order.2", Data: &OrderPlaced{Customer: "bob", Total: 12}},
		&rita.Event{Entity: "order.3", Data: &OrderPlaced{Customer: "carol", Total: 55}},
		&rita.Event{Entity: "order.1", Data: &OrderPaid{}},
		&rita.Event{Entity: "order.2", Data: &OrderPaid{}},
		&rita.Event{Entity: "order.1", Data: &OrderShipped{}},
	); err != nil {
		return err
	}
	say("store: appended 6 events to %s", storeName)

	dir, err := os.MkdirTemp("", "rita-sqlite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "orders.db")

	// Run 1: the process "crashes" in the middle of event 5's transaction.
	db, err := openDB(path)
	if err != nil {
		return err
	}
	p := &orders{db: db, crashAt: 5}
	_, err = store.Project(ctx, p, rita.WithMaxAttempts(1), rita.WithErrHandler(quiet))
	if !errors.Is(err, rita.ErrProjectionHalted) {
		return fmt.Errorf("run 1 should halt at event 5, got %v", err)
	}
	cp, _ := p.LastSequence(ctx)
	say("run 1: halted at event 5, whose transaction was rolled back; checkpoint %d", cp)
	if err := show(ctx, db, say); err != nil {
		return err
	}
	db.Close() // the process is gone; the database stays

	// Meanwhile, more happens.
	if _, err := appendEvents(&rita.Event{Entity: "order.2", Data: &OrderShipped{}}); err != nil {
		return err
	}

	// Run 2: a new process resumes after the checkpoint in the database.
	if db, err = openDB(path); err != nil {
		return err
	}
	defer db.Close()
	p = &orders{db: db}
	from, _ := p.LastSequence(ctx)
	w, err := store.Project(ctx, p, rita.WithFilters("order")) // returns once caught up
	if err != nil {
		return err
	}
	defer w.Stop(ctx)
	cp, _ = p.LastSequence(ctx)
	say("run 2: resumed after sequence %d, checkpoint now %d", from, cp)

	// It keeps up with new events.
	last, err := appendEvents(&rita.Event{Entity: "order.4", Data: &OrderPlaced{Customer: "dave", Total: 7}})
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if cp, _ = p.LastSequence(ctx); cp >= last {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the projection did not apply the new event")
		}
	}
	say("live: event %d applied, checkpoint %d", last, cp)
	if err := show(ctx, db, say); err != nil {
		return err
	}

	// Check: every event was committed once, and the read model is what a
	// fresh replay into an empty database gives.
	var commits, events int
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT seq) FROM applied`).Scan(&commits, &events); err != nil {
		return err
	}
	say("check: %d events committed, %d commits", events, commits)
	fresh, err := openDB(filepath.Join(dir, "fresh.db"))
	if err != nil {
		return err
	}
	defer fresh.Close()
	fw, err := store.Project(ctx, &orders{db: fresh})
	if err != nil {
		return err
	}
	if err := fw.Stop(ctx); err != nil {
		return err
	}
	a, err := dump(ctx, db)
	if err != nil {
		return err
	}
	b, err := dump(ctx, fresh)
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("the read model differs from a fresh replay:\n%s\nfresh:\n%s", a, b)
	}
	say("check: the read model matches a fresh replay")
	return nil
}

// orders is the read model: a table of orders and the checkpoint, written
// together.
type orders struct {
	db      *sql.DB
	crashAt uint64 // if set, Apply fails before committing this event
}

const checkpointName = "orders"

// LastSequence returns the checkpoint.
func (o *orders) LastSequence(ctx context.Context) (uint64, error) {
	var seq uint64
	err := o.db.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE name = ?`, checkpointName).Scan(&seq)
	return seq, err
}

// Apply writes the rows of e and the checkpoint in one transaction.
func (o *orders) Apply(ctx context.Context, e *rita.Event) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op

	var cp uint64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE name = ?`, checkpointName).Scan(&cp); err != nil {
		return err
	}
	if e.Sequence() <= cp {
		return nil // applied already (by another run): commit nothing
	}
	id := e.Entity
	switch d := e.Data.(type) {
	case *OrderPlaced:
		_, err = tx.ExecContext(ctx, `INSERT INTO orders (id, customer, total, status) VALUES (?, ?, ?, 'placed')`, id, d.Customer, d.Total)
	case *OrderPaid:
		_, err = tx.ExecContext(ctx, `UPDATE orders SET status = 'paid' WHERE id = ?`, id)
	case *OrderShipped:
		_, err = tx.ExecContext(ctx, `UPDATE orders SET status = 'shipped' WHERE id = ?`, id)
	default:
		return fmt.Errorf("unexpected event %q: %w", e.Type, rita.ErrUnprocessable)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO applied (seq) VALUES (?)`, e.Sequence()); err != nil {
		return err
	}
	if e.Sequence() == o.crashAt {
		return errors.New("simulated crash before commit")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE checkpoints SET seq = ? WHERE name = ?`, e.Sequence(), checkpointName); err != nil {
		return err
	}
	return tx.Commit()
}

// openDB opens (creating if needed) the database at path.
func openDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer: SQLite's own rule
	_, err = db.Exec(`
		CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer TEXT, total INTEGER, status TEXT);
		CREATE TABLE IF NOT EXISTS applied (seq INTEGER);
		CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
		INSERT OR IGNORE INTO checkpoints (name, seq) VALUES ('orders', 0);`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("schema: %w", err)
	}
	return db, nil
}

// show prints the orders table.
func show(ctx context.Context, db *sql.DB, say func(string, ...any)) error {
	rows, err := dump(ctx, db)
	if err != nil {
		return err
	}
	say("%s", rows)
	return nil
}

// dump returns the orders table as text.
func dump(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, customer, total, status FROM orders ORDER BY id`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var s string
	for rows.Next() {
		var id, customer, status string
		var total int
		if err := rows.Scan(&id, &customer, &total, &status); err != nil {
			return "", err
		}
		if s != "" {
			s += "\n"
		}
		s += fmt.Sprintf("  %-8s %-6s %3d %s", id, customer, total, status)
	}
	return s, rows.Err()
}

// quiet is an error handler for the run that is meant to fail.
func quiet(error, *rita.Event, jetstream.Msg) {}
