package rita

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Parked events. An event that a durable Watch or a reactor could not handle
// is kept, with why, in a stream of its own next to the store's:
//
//	stream    ES_<store>_PARKED on $ES_PARKED.<store>.>
//	entry     $ES_PARKED.<store>.<consumer>.event.<entity-type>.<entity-id>.<sequence>
//	retry     $ES_PARKED.<store>.<consumer>.retry.<entity-type>.<entity-id>
//
// An entry is a copy of the stored event (its Rita-* headers and payload)
// with Rita-Parked-* headers that say which consumer parked it, why, after
// how many attempts, and where it was stored. The stream keeps one message per
// subject, so an event is parked at most once per consumer: parking it again
// replaces the entry. A retry message asks the consumer, where it runs, to
// handle an entity's parked events again; it too is kept once per subject, so
// repeated requests collapse. The consumer takes retry messages with a
// durable consumer of its own name on this stream.
//
// While a consumer has a parked event of an entity, it parks the entity's
// later events too (with Rita-Parked-Blocked-By), so that the entity's events
// are still handled in order when they are retried.

const (
	parkedStreamSuffix  = "_PARKED"
	parkedSubjectPrefix = "$ES_PARKED."

	hdrParkedConsumer  = "Rita-Parked-Consumer"
	hdrParkedSequence  = "Rita-Parked-Sequence"
	hdrParkedSubject   = "Rita-Parked-Subject"
	hdrParkedReason    = "Rita-Parked-Reason"
	hdrParkedAttempts  = "Rita-Parked-Attempts"
	hdrParkedEventID   = "Rita-Parked-Event-Id"
	hdrParkedStored    = "Rita-Parked-Stored"
	hdrParkedBlockedBy = "Rita-Parked-Blocked-By"
	hdrParkedPrefix    = "Rita-Parked-"

	// maxReasonLen bounds the reason kept in a header.
	maxReasonLen = 1024
)

func parkedStreamName(store string) string { return streamPrefix + store + parkedStreamSuffix }

func parkedSubjects(store string) string { return parkedSubjectPrefix + store + ".>" }

// parkedEntrySubject is where consumer's entry for the event at seq of the
// entity with subject tokens etype, eid is kept.
func parkedEntrySubject(store, consumer string, key entityKey, seq uint64) string {
	return parkedSubjectPrefix + store + "." + consumer + ".event." + key.subject() + "." + strconv.FormatUint(seq, 10)
}

// parkedEntityPattern matches consumer's entries of one entity.
func parkedEntityPattern(store, consumer string, key entityKey) string {
	return parkedSubjectPrefix + store + "." + consumer + ".event." + key.subject() + ".*"
}

// parkedConsumerPattern matches consumer's entries; consumer may be "*".
func parkedConsumerPattern(store, consumer string) string {
	return parkedSubjectPrefix + store + "." + consumer + ".event.*.*.*"
}

func retrySubject(store, consumer string, key entityKey) string {
	return parkedSubjectPrefix + store + "." + consumer + ".retry." + key.subject()
}

func retryPattern(store, consumer string) string {
	return parkedSubjectPrefix + store + "." + consumer + ".retry.*.*"
}

// entityKey names an entity by the two subject tokens of its events, which
// are always valid subject tokens.
type entityKey struct{ typ, id string }

func (k entityKey) subject() string { return k.typ + "." + k.id }
func (k entityKey) String() string  { return k.typ + "." + k.id }

// keyOfSubject returns the entity of an event subject
// $ES.<store>.<entity-type>.<entity-id>.<event-type>, or of a parked entry or
// retry subject (offset gives the position of the entity-type token).
func keyOfSubject(subject string, offset int) (entityKey, bool) {
	toks := strings.Split(subject, ".")
	if len(toks) < offset+2 {
		return entityKey{}, false
	}
	return entityKey{toks[offset], toks[offset+1]}, true
}

