package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/schollz/progressbar/v3"

	"github.com/synadia-labs/rita"
)

// args holds the arguments and flags of the commands; each command reads
// the ones it declared.
type args struct {
	store, filter, consumer, entity, name string
	seq                                   uint64
	since                                 string
	last                                  int
	follow, force, noWait, create         bool
	from                                  uint64
	proto                                 string
	protoTypes                            []string
	file                                  string
	roles                                 []string
}

func (a *cli) consumerCommands() {
	c := a.command(a.app, "consumers", `List the durable consumers of a store, with how far behind each is.

Example:
  rita consumers bank`, a.consumers)
	c.Arg("store", "The store").Required().StringVar(&a.args.store)

	parked := a.app.Command("parked", "Look at the events durable consumers parked, send them back or skip them.")
	list := a.command(parked, "list", `List the parked events of a store, of one consumer or of all (the default of rita parked).

Example:
  rita parked bank
  rita parked list bank mailer --json`, a.parkedList).Default()
	list.Arg("store", "The store").Required().StringVar(&a.args.store)
	list.Arg("consumer", "The durable consumer (default: every one)").StringVar(&a.args.consumer)

	show := a.command(parked, "show", `Show one parked event: why it was parked, and the event with its payload.

Example:
  rita parked show bank mailer 42`, a.parkedShow)
	a.parkedArgs(show)
	a.protoFlags(show)

	retry := a.command(parked, "retry", `Send a parked event (and its entity's later parked events) back to its consumer.

Example:
  rita parked retry bank mailer 42`, a.parkedRetry)
	a.parkedArgs(retry)

	del := a.command(parked, "delete", `Remove a parked event without handling it (asks first, unless --force).

Example:
  rita parked delete bank mailer 42 --force`, a.parkedDelete)
	a.parkedArgs(del)
	del.Flag("force", "Do not ask for confirmation").Short('f').BoolVar(&a.args.force)

	rebuild := a.command(a.app, "rebuild", `Start a durable consumer again from the start (or --from SEQ), and wait until it has caught up.
Stop every process that runs it first; the command waits for one to run it again.

Example:
  rita rebuild bank balances
  rita rebuild bank balances --from 1000 --no-wait`, a.rebuild)
	rebuild.Arg("store", "The store").Required().StringVar(&a.args.store)
	rebuild.Arg("consumer", "The durable consumer").Required().StringVar(&a.args.consumer)
	rebuild.Flag("from", "The first sequence to deliver again").Default("1").Uint64Var(&a.args.from)
	rebuild.Flag("no-wait", "Do not wait for the consumer to catch up").BoolVar(&a.args.noWait)
}

// parkedArgs declares the arguments of a command on one parked event.
func (a *cli) parkedArgs(c *kingpin.CmdClause) {
	c.Arg("store", "The store").Required().StringVar(&a.args.store)
	c.Arg("consumer", "The durable consumer that parked it").Required().StringVar(&a.args.consumer)
	c.Arg("seq", "The event's sequence in the store").Required().Uint64Var(&a.args.seq)
}

// consumerJSON is a durable consumer as rita consumers --json prints it.
type consumerJSON struct {
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	Pending   uint64 `json:"pending"`
	InFlight  int    `json:"in_flight"`
	Applied   uint64 `json:"applied"`
	Delivered uint64 `json:"delivered"`
	StoreSeq  uint64 `json:"store_seq"`
	Lag       uint64 `json:"lag"`
	Parked    int    `json:"parked"`
}

func consumerOf(p rita.Progress) consumerJSON {
	return consumerJSON{Name: p.Name, Active: p.Active, Pending: p.Pending, InFlight: p.InFlight, Applied: p.Applied,
		Delivered: p.Delivered, StoreSeq: p.StoreSequence, Lag: p.Lag(), Parked: p.Parked}
}

