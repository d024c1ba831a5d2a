package rita_test

// Fault tests: event stores with Replicas: 3 on a three-node cluster (and one
// single server) while servers stop and restart under load. Each test logs
// its figures (events appended, tries sent again, events lost, events stored
// twice) and fails unless none is lost and none is stored twice. They wait
// for conditions with deadlines, never for fixed times.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/ritatest"
)

// faultWait bounds every wait of a fault test.
const faultWait = 60 * time.Second

// background runs the goroutines of a test that loop until they are told to
// stop. Halt closes the stop channel and waits for them; it is also a
// cleanup of the test, so that when the test fails early none of them
// reports to a test that has ended.
type background struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newBackground(t *testing.T) *background {
	b := &background{stop: make(chan struct{})}
	t.Cleanup(b.halt)
	return b
}

// Go runs f in a goroutine of b.
func (b *background) Go(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// halt tells b's goroutines to stop and waits until they have.
func (b *background) halt() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}

// faultFigures are what a fault test counts.
type faultFigures struct {
	appended   atomic.Int64 // events whose Append returned success
	retried    atomic.Int64 // tries the test sent again after an Append failed
	lost       int          // acknowledged events that are not stored
	duplicated int          // extra copies of stored events
}

// report logs f, with the retries Append made by itself, and fails t unless
// nothing was lost or stored twice.
func (f *faultFigures) report(t *testing.T, retries *retryCounter) {
	t.Helper()
	t.Logf("figures: appended %d, retried %d (by Append %d, by the test %d), lost %d, duplicated %d",
		f.appended.Load(), retries.n.Load()+f.retried.Load(), retries.n.Load(), f.retried.Load(), f.lost, f.duplicated)
	if retries.n.Load() > 0 {
		t.Logf("Append retried after: %v; %d refused tries were found stored by an earlier one", retries, retries.found.Load())
	}
	if f.lost != 0 || f.duplicated != 0 {
		t.Errorf("lost %d and duplicated %d events, want 0 and 0", f.lost, f.duplicated)
	}
}

// retryCounter is a slog.Handler that counts the retries Append logs, and
// how often each error caused one; and, apart from those, the retries reads
// log ("rita: read: retrying") and their causes.
type retryCounter struct {
	n          atomic.Int64 // retries of Append
	found      atomic.Int64 // refused tries found stored by an earlier one
	reads      atomic.Int64 // retries of reads
	mu         sync.Mutex
	causes     map[string]int
	readCauses map[string]int
}

func (c *retryCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *retryCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *retryCounter) WithGroup(string) slog.Handler            { return c }
func (c *retryCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "rita: append: already stored" {
		c.found.Add(1)
	}
	var causes *map[string]int
	switch r.Message {
	case "rita: append: retrying":
		c.n.Add(1)
		causes = &c.causes
	case "rita: read: retrying":
		c.reads.Add(1)
		causes = &c.readCauses
	default:
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			c.mu.Lock()
			if *causes == nil {
				*causes = map[string]int{}
			}
			(*causes)[a.Value.String()]++
			c.mu.Unlock()
		}
		return true
	})
	return nil
}

func (c *retryCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.causes)
}

// readRetryCauses returns how often each error made a read retry.
func (c *retryCounter) readRetryCauses() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.readCauses)
}

// faultEnv is a cluster (or a single server) whose Managers log to retries.
type faultEnv struct {
	c       *ritatest.Cluster
	retries retryCounter
}

func newFaultCluster(t *testing.T) *faultEnv {
	t.Helper()
	skipShort(t)
	return &faultEnv{c: ritatest.NewCluster(t, 3)}
}

// skipShort skips a fault test under go test -short; CI runs them all.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
}

// conn connects to server i of the cluster, reconnecting to any of them.
func (f *faultEnv) conn(t *testing.T, i int) *nats.Conn {
	t.Helper()
	return f.c.Servers[i].Connect(t, ritatest.Reconnecting(), logAsyncErrors(t))
}

// logAsyncErrors logs the errors a connection reports asynchronously (a
// slow consumer, a permissions violation) instead of printing them.
func logAsyncErrors(t *testing.T) nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		t.Logf("connection error (subscription %q): %v", subject, err)
	})
}

func (f *faultEnv) manager(t *testing.T, nc *nats.Conn, opts ...rita.ManagerOption) *rita.Manager {
	t.Helper()
	m, err := rita.New(nc, append(opts, rita.WithLogger(slog.New(&f.retries)))...)
	if err != nil {
		t.Fatalf("rita.New: %v", err)
	}
	return m
}

func createReplicated(t *testing.T, m *rita.Manager, name string) *rita.EventStore {
	t.Helper()
	s, err := m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: name, Replicas: 3})
	if err != nil {
		t.Fatalf("CreateEventStore(%q, Replicas: 3): %v", name, err)
	}
	return s
}

func openExisting(t *testing.T, m *rita.Manager, name string) *rita.EventStore {
	t.Helper()
	s, err := m.GetEventStore(testCtx(t), name)
	if err != nil {
		t.Fatalf("GetEventStore(%q): %v", name, err)
	}
	return s
}