// ParkedEvent is an event that a durable Watch or a reactor could not handle,
// as EventStore.ListParked and GetParked return it.
type ParkedEvent struct {
	// Consumer is the name of the durable Watch or reactor that parked it.
	Consumer string

	// Event is the event as stored: Sequence and Subject say where. If its
	// payload cannot be decoded (DecodeErr is set), Data holds the raw bytes.
	Event *Event

	// DecodeErr says why the payload could not be decoded, if it could not.
	DecodeErr error

	// Reason is the error of the last attempt.
	Reason string

	// Attempts counts the times the event was tried, over every retry.
	// It is 0 for an event parked without being tried: one that could not be
	// decoded, or one parked because an earlier event of its entity was.
	Attempts int

	// BlockedBy is, for an event parked because an earlier event of its
	// entity was parked, the sequence of that earlier event; 0 otherwise.
	BlockedBy uint64

	// ParkedAt is when it was (last) parked.
	ParkedAt time.Time

	pseq uint64 // sequence of the entry in the parked stream
}

// parkedStore reads and writes the parked stream of a store.
type parkedStore struct {
	s      *EventStore
	stream jetstream.Stream
}

// parkedStream returns the parked stream of s. With create it is created if
// missing (with the store's replicas and storage); without, a missing one
// returns (nil, nil).
func (s *EventStore) parkedStream(ctx context.Context, create bool) (*parkedStore, error) {
	name := parkedStreamName(s.name)
	st, err := s.m.js.Stream(ctx, name)
	if err == nil {
		return &parkedStore{s: s, stream: st}, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("rita: parked events of store %q: %w", s.name, err)
	}
	if !create {
		return nil, nil
	}
	cfg := jetstream.StreamConfig{
		Name:              name,
		Description:       "rita: parked events of store " + s.name,
		Subjects:          []string{parkedSubjects(s.name)},
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
	if info := s.stream.CachedInfo(); info != nil {
		cfg.Replicas = info.Config.Replicas
		cfg.Storage = info.Config.Storage
		cfg.Placement = info.Config.Placement
	}
	st, err = s.m.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = s.m.js.Stream(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("rita: create parked events stream of store %q: %w", s.name, err)
	}
	return &parkedStore{s: s, stream: st}, nil
}

// parkSource is what an entry is made from: a delivered event or an entry
// that is parked again.
type parkSource struct {
	subject string
	seq     uint64
	stored  time.Time
	eventID string
	header  nats.Header // the event's Rita-* headers
	data    []byte
}

func sourceOfMsg(msg jetstream.Msg, md *jetstream.MsgMetadata) parkSource {
	h := msg.Headers()
	src := parkSource{
		subject: msg.Subject(),
		seq:     md.Sequence.Stream,
		stored:  md.Timestamp,
		eventID: h.Get(hdrMsgID),
		header:  make(nats.Header),
		data:    msg.Data(),
	}
	for k, v := range h {
		if strings.HasPrefix(k, "Rita-") && !strings.HasPrefix(k, hdrParkedPrefix) {
			src.header[k] = v
		}
	}
	return src
}

func sourceOfEntry(raw *jetstream.RawStreamMsg) (parkSource, error) {
	h := raw.Header
	seq, err := strconv.ParseUint(h.Get(hdrParkedSequence), 10, 64)
	if err != nil {
		return parkSource{}, fmt.Errorf("%w: parked entry %d: header %s: %w", ErrEventDecode, raw.Sequence, hdrParkedSequence, err)
	}
	src := parkSource{
		subject: h.Get(hdrParkedSubject),
		seq:     seq,
		eventID: h.Get(hdrParkedEventID),
		header:  make(nats.Header),
		data:    raw.Data,
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(hdrParkedStored)); err == nil {
		src.stored = t
	}
	for k, v := range h {
		if strings.HasPrefix(k, "Rita-") && !strings.HasPrefix(k, hdrParkedPrefix) {
			src.header[k] = v
		}
	}
	return src, nil
}

// event decodes the source as the store's event.
func (src parkSource) event(s *EventStore) (*Event, error) {
	h := make(nats.Header, len(src.header)+1)
	for k, v := range src.header {
		h[k] = v
	}
	if src.eventID != "" {
		h[hdrMsgID] = []string{src.eventID}
	}
	return decodeEvent(s.m.types, src.subject, h, src.data, src.seq, src.stored)
}

// parkNote is why an event is parked.
type parkNote struct {
	consumer  string
	reason    string
	attempts  int
	blockedBy uint64
}

// errParkConflict is returned by put when the entity's entries changed since
// they were looked at.
var errParkConflict = errors.New("rita: parked entries changed")

// put stores an entry for src. With expect set, it is stored only if the last
// entry of the entity is still the one at *expect (0: none), else it fails
// with errParkConflict.
func (p *parkedStore) put(ctx context.Context, key entityKey, src parkSource, note parkNote, expect *uint64) (uint64, error) {
	h := make(nats.Header, len(src.header)+8)
	for k, v := range src.header {
		h[k] = v
	}
	h[hdrParkedConsumer] = []string{note.consumer}
	h[hdrParkedSequence] = []string{strconv.FormatUint(src.seq, 10)}
	h[hdrParkedSubject] = []string{src.subject}
	h[hdrParkedReason] = []string{headerSafe(note.reason)}
	h[hdrParkedAttempts] = []string{strconv.Itoa(note.attempts)}
	if src.eventID != "" {
		h[hdrParkedEventID] = []string{src.eventID}
	}
	if !src.stored.IsZero() {
		h[hdrParkedStored] = []string{src.stored.Format(time.RFC3339Nano)}
	}
	if note.blockedBy != 0 {
		h[hdrParkedBlockedBy] = []string{strconv.FormatUint(note.blockedBy, 10)}
	}
	if expect != nil {
		h[hdrExpectSeq] = []string{strconv.FormatUint(*expect, 10)}
		h[hdrExpectSubject] = []string{parkedEntityPattern(p.s.name, note.consumer, key)}
	}
	msg := &nats.Msg{
		Subject: parkedEntrySubject(p.s.name, note.consumer, key, src.seq),
		Header:  h,
		Data:    src.data,
	}
	ack, err := p.s.m.js.PublishMsg(ctx, msg)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeWrongLastSequence || apiErr.ErrorCode == errCodeWrongLastSequenceConstant) {
			return 0, errParkConflict
		}
		return 0, fmt.Errorf("rita: park event %d of store %q: %w", src.seq, p.s.name, err)
	}
	return ack.Sequence, nil
}

