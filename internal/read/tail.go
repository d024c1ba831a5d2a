package read

import (
	"context"
	"errors"

	"github.com/synadia-labs/rita/internal/jsapi"
)

// The tail after a snapshot: an entity's events after the snapshot's
// sequence S, up to its last one, L.
//
// Reading them with a filtered read walks the stream from S to L, which is
// what snapshots are meant to avoid. Following the expectations the events
// carry back from L to S (see chain.go) finds the tail without a walk.
//
// When the chain breaks (an event without such an expectation, or a get
// that fails) the tail is read with a filtered read after all. Either way,
// the caller checks the snapshot's count of events plus the tail against
// the entity's count.

const (
	// maxChainSteps bounds the round trips spent following expectations.
	maxChainSteps = 32
	// MaxTail is the longest tail read after a snapshot; with a longer one
	// the snapshot is not worth it and the entity is read from the start.
	MaxTail = 10_000
)

var errTailTooLong = errors.New("snapshot tail too long")

// Tail returns the events on pattern (one entity's) after from, up to and
// including last, in order; nil if there are more than MaxTail.
func Tail(ctx context.Context, src *Source, pattern string, from uint64, last *jsapi.Msg) ([]jsapi.Msg, error) {
	if last.Seq == from {
		return []jsapi.Msg{}, nil
	}
	if tail := chainTail(ctx, src, pattern, from, last); tail != nil {
		return tail, nil
	}
	tail := []jsapi.Msg{}
	err := Entity(ctx, src, pattern, from, 0, Known{Last: last}, func(m *Msg) error {
		if len(tail) == MaxTail {
			return errTailTooLong
		}
		tail = append(tail, m.Msg)
		return nil
	})
	if errors.Is(err, errTailTooLong) {
		return nil, nil
	}
	return tail, err
}

// chainTail follows expectations back from last to from; nil if the chain
// breaks or is longer than maxChainSteps round trips.
func chainTail(ctx context.Context, src *Source, pattern string, from uint64, last *jsapi.Msg) []jsapi.Msg {
	if !src.Direct {
		return nil
	}
	c, err := jsapi.NewCollector(ctx, src.NC, 0)
	if err != nil {
		return nil
	}
	defer c.Close()
	ch := newChain(c, src, pattern, from, last, MaxTail, jsapi.MaxBatch)
	ch.follow(maxChainSteps + 1)
	if !ch.end {
		return nil
	}
	return ch.events()
}
