package durable

import (
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// report hands an error without an event to Report, on the reporter's
// goroutine.
func (r *Engine[E]) report(err error, msg jetstream.Msg) {
	var none E
	r.reports.push(report[E]{err: err, e: none, msg: msg})
}

// reportEvent hands an error about e to Report.
func (r *Engine[E]) reportEvent(err error, e E, msg jetstream.Msg) {
	r.reports.push(report[E]{err: err, e: e, msg: msg})
}

// reporter calls Report with each report, in order.
func (r *Engine[E]) reporter() {
	defer close(r.reporting)
	for {
		rep, ok := r.reports.pop()
		if !ok {
			return
		}
		r.inReport.Store(true)
		r.cfg.Report(rep.err, rep.e, rep.msg)
		r.inReport.Store(false)
	}
}

// report is one call of Report.
type report[E any] struct {
	err error
	e   E
	msg jetstream.Msg
}

// reportQueue is an unbounded queue of reports, so that reporting never
// blocks the engine, even while Report calls Stop.
type reportQueue[E any] struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []report[E]
	closed bool
}

func (q *reportQueue[E]) init() { q.cond = sync.NewCond(&q.mu) }

func (q *reportQueue[E]) push(r report[E]) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, r)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

// pop returns the next report; false once closed and empty.
func (q *reportQueue[E]) pop() (report[E], bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return report[E]{}, false
	}
	r := q.items[0]
	q.items[0] = report[E]{}
	q.items = q.items[1:]
	return r, true
}

// close lets pop end once the queue is empty; later pushes are dropped.
func (q *reportQueue[E]) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}