// headerSafe makes s fit in one header value.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > maxReasonLen {
		s = s[:maxReasonLen]
	}
	return s
}

// lastOf returns the newest entry of consumer for the entity, or nil.
func (p *parkedStore) lastOf(ctx context.Context, consumer string, key entityKey) (*jetstream.RawStreamMsg, error) {
	raw, err := p.stream.GetLastMsgForSubject(ctx, parkedEntityPattern(p.s.name, consumer, key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rita: parked events of store %q: %w", p.s.name, err)
	}
	return raw, nil
}

// subjects returns the subjects matching filter with a message.
func (p *parkedStore) subjects(ctx context.Context, filter string) ([]string, error) {
	info, err := p.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("rita: parked events of store %q: %w", p.s.name, err)
	}
	subs := make([]string, 0, len(info.State.Subjects))
	for sub := range info.State.Subjects {
		subs = append(subs, sub)
	}
	return subs, nil
}

// blockedEntities returns the entities that consumer has parked events of.
func (p *parkedStore) blockedEntities(ctx context.Context, consumer string) (map[entityKey]bool, error) {
	subs, err := p.subjects(ctx, parkedConsumerPattern(p.s.name, consumer))
	if err != nil {
		return nil, err
	}
	keys := make(map[entityKey]bool, len(subs))
	for _, sub := range subs {
		if k, ok := keyOfSubject(sub, 4); ok {
			keys[k] = true
		}
	}
	return keys, nil
}

