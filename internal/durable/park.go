package durable

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/wire"
)

// Parked events. An event that a durable consumer could not handle is kept,
// with why, in a stream of its own next to the store's (names in package
// wire). An entry is a copy of the stored event (its Rita-* headers and
// payload) with Rita-Parked-* headers that say which consumer parked it,
// why, after how many attempts, and where it was stored. The stream keeps
// one message per subject, so an event is parked at most once per consumer:
// parking it again replaces the entry. A retry message asks the consumer,
// where it runs, to handle an entity's parked events again; it too is kept
// once per subject, so repeated requests collapse. The consumer takes retry
// messages with a durable consumer of its own name on this stream.
//
// While a consumer has a parked event of an entity, it parks the entity's
// later events too (with Rita-Parked-Blocked-By), so that the entity's
// events are still handled in order when they are retried.

// maxReasonLen bounds the reason kept in a header.
const maxReasonLen = 1024

// Parked reads and writes the parked stream of a store.
type Parked struct {
	js     jetstream.JetStream
	store  string
	stream jetstream.Stream
}

// OpenParked returns the parked stream of store. With create it is created
// if missing, like the store's stream (its replicas, storage and
// placement); without, a missing one returns (nil, nil).
func OpenParked(ctx context.Context, js jetstream.JetStream, store string, storeStream jetstream.Stream, create bool) (*Parked, error) {
	name := wire.ParkedStream(store)
	st, err := js.Stream(ctx, name)
	if err == nil {
		return &Parked{js: js, store: store, stream: st}, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !create {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("parked events: %w", err)
	}
	cfg := jetstream.StreamConfig{
		Name:              name,
		Description:       "rita: parked events of store " + store,
		Subjects:          []string{wire.ParkedSubjects(store)},
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
	if info := storeStream.CachedInfo(); info != nil {
		cfg.Replicas = info.Config.Replicas
		cfg.Storage = info.Config.Storage
		cfg.Placement = info.Config.Placement
	}
	st, err = js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = js.Stream(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("create the parked events stream: %w", err)
	}
	return &Parked{js: js, store: store, stream: st}, nil
}

// entity names an entity by the two subject tokens of its events.
type entity struct{ typ, id string }

func (k entity) String() string { return k.typ + "." + k.id }

// entityOf returns the entity of a subject whose entity-type token is at
// position at.
func entityOf(subject string, at int) (entity, bool) {
	typ, id, ok := wire.EntityOf(subject, at)
	return entity{typ, id}, ok
}

// source is what an entry is made from: a delivered event, or an entry that
// is parked again.
type source struct {
	subject string
	seq     uint64
	stored  time.Time
	eventID string
	header  nats.Header // the event's Rita-* headers
	data    []byte
}

func sourceOf(d *delivery) source {
	h := d.msg.Headers()
	return source{
		subject: d.subject,
		seq:     d.md.Sequence.Stream,
		stored:  d.md.Timestamp,
		eventID: h.Get(wire.HdrMsgID),
		header:  ritaHeaders(h),
		data:    d.msg.Data(),
	}
}

// ritaHeaders copies the event's own Rita-* headers out of h.
func ritaHeaders(h nats.Header) nats.Header {
	out := make(nats.Header)
	for k, v := range h {
		if strings.HasPrefix(k, wire.HdrPrefix) && !strings.HasPrefix(k, wire.HdrParkedPrefix) {
			out[k] = v
		}
	}
	return out
}

// Msg returns the event of the source as a stored message.
func (src source) Msg() *jsapi.Msg {
	h := make(nats.Header, len(src.header)+1)
	for k, v := range src.header {
		h[k] = v
	}
	if src.eventID != "" {
		h[wire.HdrMsgID] = []string{src.eventID}
	}
	return &jsapi.Msg{Subject: src.subject, Header: h, Data: src.data, Seq: src.seq, Time: src.stored}
}

// Entry is a parked event as the parked stream holds it.
type Entry struct {
	Consumer  string
	Reason    string
	Attempts  int
	BlockedBy uint64
	ParkedAt  time.Time

	raw *jetstream.RawStreamMsg
	src source
}

// Event returns the parked event as it was stored.
func (e *Entry) Event() *jsapi.Msg { return e.src.Msg() }

// Seq returns the store sequence of the parked event.
func (e *Entry) Seq() uint64 { return e.src.seq }

func parseEntry(raw *jetstream.RawStreamMsg) (*Entry, error) {
	h := raw.Header
	seq, err := strconv.ParseUint(h.Get(wire.HdrParkedSequence), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("parked entry %d: header %s: %w", raw.Sequence, wire.HdrParkedSequence, err)
	}
	e := &Entry{
		Consumer: h.Get(wire.HdrParkedConsumer),
		Reason:   h.Get(wire.HdrParkedReason),
		ParkedAt: raw.Time,
		raw:      raw,
		src: source{
			subject: h.Get(wire.HdrParkedSubject),
			seq:     seq,
			eventID: h.Get(wire.HdrParkedEventID),
			header:  ritaHeaders(h),
			data:    raw.Data,
		},
	}
	e.Attempts, _ = strconv.Atoi(h.Get(wire.HdrParkedAttempts))
	e.BlockedBy, _ = strconv.ParseUint(h.Get(wire.HdrParkedBlockedBy), 10, 64)
	if t, err := time.Parse(time.RFC3339Nano, h.Get(wire.HdrParkedStored)); err == nil {
		e.src.stored = t
	}
	return e, nil
}

// note is why an event is parked.
type note struct {
	consumer  string
	reason    string
	attempts  int
	blockedBy uint64
}

// errParkConflict is returned by put when the entity's entries changed since
// they were looked at.
var errParkConflict = errors.New("parked entries changed")

// put stores an entry for src. With expect set, it is stored only if the last
// entry of the entity is still the one at *expect (0: none), else it fails
// with errParkConflict.
func (p *Parked) put(ctx context.Context, key entity, src source, n note, expect *uint64) (uint64, error) {
	h := make(nats.Header, len(src.header)+8)
	for k, v := range src.header {
		h[k] = v
	}
	h[wire.HdrParkedConsumer] = []string{n.consumer}
	h[wire.HdrParkedSequence] = []string{strconv.FormatUint(src.seq, 10)}
	h[wire.HdrParkedSubject] = []string{src.subject}
	h[wire.HdrParkedReason] = []string{headerSafe(n.reason)}
	h[wire.HdrParkedAttempts] = []string{strconv.Itoa(n.attempts)}
	if src.eventID != "" {
		h[wire.HdrParkedEventID] = []string{src.eventID}
	}
	if !src.stored.IsZero() {
		h[wire.HdrParkedStored] = []string{src.stored.Format(time.RFC3339Nano)}
	}
	if n.blockedBy != 0 {
		h[wire.HdrParkedBlockedBy] = []string{strconv.FormatUint(n.blockedBy, 10)}
	}
	if expect != nil {
		h[wire.HdrExpectSeq] = []string{strconv.FormatUint(*expect, 10)}
		h[wire.HdrExpectSubject] = []string{wire.ParkedEntityEntries(p.store, n.consumer, key.String())}
	}
	msg := &nats.Msg{
		Subject: wire.ParkedEntry(p.store, n.consumer, key.String(), src.seq),
		Header:  h,
		Data:    src.data,
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		if jsapi.HasCode(err, jsapi.CodeWrongLastSequence) || jsapi.HasCode(err, jsapi.CodeWrongLastSequenceConstant) {
			return 0, errParkConflict
		}
		return 0, fmt.Errorf("park event %d: %w", src.seq, err)
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
func (p *Parked) lastOf(ctx context.Context, consumer string, key entity) (*Entry, error) {
	return p.lastOn(ctx, wire.ParkedEntityEntries(p.store, consumer, key.String()))
}

// lastOn returns the newest entry on subject, or nil.
func (p *Parked) lastOn(ctx context.Context, subject string) (*Entry, error) {
	raw, err := p.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("parked events: %w", err)
	}
	return parseEntry(raw)
}

// subjects returns the subjects matching filter with a message.
func (p *Parked) subjects(ctx context.Context, filter string) ([]string, error) {
	info, err := p.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("parked events: %w", err)
	}
	subs := make([]string, 0, len(info.State.Subjects))
	for sub := range info.State.Subjects {
		subs = append(subs, sub)
	}
	slices.Sort(subs)
	return subs, nil
}

// blockedEntities returns the entities that consumer has parked events of.
func (p *Parked) blockedEntities(ctx context.Context, consumer string) (map[entity]bool, error) {
	subs, err := p.subjects(ctx, wire.ParkedEntries(p.store, consumer))
	if err != nil {
		return nil, err
	}
	keys := make(map[entity]bool, len(subs))
	for _, sub := range subs {
		if k, ok := entityOf(sub, wire.ParkedEntityAt); ok {
			keys[k] = true
		}
	}
	return keys, nil
}

// list returns the entries on subjects matching filter, in sequence order
// of the events they hold.
func (p *Parked) list(ctx context.Context, filter string) ([]*Entry, error) {
	subs, err := p.subjects(ctx, filter)
	if err != nil {
		return nil, err
	}
	entries := make([]*Entry, 0, len(subs))
	for _, sub := range subs {
		e, err := p.lastOn(ctx, sub)
		if err != nil {
			return nil, err
		}
		if e != nil { // nil: removed meanwhile
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b *Entry) int {
		if c := strings.Compare(a.Consumer, b.Consumer); c != 0 {
			return c
		}
		return cmp.Compare(a.src.seq, b.src.seq)
	})
	return entries, nil
}

// entries returns consumer's entries of the entity, in sequence order.
func (p *Parked) entries(ctx context.Context, consumer string, key entity) ([]*Entry, error) {
	return p.list(ctx, wire.ParkedEntityEntries(p.store, consumer, key.String()))
}

// remove deletes the entry at pseq; one already gone is not an error.
func (p *Parked) remove(ctx context.Context, pseq uint64) error {
	err := p.stream.DeleteMsg(ctx, pseq)
	if err != nil && !jsapi.HasCode(err, jsapi.CodeSequenceNotFound) {
		return fmt.Errorf("remove parked entry %d: %w", pseq, err)
	}
	return nil
}

// purge removes every entry and retry request of consumer.
func (p *Parked) purge(ctx context.Context, consumer string) error {
	err := p.stream.Purge(ctx, jetstream.WithPurgeSubject(wire.ParkedConsumerSubjects(p.store, consumer)))
	if err != nil {
		return fmt.Errorf("remove the parked events: %w", err)
	}
	return nil
}