// appendSure appends events and, if Append fails without a definite answer
// (its context ended), appends the very same events (same IDs, same
// Expect) again, which finds out whether the first try was stored. It
// counts those tries in f.
func appendSure(s *rita.EventStore, events []*rita.Event, f *faultFigures) (uint64, error) {
	var err error
	for try := range 5 {
		if try > 0 {
			f.retried.Add(1)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var seq uint64
		seq, err = s.Append(ctx, events)
		cancel()
		if err == nil {
			f.appended.Add(int64(len(events)))
			return seq, nil
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return 0, err
		}
	}
	return 0, err
}

// storedMsg is one message of a store, as the stream holds it.
type storedMsg struct {
	seq     uint64
	id      string
	subject string
}

// askFault sends a raw JetStream request with req, in attempts of 2 s,
// until one is answered (it returns no transient error), and returns its
// error. After a fault a stream may still be electing its leader, and a
// request whose answer is lost would wait for its whole deadline.
func askFault(t *testing.T, what string, req func(context.Context) error) error {
	t.Helper()
	var err error
	waitFault(t, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = req(ctx)
		return !jsapi.Transient(err)
	})
	return err
}

// readStored reads every message of store with raw JetStream.
func readStored(t *testing.T, nc *nats.Conn, store string) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	js, err := jetstream.New(nc)
	requireNoError(t, err)
	var stream jetstream.Stream
	err = askFault(t, "the stream's info", func(ctx context.Context) (err error) {
		stream, err = js.Stream(ctx, "ES_"+store)
		return err
	})
	requireNoError(t, err)
	total := stream.CachedInfo().State.Msgs
	var out []storedMsg
	if total == 0 {
		return out
	}
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	requireNoError(t, err)
	it, err := oc.Messages()
	requireNoError(t, err)
	defer it.Stop()
	for uint64(len(out)) < total {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("reading store %s: %d of %d messages: %v", store, len(out), total, err)
		}
		md, err := msg.Metadata()
		requireNoError(t, err)
		out = append(out, storedMsg{seq: md.Sequence.Stream, id: msg.Headers().Get(jetstream.MsgIDHeader), subject: msg.Subject()})
	}
	return out
}

// checkStored counts in f the acknowledged events (ID → sequence) that are
// missing from msgs and the events msgs holds more than once, and fails t
// for an acknowledged event stored at another sequence.
func checkStored(t *testing.T, msgs []storedMsg, acked map[string]uint64, f *faultFigures) {
	t.Helper()
	copies := make(map[string]int, len(msgs))
	at := make(map[string]uint64, len(msgs))
	for _, m := range msgs {
		copies[m.id]++
		at[m.id] = m.seq
	}
	for id, seq := range acked {
		switch {
		case copies[id] == 0:
			f.lost++
			t.Errorf("event %s was acknowledged at %d but is not stored", id, seq)
		case at[id] != seq:
			t.Errorf("event %s was acknowledged at %d but is stored at %d", id, seq, at[id])
		}
	}
	for id, n := range copies {
		if n > 1 {
			f.duplicated += n - 1
			t.Errorf("event %s is stored %d times", id, n)
		}
	}
}

// waitFault polls cond until it holds, failing t after faultWait.
func waitFault(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, faultWait, cond, "%s", what)
}

// 1. Writers append to distinct entities, single events and batches of
// three, each expecting the writer's previous one, while the stream leader
// is stopped, restarted, and the new leader stopped: every acknowledged
// event is stored exactly once, in each writer's order.
func TestFaultAppendWhileLeadersStop(t *testing.T) {
	f := newFaultCluster(t)
	conns := []*nats.Conn{f.conn(t, 0), f.conn(t, 1), f.conn(t, 2)}
	createReplicated(t, f.manager(t, conns[0]), "orders")

	const writers = 6
	var (
		fig      faultFigures
		mu       sync.Mutex
		acked    = map[string]uint64{}
		order    = make([][]string, writers)
		progress = make([]atomic.Int64, writers)
		bg       = newBackground(t)
	)
	for w := range writers {
		s := openExisting(t, f.manager(t, conns[w%len(conns)]), "orders")
		bg.Go(func() {
			var last uint64
			for k := 1; ; k++ {
				select {
				case <-bg.stop:
					return
				default:
				}
				// Every third append is a batch of three.
				events := make([]*rita.Event, 1+2*min(1, k%3/2))
				for j := range events {
					events[j] = &rita.Event{
						ID:     fmt.Sprintf("w%d-%d-%d", w, k, j),
						Entity: fmt.Sprintf("order.w%d", w),
						Type:   "placed",
						Data:   []byte("x"),
					}
				}
				events[0].Expect = rita.ExpectSequence(last)
				seq, err := appendSure(s, events, &fig)
				if err != nil {
					t.Errorf("writer %d, append %d (expect %d): %v", w, k, last, err)
					return
				}
				mu.Lock()
				for _, e := range events {
					acked[e.ID] = e.Sequence()
					order[w] = append(order[w], e.ID)
				}
				mu.Unlock()
				last = seq
				progress[w].Add(1)
			}
		})
	}
	// progressed waits until every writer has appended n more events.
	progressed := func(what string, n int64) {
		t.Helper()
		from := make([]int64, writers)
		for i := range from {
			from[i] = progress[i].Load()
		}
		waitFault(t, what, func() bool {
			for i := range from {
				if progress[i].Load() < from[i]+n {
					return false
				}
			}
			return true
		})
	}

	progressed("writers start", 20)
	first := f.c.WaitStoreLeader("orders")
	first.Stop()
	second := f.c.WaitStoreLeader("orders")
	progressed("writers go on without the first leader", 20)
	first.Restart()
	f.c.WaitReady()
	f.c.WaitStoreCurrent("orders")
	progressed("writers go on after it returned", 20)
	second = f.c.WaitStoreLeader("orders")
	second.Stop()
	f.c.WaitStoreLeader("orders")
	progressed("writers go on without the second leader", 20)
	second.Restart()
	f.c.WaitReady()
	f.c.WaitStoreCurrent("orders")
	progressed("writers go on after it returned", 10)
	bg.halt()

	msgs := readStored(t, conns[0], "orders")
	checkStored(t, msgs, acked, &fig)
	// Each writer's events are stored in the order it appended them.
	byEntity := map[string][]string{}
	for _, m := range msgs {
		byEntity[m.subject] = append(byEntity[m.subject], m.id)
	}
	for w := range writers {
		got := byEntity[fmt.Sprintf("$ES.orders.order.w%d.placed", w)]
		if !slices.Equal(got, order[w]) {
			t.Errorf("writer %d: stored %d events in order %v, acknowledged %d in order %v", w, len(got), got, len(order[w]), order[w])
		}
	}
	fig.report(t, &f.retries)
}

