package rita

import (
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// report hands an error to the error handler, on the reporter's goroutine.
func (r *durable) report(err error, e *Event, msg jetstream.Msg) {
	r.reports.push(report{err: err, e: e, msg: msg})
}

// reporter calls the error handler with each report, in order.
func (r *durable) reporter() {
	defer close(r.reporting)
	for {
		rep, ok := r.reports.pop()
		if !ok {
			return
		}
		r.inReport.Store(true)
		r.errHandler(rep.err, rep.e, rep.msg)
		r.inReport.Store(false)
	}
}

func (r *durable) logError(err error, e *Event, _ jetstream.Msg) {
	attrs := []any{slog.String("store", r.s.name), slog.String(r.what, r.name), slog.Any("error", err)}
	if e != nil {
		attrs = append(attrs, slog.Uint64("sequence", e.sequence), slog.String("entity", e.Entity), slog.String("type", e.Type))
	}
	r.s.m.logger.Error("rita: "+r.what, attrs...)
}

// report is one call of the error handler.
type report struct {
	err error
	e   *Event
	msg jetstream.Msg
}

// reportQueue is an unbounded queue of reports, so that reporting never
// blocks the engine, even while the error handler calls Stop.
type reportQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []report
	closed bool
}

func (q *reportQueue) init() { q.cond = sync.NewCond(&q.mu) }

func (q *reportQueue) push(r report) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, r)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

// pop returns the next report; false once closed and empty.
func (q *reportQueue) pop() (report, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return report{}, false
	}
	r := q.items[0]
	q.items[0] = report{}
	q.items = q.items[1:]
	return r, true
}

// close lets pop end once the queue is empty; later pushes are dropped.
func (q *reportQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}