// entries returns consumer's entries of the entity, in sequence order.
func (p *parkedStore) entries(ctx context.Context, consumer string, key entityKey) ([]*jetstream.RawStreamMsg, error) {
	subs, err := p.subjects(ctx, parkedEntityPattern(p.s.name, consumer, key))
	if err != nil {
		return nil, err
	}
	raws := make([]*jetstream.RawStreamMsg, 0, len(subs))
	for _, sub := range subs {
		raw, err := p.stream.GetLastMsgForSubject(ctx, sub)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("rita: parked events of store %q: %w", p.s.name, err)
		}
		raws = append(raws, raw)
	}
	slices.SortFunc(raws, func(a, b *jetstream.RawStreamMsg) int {
		return compareUint(entrySeq(a), entrySeq(b))
	})
	return raws, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// entrySeq is the store sequence of the event an entry holds.
func entrySeq(raw *jetstream.RawStreamMsg) uint64 {
	seq, _ := strconv.ParseUint(raw.Header.Get(hdrParkedSequence), 10, 64)
	return seq
}

// parkedEvent turns an entry into a ParkedEvent.
func (p *parkedStore) parkedEvent(raw *jetstream.RawStreamMsg) (*ParkedEvent, error) {
	src, err := sourceOfEntry(raw)
	if err != nil {
		return nil, err
	}
	pe := &ParkedEvent{
		Consumer: raw.Header.Get(hdrParkedConsumer),
		Reason:   raw.Header.Get(hdrParkedReason),
		ParkedAt: raw.Time,
		pseq:     raw.Sequence,
	}
	pe.Attempts, _ = strconv.Atoi(raw.Header.Get(hdrParkedAttempts))
	pe.BlockedBy, _ = strconv.ParseUint(raw.Header.Get(hdrParkedBlockedBy), 10, 64)
	e, err := src.event(p.s)
	if err != nil {
		pe.DecodeErr = err
		// Without the registry the payload stays raw; this only fails for
		// a malformed Rita-Time, which is then left out.
		h := make(nats.Header, len(src.header)+1)
		for k, v := range src.header {
			if k != hdrTime {
				h[k] = v
			}
		}
		h[hdrMsgID] = []string{src.eventID}
		if e, err = decodeEvent(nil, src.subject, h, src.data, src.seq, src.stored); err != nil {
			e = &Event{ID: src.eventID, Data: src.data, sequence: src.seq, subject: src.subject}
		}
	}
	pe.Event = e
	return pe, nil
}

// get returns consumer's entry for the event at seq, or nil.
func (p *parkedStore) get(ctx context.Context, consumer string, seq uint64) (*jetstream.RawStreamMsg, error) {
	pattern := parkedSubjectPrefix + p.s.name + "." + consumer + ".event.*.*." + strconv.FormatUint(seq, 10)
	raw, err := p.stream.GetLastMsgForSubject(ctx, pattern)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rita: parked events of store %q: %w", p.s.name, err)
	}
	return raw, nil
}

// remove deletes the entry at pseq; one already gone is not an error.
func (p *parkedStore) remove(ctx context.Context, pseq uint64) error {
	err := p.stream.DeleteMsg(ctx, pseq)
	if err != nil && !isNoMsgFound(err) {
		return fmt.Errorf("rita: remove parked entry %d of store %q: %w", pseq, p.s.name, err)
	}
	return nil
}

// isNoMsgFound reports whether a delete failed because the message is gone.
func isNoMsgFound(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeSequenceNotFound
}

// errCodeSequenceNotFound is the server's answer to a delete of a message
// that is not there.
const errCodeSequenceNotFound jetstream.ErrorCode = 10043

// purge removes every entry and retry request of consumer.
func (p *parkedStore) purge(ctx context.Context, consumer string) error {
	err := p.stream.Purge(ctx, jetstream.WithPurgeSubject(parkedSubjectPrefix+p.s.name+"."+consumer+".>"))
	if err != nil {
		return fmt.Errorf("rita: remove parked events of %q in store %q: %w", consumer, p.s.name, err)
	}
	return nil
}

