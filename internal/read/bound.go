package read

import (
	"context"
	"time"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// Reading your own writes on a replicated store.
//
// A read ends at the last matching event that existed when it began. On a
// store with one replica the consumer's own count of pending messages says
// where that is. On a replicated store the consumer may live on a replica
// that has not yet stored the newest events (the leader acknowledges an
// append once a majority has it), so its count can miss an event whose
// Append has already returned. There the read is bounded by what the
// stream leader reports instead: the last message on each filter subject,
// from the message get API, which only the leader answers.

// Bound returns the sequence of the last message on any of patterns as the
// stream leader has it (0: none), ignoring those stored before since. It
// tries again, with backoff and growing attempt timeouts, while the leader
// cannot be reached.
func Bound(ctx context.Context, src *Source, patterns []string, since time.Time) (uint64, error) {
	var last uint64
	err := src.Do(ctx, "the stream leader's last sequence", func(actx context.Context) error {
		seq, err := jsapi.LastSeq(actx, src.NC, src.Stream, patterns, since, jsapi.FirstAttemptTimeout<<2)
		last = seq
		return err
	})
	return last, err
}

// BoundOnce is one attempt at Bound, within jsapi.FirstAttemptTimeout.
func BoundOnce(ctx context.Context, src *Source, patterns []string, since time.Time) (uint64, error) {
	return jsapi.LastSeq(ctx, src.NC, src.Stream, patterns, since, jsapi.FirstAttemptTimeout)
}
