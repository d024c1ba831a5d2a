package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/synadia-labs/rita"
)

func (a *cli) eventCommands() {
	ev := a.command(a.app, "events", `Show a store's events in order, decoded: JSON and msgpack as JSON, protobuf with --proto, other payloads as raw bytes.
FILTER is <entity-type>[.<entity-id>[.<event-type>]], each token may be *.

Example:
  rita events bank
  rita events bank account.alice --last 10
  rita events bank 'account.*.deposited' --since 1h --follow
  rita events orders --proto orders.pb --json`, a.events)
	ev.Arg("store", "The store").Required().StringVar(&a.args.store)
	ev.Arg("filter", "Which events: <entity-type>[.<entity-id>[.<event-type>]]").StringVar(&a.args.filter)
	ev.Flag("since", "Start at a sequence (1234), a time (2026-03-01T10:00:00Z) or a duration ago (90m)").PlaceHolder("SEQ|TIME|DURATION").StringVar(&a.args.since)
	ev.Flag("last", "Only the last N matching events").PlaceHolder("N").IntVar(&a.args.last)
	ev.Flag("follow", "Keep showing new events as they are stored, until interrupted").Short('f').BoolVar(&a.args.follow)
	a.protoFlags(ev)

	en := a.command(a.app, "entity", `Show one entity's history, and its state as saved in snapshots.

Example:
  rita entity bank account.alice`, a.entity)
	en.Arg("store", "The store").Required().StringVar(&a.args.store)
	en.Arg("entity", "The entity, <entity-type>.<entity-id>").Required().StringVar(&a.args.entity)
	a.protoFlags(en)
}

// protoFlags declares the flags that decode protobuf payloads.
func (a *cli) protoFlags(c *kingpin.CmdClause) {
	c.Flag("proto", "A protobuf descriptor set (protoc --descriptor_set_out, buf build -o) to decode protobuf payloads with").PlaceHolder("FILE").StringVar(&a.args.proto)
	c.Flag("proto-type", "The message of an event type, when its name does not say it (repeatable)").PlaceHolder("EVENT-TYPE=pkg.Message").StringsVar(&a.args.protoTypes)
}

