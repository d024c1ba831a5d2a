package durable

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/synadia-labs/rita/internal/wire"
)

// A partitioned consumer: the store's entities are spread over P partitions
// by a hash of the entity (the partition stream, partition_stream.go), each
// partition is a durable consumer run by the engine, and the processes
// running the consumer (the members of its group) share the partitions.
//
// Invariants, and where they are kept:
//   - An entity has one partition: every subject transform of the
//     partition stream hashes the same tokens of it (wire.PartitionTransforms).
//   - A partition is handled by one process at a time, and an entity's
//     events in order across a move: each partition's consumer is pinned
//     (the server delivers to one client) and its engine resyncs before it
//     handles anything (it waits until every event the partition has
//     outstanding is in its hands). The group's assignment only decides
//     who asks for a partition; it never carries safety. Two members that
//     disagree for a moment both ask, and the server pins one.
//   - A member runs at most one engine per partition: a partition given up
//     is started again only once its engine has stopped.
//   - Retry requests of parked events are taken by partition 0's engine,
//     wherever it runs; they work on the parked stream under the
//     consumer's name with the compare-and-set the engine uses, so a
//     retry never runs beside a handler call of its entity elsewhere: the
//     partition's owner handles none of the entity's events while it has
//     parked ones.
//
// Membership: each member publishes on the group subject when it joins
// (the others answer at once), every beat, and when it leaves; one not
// heard of for three beats has left. Every member computes the same
// assignment from the same set of members (assign), so the partitions move
// as soon as the members have heard of a change.

// GroupConfig configures a partitioned consumer.
type GroupConfig[E any] struct {
	// Config is that of the consumer: Stream is the store's stream,
	// Match the patterns to handle when the partitions carry more.
	Config[E]
	Layout PartitionLayout
}

// Group is a running member of a partitioned consumer.
type Group[E any] struct {
	cfg    GroupConfig[E]
	cons   *Consumer
	stream jetstream.Stream // the partition stream
	id     string
	beat   time.Duration
	sub    *nats.Subscription

	changed chan struct{} // a member came or went
	stopCh  chan struct{}
	loopEnd chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	members  map[string]time.Time // other members, when last heard of
	engines  map[int]*Engine[E]
	live     map[*Engine[E]]bool   // started and not yet stopped
	stopping map[int]chan struct{} // closed when partition k's engine has stopped
	ended    bool
	endErr   error
	stopOnce sync.Once
	workers  sync.WaitGroup

	reports   reportQueue[E]
	inReport  atomic.Bool
	reporting chan struct{}
}

// Membership messages: the header says who and what.
const (
	hdrMember   = "Rita-Member"
	hdrMemberOp = "Rita-Member-Op"
	opJoin      = "join"
	opBeat      = "beat"
	opLeave     = "leave"
)

// StartGroup makes or checks the partition stream and joins the group of
// processes running the consumer.
func StartGroup[E any](ctx context.Context, cfg GroupConfig[E]) (*Group[E], error) {
	cons := &Consumer{JS: cfg.JS, NC: cfg.NC, Store: cfg.Store, Stream: cfg.Stream, Name: cfg.Name}
	st, err := cons.EnsurePartitions(ctx, cfg.Layout)
	if err != nil {
		return nil, err
	}
	g := &Group[E]{
		cfg:       cfg,
		cons:      cons,
		stream:    st,
		id:        nuid.Next(),
		beat:      max(cfg.AckWait/4, 500*time.Millisecond),
		changed:   make(chan struct{}, 1),
		stopCh:    make(chan struct{}),
		loopEnd:   make(chan struct{}),
		done:      make(chan struct{}),
		members:   make(map[string]time.Time),
		engines:   make(map[int]*Engine[E]),
		live:      make(map[*Engine[E]]bool),
		stopping:  make(map[int]chan struct{}),
		reporting: make(chan struct{}),
	}
	g.cfg.Slots = make(chan struct{}, cfg.Concurrency)
	g.reports.init()
	g.sub, err = cfg.NC.Subscribe(wire.GroupSubject(cfg.Store, cfg.Name), g.receive)
	if err != nil {
		return nil, fmt.Errorf("join the group: %w", err)
	}
	if err := cfg.NC.Flush(); err != nil {
		_ = g.sub.Unsubscribe()
		return nil, fmt.Errorf("join the group: %w", err)
	}
	go g.reporter()
	g.announce(opJoin)
	go g.loop()
	return g, nil
}

