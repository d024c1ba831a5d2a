package jsapi

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/nats-io/nats.go"
)

// Permission violations: a request the server refuses for lack of
// permission fails at once instead of waiting for an answer that never
// comes.
//
// The server does not answer a publish it refuses, nor tell a request that
// its reply subscription was refused: it sends the connection an -ERR
// ("Permissions Violation for Publish to X", "... for Subscription to Y"),
// which nats.go hands to the connection's asynchronous error handler and
// keeps as its LastError. A request meanwhile waits for its timeout, and a
// timeout is transient, so the retry policy would send it again until its
// context ended.
//
// Denials watches one connection for these errors: it wraps the error
// handler the connection has (calling it as before), once per connection,
// and again when a guard finds that the application has set another one
// since.
// A call guards its context with a Scope, the subjects it may publish to;
// a violation on one of them, or on a reply subscription (any subject under
// the connection's inbox prefix), cancels the guarded context with a
// *Denied as its cause, which Cause turns into the call's error.
//
// Invariants:
//   - the connection's error handler is a wrapper of this package's at most
//     once, and the handler it wraps is called for every error, as before;
//   - a refused reply subscription stays refused until the connection
//     reconnects (nats.go subscribes its reply inbox once, and again after
//     a reconnect): until then every new guard is cancelled at once;
//   - a *Denied matches ErrPermissionDenied and nats.ErrPermissionViolation
//     and is never Transient.

// ErrPermissionDenied matches the error of a call the server refused for
// lack of permission. Package rita exports it as rita.ErrPermissionDenied.
var ErrPermissionDenied = errors.New("rita: permission denied")

// Denied is a permission violation the server reported.
type Denied struct {
	Op      string // "publish", "subscribe" or "publish with reply"
	Subject string // the subject refused
	Queue   string // the queue group of a refused subscription, if any
}

func (d *Denied) Error() string {
	s := fmt.Sprintf("%v: %s %q refused by the server's permissions", ErrPermissionDenied, d.Op, d.Subject)
	if d.Queue != "" {
		s += fmt.Sprintf(" (queue %q)", d.Queue)
	}
	return s
}

// Is reports whether target is ErrPermissionDenied or
// nats.ErrPermissionViolation.
func (d *Denied) Is(target error) bool {
	return target == ErrPermissionDenied || target == nats.ErrPermissionViolation
}

var violationRe = regexp.MustCompile(`(?i)permissions violation for (publish with reply of|publish to|subscription to) "([^"]+)"(?: using queue "([^"]+)")?`)

// ParseViolation reads a permission violation out of an error nats.go
// reported; false if err is none.
func ParseViolation(err error) (*Denied, bool) {
	if err == nil || !errors.Is(err, nats.ErrPermissionViolation) {
		return nil, false
	}
	m := violationRe.FindStringSubmatch(err.Error())
	if m == nil {
		return nil, false
	}
	op := "publish"
	switch strings.ToLower(m[1]) {
	case "subscription to":
		op = "subscribe"
	case "publish with reply of":
		op = "publish with reply"
	}
	return &Denied{Op: op, Subject: m[2], Queue: m[3]}, true
}

// Scope is what a guarded call may publish to: exact subjects, subjects
// under a prefix, or API subjects that name one of its streams (a token of
// the subject equal to a stream name). A refused reply subscription is in
// every scope.
type Scope struct {
	Subjects []string
	Prefixes []string
	Streams  []string

	// Parent, if set, is a scope this one extends: what it covers, this
	// one covers too (so that a call's scope need not copy its store's).
	Parent *Scope
}

// covers reports whether d concerns a call of s on a connection whose
// inboxes start with inbox.
func (s *Scope) covers(d *Denied, inbox string) bool {
	if d.Op != "publish" {
		return strings.HasPrefix(d.Subject, inbox)
	}
	if s.Parent != nil && s.Parent.covers(d, inbox) {
		return true
	}
	for _, subj := range s.Subjects {
		if d.Subject == subj {
			return true
		}
	}
	for _, p := range s.Prefixes {
		if strings.HasPrefix(d.Subject, p) {
			return true
		}
	}
	if len(s.Streams) > 0 && strings.HasPrefix(d.Subject, "$JS.") {
		for tok := range strings.SplitSeq(d.Subject, ".") {
			for _, st := range s.Streams {
				if tok == st {
					return true
				}
			}
		}
	}
	return false
}

