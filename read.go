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
// done even when the caller's context has ended.
const cleanupTimeout = 5 * time.Second

// read delivers, in stream order, every message that matches spec and that
// was stored when read began, then removes its consumer. It stops at the
// first error fn returns, and returns it.
//
// It uses an ordered consumer, which the client re-creates from the last
// delivered sequence after a gap or a lost connection. The number of
// matching messages present at the start (the consumer's pending count on
// creation) bounds the read, so it always ends, also while events keep
// being appended.
func (s *EventStore) read(ctx context.Context, spec readSpec, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) (err error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: spec.subjects,
		HeadersOnly:    spec.headersOnly,
	}
	switch {
	case spec.afterSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = spec.afterSeq + 1
	case !spec.startTime.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &spec.startTime
	}
	oc, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	it, err := oc.Messages()
	if err != nil {
		return fmt.Errorf("rita: read store %q: %w", s.name, err)
	}
	info := oc.CachedInfo()
	defer func() {
		it.Stop()
		if info != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			// The consumer the client ended with may be a re-created one.
			if cur := oc.CachedInfo(); cur != nil {
				info = cur
			}
			if derr := s.m.js.DeleteConsumer(cctx, streamName(s.name), info.Name); derr != nil &&
				!errors.Is(derr, jetstream.ErrConsumerNotFound) && err == nil {
				err = fmt.Errorf("rita: read store %q: remove consumer: %w", s.name, derr)
			}
		}
	}()
	if info == nil {
		return fmt.Errorf("rita: read store %q: consumer has no info", s.name)
	}
	pending := info.NumPending
	for delivered := uint64(0); delivered < pending; {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return fmt.Errorf("rita: read store %q: %w", s.name, ctxErr)
			}
			return fmt.Errorf("rita: read store %q: %w", s.name, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrEventDecode, err)
		}
		seq := md.Sequence.Stream
		if spec.stopSeq > 0 && seq > spec.stopSeq {
			return nil
		}
		delivered++
		if spec.match == nil || matchesAny(spec.match, msg.Subject()) {
			if err := fn(msg, md); err != nil {
				return err
			}
		}
		if seq == spec.stopSeq || md.NumPending == 0 {
			return nil
		}
	}
	return nil
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
