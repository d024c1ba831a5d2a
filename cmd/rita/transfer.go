package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/synadia-labs/rita"
)

func (a *cli) transferCommands() {
	ex := a.command(a.app, "export", `Write a store's events as JSON lines, one event a line, with their IDs, times, metadata, codecs and payloads.
It reads one event at a time, whatever the size of the store.

Example:
  rita export bank > bank.jsonl
  rita export bank 'account.alice' --output alice.jsonl
  rita --context old export bank | rita --context new import bank --create`, a.export)
	ex.Arg("store", "The store").Required().StringVar(&a.args.store)
	ex.Arg("filter", "Which events: <entity-type>[.<entity-id>[.<event-type>]]").StringVar(&a.args.filter)
	ex.Flag("output", "Write to FILE instead of standard output").Short('o').PlaceHolder("FILE").StringVar(&a.args.file)

	im := a.command(a.app, "import", `Store the events of an export (JSON lines) in a store, keeping their IDs and order.
The events the store holds must be the first lines: they are checked, and only the lines after them are stored,
so an interrupted import is finished by running it again, and running it twice stores nothing twice.
A line that cannot be read is refused with its number; the lines before it are stored, nothing of it or after it.

Example:
  rita import bank < bank.jsonl
  rita import bank --input bank.jsonl --create`, a.importCmd)
	im.Arg("store", "The store").Required().StringVar(&a.args.store)
	im.Flag("input", "Read FILE instead of standard input").Short('i').PlaceHolder("FILE").StringVar(&a.args.file)
	im.Flag("create", "Create the store (with default settings) if it does not exist").BoolVar(&a.args.create)
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w     io.Writer
	lines int64
	bar   *progressbar.ProgressBar
}

func (c *lineCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	k := int64(bytes.Count(p[:n], []byte{'\n'}))
	c.lines += k
	if c.bar != nil {
		_ = c.bar.Add64(k)
	}
	return n, err
}

func (a *cli) bar(total int64, what string, bytes bool) *progressbar.ProgressBar {
	if !isTerminal(a.stderr) {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(a.stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	return progressbar.NewOptions64(total, opts...)
}

func (a *cli) export(ctx context.Context) error {
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	var opts []rita.EvolveOption
	total := int64(-1)
	if a.args.filter != "" {
		opts = append(opts, rita.WithFilters(a.args.filter))
	} else if info, err := st.Info(ctx); err == nil {
		total = int64(info.Events)
	}
	out := a.stdout
	if a.args.file != "" {
		f, err := os.Create(a.args.file)
		if err != nil {
			return withCode(exitUsage, err)
		}
		defer f.Close()
		out = f
	} else if a.json {
		return withCode(exitUsage, errors.New("--json: export writes JSON lines already; its summary goes to standard output only with --output"))
	}
	w := &lineCounter{w: out, bar: a.bar(total, "export "+a.args.store, false)}
	res, err := st.Export(ctx, w, opts...)
	if w.bar != nil {
		_ = w.bar.Finish()
	}
	if err != nil {
		return err
	}
	if f, ok := out.(*os.File); ok && a.args.file != "" {
		if err := f.Close(); err != nil {
			return err
		}
	}
	if a.args.file == "" {
		return nil // stdout holds the export
	}
	if a.json {
		return jsonLine(a.stdout, map[string]any{"store": a.args.store, "events": res.Events, "last_seq": res.LastSequence, "file": a.args.file})
	}
	fmt.Fprintf(a.stdout, "Exported %d events of %s (up to sequence %d) to %s.\n", res.Events, a.args.store, res.LastSequence, a.args.file)
	return nil
}

// byteCounter counts the bytes read through it.
type byteCounter struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (c *byteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.bar != nil {
		_ = c.bar.Add(n)
	}
	return n, err
}

func (a *cli) importCmd(ctx context.Context) error {
	in := a.stdin
	total := int64(-1)
	if a.args.file != "" {
		f, err := os.Open(a.args.file)
		if err != nil {
			return withCode(exitUsage, err)
		}
		defer f.Close()
		in = f
	}
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			total = fi.Size()
		}
	}
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.close()
	var st *rita.EventStore
	if a.args.create {
		st, err = s.m.GetEventStore(ctx, a.args.store)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			st, err = s.m.CreateEventStore(ctx, rita.EventStoreConfig{Name: a.args.store})
		}
	} else {
		st, err = s.store(ctx, a.args.store)
	}
	if err != nil {
		return err
	}
	r := &byteCounter{r: in, bar: a.bar(total, "import "+a.args.store, true)}
	res, err := st.Import(ctx, r)
	if r.bar != nil {
		_ = r.bar.Finish()
	}
	if err != nil {
		return fmt.Errorf("%w (stored %d of the lines before it; running the import again goes on from there)", err, res.Present+res.Stored)
	}
	if a.json {
		return jsonLine(a.stdout, map[string]any{"store": a.args.store, "lines": res.Lines, "present": res.Present, "stored": res.Stored})
	}
	fmt.Fprintf(a.stdout, "Read %d events: %d were in the store already, %d stored.\n", res.Lines, res.Present, res.Stored)
	return nil
}