// announce publishes this member's op on the group subject.
func (g *Group[E]) announce(op string) {
	msg := nats.NewMsg(wire.GroupSubject(g.cfg.Store, g.cfg.Name))
	msg.Header.Set(hdrMember, g.id)
	msg.Header.Set(hdrMemberOp, op)
	_ = g.cfg.NC.PublishMsg(msg)
}

// receive learns of another member.
func (g *Group[E]) receive(msg *nats.Msg) {
	id := msg.Header.Get(hdrMember)
	if id == "" || id == g.id {
		return
	}
	op := msg.Header.Get(hdrMemberOp)
	g.mu.Lock()
	_, known := g.members[id]
	if op == opLeave {
		delete(g.members, id)
	} else {
		g.members[id] = time.Now()
	}
	g.mu.Unlock()
	if op == opJoin {
		g.announce(opBeat) // so that it learns of this member at once
	}
	if known != (op != opLeave) {
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}
}

// settle is how long a member that joins listens to the others before it
// takes partitions, so that it does not take every partition for a moment.
const settle = 200 * time.Millisecond

// loop beats, forgets members not heard of, and rebalances.
func (g *Group[E]) loop() {
	defer close(g.loopEnd)
	t := time.NewTimer(settle)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.stopCh:
		return
	}
	tick := time.NewTicker(g.beat)
	defer tick.Stop()
	for {
		g.rebalance()
		select {
		case <-tick.C:
			g.announce(opBeat)
			g.expire()
		case <-g.changed:
		case <-g.stopCh:
			return
		}
	}
}

// expire forgets the members not heard of for three beats.
func (g *Group[E]) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, seen := range g.members {
		if time.Since(seen) > 3*g.beat {
			delete(g.members, id)
		}
	}
}

// rebalance starts the engines of the partitions assigned to this member
// and stops the others.
func (g *Group[E]) rebalance() {
	g.mu.Lock()
	ids := make([]string, 0, len(g.members)+1)
	ids = append(ids, g.id)
	for id := range g.members {
		ids = append(ids, id)
	}
	owner := assign(g.cfg.Layout.Partitions, ids)
	var start []int
	for k, id := range owner {
		eng, running := g.engines[k]
		switch {
		case id == g.id && !running:
			if _, busy := g.stopping[k]; !busy {
				start = append(start, k)
			}
		case id != g.id && running:
			delete(g.engines, k)
			g.stopEngineLocked(k, eng)
		}
	}
	g.mu.Unlock()
	for _, k := range start {
		if g.isStopping() {
			return
		}
		eng, err := g.startEngine(k)
		if err != nil {
			g.report(fmt.Errorf("partition %d: %w", k, err))
			continue // tried again at the next beat
		}
		g.mu.Lock()
		if g.ended {
			g.mu.Unlock()
			_ = eng.Stop(context.Background())
			return
		}
		g.engines[k] = eng
		g.live[eng] = true
		g.mu.Unlock()
		g.workers.Add(1)
		go g.watchEngine(k, eng)
	}
}

// stopEngineLocked stops partition k's engine in the background.
func (g *Group[E]) stopEngineLocked(k int, eng *Engine[E]) {
	stopped := make(chan struct{})
	g.stopping[k] = stopped
	g.workers.Add(1)
	go func() {
		defer g.workers.Done()
		_ = eng.Stop(context.Background())
		g.mu.Lock()
		delete(g.stopping, k)
		delete(g.live, eng)
		g.mu.Unlock()
		close(stopped)
		select {
		case g.changed <- struct{}{}: // it may be this member's again
		default:
		}
	}()
}