func (a *cli) consumers(ctx context.Context) error {
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	list, err := st.Durables(ctx)
	if err != nil {
		return err
	}
	if a.json {
		for _, p := range list {
			if err := jsonLine(a.stdout, consumerOf(p)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(list) == 0 {
		fmt.Fprintf(a.stderr, "store %s has no durable consumers\n", a.args.store)
		return nil
	}
	return a.consumerTable(list)
}

func (a *cli) consumerTable(list []rita.Progress) error {
	t := newTable(a.stdout, "CONSUMER", "ACTIVE", "APPLIED", "DELIVERED", "PENDING", "IN FLIGHT", "LAG", "PARKED")
	for _, p := range list {
		t.row(p.Name, yesNo(p.Active), num(p.Applied), num(p.Delivered), num(p.Pending), num(p.InFlight), num(p.Lag()), num(p.Parked))
	}
	return t.flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// parkedJSON is a parked event as rita parked --json prints it.
type parkedJSON struct {
	Consumer  string     `json:"consumer"`
	Seq       uint64     `json:"seq"`
	Entity    string     `json:"entity"`
	Type      string     `json:"type"`
	ID        string     `json:"id"`
	Attempts  int        `json:"attempts"`
	BlockedBy uint64     `json:"blocked_by,omitempty"`
	ParkedAt  *time.Time `json:"parked_at"`
	Reason    string     `json:"reason"`
	Event     *eventJSON `json:"event,omitempty"`
}

func parkedOf(p *rita.ParkedEvent) parkedJSON {
	return parkedJSON{Consumer: p.Consumer, Seq: p.Event.Sequence(), Entity: p.Event.Entity, Type: p.Event.Type, ID: p.Event.ID,
		Attempts: p.Attempts, BlockedBy: p.BlockedBy, ParkedAt: timeOrNil(p.ParkedAt), Reason: p.Reason}
}

func (a *cli) parkedList(ctx context.Context) error {
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	names := []string{a.args.consumer}
	if a.args.consumer == "" {
		list, err := st.Durables(ctx)
		if err != nil {
			return err
		}
		names = names[:0]
		for _, p := range list {
			if p.Parked > 0 {
				names = append(names, p.Name)
			}
		}
	} else if err := a.checkConsumer(ctx, st, a.args.consumer); err != nil {
		return err
	}
	t := newTable(a.stdout, "CONSUMER", "SEQ", "ENTITY", "TYPE", "ATTEMPTS", "BLOCKED BY", "PARKED AT", "REASON")
	n := 0
	for _, name := range names {
		list, err := st.Durable(name).Parked(ctx)
		if err != nil {
			return err
		}
		for _, p := range list {
			n++
			if a.json {
				if err := jsonLine(a.stdout, parkedOf(p)); err != nil {
					return err
				}
				continue
			}
			blocked := "-"
			if p.BlockedBy > 0 {
				blocked = num(p.BlockedBy)
			}
			t.row(p.Consumer, num(p.Event.Sequence()), p.Event.Entity, p.Event.Type, num(p.Attempts), blocked, when(p.ParkedAt), p.Reason)
		}
	}
	if a.json {
		return nil
	}
	if n == 0 {
		fmt.Fprintln(a.stderr, "no parked events")
		return nil
	}
	return t.flush()
}

// checkConsumer fails with exitNotFound, naming the consumers there are,
// when the store has no durable consumer name.
func (a *cli) checkConsumer(ctx context.Context, st *rita.EventStore, name string) error {
	list, err := st.Durables(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, p := range list {
		if p.Name == name {
			return nil
		}
		names = append(names, p.Name)
	}
	have := "it has none"
	if len(names) > 0 {
		have = "its durable consumers are: " + strings.Join(names, ", ")
	}
	return withCode(exitNotFound, fmt.Errorf("store %s has no durable consumer %q: %s", st.Name(), name, have))
}

// parked opens the store and the consumer of a parked-event command.
func (a *cli) parked(ctx context.Context) (*session, *rita.Durable, error) {
	s, err := a.open()
	if err != nil {
		return nil, nil, err
	}
	st, err := s.store(ctx, a.args.store)
	if err == nil {
		err = a.checkConsumer(ctx, st, a.args.consumer)
	}
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return s, st.Durable(a.args.consumer), nil
}

func (a *cli) parkedShow(ctx context.Context) error {
	s, d, err := a.parked(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	p, err := d.GetParked(ctx, a.args.seq)
	if err != nil {
		return err
	}
	raw, err := a.rawAt(ctx, s, p.Event.Sequence())
	if err != nil {
		return err
	}
	dec, err := loadProto(a.args.proto, a.args.protoTypes)
	if err != nil {
		return err
	}
	out := parkedOf(p)
	if raw != nil {
		ev := eventOf(raw, dec)
		out.Event = &ev
	}
	if a.json {
		return jsonLine(a.stdout, out)
	}
	t := newFields(a.stdout)
	t.row("Consumer:", out.Consumer)
	t.row("Event:", fmt.Sprintf("%d, %s %s, ID %s", out.Seq, out.Entity, out.Type, out.ID))
	t.row("Parked at:", when(p.ParkedAt))
	t.row("Attempts:", num(out.Attempts))
	if out.BlockedBy > 0 {
		t.row("Blocked by:", num(out.BlockedBy))
	}
	t.row("Reason:", out.Reason)
	if out.Event != nil {
		t.row("Time:", when(raw.Time))
		t.row("Metadata:", meta(raw.Meta))
		t.row("Codec:", codecName(raw.Codec))
		t.row("Data:", dec.decode(raw).text())
	} else {
		t.row("Data:", "(the event is no longer in the store)")
	}
	return t.flush()
}

// rawAt reads the event at seq as stored; nil if it is gone.
func (a *cli) rawAt(ctx context.Context, s *session, seq uint64) (*rita.RawEvent, error) {
	st, err := s.store(ctx, a.args.store)
	if err != nil {
		return nil, err
	}
	for e, err := range st.RawEvents(ctx, rita.WithAfterSequence(seq-1), rita.WithStopSequence(seq)) {
		if err != nil {
			return nil, err
		}
		if e.Sequence == seq {
			return e, nil
		}
	}
	return nil, nil
}

func (a *cli) parkedRetry(ctx context.Context) error {
	s, d, err := a.parked(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if err := d.RetryParked(ctx, a.args.seq); err != nil {
		return err
	}
	if a.json {
		return jsonLine(a.stdout, map[string]any{"consumer": d.Name(), "seq": a.args.seq, "retried": true})
	}
	fmt.Fprintf(a.stdout, "Event %d goes back to %s, with its entity's later parked events, when %s runs.\n", a.args.seq, d.Name(), d.Name())
	return nil
}

func (a *cli) parkedDelete(ctx context.Context) error {
	s, d, err := a.parked(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	p, err := d.GetParked(ctx, a.args.seq)
	if err != nil {
		return err
	}
	if !a.args.force {
		ok, err := a.confirm(fmt.Sprintf("Delete parked event %d (%s %s) of %s without handling it?", a.args.seq, p.Event.Entity, p.Event.Type, d.Name()))
		if err != nil || !ok {
			return err
		}
	}
	if err := d.DeleteParked(ctx, a.args.seq); err != nil {
		return err
	}
	if a.json {
		return jsonLine(a.stdout, map[string]any{"consumer": d.Name(), "seq": a.args.seq, "deleted": true})
	}
	fmt.Fprintf(a.stdout, "Deleted parked event %d of %s.\n", a.args.seq, d.Name())
	return nil
}

// errDeclined ends a command whose confirmation was not given.
var errDeclined = withCode(exitFailed, fmt.Errorf("not confirmed: nothing done (--force skips the question)"))

// confirm asks question on stderr and reads the answer from stdin.
func (a *cli) confirm(question string) (bool, error) {
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(a.stderr)
		return false, errDeclined
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, errDeclined
}

func (a *cli) rebuild(ctx context.Context) error {
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if err := a.checkConsumer(ctx, st, a.args.consumer); err != nil {
		return err
	}
	d := st.Durable(a.args.consumer)
	if err := d.Rebuild(ctx, max(a.args.from, 1)-1); err != nil {
		return err
	}
	if a.args.noWait {
		if a.json {
			return jsonLine(a.stdout, map[string]any{"consumer": d.Name(), "from": max(a.args.from, 1), "rebuilt": true})
		}
		fmt.Fprintf(a.stdout, "%s starts again from sequence %d when it runs next.\n", d.Name(), max(a.args.from, 1))
		return nil
	}
	if !a.json {
		fmt.Fprintf(a.stderr, "%s starts again from sequence %d; waiting for a process running it to catch up (interrupt to stop waiting: the rebuild stays)\n", d.Name(), max(a.args.from, 1))
	}
	var bar *progressbar.ProgressBar
	start := max(a.args.from, 1) - 1
	for {
		p, err := d.Progress(ctx)
		if err != nil {
			return err
		}
		if bar == nil && isTerminal(a.stderr) && p.StoreSequence > start {
			bar = progressbar.NewOptions64(int64(p.StoreSequence-start), progressbar.OptionSetWriter(a.stderr),
				progressbar.OptionSetDescription(d.Name()), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish())
		}
		if bar != nil && p.Applied > start {
			_ = bar.Set64(int64(min(p.Applied, p.StoreSequence) - start))
		}
		if p.CaughtUp() {
			if bar != nil {
				_ = bar.Finish()
			}
			if a.json {
				return jsonLine(a.stdout, consumerOf(p))
			}
			fmt.Fprintf(a.stdout, "%s has caught up: applied up to %d, %d parked.\n", d.Name(), p.Applied, p.Parked)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for %s to catch up (%d events to go): %w", d.Name(), p.Lag(), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