// eventJSON is an event as rita events --json prints it.
type eventJSON struct {
	Seq        uint64            `json:"seq"`
	Stored     time.Time         `json:"stored"`
	Time       time.Time         `json:"time"`
	Entity     string            `json:"entity"`
	Type       string            `json:"type"`
	ID         string            `json:"id"`
	Version    int               `json:"version,omitempty"`
	Codec      string            `json:"codec,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	DataBase64 *string           `json:"data_base64,omitempty"`
	DecodedAs  string            `json:"decoded_as"`
}

func eventOf(e *rita.RawEvent, dec *payloads) eventJSON {
	d := dec.decode(e)
	out := eventJSON{Seq: e.Sequence, Stored: e.Stored.UTC(), Time: e.Time.UTC(), Entity: e.Entity, Type: e.Type, ID: e.ID,
		Codec: e.Codec, Meta: e.Meta, Data: d.JSON, DecodedAs: d.As}
	if e.Version > 1 {
		out.Version = e.Version
	}
	if d.JSON == nil {
		b := base64Of(d.Raw)
		out.DataBase64 = &b
	}
	return out
}

func codecName(c string) string {
	if c == "" {
		return "(none: appended without a type registry)"
	}
	return c
}

// eventPrinter prints events as a table or JSON lines.
type eventPrinter struct {
	w     io.Writer
	json  bool
	dec   *payloads
	t     *table
	rows  int
	flush bool // after every event (following)
}

func (a *cli) newEventPrinter(dec *payloads, flushEach bool) *eventPrinter {
	p := &eventPrinter{w: a.stdout, json: a.json, dec: dec, flush: flushEach}
	if !a.json {
		p.t = newTable(a.stdout, "SEQ", "STORED", "ENTITY", "TYPE", "ID", "META", "DATA")
		if flushEach {
			_ = p.t.flush()
		}
	}
	return p
}

// print prints one event.
func (p *eventPrinter) print(e *rita.RawEvent) error {
	p.rows++
	if p.json {
		return jsonLine(p.w, eventOf(e, p.dec))
	}
	p.t.row(num(e.Sequence), when(e.Stored), e.Entity, e.Type, e.ID, meta(e.Meta), p.dec.decode(e).text())
	if p.flush || p.rows%256 == 0 {
		return p.t.flush() // a table of any length in bounded memory
	}
	return nil
}

func (p *eventPrinter) done() error {
	if p.t != nil {
		return p.t.flush()
	}
	return nil
}

func (a *cli) events(ctx context.Context) error {
	dec, err := loadProto(a.args.proto, a.args.protoTypes)
	if err != nil {
		return err
	}
	if a.args.last < 0 {
		return withCode(exitUsage, fmt.Errorf("--last %d: want a count above 0", a.args.last))
	}
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	var filters []rita.EvolveOption
	if a.args.filter != "" {
		filters = append(filters, rita.WithFilters(a.args.filter))
	}
	after, none, err := a.since(ctx, st)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	p := a.newEventPrinter(dec, a.args.follow)
	if none {
		after = info.LastSequence // nothing stored since: only what comes
	}
	if !none && a.args.last > 0 {
		last, err := lastN(ctx, st, filters, after, info.LastSequence, a.args.last)
		if err != nil {
			return err
		}
		for _, e := range last {
			if err := p.print(e); err != nil {
				return err
			}
		}
		after = info.LastSequence
		if !a.args.follow {
			return p.done()
		}
	}
	var events iter.Seq2[*rita.RawEvent, error]
	opts := append(filters, rita.WithAfterSequence(after))
	switch {
	case a.args.follow:
		events = st.FollowRawEvents(ctx, opts...)
	case none:
		return p.done()
	default:
		events = st.RawEvents(ctx, opts...)
	}
	for e, err := range events {
		if err != nil {
			return err
		}
		if err := p.print(e); err != nil {
			return err
		}
	}
	return p.done()
}

// since turns --since into the sequence to read after; none is true when
// the time given is after the last event.
func (a *cli) since(ctx context.Context, st *rita.EventStore) (after uint64, none bool, err error) {
	v := a.args.since
	if v == "" {
		return 0, false, nil
	}
	if seq, err := strconv.ParseUint(v, 10, 64); err == nil {
		return max(seq, 1) - 1, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		d, derr := time.ParseDuration(v)
		if derr != nil || d < 0 {
			return 0, false, withCode(exitUsage, fmt.Errorf("--since %q: want a sequence (1234), a time (2026-03-01T10:00:00Z) or a duration ago (90m)", v))
		}
		t = time.Now().Add(-d)
	}
	seq, err := st.SequenceAt(ctx, t)
	if err != nil {
		return 0, false, err
	}
	if seq == 0 {
		return 0, true, nil
	}
	return seq - 1, false, nil
}

// lastN returns the last n events matching filters in (after, last]: it
// reads a window before the end, and a wider one until it has found n or
// reached the start, keeping n events at most.
func lastN(ctx context.Context, st *rita.EventStore, filters []rita.EvolveOption, after, last uint64, n int) ([]*rita.RawEvent, error) {
	ring := make([]*rita.RawEvent, 0, n)
	for window := uint64(n); ; window *= 4 {
		from := after
		if last > window && last-window > after {
			from = last - window
		}
		ring = ring[:0]
		next := 0
		opts := append(filters[:len(filters):len(filters)], rita.WithAfterSequence(from), rita.WithStopSequence(last))
		for e, err := range st.RawEvents(ctx, opts...) {
			if err != nil {
				return nil, err
			}
			if len(ring) < n {
				ring = append(ring, e)
				continue
			}
			ring[next] = e
			next = (next + 1) % n
		}
		if len(ring) == n || from == after || last == 0 {
			return append(ring[next:], ring[:next]...), nil
		}
	}
}

// snapshotJSON is a snapshot as rita entity and rita snapshots print it.
type snapshotJSON struct {
	Entity      string          `json:"entity"`
	Name        string          `json:"name"`
	Version     string          `json:"version"`
	Seq         uint64          `json:"seq"`
	Count       uint64          `json:"count"`
	Saved       time.Time       `json:"saved"`
	Stale       bool            `json:"stale"`
	Size        int             `json:"size"`
	State       json.RawMessage `json:"state,omitempty"`
	StateBase64 *string         `json:"state_base64,omitempty"`
}

func snapshotOf(snap *rita.SnapshotInfo, withState bool) snapshotJSON {
	out := snapshotJSON{Entity: snap.Entity, Name: snap.Name, Version: snap.Version, Seq: snap.Sequence, Count: snap.Count,
		Saved: snap.Saved.UTC(), Stale: snap.Stale, Size: len(snap.Data)}
	if withState {
		d := (&payloads{}).decode(&rita.RawEvent{Data: snap.Data, Codec: stateCodec(snap.Data)})
		out.State = d.JSON
		if d.JSON == nil {
			b := base64Of(snap.Data)
			out.StateBase64 = &b
		}
	}
	return out
}

// stateCodec guesses how a model encoded its snapshot: JSON if it reads
// as JSON, else msgpack if it reads as that.
func stateCodec(data []byte) string {
	if json.Valid(data) {
		return "json"
	}
	return "msgpack"
}

// entityJSON is what rita entity --json prints.
type entityJSON struct {
	Entity    string         `json:"entity"`
	Events    []eventJSON    `json:"events"`
	Snapshots []snapshotJSON `json:"snapshots"`
}

func (a *cli) entity(ctx context.Context) error {
	dec, err := loadProto(a.args.proto, a.args.protoTypes)
	if err != nil {
		return err
	}
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	out := entityJSON{Entity: a.args.entity, Events: []eventJSON{}, Snapshots: []snapshotJSON{}}
	p := a.newEventPrinter(dec, false)
	for e, err := range st.RawEvents(ctx, rita.WithFilters(a.args.entity)) {
		if err != nil {
			return err
		}
		if a.json {
			out.Events = append(out.Events, eventOf(e, dec))
			continue
		}
		if err := p.print(e); err != nil {
			return err
		}
	}
	for snap, err := range st.Snapshots(ctx, a.args.entity) {
		if err != nil {
			return err
		}
		out.Snapshots = append(out.Snapshots, snapshotOf(snap, true))
	}
	if a.json {
		return jsonLine(a.stdout, out)
	}
	if p.rows == 0 {
		fmt.Fprintf(a.stderr, "entity %s has no events in store %s\n", a.args.entity, a.args.store)
	} else if err := p.done(); err != nil {
		return err
	}
	for _, snap := range out.Snapshots {
		stale := ""
		if snap.Stale {
			stale = " (stale: saved for an earlier store of this name, never used)"
		}
		fmt.Fprintf(a.stdout, "\nSnapshot %q version %s, as of event %d (%d events), saved %s%s:\n", snap.Name, snap.Version, snap.Seq, snap.Count, when(snap.Saved), stale)
		if snap.State != nil {
			var pretty []byte
			pretty, _ = json.MarshalIndent(snap.State, "  ", "  ")
			fmt.Fprintf(a.stdout, "  %s\n", pretty)
		} else {
			fmt.Fprintf(a.stdout, "  base64:%s\n", *snap.StateBase64)
		}
	}
	return nil
}