// Denials watches one connection for permission violations. Get it with
// WatchDenials; it is safe for concurrent use.
type Denials struct {
	nc    *nats.Conn
	inbox string // the connection's inbox prefix, with its trailing dot

	mu      sync.Mutex
	prev    nats.ErrHandler // the handler onError wraps
	guards  map[*guard]struct{}
	refused *Denied // a refused reply subscription
	since   uint64  // the connection's reconnect count when refused

	// hasRefused is refused != nil, read without mu by Watch.
	hasRefused atomic.Bool
	// epoch is the current one of the epochs Watch hands out: a
	// violation ends it and starts the next.
	epoch atomic.Pointer[epoch]
}

// epoch is the time between two violations a Denials observes.
type epoch struct {
	done chan struct{} // closed when the epoch ends
	next *epoch        // the epoch after it, set before done is closed
	v    *Denied       // the violation that started it (nil for the first)
}

type guard struct {
	scope  *Scope
	cancel context.CancelCauseFunc
}

var (
	registryMu sync.Mutex
	// registry holds the Denials of each connection weakly: a Denials is
	// kept alive by the error handler of its connection, and goes with it.
	registry = map[weak.Pointer[nats.Conn]]weak.Pointer[Denials]{}
)

// WatchDenials returns the Denials of nc, wrapping its error handler the
// first time it is asked for nc. A handler nc gets later with
// SetErrorHandler replaces the wrapper until the next Guard, which wraps it
// in turn.
func WatchDenials(nc *nats.Conn) *Denials {
	key := weak.Make(nc)
	registryMu.Lock()
	defer registryMu.Unlock()
	if d := registry[key].Value(); d != nil {
		return d
	}
	inbox := nc.NewInbox()
	d := &Denials{nc: nc, inbox: inbox[:strings.LastIndexByte(inbox, '.')+1], guards: map[*guard]struct{}{}}
	d.epoch.Store(&epoch{done: make(chan struct{})})
	d.mu.Lock()
	d.wrap()
	d.mu.Unlock()
	registry[key] = weak.Make(d)
	runtime.AddCleanup(nc, func(k weak.Pointer[nats.Conn]) {
		registryMu.Lock()
		delete(registry, k)
		registryMu.Unlock()
	}, key)
	return d
}

// wrapperCode identifies the error handler of a Denials (the method value
// d.onError of any d) among error handlers: a method value's code is the
// same wherever it is made, where a closure's may not be (the compiler
// makes a copy of a closure where it inlines the function returning it).
var wrapperCode = reflect.ValueOf((*Denials)(nil).onError).Pointer()

// onError is the connection's error handler: it tells d of an error, then
// calls the handler it wrapped.
func (d *Denials) onError(c *nats.Conn, sub *nats.Subscription, err error) {
	d.observe(err)
	d.mu.Lock()
	prev := d.prev
	d.mu.Unlock()
	if prev != nil {
		prev(c, sub, err)
	}
}

// wrap makes the connection's error handler tell d first, unless it does.
// d.mu is held.
func (d *Denials) wrap() {
	prev := d.nc.ErrorHandler()
	if prev != nil && reflect.ValueOf(prev).Pointer() == wrapperCode {
		return
	}
	d.prev = prev
	d.nc.SetErrorHandler(d.onError)
}

// observe cancels the guards a violation concerns.
func (d *Denials) observe(err error) {
	v, ok := ParseViolation(err)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if v.Op == "subscribe" && strings.HasPrefix(v.Subject, d.inbox) {
		d.refused, d.since = v, d.nc.Stats().Reconnects
		d.hasRefused.Store(true)
	}
	cur := d.epoch.Load()
	cur.next = &epoch{done: make(chan struct{}), v: v}
	d.epoch.Store(cur.next)
	close(cur.done)
	for g := range d.guards {
		if g.scope.covers(v, d.inbox) {
			g.cancel(v)
			delete(d.guards, g)
		}
	}
}