// 2. Deciders withdraw from one account concurrently (load it, decide with
// Expect, append, decide again on ErrSequenceConflict) while the stream
// leader stops and restarts: the balance never goes below zero and ends at
// the deposits minus the withdrawals that succeeded.
func TestFaultWithdrawWhileNodeRestarts(t *testing.T) {
	f := newFaultCluster(t)
	reg := newRegistry(t, bankTypes())
	conns := []*nats.Conn{f.conn(t, 0), f.conn(t, 1), f.conn(t, 2)}
	bank := createReplicated(t, f.manager(t, conns[0], rita.WithRegistry(reg)), "bank")

	const (
		deposits  = 20
		deposit   = 50
		withdrawn = 5
		deciders  = 4
	)
	var (
		fig       faultFigures
		mu        sync.Mutex
		acked     = map[string]uint64{}
		succeeded int // withdrawals stored
		conflicts atomic.Int64
		progress  atomic.Int64
		wg        sync.WaitGroup
	)
	for i := range deposits {
		events := []*rita.Event{{Entity: accountEntity("A"), Data: &depositedEvt{Amount: deposit}}}
		seq, err := appendSure(bank, events, &fig)
		if err != nil {
			t.Fatalf("deposit %d: %v", i, err)
		}
		acked[events[0].ID] = seq
	}
	for d := range deciders {
		s := openExisting(t, f.manager(t, conns[d%len(conns)], rita.WithRegistry(reg)), "bank")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				model := rita.NewModel(newLedger())
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := s.Evolve(ctx, model, rita.WithFilters(accountEntity("A")))
				cancel()
				if err != nil {
					t.Errorf("decider %d: load: %v", d, err)
					return
				}
				events, err := model.Decide(&rita.Command{Data: &withdrawCmd{Account: "A", Amount: withdrawn}})
				if errors.Is(err, errOverdraft) {
					return // the account is empty
				}
				if err != nil {
					t.Errorf("decider %d: decide: %v", d, err)
					return
				}
				seq, err := appendSure(s, events, &fig)
				if errors.Is(err, rita.ErrSequenceConflict) {
					conflicts.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("decider %d: append: %v", d, err)
					return
				}
				mu.Lock()
				acked[events[0].ID] = seq
				succeeded++
				mu.Unlock()
				progress.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	waitFault(t, "withdrawals start", func() bool { return progress.Load() >= 10 })
	leader := f.c.WaitStoreLeader("bank")
	leader.Stop()
	f.c.WaitStoreLeader("bank")
	from := progress.Load()
	waitFault(t, "withdrawals go on without the leader", func() bool {
		select {
		case <-done:
			return true
		default:
			return progress.Load() >= from+10
		}
	})
	leader.Restart()
	f.c.WaitReady()
	f.c.WaitStoreCurrent("bank")
	select {
	case <-done:
	case <-time.After(faultWait):
		t.Fatalf("the deciders did not empty the account within %v", faultWait)
	}

	// Replay the stored events in order: the balance never goes negative.
	m := f.manager(t, conns[0], rita.WithRegistry(reg))
	s := openExisting(t, m, "bank")
	var (
		balance, lowest int
		replayed        []*rita.Event
	)
	_, err := s.Evolve(testCtx(t), evolverFunc(func(e *rita.Event) error {
		switch d := e.Data.(type) {
		case *depositedEvt:
			balance += d.Amount
		case *withdrawnEvt:
			balance -= d.Amount
		}
		lowest = min(lowest, balance)
		replayed = append(replayed, e)
		return nil
	}))
	requireNoError(t, err)
	want := deposits*deposit - succeeded*withdrawn
	t.Logf("%d withdrawals of %d succeeded, %d conflicts; balance %d", succeeded, withdrawn, conflicts.Load(), balance)
	if lowest < 0 {
		t.Errorf("the balance went down to %d", lowest)
	}
	if balance != want || balance < 0 || balance >= withdrawn {
		t.Errorf("balance %d, want deposits minus succeeded withdrawals = %d, and below %d", balance, want, withdrawn)
	}
	checkStored(t, readStored(t, conns[0], "bank"), acked, &fig)
	if len(replayed) != len(acked) {
		t.Errorf("Evolve replayed %d events, %d were acknowledged", len(replayed), len(acked))
	}
	fig.report(t, &f.retries)
}

// teeEvolver records the sequence of every event a watcher hands it, then
// evolves model with it.
type teeEvolver struct {
	mu    sync.Mutex
	seqs  []uint64
	model *rita.Model[*ledger]
}

func (e *teeEvolver) Evolve(ev *rita.Event) error {
	e.mu.Lock()
	e.seqs = append(e.seqs, ev.Sequence())
	e.mu.Unlock()
	return e.model.Evolve(ev)
}

func (e *teeEvolver) delivered() []uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seqs)
}

