package read

import (
	"context"
	"errors"

	"github.com/synadia-labs/rita/internal/wire"
)

// Read delivers, in stream order, every message that matches spec and that
// was stored when Read began, then removes its consumer. It stops at the
// first error fn returns, and returns it as it is.
//
// It reads with an Ordered reader, which replaces its consumer after a lost
// connection, a lost consumer or a gap, so nothing is skipped or repeated.
// On a store with one replica the number of matching messages present at
// the start (the consumer's pending count on creation) bounds the read; on a
// replicated store the last matching sequence the stream leader reports
// does (Bound). Either way it always ends, also while events keep being
// appended.
func Read(ctx context.Context, src *Source, spec *Spec, fn func(*Msg) error) error {
	gctx, release := src.guard(ctx)
	defer release()
	return denied(gctx, read(gctx, ctx, src, spec, fn))
}

// read is Read under the guard's context ctx, derived from the caller's.
// The caller's own context is checked before each message too: the end of
// a context reaches those derived from it a moment later, and a read whose
// messages are at hand would go on delivering meanwhile.
func read(ctx, caller context.Context, src *Source, spec *Spec, fn func(*Msg) error) error {
	var target uint64
	if src.Replicated {
		var err error
		if target, err = Bound(ctx, src, spec.Bounds(), spec.StartTime); err != nil {
			return err
		}
		if spec.Stop > 0 {
			target = min(target, spec.Stop)
		}
		if target <= spec.After {
			return nil
		}
	}
	r := NewOrdered(ctx, src, spec)
	if err := r.Connect(ctx); err != nil {
		return err
	}
	defer func() {
		// The read is done: a consumer the server does not confirm
		// removing (its server may be stopping) does not make it fail,
		// and goes by itself once inactive.
		_ = r.Close(ctx)
	}()
	// Waiting with an idle time lets a read bounded by the leader ask it
	// again, and one that may give up notice a server that is gone.
	idle := Idle
	pending, delivered, idles := r.Pending(), uint64(0), 0
	for {
		if src.Replicated && max(r.Last(), spec.After) >= target || !src.Replicated && delivered >= pending {
			return nil
		}
		if err := caller.Err(); err != nil {
			return err
		}
		msg, err := r.Next(ctx, idle)
		if errors.Is(err, ErrIdle) {
			// The last message to read may have been removed (by a limit)
			// meanwhile: ask the leader what is left. Events stored since
			// do not raise the target.
			if now, err := BoundOnce(ctx, src, spec.Bounds(), spec.StartTime); err == nil {
				if src.Replicated {
					target = min(target, now)
				} else if now <= max(r.Last(), spec.After) {
					return nil
				}
			}
			if idles++; idles >= StallIdles {
				r.Restart() // the consumer may have fallen silent
				idles = 0
			}
			continue
		}
		if err != nil {
			return err
		}
		idles = 0
		seq := msg.Seq
		if spec.Stop > 0 && seq > spec.Stop || src.Replicated && seq > target {
			return nil
		}
		delivered++
		if spec.Match == nil || wire.MatchesAny(spec.Match, msg.Subject) {
			if err := fn(msg); err != nil {
				return err
			}
		}
		if seq == spec.Stop || !src.Replicated && msg.NumPending == 0 {
			return nil
		}
	}
}