// Guard returns a context derived from ctx that is cancelled, with a
// *Denied as its cause, when the server refuses a publish in scope or a
// reply subscription, and a function that releases the guard (call it when
// the call ends). A nil Denials guards nothing.
func (d *Denials) Guard(ctx context.Context, scope *Scope) (context.Context, context.CancelFunc) {
	if d == nil {
		return ctx, func() {}
	}
	gctx, cancel := context.WithCancelCause(ctx)
	g := &guard{scope: scope, cancel: cancel}
	d.mu.Lock()
	d.wrap()
	if d.refused != nil && d.since == d.nc.Stats().Reconnects {
		d.mu.Unlock()
		cancel(d.refused)
		return gctx, func() {}
	}
	d.refused = nil
	d.hasRefused.Store(false)
	d.guards[g] = struct{}{}
	d.mu.Unlock()
	return gctx, func() {
		d.mu.Lock()
		delete(d.guards, g)
		d.mu.Unlock()
		cancel(context.Canceled)
	}
}

// Watch is the guard of a call that waits on channels rather than on a
// context (an asynchronous publish's acknowledgement, say): it costs no
// allocation and no lock of its own, so that a call that is not refused
// pays next to nothing for it. Make one with Denials.Watch when the call
// starts; wait on Done beside the call's own channels; when Done is
// closed, ask Denied whether the violation concerns the call.
type Watch struct {
	d *Denials
	e *epoch
}

// Watch starts watching for violations on behalf of one call. It returns
// the refused reply subscription at once if there is one (as Guard does),
// and wraps the connection's error handler again if the application has
// replaced it. A nil Denials watches nothing: Done is nil.
func (d *Denials) Watch() (Watch, *Denied) {
	if d == nil {
		return Watch{}, nil
	}
	if prev := d.nc.ErrorHandler(); prev == nil || reflect.ValueOf(prev).Pointer() != wrapperCode {
		d.mu.Lock()
		d.wrap()
		d.mu.Unlock()
	}
	if d.hasRefused.Load() {
		d.mu.Lock()
		refused := d.refused
		if refused != nil && d.since != d.nc.Stats().Reconnects {
			d.refused, refused = nil, nil
			d.hasRefused.Store(false)
		}
		d.mu.Unlock()
		if refused != nil {
			return Watch{}, refused
		}
	}
	return Watch{d: d, e: d.epoch.Load()}, nil
}

// Done returns a channel that is closed when a violation is observed (of
// any call's scope) after the watch started or after the last call of
// Denied.
func (w *Watch) Done() <-chan struct{} {
	if w.e == nil {
		return nil
	}
	return w.e.done
}

// Denied returns the first violation observed since the watch started (or
// since the last call of Denied) that concerns a call of scope, or nil.
// Done is then a channel of the violations after those it looked at.
func (w *Watch) Denied(scope *Scope) *Denied {
	for w.e != nil {
		select {
		case <-w.e.done:
		default:
			return nil
		}
		w.e = w.e.next
		if scope.covers(w.e.v, w.d.inbox) {
			return w.e.v
		}
	}
	return nil
}

// DeniedBy returns the *Denied that ended ctx (or a context it derives
// from), or nil.
func DeniedBy(ctx context.Context) *Denied {
	if ctx == nil || ctx.Err() == nil {
		return nil
	}
	var d *Denied
	if errors.As(context.Cause(ctx), &d) {
		return d
	}
	return nil
}

// Cause returns the permission violation behind err, a failure of a
// request made under ctx: the *Denied that cancelled ctx, or, for a request
// that went unanswered, the violation nc reported last if it is one of
// scope (the case of a connection whose error handler was replaced after
// WatchDenials). Otherwise it returns err.
func Cause(ctx context.Context, nc *nats.Conn, scope *Scope, err error) error {
	if err == nil {
		return nil
	}
	if d := DeniedBy(ctx); d != nil {
		return d
	}
	if nc != nil && scope != nil && (errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)) {
		if v, ok := ParseViolation(nc.LastError()); ok {
			inbox := nc.NewInbox()
			if scope.covers(v, inbox[:strings.LastIndexByte(inbox, '.')+1]) {
				return v
			}
		}
	}
	return err
}

// GuardFunc derives from a call's context one that a permission violation
// of the call's scope ends at once (Denials.Guard with a scope bound), and
// the function that releases it. A nil GuardFunc guards nothing.
type GuardFunc func(context.Context) (context.Context, context.CancelFunc)

// Guard guards ctx with g, if set.
func (g GuardFunc) Guard(ctx context.Context) (context.Context, context.CancelFunc) {
	if g == nil {
		return ctx, func() {}
	}
	return g(ctx)
}

// DeniedOr returns the permission violation that ended ctx, if one did and
// err is not nil; otherwise err.
func DeniedOr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if d := DeniedBy(ctx); d != nil {
		return d
	}
	return err
}
