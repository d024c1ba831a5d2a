package rita_test

// Property tests (pgregory.net/rapid) of the invariants every user of rita
// relies on. Each check runs on an event store of its own, on one embedded
// server per property:
//
//  1. Evolve applies exactly the events a raw read of the stream says match
//     its selection, in stream order, none twice: for one entity (direct
//     gets), one entity's event type, wildcard filters (overlapping ones
//     too), the whole store and from a snapshot, within random
//     WithAfterSequence/WithStopSequence bounds, after random single and
//     batched appends (some with a right or a stale Expect) and random
//     SaveSnapshot points.
//  2. A Model fed by a Watch and by DecideAndEvolve(WithRetry) at once,
//     from several goroutines and beside a writer the model does not see,
//     applies each event at most once, and ends equal to a fresh Evolve of
//     the store.
//  3. A read whose consumer is deleted at random moments (a whole-store
//     Evolve, or a Watch catching up and then following appends) delivers
//     exactly the sequences 1..N, in order.
//
// Each property runs a set number of checks (propEvolveChecks...; rapid's
// default is 100), a fifth of them under -short; -rapid.checks or
// RAPID_CHECKS, when given, win. The third property is skipped under
// -short. A failure prints the seed that reproduces it (-rapid.seed).

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"pgregory.net/rapid"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/ritatest"
)

// The number of checks of each property, unless -rapid.checks or
// RAPID_CHECKS says otherwise.
const (
	propEvolveChecks = 25
	propModelChecks  = 40
	propLostChecks   = 6
)

// propWait bounds every wait of a check.
const propWait = 30 * time.Second

// propChecks makes rapid run n checks in t, unless -rapid.checks or
// RAPID_CHECKS was given, and write no fail file into testdata unless
// -rapid.nofailfile or RAPID_NOFAILFILE was given (a failure prints the
// seed that reproduces it: -rapid.seed).
func propChecks(t *testing.T, n int) {
	t.Helper()
	propFlag(t, "rapid.checks", "RAPID_CHECKS", strconv.Itoa(n))
	propFlag(t, "rapid.nofailfile", "RAPID_NOFAILFILE", "true")
}

// propFlag sets flag name to value for t, unless it was given on the
// command line or in the environment variable env.
func propFlag(t *testing.T, name, env, value string) {
	t.Helper()
	if _, ok := os.LookupEnv(env); ok {
		return
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	f := flag.Lookup(name)
	if given || f == nil {
		return
	}
	old := f.Value.String()
	if err := f.Value.Set(value); err != nil {
		t.Fatalf("set -%s: %v", name, err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

// propEnv is one embedded server, a connection and a Manager on it.
type propEnv struct {
	nc *nats.Conn
	js jetstream.JetStream
	m  *rita.Manager
}

func newPropEnv(t *testing.T, opts ...rita.ManagerOption) *propEnv {
	t.Helper()
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	m, err := rita.New(nc, opts...)
	if err != nil {
		t.Fatalf("rita.New: %v", err)
	}
	// A store that outlives the checks: when its last stream is deleted,
	// the server removes its streams directory in the background, and a
	// stream created meanwhile fails ("error creating store for stream").
	ctx, cancel := context.WithTimeout(context.Background(), propWait)
	defer cancel()
	if _, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "anchor"}); err != nil {
		t.Fatalf("CreateEventStore(anchor): %v", err)
	}
	return &propEnv{nc: nc, js: js, m: m}
}

var propSerial atomic.Int64

// store creates a store for one check, deleted when the check ends.
func (e *propEnv) store(rt *rapid.T, prefix string) (*rita.EventStore, string) {
	name := fmt.Sprintf("%s%d", prefix, propSerial.Add(1))
	s, err := e.m.CreateEventStore(propCtx(rt), rita.EventStoreConfig{Name: name})
	if err != nil {
		rt.Fatalf("CreateEventStore(%q): %v", name, err)
	}
	rt.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), propWait)
		defer cancel()
		_ = e.m.DeleteEventStore(ctx, name)
	})
	return s, name
}

