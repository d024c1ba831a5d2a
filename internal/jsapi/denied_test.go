package jsapi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
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