func (e *teeEvolver) has(seq uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.seqs, seq)
}

// 3. A Model kept current by Watch while its connection's server (the
// stream leader) stops and restarts ends equal to a fresh Evolve, and the
// watcher delivers every event once, in order. Events flow again within a
// few seconds of the stop, and within 3 s of the restart.
func TestFaultWatchWhileItsServerRestarts(t *testing.T) {
	f := newFaultCluster(t)
	reg := newRegistry(t, bankTypes())
	createReplicated(t, f.manager(t, f.conn(t, 0), rita.WithRegistry(reg)), "watched")
	// The watcher connects to the stream leader, where its consumer lives
	// too; the writer to another server.
	leader := f.c.WaitStoreLeader("watched")
	other := f.c.Servers[0]
	if other == leader {
		other = f.c.Servers[1]
	}
	watchConn := leader.Connect(t, ritatest.Reconnecting())
	writeConn := other.Connect(t, ritatest.Reconnecting())
	writer := openExisting(t, f.manager(t, writeConn, rita.WithRegistry(reg)), "watched")
	watched := openExisting(t, f.manager(t, watchConn, rita.WithRegistry(reg)), "watched")

	var (
		fig   faultFigures
		mu    sync.Mutex
		acked = map[string]uint64{}
		last  atomic.Uint64
	)
	deposit := func(account string) uint64 {
		events := []*rita.Event{{Entity: accountEntity(account), Data: &depositedEvt{Amount: 1}}}
		seq, err := appendSure(writer, events, &fig)
		if err != nil {
			t.Errorf("deposit: %v", err)
			return 0
		}
		mu.Lock()
		acked[events[0].ID] = seq
		mu.Unlock()
		last.Store(max(last.Load(), seq))
		return seq
	}
	for i := range 50 {
		deposit(fmt.Sprint(i % 5))
	}

	tee := &teeEvolver{model: rita.NewModel(newLedger())}
	var handled atomic.Int64
	w, err := watched.Watch(testCtx(t), tee, rita.WithErrHandler(func(err error, e *rita.Event, _ jetstream.Msg) {
		handled.Add(1)
		t.Logf("watch error handler: %v", err)
	}))
	requireNoError(t, err)
	defer w.Stop()

	bg := newBackground(t)
	bg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-bg.stop:
				return
			default:
			}
			if deposit(fmt.Sprint(i%5)) == 0 {
				return
			}
		}
	})
	waitFault(t, "the watcher follows", func() bool { return tee.model.Sequence() >= 200 })

	// Stop the watcher's server; its connection moves to another one.
	leader.Stop()
	stopped := time.Now()
	marker := deposit("marker")
	waitFault(t, "the watcher applies an event appended after its server stopped", func() bool { return tee.has(marker) })
	flowing := time.Since(stopped)
	leader.Restart()
	f.c.WaitReady()
	f.c.WaitStoreCurrent("watched")
	restarted := time.Now()
	marker = deposit("marker")
	waitFault(t, "the watcher applies an event appended after the restart", func() bool { return tee.has(marker) })
	afterRestart := time.Since(restarted)
	t.Logf("events flowed again %v after the watcher's server stopped, %v after it restarted; %d errors handled",
		flowing, afterRestart, handled.Load())
	// The leader steps down without stopping.
	old := f.c.WaitStoreLeader("watched")
	requireNoError(t, old.JetStreamStepdownStream("$G", "ES_watched"))
	waitFault(t, "another leader", func() bool { l := f.c.StoreLeader("watched"); return l != nil && l != old })
	marker = deposit("marker")
	waitFault(t, "the watcher applies an event appended after the leader stepped down", func() bool { return tee.has(marker) })
	// Stopping the leader may also take the meta leader, and the consumer
	// may first land on the stopped server: the cluster needs a few
	// seconds. Once the server is back, events flow within 3 s.
	if flowing > 6*time.Second {
		t.Errorf("events flowed again %v after the watcher's server stopped, want within a few seconds", flowing)
	}
	if afterRestart > 3*time.Second {
		t.Errorf("events flowed again %v after the watcher's server restarted, want within 3s", afterRestart)
	}
	bg.halt()
	waitFault(t, "the watcher applies every event", func() bool { return tee.model.Sequence() >= last.Load() })
	w.Stop()

	// Every stored event was delivered once, in stream order.
	msgs := readStored(t, writeConn, "watched")
	checkStored(t, msgs, acked, &fig)
	all := make([]uint64, len(msgs))
	for i, m := range msgs {
		all[i] = m.seq
	}
	got := tee.delivered()
	if !slices.Equal(got, all) {
		seen := map[uint64]int{}
		for _, s := range got {
			seen[s]++
			if seen[s] == 2 {
				fig.duplicated++
			}
		}
		t.Errorf("the watcher delivered %d events, %d are stored; first difference at %d", len(got), len(all), firstSeqDiff(got, all))
	}
	// The model equals a fresh Evolve.
	fresh := rita.NewModel(newLedger())
	_, err = watched.Evolve(testCtx(t), fresh)
	requireNoError(t, err)
	var watchedBalances, freshBalances map[string]int
	requireNoError(t, tee.model.View(func(l *ledger) error { watchedBalances = maps.Clone(l.Balances); return nil }))
	requireNoError(t, fresh.View(func(l *ledger) error { freshBalances = maps.Clone(l.Balances); return nil }))
	if !maps.Equal(watchedBalances, freshBalances) {
		t.Errorf("watched model %v, fresh Evolve %v", watchedBalances, freshBalances)
	}
	fig.report(t, &f.retries)
}

func firstSeqDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// 4. All three servers stop and start again on their store directories:
// every event is there, in order, and optimistic concurrency goes on from
// the right sequences.
func TestFaultWholeClusterRestarts(t *testing.T) {
	f := newFaultCluster(t)
	nc := f.c.Connect(t, ritatest.Reconnecting())
	s := createReplicated(t, f.manager(t, nc), "durable")

	var (
		fig   faultFigures
		acked = map[string]uint64{}
		order []string
		last  = map[string]uint64{} // entity → its last sequence
	)
	record := func(events []*rita.Event) {
		for _, e := range events {
			acked[e.ID] = e.Sequence()
			order = append(order, e.ID)
			last[e.Entity] = e.Sequence()
		}
	}
	for i := range 100 {
		entity := fmt.Sprintf("order.%d", i%5)
		events := []*rita.Event{{Entity: entity, Type: "placed", Data: []byte("x"), Expect: rita.ExpectSequence(last[entity])}}
		if _, err := appendSure(s, events, &fig); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		record(events)
	}
	for i := range 5 { // batches across all entities
		var batch []*rita.Event
		for j := range 5 {
			entity := fmt.Sprintf("order.%d", j)
			batch = append(batch, &rita.Event{Entity: entity, Type: "shipped", Data: []byte(fmt.Sprint(i)), Expect: rita.ExpectSequence(last[entity])})
		}
		if _, err := appendSure(s, batch, &fig); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		record(batch)
	}

	// A watcher runs across the restart.
	var watching recorder
	w, err := s.Watch(testCtx(t), &watching)
	requireNoError(t, err)
	defer w.Stop()

	f.c.Restart()
	f.c.WaitStoreCurrent("durable")

	msgs := readStored(t, nc, "durable")
	checkStored(t, msgs, acked, &fig)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.id
	}
	if !slices.Equal(ids, order) {
		t.Errorf("stored order differs from the acknowledged one at %d of %d", firstIDDiff(ids, order), len(order))
	}
	var r recorder
	n, err := s.Evolve(testCtx(t), &r)
	requireNoError(t, err)
	requireSeqs(t, r.seqs(), seqRange(1, uint64(len(order))))
	if n != uint64(len(order)) {
		t.Errorf("Evolve returned %d, want %d", n, len(order))
	}

	// Optimistic concurrency goes on from the stored sequences.
	next := uint64(len(order))
	for j := range 5 {
		entity := fmt.Sprintf("order.%d", j)
		stale := []*rita.Event{{Entity: entity, Type: "paid", Data: []byte("x"), Expect: rita.ExpectSequence(last[entity] - 1)}}
		_, err := s.Append(testCtx(t), stale)
		requireErrorIs(t, err, rita.ErrSequenceConflict)
		events := []*rita.Event{{Entity: entity, Type: "paid", Data: []byte("x"), Expect: rita.ExpectSequence(last[entity])}}
		seq, err := appendSure(s, events, &fig)
		requireNoError(t, err)
		if next++; seq != next {
			t.Errorf("%s: appended at %d, want %d", entity, seq, next)
		}
		record(events)
	}
	_, err = s.Append(testCtx(t), []*rita.Event{{Entity: "order.9", Type: "placed", Data: []byte("x"),
		Expect: rita.ExpectSequenceSubject(last["order.4"]-1, "order")}})
	requireErrorIs(t, err, rita.ErrSequenceConflict)
	checkStored(t, readStored(t, nc, "durable"), acked, &fig)
	waitFault(t, "the watcher applies the events appended after the restart", func() bool { return watching.count() >= len(order) })
	w.Stop()
	requireSeqs(t, watching.seqs(), seqRange(1, uint64(len(order))))
	fig.report(t, &f.retries)
}