// lastSeq returns the last sequence of store name's stream.
func (e *propEnv) lastSeq(rt *rapid.T, name string) uint64 {
	st, err := e.js.Stream(propCtx(rt), "ES_"+name)
	if err != nil {
		rt.Fatalf("stream ES_%s: %v", name, err)
	}
	info, err := st.Info(propCtx(rt))
	if err != nil {
		rt.Fatalf("stream info ES_%s: %v", name, err)
	}
	return info.State.LastSeq
}

// propCtx returns a context that ends with the check, or after propWait.
func propCtx(rt *rapid.T) context.Context {
	ctx, cancel := context.WithTimeout(rt.Context(), propWait)
	rt.Cleanup(cancel)
	return ctx
}

// propEventually polls cond until it holds, failing the check after propWait.
func propEventually(rt *rapid.T, cond func() bool, format string, args ...any) {
	deadline := time.Now().Add(propWait)
	for !cond() {
		if time.Now().After(deadline) {
			rt.Fatalf("not within %v: "+format, append([]any{propWait}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// propRaw is one message of a store as the stream holds it.
type propRaw struct {
	seq                     uint64
	subject                 string
	entityType, entityID, t string
}

func (r propRaw) entity() string { return r.entityType + "." + r.entityID }

// propParse splits $ES.<store>.<type>.<id>.<event-type>.
func propParse(seq uint64, subject string) propRaw {
	tok := strings.Split(subject, ".")
	r := propRaw{seq: seq, subject: subject}
	if len(tok) == 5 {
		r.entityType, r.entityID, r.t = tok[2], tok[3], tok[4]
	}
	return r
}

// rawRead reads every message of store name with plain stream gets,
// bypassing rita.
func (e *propEnv) rawRead(rt *rapid.T, name string) []propRaw {
	ctx := propCtx(rt)
	st, err := e.js.Stream(ctx, "ES_"+name)
	if err != nil {
		rt.Fatalf("stream ES_%s: %v", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		rt.Fatalf("stream info ES_%s: %v", name, err)
	}
	var out []propRaw
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			rt.Fatalf("GetMsg(%d) of ES_%s: %v", seq, name, err)
		}
		out = append(out, propParse(msg.Sequence, msg.Subject))
	}
	return out
}

// propMatches reports whether r matches filter <type>[.<id>[.<event-type>]]
// (each token may be *; missing trailing tokens mean *).
func propMatches(filter string, r propRaw) bool {
	tok := strings.Split(filter, ".")
	for len(tok) < 3 {
		tok = append(tok, "*")
	}
	for i, v := range []string{r.entityType, r.entityID, r.t} {
		if tok[i] != "*" && tok[i] != v {
			return false
		}
	}
	return true
}

// propSelect returns the sequences of raw that a read with filters (none:
// all) after after and up to stop (0: no stop) must apply.
func propSelect(raw []propRaw, filters []string, after, stop uint64) []uint64 {
	var out []uint64
	for _, r := range raw {
		if r.seq <= after || stop > 0 && r.seq > stop {
			continue
		}
		if len(filters) == 0 || slices.ContainsFunc(filters, func(f string) bool { return propMatches(f, r) }) {
			out = append(out, r.seq)
		}
	}
	return out
}

// propSeqModel records the sequences it applies (and what each event said
// of itself). It is snapshotted: its state is the list of sequences, so a
// model restored from a snapshot holds the sequences applied before it.
type propSeqModel struct {
	Seqs   []uint64
	events map[uint64]propRaw // the events applied by Evolve, not restored
}

func (m *propSeqModel) Evolve(e *rita.Event) error {
	m.Seqs = append(m.Seqs, e.Sequence())
	if m.events == nil {
		m.events = map[uint64]propRaw{}
	}
	r := propParse(e.Sequence(), e.Subject())
	if e.Entity != r.entity() || e.Type != r.t {
		return fmt.Errorf("event %d: entity %q and type %q, but subject %q", e.Sequence(), e.Entity, e.Type, e.Subject())
	}
	m.events[e.Sequence()] = r
	return nil
}

func (m *propSeqModel) MarshalBinary() ([]byte, error) {
	var b []byte
	for _, s := range m.Seqs {
		b = binary.BigEndian.AppendUint64(b, s)
	}
	return b, nil
}

func (m *propSeqModel) UnmarshalBinary(data []byte) error {
	if len(data)%8 != 0 {
		return fmt.Errorf("snapshot of %d bytes", len(data))
	}
	m.Seqs = nil
	for ; len(data) > 0; data = data[8:] {
		m.Seqs = append(m.Seqs, binary.BigEndian.Uint64(data))
	}
	return nil
}

var (
	propEntities   = []string{"order.1", "order.2", "user.1", "user.2"}
	propEventTypes = []string{"created", "changed", "closed"}
	propWildcards  = []string{"order", "user", "order.*", "*.1", "*.*.changed", "user.2.*", "*", "order.*.closed", "*.2.created"}
	propSnapshot   = rita.SnapshotConfig{Version: "1"}
)

// Property 1: Evolve applies what the stream holds.
func TestPropertyEvolveAppliesWhatTheStreamHolds(t *testing.T) {
	propChecks(t, propEvolveChecks)
	e := newPropEnv(t)
	rapid.Check(t, func(rt *rapid.T) {
		s, name := e.store(rt, "evolve")
		ctx := propCtx(rt)

		// Appends, with the model of what they stored.
		var stored []propRaw
		entityLast := map[string]uint64{}
		var last uint64
		for i := range rapid.IntRange(1, 25).Draw(rt, "appends") {
			n := rapid.IntRange(1, 4).Draw(rt, "events in the append")
			expect := rapid.SampledFrom([]string{"none", "right", "stale"}).Draw(rt, "expect")
			batch := make([]*rita.Event, n)
			stamped := map[string]bool{}
			for j := range batch {
				ent := rapid.SampledFrom(propEntities).Draw(rt, "entity")
				ev := &rita.Event{Entity: ent, Type: rapid.SampledFrom(propEventTypes).Draw(rt, "type"), Data: fmt.Appendf(nil, "%d.%d", i, j)}
				if expect != "none" && !stamped[ent] {
					// The first event of each entity, as a Model stamps them.
					stamped[ent] = true
					seq := entityLast[ent]
					if expect == "stale" {
						if seq == 0 {
							seq = rapid.Uint64Range(1, last+1).Draw(rt, "stale expect")
						} else {
							seq = rapid.Uint64Range(0, seq-1).Draw(rt, "stale expect")
						}
					}
					ev.Expect = rita.ExpectSequence(seq)
				}
				batch[j] = ev
			}
			seq, err := s.Append(ctx, batch)
			if expect == "stale" {
				if !errors.Is(err, rita.ErrSequenceConflict) {
					rt.Fatalf("append %d with a stale Expect: seq %d, error %v; want ErrSequenceConflict", i, seq, err)
				}
				continue
			}
			if err != nil {
				rt.Fatalf("append %d: %v", i, err)
			}
			if seq != last+uint64(n) {
				rt.Fatalf("append %d of %d events returned %d, want %d", i, n, seq, last+uint64(n))
			}
			for _, ev := range batch {
				last++
				if ev.Sequence() != last {
					rt.Fatalf("append %d: event sequence %d, want %d", i, ev.Sequence(), last)
				}
				stored = append(stored, propParse(last, ev.Subject()))
				entityLast[ev.Entity] = last
			}
			if rapid.Bool().Draw(rt, "save a snapshot") {
				ent := rapid.SampledFrom(slices.Sorted(maps.Keys(entityLast))).Draw(rt, "snapshot entity")
				var seqs []uint64
				for _, r := range stored {
					if r.entity() == ent {
						seqs = append(seqs, r.seq)
					}
				}
				at := rapid.IntRange(0, len(seqs)-1).Draw(rt, "snapshot at")
				snap := &propSeqModel{Seqs: seqs[:at+1]}
				if err := s.SaveSnapshot(ctx, snap, ent, seqs[at], propSnapshot); err != nil {
					rt.Fatalf("SaveSnapshot(%s at %d): %v", ent, seqs[at], err)
				}
			}
		}

		// The stream holds what the appends acknowledged.
		raw := e.rawRead(rt, name)
		if !slices.Equal(raw, stored) {
			rt.Fatalf("the stream holds %v, the appends acknowledged %v", raw, stored)
		}

		// Reads apply what the stream holds.
		for range rapid.IntRange(1, 8).Draw(rt, "reads") {
			kind := rapid.SampledFrom([]string{"entity", "entity event", "wildcard", "store", "snapshot"}).Draw(rt, "read")
			var filters []string
			switch kind {
			case "entity", "snapshot":
				filters = []string{rapid.SampledFrom(propEntities).Draw(rt, "entity")}
			case "entity event":
				filters = []string{rapid.SampledFrom(propEntities).Draw(rt, "entity") + "." + rapid.SampledFrom(propEventTypes).Draw(rt, "type")}
			case "wildcard":
				filters = rapid.SliceOfNDistinct(rapid.SampledFrom(propWildcards), 1, 3, rapid.ID[string]).Draw(rt, "filters")
			}
			var opts []rita.EvolveOption
			if filters != nil {
				opts = append(opts, rita.WithFilters(filters...))
			}
			var after, stop uint64
			if kind != "snapshot" && rapid.Bool().Draw(rt, "with after") {
				after = rapid.Uint64Range(0, last+1).Draw(rt, "after")
				opts = append(opts, rita.WithAfterSequence(after))
			}
			if rapid.Bool().Draw(rt, "with stop") {
				stop = rapid.Uint64Range(1, last+1).Draw(rt, "stop")
				opts = append(opts, rita.WithStopSequence(stop))
			}
			if kind == "snapshot" {
				cfg := propSnapshot
				cfg.Every = rapid.IntRange(0, 3).Draw(rt, "snapshot every")
				opts = append(opts, rita.WithSnapshot(cfg))
			}
			want := propSelect(raw, filters, after, stop)
			var m propSeqModel
			got, err := s.Evolve(ctx, &m, opts...)
			what := fmt.Sprintf("%s read, filters %q, after %d, stop %d", kind, filters, after, stop)
			if err != nil {
				rt.Fatalf("%s: %v", what, err)
			}
			if !slices.Equal(m.Seqs, want) {
				rt.Fatalf("%s applied %v, the stream says %v", what, m.Seqs, want)
			}
			if wantLast := propLastOf(want); got != wantLast {
				rt.Fatalf("%s returned %d, want %d", what, got, wantLast)
			}
			for seq, r := range m.events {
				if i := slices.IndexFunc(raw, func(x propRaw) bool { return x.seq == seq }); i < 0 || raw[i] != r {
					rt.Fatalf("%s: event %d was %+v, the stream holds %+v", what, seq, r, raw[max(i, 0)])
				}
			}
		}
	})
}

func propLastOf(seqs []uint64) uint64 {
	if len(seqs) == 0 {
		return 0
	}
	return seqs[len(seqs)-1]
}

// Property 2: a Model fed by a Watch and by DecideAndEvolve.

var errPropOverdraft = errors.New("overdraft")

// propCmd is a command of propBank.
type propCmd struct {
	Kind     string // deposit, withdraw, transfer
	From, To string // entities
	Amount   int
}

// propBank holds balances and counts how often each sequence was applied.
// It is not safe for concurrent use; a Model wraps it.
type propBank struct {
	Balances map[string]int
	Applied  map[uint64]int
}

func newPropBank() *propBank {
	return &propBank{Balances: map[string]int{}, Applied: map[uint64]int{}}
}

func propMoney(entity, typ string, amount int) *rita.Event {
	return &rita.Event{Entity: entity, Type: typ, Data: []byte(strconv.Itoa(amount))}
}

func (b *propBank) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	c := cmd.Data.(propCmd)
	if c.Kind != "deposit" && b.Balances[c.From] < c.Amount {
		return nil, fmt.Errorf("%s %d from %s: %w", c.Kind, c.Amount, c.From, errPropOverdraft)
	}
	switch c.Kind {
	case "deposit":
		return []*rita.Event{propMoney(c.To, "deposited", c.Amount)}, nil
	case "withdraw":
		return []*rita.Event{propMoney(c.From, "withdrawn", c.Amount)}, nil
	default:
		return []*rita.Event{propMoney(c.From, "withdrawn", c.Amount), propMoney(c.To, "deposited", c.Amount)}, nil
	}
}

func (b *propBank) Evolve(e *rita.Event) error {
	data, _ := e.Data.([]byte)
	amount, err := strconv.Atoi(string(data))
	if err != nil {
		return fmt.Errorf("event %d: amount %q: %w", e.Sequence(), data, err)
	}
	switch e.Type {
	case "deposited":
		b.Balances[e.Entity] += amount
	case "withdrawn":
		b.Balances[e.Entity] -= amount
	default:
		return fmt.Errorf("event %d: unknown type %q", e.Sequence(), e.Type)
	}
	b.Applied[e.Sequence()]++
	return nil
}

// propOp is one step of a worker: a command through DecideAndEvolve
// (retrying or not), or an append the model does not see.
type propOp struct {
	Cmd   propCmd
	Retry bool
	Blind bool // appended directly, as another process would
}

var propAccounts = []string{"acct.a", "acct.b", "acct.c"}

func propOpGen() *rapid.Generator[propOp] {
	return rapid.Custom(func(rt *rapid.T) propOp {
		op := propOp{Cmd: propCmd{
			Kind:   rapid.SampledFrom([]string{"deposit", "deposit", "withdraw", "transfer", "transfer"}).Draw(rt, "kind"),
			From:   rapid.SampledFrom(propAccounts).Draw(rt, "from"),
			To:     rapid.SampledFrom(propAccounts).Draw(rt, "to"),
			Amount: rapid.IntRange(1, 20).Draw(rt, "amount"),
		}}
		if op.Cmd.Kind == "transfer" && op.Cmd.From == op.Cmd.To {
			op.Cmd.Kind = "withdraw"
		}
		switch rapid.IntRange(0, 9).Draw(rt, "how") {
		case 0, 1:
			op.Blind = true
			op.Cmd.Kind = "deposit" // never below zero
		case 2, 3, 4, 5:
			op.Retry = true
		}
		return op
	})
}

// run does op on model through s; a refusal the property allows (an
// overdraft, a conflict) is not an error.
func (op propOp) run(ctx context.Context, s *rita.EventStore, model *rita.Model[*propBank]) error {
	if op.Blind {
		_, err := s.Append(ctx, []*rita.Event{propMoney(op.Cmd.To, "deposited", op.Cmd.Amount)})
		return err
	}
	cmd := &rita.Command{Data: op.Cmd}
	var events []*rita.Event
	var err error
	if op.Retry {
		events, _, err = s.DecideAndEvolveWithRetry(ctx, model, cmd, rita.WithMaxAttempts(5), rita.WithBackoff(time.Millisecond, 10*time.Millisecond))
	} else {
		events, _, err = s.DecideAndEvolve(ctx, model, cmd)
	}
	if errors.Is(err, errPropOverdraft) || errors.Is(err, rita.ErrSequenceConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%+v: %w", op, err)
	}
	for _, e := range events {
		if e.Sequence() == 0 {
			return fmt.Errorf("%+v: a stored event without a sequence", op)
		}
	}
	return nil
}

func TestPropertyModelAppliesEachEventOnce(t *testing.T) {
	propChecks(t, propModelChecks)
	e := newPropEnv(t)
	var events, twice atomic.Int64 // events stored; events the watch brought after DecideAndEvolve had applied them
	rapid.Check(t, func(rt *rapid.T) {
		s, name := e.store(rt, "model")
		ctx := propCtx(rt)
		prefix := rapid.SliceOfN(propOpGen(), 0, 4).Draw(rt, "before the watch")
		workers := rapid.SliceOfN(rapid.SliceOfN(propOpGen(), 1, 12), 1, 3).Draw(rt, "workers")
		noWait := rapid.Bool().Draw(rt, "watch without waiting")

		bank := newPropBank()
		model := rita.NewModel(bank)
		for _, op := range prefix {
			if err := op.run(ctx, s, model); err != nil {
				rt.Fatalf("before the watch: %v", err)
			}
		}

		var watched atomic.Uint64 // the last sequence the watch delivered
		var watchErrs struct {
			sync.Mutex
			errs []error
		}
		feed := rita.EvolverFunc(func(ev *rita.Event) error {
			if model.EntitySequence(ev.Entity) >= ev.Sequence() {
				twice.Add(1)
			}
			err := model.Evolve(ev)
			watched.Store(ev.Sequence())
			return err
		})
		opts := []rita.WatchOption{rita.WithErrHandler(func(err error, _ *rita.Event, _ jetstream.Msg) {
			watchErrs.Lock()
			watchErrs.errs = append(watchErrs.errs, err)
			watchErrs.Unlock()
		})}
		if noWait {
			opts = append(opts, rita.WithNoWait())
		}
		w, err := s.Watch(ctx, feed, opts...)
		if err != nil {
			rt.Fatalf("Watch: %v", err)
		}
		defer w.Stop()

		var wg sync.WaitGroup
		errs := make(chan error, len(workers))
		for _, ops := range workers {
			wg.Go(func() {
				for _, op := range ops {
					if err := op.run(ctx, s, model); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			rt.Fatalf("worker: %v", err)
		}

		last := e.lastSeq(rt, name)
		events.Add(int64(last))
		propEventually(rt, func() bool { return watched.Load() >= last }, "the watch delivers up to %d (got to %d)", last, watched.Load())
		w.Stop()
		watchErrs.Lock()
		if len(watchErrs.errs) > 0 {
			rt.Fatalf("the watch reported %v", watchErrs.errs)
		}
		watchErrs.Unlock()

		fresh := newPropBank()
		if _, err := s.Evolve(ctx, fresh); err != nil {
			rt.Fatalf("fresh Evolve: %v", err)
		}
		_ = model.View(func(b *propBank) error {
			for seq, n := range b.Applied {
				if n != 1 || seq == 0 {
					rt.Fatalf("the model applied sequence %d %d times", seq, n)
				}
			}
			if got, want := slices.Sorted(maps.Keys(b.Applied)), slices.Sorted(maps.Keys(fresh.Applied)); !slices.Equal(got, want) {
				rt.Fatalf("the model applied %v, a fresh Evolve %v", got, want)
			}
			if len(fresh.Applied) != int(last) {
				rt.Fatalf("a fresh Evolve applied %d events, the store holds %d", len(fresh.Applied), last)
			}
			propDropZero(b.Balances)
			propDropZero(fresh.Balances)
			if !maps.Equal(b.Balances, fresh.Balances) {
				rt.Fatalf("the model's balances %v, a fresh Evolve's %v", b.Balances, fresh.Balances)
			}
			for acct, v := range b.Balances {
				if v < 0 {
					rt.Fatalf("%s has balance %d", acct, v)
				}
			}
			return nil
		})
	})
	t.Logf("%d events stored; the watch brought %d of them after DecideAndEvolve had applied them", events.Load(), twice.Load())
}

func propDropZero(m map[string]int) {
	maps.DeleteFunc(m, func(_ string, v int) bool { return v == 0 })
}

// Property 3: a read never skips or repeats an event across consumer
// replacements. A consumer deleted after it answered its last pull request
// is noticed after about two seconds (two idle waits, or two missed
// heartbeats), which sets the pace of these checks.

// propReadRetries counts the reads' "rita: read: retrying" log records.
type propReadRetries struct{ n atomic.Int64 }

func (c *propReadRetries) Enabled(context.Context, slog.Level) bool { return true }
func (c *propReadRetries) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *propReadRetries) WithGroup(string) slog.Handler            { return c }
func (c *propReadRetries) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "rita: read: retrying" {
		c.n.Add(1)
	}
	return nil
}

// propFault is an Evolver that records the sequences it applies and, when
// it has applied points[i] events, has another goroutine (run) delete the
// consumers of the store's stream; with hold, it waits until they are
// deleted, so that the fault lands while the read is under way.
type propFault struct {
	js     jetstream.JetStream
	stream string
	points []int
	hold   bool

	mu   sync.Mutex
	seqs []uint64
	next int

	kick    chan struct{} // one per point reached
	done    chan struct{} // one per deletion finished, with hold
	quit    chan struct{} // closed when run has returned
	deleted atomic.Int64  // consumers deleted
	missed  atomic.Int64  // points at which no consumer was found
}

func newPropFault(js jetstream.JetStream, stream string, points []int, hold bool) *propFault {
	return &propFault{js: js, stream: stream, points: points, hold: hold,
		kick: make(chan struct{}, len(points)), done: make(chan struct{}), quit: make(chan struct{})}
}

func (f *propFault) Evolve(e *rita.Event) error {
	f.mu.Lock()
	f.seqs = append(f.seqs, e.Sequence())
	fire := f.next < len(f.points) && len(f.seqs) == f.points[f.next]
	if fire {
		f.next++
	}
	f.mu.Unlock()
	if fire {
		f.kick <- struct{}{}
		if f.hold {
			select {
			case <-f.done:
			case <-f.quit:
			}
		}
	}
	return nil
}

func (f *propFault) applied() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seqs)
}

// run deletes the stream's consumers once per kick until kick is closed or
// ctx ends (the read is over: a point it has not reached any more is not
// waited for).
func (f *propFault) run(ctx context.Context) {
	defer close(f.quit)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-f.kick:
			if !ok {
				return
			}
		}
		if !f.deleteConsumers(ctx) {
			f.missed.Add(1)
		}
		if f.hold {
			select {
			case f.done <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// deleteConsumers deletes every consumer of the stream, polling for one
// (the read may be replacing its own) for up to a second. It reports
// whether it deleted one.
func (f *propFault) deleteConsumers(ctx context.Context) bool {
	deadline := time.Now().Add(time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		st, err := f.js.Stream(ctx, f.stream)
		if err != nil {
			return false
		}
		names := st.ConsumerNames(ctx)
		deleted := false
		for name := range names.Name() {
			if err := f.js.DeleteConsumer(ctx, f.stream, name); err == nil {
				f.deleted.Add(1)
				deleted = true
			}
		}
		if deleted {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// propAppendItems appends n events spread over a few entities, in batches of
// at most rita.MaxBatchSize.
func propAppendItems(rt *rapid.T, s *rita.EventStore, n int) {
	for n > 0 {
		batch := make([]*rita.Event, min(n, rita.MaxBatchSize))
		for i := range batch {
			batch[i] = &rita.Event{Entity: "item." + strconv.Itoa(i%4), Type: "counted", Data: []byte(strconv.Itoa(i))}
		}
		if _, err := s.Append(propCtx(rt), batch); err != nil {
			rt.Fatalf("Append %d events: %v", len(batch), err)
		}
		n -= len(batch)
	}
}

func TestPropertyReadSurvivesLostConsumers(t *testing.T) {
	if testing.Short() {
		t.Skip("property test with thousands of events: skipped with -short")
	}
	propChecks(t, propLostChecks)
	var retries propReadRetries
	e := newPropEnv(t, rita.WithLogger(slog.New(&retries)))
	var reads, deleted, watchErrors atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		s, name := e.store(rt, "lost")
		ctx := propCtx(rt)
		n := rapid.IntRange(2000, 4000).Draw(rt, "events")
		watch := rapid.Bool().Draw(rt, "watch")
		more := 0
		if watch {
			more = rapid.IntRange(0, 300).Draw(rt, "events appended while watching")
		}
		total := n + more
		k := rapid.IntRange(1, 4).Draw(rt, "deletions")
		points := rapid.SliceOfNDistinct(rapid.IntRange(1, total), k, k, rapid.ID[int]).Draw(rt, "delete after this many events")
		slices.Sort(points)
		hold := rapid.Bool().Draw(rt, "hold the read while deleting")
		propAppendItems(rt, s, n)

		f := newPropFault(e.js, "ES_"+name, points, hold)
		fctx, stopFault := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { f.run(fctx) })
		defer wg.Wait()
		defer stopFault()
		retried := retries.n.Load()

		if watch {
			var watchErrs atomic.Int64
			w, err := s.Watch(ctx, f, rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) { watchErrs.Add(1) }))
			if err != nil {
				rt.Fatalf("Watch: %v", err)
			}
			defer w.Stop()
			if got := len(f.applied()); got < n {
				rt.Fatalf("Watch returned after %d events, before catching up with %d", got, n)
			}
			if more > 0 {
				propAppendItems(rt, s, more)
			}
			propEventually(rt, func() bool { return len(f.applied()) >= total }, "the watch applies %d events (has %d)", total, len(f.applied()))
			w.Stop()
			watchErrors.Add(watchErrs.Load())
		} else {
			last, err := s.Evolve(ctx, f)
			if err != nil {
				rt.Fatalf("Evolve: %v", err)
			}
			if last != uint64(total) {
				rt.Fatalf("Evolve returned %d, want %d", last, total)
			}
		}
		stopFault()
		wg.Wait()
		reads.Add(1)
		deleted.Add(f.deleted.Load())
		rt.Logf("%d events, deletions after %v (hold %v): %d consumers deleted, %d points missed, %d read retries",
			total, points, hold, f.deleted.Load(), f.missed.Load(), retries.n.Load()-retried)

		got := f.applied()
		if len(got) != total || slices.ContainsFunc(got, func(seq uint64) bool { return seq == 0 }) || !slices.IsSorted(got) ||
			got[0] != 1 || got[len(got)-1] != uint64(total) || len(slices.Compact(slices.Clone(got))) != total {
			rt.Fatalf("applied %d events (first %v, last %v), want exactly 1..%d in order; first difference at %d",
				len(got), got[:min(5, len(got))], got[max(0, len(got)-5):], total, propFirstDiff(got))
		}
		if hold && f.deleted.Load() == 0 {
			// The first point always finds the consumer: the read waits
			// for the deletion. Later ones may find none, while the read
			// delivers what it had received before.
			rt.Fatalf("no consumer deleted while the read was held")
		}
	})
	t.Logf("%d reads: %d consumers deleted under them; %d read retries logged, %d watch errors handled",
		reads.Load(), deleted.Load(), retries.n.Load(), watchErrors.Load())
}

// propFirstDiff returns the first index i where got[i] != i+1, or -1.
func propFirstDiff(got []uint64) int {
	for i, s := range got {
		if s != uint64(i+1) {
			return i
		}
	}
	if len(got) == 0 {
		return 0
	}
	return -1
}
