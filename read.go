package rita

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// readSpec says which stored messages read delivers.
type readSpec struct {
	subjects    []string // consumer filter subjects
	match       []string // if set, deliver only messages matching one of these
	afterSeq    uint64   // start after this sequence
	startTime   time.Time
	stopSeq     uint64 // 0: no stop
	headersOnly bool
}

// cleanupTimeout bounds the removal of a consumer after a read, which is
// done even when the caller's context has ended. A consumer whose removal is
// not confirmed in time is removed by the server once inactive.
const cleanupTimeout = 2 * time.Second

// read delivers, in stream order, every message that matches spec and that
// was stored when read began, then removes its consumer. It stops at the
// first error fn returns, and returns it.
//
// It reads with an orderedReader, which replaces its consumer after a lost
// connection, a lost consumer or a gap, so nothing is skipped or repeated.
// On a store with one replica the number of matching messages present at the
// start (the consumer's pending count on creation) bounds the read; on a
// replicated store the last matching sequence the stream leader reports does
// (see leader.go). Either way it always ends, also while events keep being
// appended. If ctx has no deadline, it gives up after failing to reach the
// store for maxOutage.
func (s *EventStore) read(ctx context.Context, spec readSpec, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) (err error) {
	var giveUpAfter time.Duration
	if _, ok := ctx.Deadline(); !ok {
		giveUpAfter = maxOutage
	}
	replicated := s.replicated()
	var target uint64
	if replicated {
		target, err = s.leaderBound(ctx, spec.bounds(), spec.startTime, giveUpAfter)
		if err != nil {
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		if spec.stopSeq > 0 {
			target = min(target, spec.stopSeq)
		}
		if target <= spec.afterSeq {
			return nil
		}
	}
	r := newOrderedReader(s, spec)
	r.giveUpAfter = giveUpAfter
	if err := r.connect(ctx); err != nil {
		return fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	defer func() {
		// The read is done: a consumer the server does not confirm
		// removing (its server may be stopping) does not make it fail,
		// and goes by itself once inactive.
		if derr := r.close(ctx); derr != nil {
			s.m.logger.Debug("rita: read: remove consumer", "store", s.name, "error", derr)
		}
	}()
	// Waiting with an idle time lets a read bounded by the leader ask it
	// again, and one without a deadline notice a server that is gone.
	var idle time.Duration
	if replicated || giveUpAfter > 0 {
		idle = readIdle
	}
	pending, delivered, idles := r.pending, uint64(0), 0
	for {
		if replicated && max(r.last, spec.afterSeq) >= target || !replicated && delivered >= pending {
			return nil
		}
		msg, md, err := r.next(ctx, idle)
		if errors.Is(err, errIdle) {
			// The last message to read may have been removed (by a limit)
			// meanwhile: ask the leader what is left. Events stored since
			// do not raise the target.
			if now, err := s.leaderLastSeq(ctx, spec.bounds(), spec.startTime); err == nil {
				if replicated {
					target = min(target, now)
				} else if now <= max(r.last, spec.afterSeq) {
					return nil
				}
			}
			if idles++; idles >= readStallIdles {
				r.restart() // the consumer may have fallen silent
				idles = 0
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		idles = 0
		seq := md.Sequence.Stream
		if spec.stopSeq > 0 && seq > spec.stopSeq || replicated && seq > target {
			return nil
		}
		delivered++
		if spec.match == nil || matchesAny(spec.match, msg.Subject()) {
			if err := fn(msg, md); err != nil {
				return err
			}
		}
		if seq == spec.stopSeq || !replicated && md.NumPending == 0 {
			return nil
		}
	}
}

// bounds returns the subject patterns whose last messages bound a read of
// spec.
func (spec readSpec) bounds() []string {
	if spec.match != nil {
		return spec.match
	}
	return spec.subjects
}

// selectSubjects turns filters into consumer subjects and, when the
// consumer has to read wider than the filters, the patterns to match.
func (s *EventStore) selectSubjects(filters []string) (subjects, match []string, err error) {
	patterns, exact, err := filterSubjects(s.name, filters)
	if err != nil {
		return nil, nil, err
	}
	if exact {
		return patterns, nil, nil
	}
	return []string{storeSubjects(s.name)}, patterns, nil
}

func matchesAny(patterns []string, subject string) bool {
	for _, p := range patterns {
		if subjectMatches(p, subject) {
			return true
		}
	}
	return false
}