// Evolve reads on while the stream leader, which serves its consumer, stops
// and comes back: every event once, in order.
func TestFaultEvolveWhileLeaderStops(t *testing.T) {
	f := newFaultCluster(t)
	nc := f.conn(t, 0)
	s := createReplicated(t, f.manager(t, nc), "replay")
	var fig faultFigures
	acked := map[string]uint64{}
	const stored = 3000
	for i := 0; i < stored; i += rita.MaxBatchSize {
		batch := make([]*rita.Event, rita.MaxBatchSize)
		for j := range batch {
			batch[j] = rawEvent(fmt.Sprintf("order.%d", j%10), "placed", "x")
		}
		if _, err := appendSure(s, batch, &fig); err != nil {
			t.Fatalf("fill: %v", err)
		}
		for _, e := range batch {
			acked[e.ID] = e.Sequence()
		}
	}
	var stopped *ritatest.Server
	var r recorder
	r.fail = func(e *rita.Event, applied int) error {
		switch applied {
		case 1:
			stopped = f.c.WaitStoreLeader("replay")
			stopped.Stop()
		case stored / 2:
			stopped.Restart()
		}
		return nil
	}
	start := time.Now()
	last, err := s.Evolve(testCtx(t), &r)
	requireNoError(t, err)
	t.Logf("Evolve read %d events in %v while the leader stopped and came back", r.count(), time.Since(start))
	requireSeqs(t, r.seqs(), seqRange(1, stored))
	if last != stored {
		t.Errorf("Evolve returned %d, want %d", last, stored)
	}
	checkStored(t, readStored(t, nc, "replay"), acked, &fig)
	fig.report(t, &f.retries)
}

func firstIDDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// 5. A single server goes away during calls: Append, Evolve and Watch fail
// within their context's deadline; once it is back they work again, and a
// watcher that ran all along applies new events within 3 s.
func TestFaultServerGoesAway(t *testing.T) {
	skipShort(t)
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t, ritatest.Reconnecting(), logAsyncErrors(t))
	f := &faultEnv{}
	m := f.manager(t, nc)
	s := createStore(t, m, "single")
	var (
		fig   faultFigures
		mu    sync.Mutex
		acked = map[string]uint64{}
	)
	// More than one pull request holds (at most 4 MiB), so that a read
	// has to ask again after the server has gone.
	const stored = 3000
	data := strings.Repeat("x", 2<<10)
	for i := 0; i < stored; i += rita.MaxBatchSize {
		batch := make([]*rita.Event, rita.MaxBatchSize)
		for j := range batch {
			batch[j] = rawEvent(fmt.Sprintf("order.%d", j%10), "placed", data)
		}
		if _, err := appendSure(s, batch, &fig); err != nil {
			t.Fatalf("fill: %v", err)
		}
		for _, e := range batch {
			acked[e.ID] = e.Sequence()
		}
	}
	var running recorder
	w, err := s.Watch(testCtx(t), &running)
	requireNoError(t, err)
	defer w.Stop()

	const timeout = 2 * time.Second
	// within checks that a call failed, and took no longer than its
	// deadline plus a little for the goroutines to notice.
	within := func(what string, took time.Duration, err error) {
		t.Helper()
		t.Logf("%s failed after %v (deadline %v): %v", what, took, timeout, err)
		if err == nil {
			t.Fatalf("%s succeeded without a server", what)
		}
		if took > timeout+time.Second {
			t.Errorf("%s took %v, its deadline was %v", what, took, timeout)
		}
	}
	// stopOnFirst is an Evolver that stops the server when it gets the
	// first event, so that the call it serves loses its server midway.
	stopOnFirst := func(applied *atomic.Int64) rita.Evolver {
		return evolverFunc(func(*rita.Event) error {
			if applied.Add(1) == 1 {
				srv.Stop()
			}
			return nil
		})
	}

	// A writer appends all along; the call in flight when the server stops
	// fails within its deadline.
	type result struct {
		took time.Duration
		err  error
	}
	appended := make(chan result, 1)
	var appends atomic.Int64
	go func() {
		for {
			events := []*rita.Event{rawEvent("order.1", "shipped", "x")}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			start := time.Now()
			seq, err := s.Append(ctx, events)
			cancel()
			if err != nil {
				appended <- result{time.Since(start), err}
				return
			}
			mu.Lock()
			acked[events[0].ID] = seq
			mu.Unlock()
			fig.appended.Add(1)
			appends.Add(1)
		}
	}()
	waitFault(t, "the writer appends", func() bool { return appends.Load() >= 20 })

	// Evolve loses its server while it reads.
	var applied atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	start := time.Now()
	_, err = s.Evolve(ctx, stopOnFirst(&applied))
	cancel()
	within("Evolve", time.Since(start), err)
	if applied.Load() >= stored {
		t.Errorf("Evolve applied all %d events without a server", applied.Load())
	}
	r := <-appended
	within("Append", r.took, r.err)
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("Append error %v, want one matching context.DeadlineExceeded", r.err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	start = time.Now()
	_, err = s.Watch(ctx, &recorder{})
	cancel()
	within("Watch while the server is gone", time.Since(start), err)

	// Watch loses its server while it catches up.
	srv.Restart()
	applied.Store(0)
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	start = time.Now()
	_, err = s.Watch(ctx, stopOnFirst(&applied))
	cancel()
	within("Watch", time.Since(start), err)

	// Back again: the running watcher resumes, and every call works.
	srv.Restart()
	restarted := time.Now()
	events := []*rita.Event{rawEvent("order.1", "paid", "x")}
	seq, err := appendSure(s, events, &fig)
	requireNoError(t, err)
	acked[events[0].ID] = seq
	eventually(t, 3*time.Second, func() bool { return running.last() >= seq },
		"the running watcher did not apply event %d within 3s of the restart", seq)
	t.Logf("the running watcher applied a new event %v after the restart", time.Since(restarted))

	var all recorder
	_, err = s.Evolve(testCtx(t), &all)
	requireNoError(t, err)
	msgs := readStored(t, nc, "single")
	mu.Lock()
	checkStored(t, msgs, acked, &fig)
	mu.Unlock()
	if all.count() != len(msgs) {
		t.Errorf("Evolve after the restart read %d events, %d are stored", all.count(), len(msgs))
	}
	var again recorder
	w2, err := s.Watch(testCtx(t), &again)
	requireNoError(t, err)
	w2.Stop()
	if again.count() != len(msgs) {
		t.Errorf("Watch after the restart caught up on %d events, %d are stored", again.count(), len(msgs))
	}
	w.Stop()
	requireSeqs(t, running.seqs(), seqRange(1, uint64(len(msgs))))
	fig.report(t, &f.retries)
}

