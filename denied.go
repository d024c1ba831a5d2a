package rita

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Calls the server's permissions refuse.
//
// The server answers a publish or subscription it refuses for lack of
// permission with an asynchronous -ERR on the connection, not with an answer
// to the request, which would wait for its timeout and be retried as a
// transient fault. rita watches the connection's errors (jsapi.Denials) and
// guards each call of a store with the subjects it publishes to: a refusal
// of one of them, or of a reply subscription, ends the call at once with an
// error matching ErrPermissionDenied that names the subject refused. Such
// an error is never retried.

// storeScope is what the calls of store publish to, apart from its events:
// the JetStream API and acknowledgements of its streams (the store's, its
// parked events', its snapshot bucket's), its parked events and snapshots,
// and the account-wide API subjects a Manager asks.
func storeScope(store string) *jsapi.Scope {
	scope := accountScope()
	bucket, keys := wire.SnapshotBucket(store), wire.KeyBucket(store)
	scope.Streams = []string{wire.StreamName(store), wire.ParkedStream(store), "KV_" + bucket, wire.KeyStream(keys)}
	scope.Prefixes = []string{strings.TrimSuffix(wire.ParkedSubjects(store), ">"), "$KV." + bucket + ".", "$KV." + keys + "."}
	return scope
}

// accountScope is the JetStream API subjects of no stream in particular.
func accountScope() *jsapi.Scope {
	return &jsapi.Scope{Subjects: []string{"$JS.API.INFO", "$JS.API.STREAM.LIST", "$JS.API.STREAM.NAMES"}}
}

// appendScope is the store's scope and the subjects of the messages an
// Append publishes.
func appendScope(s *EventStore, msgs []*nats.Msg) *jsapi.Scope {
	subjects := make([]string, len(msgs))
	for i, m := range msgs {
		subjects[i] = m.Subject
	}
	return &jsapi.Scope{Subjects: subjects, Parent: s.scope}
}

// guard returns ctx ended at once by a refusal of scope's subjects, and the
// function that releases the guard.
func (m *Manager) guard(ctx context.Context, scope *jsapi.Scope) (context.Context, context.CancelFunc) {
	return m.denials.Guard(ctx, scope)
}

// denied returns the permission violation behind err, a failure of a call of
// store s made under ctx, or err itself.
func (s *EventStore) denied(ctx context.Context, scope *jsapi.Scope, err error) error {
	return jsapi.Cause(ctx, s.m.nc, scope, err)
}