// startEngine starts the engine of partition k.
func (g *Group[E]) startEngine(k int) (*Engine[E], error) {
	cfg := g.cfg.Config
	cfg.Stream = g.stream
	cfg.Name = wire.PartitionConsumer(k)
	cfg.ParkAs = g.cfg.Name
	cfg.NoRetries = k != 0
	cfg.Subjects = []string{wire.PartitionSubjects(k)}
	cfg.After = 0 // the stream starts where the consumer does
	cfg.What = fmt.Sprintf("%s, partition %d of %d", g.cfg.What, k, g.cfg.Layout.Partitions)
	store := g.cfg.Store
	cfg.Subject = func(s string) string {
		if orig, ok := wire.StoreSubject(store, s); ok {
			return orig
		}
		return s
	}
	cfg.Report = func(err error, e E, msg jetstream.Msg) {
		g.reports.push(report[E]{err: fmt.Errorf("partition %d: %w", k, err), e: e, msg: msg})
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return Start(ctx, cfg)
}

// watchEngine ends the group when an engine ends by itself: its consumer or
// store was deleted, or the connection closed.
func (g *Group[E]) watchEngine(k int, eng *Engine[E]) {
	defer g.workers.Done()
	select {
	case <-eng.Done():
	case <-g.stopCh:
		return
	}
	err := eng.Err()
	if err == nil {
		return // stopped by the group
	}
	g.mu.Lock()
	if g.engines[k] == eng {
		delete(g.engines, k)
	}
	if !g.ended && g.endErr == nil {
		g.endErr = fmt.Errorf("partition %d: %w", k, err)
	}
	g.mu.Unlock()
	go func() { _ = g.Stop(context.Background()) }()
}

func (g *Group[E]) isStopping() bool {
	select {
	case <-g.stopCh:
		return true
	default:
		return false
	}
}

// Stop leaves the group: it stops every engine of this member (each lets
// its handlers finish within ctx, gives back what it has not handled and
// unpins its partition) and tells the other members, which take the
// partitions over at once. It may be called more than once, and from the
// report function.
func (g *Group[E]) Stop(ctx context.Context) error {
	g.stopOnce.Do(func() {
		g.mu.Lock()
		g.ended = true
		g.mu.Unlock()
		close(g.stopCh)
		go func() {
			<-g.loopEnd
			g.mu.Lock()
			engines := make([]*Engine[E], 0, len(g.engines))
			for _, eng := range g.engines {
				engines = append(engines, eng)
			}
			g.engines = map[int]*Engine[E]{}
			g.mu.Unlock()
			var wg sync.WaitGroup
			for _, eng := range engines {
				wg.Go(func() { _ = eng.Stop(context.Background()) })
			}
			wg.Wait()
			g.workers.Wait()
			_ = g.sub.Unsubscribe()
			if !g.cfg.NC.IsClosed() {
				g.announce(opLeave)
			}
			g.reports.close()
			close(g.done)
		}()
	})
	select {
	case <-g.done:
	case <-ctx.Done():
		g.cancelHandlers()
		return ctx.Err()
	}
	if !g.inReport.Load() {
		<-g.reporting
	}
	return nil
}

// cancelHandlers ends the handlers' context of every engine still running.
func (g *Group[E]) cancelHandlers() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for eng := range g.live {
		eng.hcancel()
	}
}

// Done returns a channel that is closed once the member has left the
// group: after Stop, or by itself.
func (g *Group[E]) Done() <-chan struct{} { return g.done }

// Err returns why the member left by itself, once Done is closed; nil
// after Stop.
func (g *Group[E]) Err() error {
	select {
	case <-g.done:
	default:
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.endErr
}

// Partitions returns the partitions this member runs now, in order.
func (g *Group[E]) Partitions() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	ks := make([]int, 0, len(g.engines))
	for k := range g.engines {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// report hands an error of the group's own to Report.
func (g *Group[E]) report(err error) {
	var none E
	g.reports.push(report[E]{err: err, e: none})
}

// reporter calls Report with the reports of every engine, one at a time.
func (g *Group[E]) reporter() {
	defer close(g.reporting)
	for {
		rep, ok := g.reports.pop()
		if !ok {
			return
		}
		g.inReport.Store(true)
		g.cfg.Report(rep.err, rep.e, rep.msg)
		g.inReport.Store(false)
	}
}

// assign gives each of n partitions to one of members: as evenly as can be
// (every member gets n/len(members) or one more), and each partition,
// where the counts allow, to the member that ranks highest for it, so that
// a member coming or going moves few partitions. Every member computes the
// same assignment from the same set.
func assign(n int, members []string) []string {
	members = slices.Clone(members)
	slices.Sort(members)
	members = slices.Compact(members)
	owner := make([]string, n)
	if len(members) == 0 {
		return owner
	}
	base, extra := n/len(members), n%len(members)
	count := make(map[string]int, len(members))
	full := 0 // members that have base+1
	type ranked struct {
		id    string
		score uint64
	}
	order := make([]ranked, len(members))
	for k := range n {
		for i, id := range members {
			h := fnv.New64a()
			_, _ = h.Write([]byte(id))
			_, _ = h.Write([]byte{'/'})
			_, _ = h.Write([]byte(strconv.Itoa(k)))
			order[i] = ranked{id, h.Sum64()}
		}
		slices.SortFunc(order, func(a, b ranked) int { return cmp.Compare(b.score, a.score) })
		for _, r := range order {
			c := count[r.id]
			if c < base || (c == base && full < extra) {
				if c == base {
					full++
				}
				count[r.id] = c + 1
				owner[k] = r.id
				break
			}
		}
	}
	return owner
}