// consumerHost returns the server of the cluster that runs the one
// consumer on store's stream.
func consumerHost(t *testing.T, c *ritatest.Cluster, nc *nats.Conn, store string) *ritatest.Server {
	t.Helper()
	js, err := jetstream.New(nc)
	requireNoError(t, err)
	var host *ritatest.Server
	waitFault(t, "the consumer's server", func() bool {
		stream, err := js.Stream(testCtx(t), "ES_"+store)
		if err != nil {
			return false
		}
		names := stream.ConsumerNames(testCtx(t))
		var all []string
		for n := range names.Name() {
			all = append(all, n)
		}
		if len(all) != 1 {
			return false
		}
		for _, s := range c.Servers {
			if s.Running() && s.JetStreamIsConsumerLeader("$G", "ES_"+store, all[0]) {
				host = s
				return true
			}
		}
		return false
	})
	return host
}

// A watcher whose consumer's server stops, while the watcher's own
// connection stays up, notices the silence (two missed heartbeats) within
// two seconds, tells its error handler, and goes on with a new consumer.
func TestFaultWatchNoticesStalledConsumer(t *testing.T) {
	f := newFaultCluster(t)
	nc, writeConn := f.conn(t, 0), f.conn(t, 0)
	writer := createReplicated(t, f.manager(t, writeConn), "stall")
	s := openExisting(t, f.manager(t, nc), "stall")
	var fig faultFigures
	acked := map[string]uint64{}
	appendOne := func() uint64 {
		events := []*rita.Event{rawEvent("order.1", "placed", "x")}
		seq, err := appendSure(writer, events, &fig)
		requireNoError(t, err)
		acked[events[0].ID] = seq
		return seq
	}
	appendOne()

	// Watch until the consumer lands on another server than the watcher's
	// connection (servers are picked at random).
	var (
		w       rita.Watcher
		r       recorder
		host    *ritatest.Server
		mu      sync.Mutex
		handled []error
		noticed time.Time // when the handler first got a missed heartbeat
	)
	for try := 0; ; try++ {
		var err error
		w, err = s.Watch(testCtx(t), &r, rita.WithErrHandler(func(err error, _ *rita.Event, _ jetstream.Msg) {
			mu.Lock()
			handled = append(handled, err)
			if noticed.IsZero() && errors.Is(err, jetstream.ErrNoHeartbeat) {
				noticed = time.Now()
			}
			mu.Unlock()
		}))
		requireNoError(t, err)
		host = consumerHost(t, f.c, writeConn, "stall")
		if host != f.c.Servers[0] {
			break
		}
		if try == 20 {
			t.Fatalf("the consumer was put on the watcher's server %d times", try+1)
		}
		w.Stop()
		r = recorder{}
	}
	defer w.Stop()

	host.Stop()
	stopped := time.Now()
	seq := appendOne()
	waitFault(t, "the watcher applies an event appended after its consumer's server stopped", func() bool {
		return r.last() >= seq
	})
	took := time.Since(stopped)
	mu.Lock()
	errs := slices.Clone(handled)
	notice := noticed.Sub(stopped)
	mu.Unlock()
	t.Logf("the watcher noticed %v, and events flowed again %v, after the consumer's server stopped; handler got %v", notice, took, errs)
	switch {
	case noticed.IsZero():
		t.Errorf("the error handler got %v, want a missed heartbeat among them", errs)
	case notice > 3*time.Second:
		t.Errorf("the watcher noticed its consumer had gone after %v, want two heartbeats (2 s)", notice)
	}
	// While the cluster settles, a new consumer may fall silent too (seen
	// once under heavy load): each such one costs another two seconds.
	if took > 10*time.Second {
		t.Errorf("events flowed again %v after the consumer's server stopped, want a few seconds", took)
	}
	host.Restart()
	w.Stop()
	requireSeqs(t, r.seqs(), seqRange(1, seq))
	checkStored(t, readStored(t, writeConn, "stall"), acked, &fig)
	fig.report(t, &f.retries)
}

