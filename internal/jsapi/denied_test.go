package jsapi

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita/embedded"
)

func TestParseViolation(t *testing.T) {
	tests := []struct {
		err  error
		want *Denied
	}{
		{fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish to "$ES.a.x.1.t"`), &Denied{Op: "publish", Subject: "$ES.a.x.1.t"}},
		{fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Subscription to "_INBOX.abc.*"`), &Denied{Op: "subscribe", Subject: "_INBOX.abc.*"}},
		{fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Subscription to "q.>" using queue "workers"`), &Denied{Op: "subscribe", Subject: "q.>", Queue: "workers"}},
		{fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish with Reply of "_R_.x"`), &Denied{Op: "publish with reply", Subject: "_R_.x"}},
		{nats.ErrSlowConsumer, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		got, ok := ParseViolation(tt.err)
		if ok != (tt.want != nil) || ok && *got != *tt.want {
			t.Errorf("ParseViolation(%v) = %+v, %v; want %+v", tt.err, got, ok, tt.want)
		}
	}
}

func TestDeniedIsFinal(t *testing.T) {
	d := &Denied{Op: "publish", Subject: "$JS.API.STREAM.INFO.ES_a"}
	wrapped := Ended("the store's info", context.DeadlineExceeded, d, 1)
	for _, err := range []error{d, wrapped} {
		if Transient(err) || !Final(err) || !errors.Is(err, ErrPermissionDenied) || !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("%v: transient %v, final %v", err, Transient(err), Final(err))
		}
	}
	// Even a caller that retries whatever fails does not retry it.
	r := NewRetry(context.Background(), "x", nil)
	if err := r.FailedRetryable(context.Background(), d); err != d {
		t.Errorf("FailedRetryable = %v, want the refusal", err)
	}
}

func TestScopeCovers(t *testing.T) {
	scope := &Scope{Subjects: []string{"$ES.a.x.1.t"}, Prefixes: []string{"$KV.snaps-a."}, Streams: []string{"ES_a"}}
	tests := []struct {
		d    Denied
		want bool
	}{
		{Denied{Op: "publish", Subject: "$ES.a.x.1.t"}, true},
		{Denied{Op: "publish", Subject: "$ES.a.x.2.t"}, false}, // another call's event
		{Denied{Op: "publish", Subject: "$KV.snaps-a.x.1"}, true},
		{Denied{Op: "publish", Subject: "$JS.API.CONSUMER.CREATE.ES_a.c.f"}, true},
		{Denied{Op: "publish", Subject: "$JS.API.STREAM.INFO.ES_ab"}, false},
		{Denied{Op: "publish", Subject: "$JS.ACK.ES_a.c.1.2.3.4.5"}, true},
		{Denied{Op: "subscribe", Subject: "_INBOX.abc.*"}, true},
		{Denied{Op: "subscribe", Subject: "other.>"}, false},
	}
	for _, tt := range tests {
		if got := scope.covers(&tt.d, "_INBOX."); got != tt.want {
			t.Errorf("covers(%+v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}

// TestDenialsWrapsOnce checks that guarding calls leaves one wrapper on the
// connection's error handler, around the application's handler, however
// many calls are guarded and after the application replaces its handler:
// each error reaches the application's handler once, and a violation
// still ends a guarded call.
func TestDenialsWrapsOnce(t *testing.T) {
	nc := startServer(t)
	violation := fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish to "a.b"`)
	for _, replace := range []bool{false, true} {
		heard := 0
		// The first time, before the connection is watched; then after.
		nc.SetErrorHandler(func(*nats.Conn, *nats.Subscription, error) { heard++ })
		d := WatchDenials(nc)
		var ctx context.Context
		for range 5 {
			var release context.CancelFunc
			ctx, release = d.Guard(context.Background(), &Scope{Subjects: []string{"a.b"}})
			defer release()
		}
		if got := reflect.ValueOf(nc.ErrorHandler()).Pointer(); got != wrapperCode {
			t.Fatalf("replaced %v: the connection's error handler is not Denials' wrapper", replace)
		}
		nc.ErrorHandler()(nc, nil, violation)
		if heard != 1 {
			t.Errorf("replaced %v: the application's handler heard the error %d times, want 1", replace, heard)
		}
		if DeniedBy(ctx) == nil {
			t.Errorf("replaced %v: the violation did not end the guarded call", replace)
		}
	}
}

// TestWatch checks that a watch wakes at a violation, reports it only if
// its scope covers it, and goes on watching after one it does not cover;
// and that a refused reply subscription refuses a new watch at once.
func TestWatch(t *testing.T) {
	nc := startServer(t)
	d := WatchDenials(nc)
	scope := &Scope{Subjects: []string{"a.b"}}
	w, refused := d.Watch()
	if refused != nil {
		t.Fatalf("Watch refused at once: %v", refused)
	}
	select {
	case <-w.Done():
		t.Fatal("Done closed before any violation")
	default:
	}
	if v := w.Denied(scope); v != nil {
		t.Fatalf("Denied = %v before any violation", v)
	}
	violation := func(what string) error {
		return fmt.Errorf("%w: Permissions Violation for %s", nats.ErrPermissionViolation, what)
	}
	nc.ErrorHandler()(nc, nil, violation(`Publish to "other.subject"`))
	select {
	case <-w.Done():
	default:
		t.Fatal("Done not closed after a violation")
	}
	if v := w.Denied(scope); v != nil {
		t.Fatalf("Denied = %v for a subject out of scope", v)
	}
	select {
	case <-w.Done():
		t.Fatal("Done closed again without a new violation")
	default:
	}
	nc.ErrorHandler()(nc, nil, violation(`Publish to "a.b"`))
	<-w.Done()
	if v := w.Denied(scope); v == nil || v.Subject != "a.b" || v.Op != "publish" {
		t.Fatalf("Denied = %+v, want the publish to a.b", v)
	}
	nc.ErrorHandler()(nc, nil, violation(`Subscription to "`+d.inbox+`x.*"`))
	if _, refused := d.Watch(); refused == nil || refused.Op != "subscribe" {
		t.Fatalf("Watch after a refused reply subscription: %v, want it refused", refused)
	}
	var none *Denials
	if w, refused := none.Watch(); refused != nil || w.Done() != nil {
		t.Fatalf("a nil Denials' Watch: %v, %v", w, refused)
	}
}

// startServer starts an embedded server with JetStream for t and returns a
// connection to it.
func startServer(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := embedded.Start(t.Context(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
