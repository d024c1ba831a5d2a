package rita

import (
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// Limits of a store, its account and its server.
//
// A store keeps every event unless its configuration sets limits. With
// Discard set to jetstream.DiscardOld (the default) JetStream removes the
// oldest events to stay within them; with jetstream.DiscardNew it refuses
// an append that would exceed them, and Append fails with ErrStoreFull. The
// JetStream storage of the account or of the server running out refuses an
// append the same way. An atomic batch is refused as a whole.
// docs/operating.md says what removed events do to reads, snapshots and
// expectations.

// storeFull reports whether a publish was refused for lack of room in the
// stream, the account or the server.
func storeFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsapi.CodeAccountResourcesExceeded, jsapi.CodeInsufficientResources,
		jsapi.CodeMemoryResourcesExceeded, jsapi.CodeStorageResourcesExceeded:
		return true
	case jsapi.CodeStoreFailed:
		// "maximum messages exceeded", "maximum bytes exceeded",
		// "maximum messages per subject exceeded"
		d := strings.ToLower(apiErr.Description)
		return strings.Contains(d, "maximum") && strings.Contains(d, "exceeded")
	}
	return false
}