// A watcher whose consumer is deleted tells its error handler and goes on
// with a new one, without a gap or a repeat.
func TestWatchRecoversDeletedConsumer(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "deleted")
	appendN(t, s, "order.1", "placed", 5)
	var (
		r       recorder
		mu      sync.Mutex
		handled []error
	)
	w, err := s.Watch(testCtx(t), &r, rita.WithErrHandler(func(err error, ev *rita.Event, msg jetstream.Msg) {
		if ev != nil || msg != nil {
			t.Errorf("consumer error with an event or a message: %v", err)
		}
		mu.Lock()
		handled = append(handled, err)
		mu.Unlock()
	}))
	requireNoError(t, err)
	defer w.Stop()
	names := e.stream(t, "deleted").ConsumerNames(testCtx(t))
	for name := range names.Name() {
		requireNoError(t, e.js.DeleteConsumer(testCtx(t), "ES_deleted", name))
	}
	start := time.Now()
	appendN(t, s, "order.1", "shipped", 5)
	eventually(t, 5*time.Second, func() bool { return r.count() >= 10 }, "applied %v", r.seqs())
	t.Logf("recovered in %v", time.Since(start))
	requireSeqs(t, r.seqs(), seqRange(1, 10))
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(handled, func(err error) bool { return errors.Is(err, jetstream.ErrConsumerDeleted) }) {
		t.Errorf("the error handler got %v, want jetstream.ErrConsumerDeleted among them", handled)
	}
}

// Read your own writes on a replicated store: an Evolve (or a Watch) that
// starts after an Append returned sees that event, whichever replica its
// consumer is put on, also while one replica restarts and catches up.
func TestFaultReadYourWrites(t *testing.T) {
	f := newFaultCluster(t)
	writeConn, readConn := f.conn(t, 0), f.conn(t, 1)
	writer := createReplicated(t, f.manager(t, writeConn), "ryw")
	reader := openExisting(t, f.manager(t, readConn), "ryw")
	var fig faultFigures
	acked := map[string]uint64{}
	missed := 0
	check := func(i int) {
		entity := fmt.Sprintf("order.%d", i%7)
		events := []*rita.Event{rawEvent(entity, "placed", "x")}
		seq, err := appendSure(writer, events, &fig)
		requireNoError(t, err)
		acked[events[0].ID] = seq
		last, err := reader.Evolve(testCtx(t), &recorder{}, rita.WithFilters(entity))
		requireNoError(t, err)
		if last != seq {
			missed++
			t.Errorf("Evolve after Append at %d of %s ended at %d", seq, entity, last)
		}
		if i%10 == 0 {
			var r recorder
			w, err := reader.Watch(testCtx(t), &r, rita.WithFilters(entity))
			requireNoError(t, err)
			w.Stop()
			if n := r.count(); n == 0 || r.seqs()[n-1] != seq {
				missed++
				t.Errorf("Watch after Append at %d of %s caught up with %v", seq, entity, r.seqs())
			}
		}
	}
	start := time.Now()
	for i := range 30 {
		check(i)
	}
	t.Logf("30 appends and reads in %v", time.Since(start))
	// A replica that restarts catches up while reads go on.
	follower := f.c.Servers[2]
	if follower == f.c.WaitStoreLeader("ryw") {
		follower = f.c.Servers[1]
	}
	follower.Stop()
	for i := range 30 {
		check(i)
	}
	follower.Restart()
	for i := range 80 {
		check(i)
	}
	t.Logf("%d reads after appends, %d missed the event", 140+14, missed)
	checkStored(t, readStored(t, writeConn, "ryw"), acked, &fig)
	fig.report(t, &f.retries)
}

// A watcher whose store is deleted tells its handler and ends.
func TestWatchEndsWhenStoreDeleted(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "doomed")
	appendN(t, s, "order.1", "placed", 3)
	ended := make(chan error, 10)
	w, err := s.Watch(testCtx(t), &recorder{}, rita.WithErrHandler(func(err error, _ *rita.Event, _ jetstream.Msg) {
		ended <- err
	}))
	requireNoError(t, err)
	defer w.Stop()
	select {
	case <-w.Closed():
		t.Fatal("Closed before the store was deleted")
	default:
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err while running = %v", err)
	}
	requireNoError(t, e.m.DeleteEventStore(testCtx(t), "doomed"))
	// The watcher says it ended, and why, both to the error handler and
	// through Closed and Err.
	select {
	case <-w.Closed():
	case <-time.After(waitFor):
		t.Fatalf("the watcher did not end after its store was deleted")
	}
	requireErrorIs(t, w.Err(), jetstream.ErrStreamNotFound)
	deadline := time.After(waitFor)
	for {
		select {
		case err := <-ended:
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				requireNoLibraryGoroutines(t)
				return
			}
			t.Logf("handler: %v", err)
		case <-deadline:
			t.Fatalf("the error handler was not told")
		}
	}
}

// A durable consumer's Subscription ends by itself, and says why, when its
// store is deleted.
func TestSubscriptionEndsWhenStoreDeleted(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "doomed2")
	appendN(t, s, "order.1", "placed", 3)
	sub := react(t, s, "r", newJournal().handler("p"), rita.WithErrHandler(quiet))
	waitCaughtUp(t, s, "r")
	select {
	case <-sub.Closed():
		t.Fatal("Closed before the store was deleted")
	default:
	}
	requireNoError(t, e.m.DeleteEventStore(testCtx(t), "doomed2"))
	select {
	case <-sub.Closed():
	case <-time.After(waitFor):
		t.Fatalf("the reactor did not end after its store was deleted")
	}
	if sub.Err() == nil {
		t.Fatal("Err = nil after the store was deleted, want why")
	}
	t.Logf("ended with: %v", sub.Err())
}