// ListParked returns the parked events of the durable Watch or reactor named
// consumer, or of every one if consumer is "", ordered by consumer and then
// by sequence. A store without parked events returns an empty slice.
//
// It reads every entry; it is meant for people and tools that look after a
// store, not for a hot path.
func (s *EventStore) ListParked(ctx context.Context, consumer string) ([]*ParkedEvent, error) {
	if s == nil {
		return nil, errNilStore
	}
	if ctx == nil {
		return nil, errNilContext
	}
	pattern := "*"
	if consumer != "" {
		if err := validateDurableName(consumer); err != nil {
			return nil, err
		}
		pattern = consumer
	}
	p, err := s.parkedStream(ctx, false)
	if err != nil || p == nil {
		return []*ParkedEvent{}, err
	}
	subs, err := p.subjects(ctx, parkedConsumerPattern(s.name, pattern))
	if err != nil {
		return nil, err
	}
	list := make([]*ParkedEvent, 0, len(subs))
	for _, sub := range subs {
		raw, err := p.stream.GetLastMsgForSubject(ctx, sub)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // retried or removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("rita: list parked events of store %q: %w", s.name, err)
		}
		pe, err := p.parkedEvent(raw)
		if err != nil {
			return nil, err
		}
		list = append(list, pe)
	}
	slices.SortFunc(list, func(a, b *ParkedEvent) int {
		if c := strings.Compare(a.Consumer, b.Consumer); c != 0 {
			return c
		}
		return compareUint(a.Event.Sequence(), b.Event.Sequence())
	})
	return list, nil
}

// GetParked returns the event at sequence seq as parked by the durable Watch
// or reactor named consumer. It fails with ErrParkedNotFound if that consumer
// has not parked it (or it was retried or deleted since).
func (s *EventStore) GetParked(ctx context.Context, consumer string, seq uint64) (*ParkedEvent, error) {
	p, raw, err := s.parkedEntry(ctx, consumer, seq)
	if err != nil {
		return nil, err
	}
	return p.parkedEvent(raw)
}

func (s *EventStore) parkedEntry(ctx context.Context, consumer string, seq uint64) (*parkedStore, *jetstream.RawStreamMsg, error) {
	if s == nil {
		return nil, nil, errNilStore
	}
	if ctx == nil {
		return nil, nil, errNilContext
	}
	if err := validateDurableName(consumer); err != nil {
		return nil, nil, err
	}
	p, err := s.parkedStream(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		return nil, nil, fmt.Errorf("%w: %q has not parked event %d of store %q", ErrParkedNotFound, consumer, seq, s.name)
	}
	raw, err := p.get(ctx, consumer, seq)
	if err != nil {
		return nil, nil, err
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("%w: %q has not parked event %d of store %q", ErrParkedNotFound, consumer, seq, s.name)
	}
	return p, raw, nil
}

// RetryParked sends the event at sequence seq, parked by the durable Watch or
// reactor named consumer, back for another try, with every other event of
// its entity that consumer has parked: where the consumer runs, it handles
// them in sequence order, removes each that succeeds, and parks again the
// first that fails (with its attempts added up; the rest stay parked). Once
// none is left, the entity's new events are handled again instead of parked.
//
// RetryParked only records the request and returns; the consumer acts on it
// when it runs. It fails with ErrParkedNotFound if that consumer has not
// parked the event.
func (s *EventStore) RetryParked(ctx context.Context, consumer string, seq uint64) error {
	p, raw, err := s.parkedEntry(ctx, consumer, seq)
	if err != nil {
		return err
	}
	key, ok := keyOfSubject(raw.Subject, 4)
	if !ok {
		return fmt.Errorf("%w: parked entry subject %q", ErrEventDecode, raw.Subject)
	}
	msg := nats.NewMsg(retrySubject(s.name, consumer, key))
	msg.Header.Set(hdrParkedSequence, strconv.FormatUint(seq, 10))
	if _, err := p.s.m.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("rita: retry parked event %d of store %q: %w", seq, s.name, err)
	}
	return nil
}

// DeleteParked removes the event at sequence seq from the events parked by
// the durable Watch or reactor named consumer, without handling it: use it
// for an event that must be skipped. The entity's other parked events stay
// parked until retried. It fails with ErrParkedNotFound if that consumer has
// not parked the event.
func (s *EventStore) DeleteParked(ctx context.Context, consumer string, seq uint64) error {
	p, raw, err := s.parkedEntry(ctx, consumer, seq)
	if err != nil {
		return err
	}
	return p.remove(ctx, raw.Sequence)
}
