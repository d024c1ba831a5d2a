package rita

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita/internal/jsapi"
	"github.com/synadia-labs/rita/internal/pb"
	"github.com/synadia-labs/rita/internal/wire"
	"github.com/synadia-labs/rita/types"
)

// Types the decoding tests register.

type wirePlaced struct {
	OrderID string `json:"order_id" msgpack:"order_id"`
	Amount  int    `json:"amount" msgpack:"amount"`
}

// wireReading has its own binary encoding, which trusts its input: short
// data makes UnmarshalBinary panic, as careless user code might.
type wireReading struct {
	Value  uint64
	Sensor string
}

func (r *wireReading) MarshalBinary() ([]byte, error) {
	return append(binary.BigEndian.AppendUint64(nil, r.Value), r.Sensor...), nil
}

func (r *wireReading) UnmarshalBinary(data []byte) error {
	r.Value = binary.BigEndian.Uint64(data[:8]) // panics on fewer than 8 bytes
	r.Sensor = string(data[8:])
	return nil
}

// wireRegistries returns, by index, no registry and a registry of each codec.
func wireRegistries(tb testing.TB) []*types.Registry {
	tb.Helper()
	regs := []*types.Registry{nil}
	for _, c := range []struct {
		codec string
		types map[string]*types.Type
	}{
		{"json", map[string]*types.Type{"placed": {Init: func() any { return new(wirePlaced) }}}},
		{"msgpack", map[string]*types.Type{"placed": {Init: func() any { return new(wirePlaced) }}}},
		{"protobuf", map[string]*types.Type{"placed": {Init: func() any { return new(pb.OrderPlaced) }}}},
		{"binary", map[string]*types.Type{"placed": {Init: func() any { return new(wireReading) }}}},
	} {
		reg, err := types.NewRegistry(c.types, types.Codec(c.codec))
		if err != nil {
			tb.Fatalf("registry %s: %v", c.codec, err)
		}
		regs = append(regs, reg)
	}
	return regs
}

// Which headers a fuzzed message carries.
const (
	wireHasID = 1 << iota
	wireHasEntity
	wireHasType
	wireHasTime
	wireHasCodec
	wireHasMeta
)

// wireHeader builds the headers of a fuzzed message: those of present, and
// metaCount metadata entries besides metaKey.
func wireHeader(present uint8, id, entity, typ, tm, codecName, metaKey, metaVal string, metaCount uint16) nats.Header {
	h := nats.Header{}
	set := func(bit uint8, k, v string) {
		if present&bit != 0 {
			h[k] = []string{v}
		}
	}
	set(wireHasID, wire.HdrMsgID, id)
	set(wireHasEntity, wire.HdrEntity, entity)
	set(wireHasType, wire.HdrType, typ)
	set(wireHasTime, wire.HdrTime, tm)
	set(wireHasCodec, wire.HdrCodec, codecName)
	set(wireHasMeta, wire.HdrMetaPrefix+metaKey, metaVal)
	for i := range metaCount % 1024 {
		h[fmt.Sprintf("%sk%d", wire.HdrMetaPrefix, i)] = []string{metaVal}
	}
	return h
}

// Turning an arbitrary stored message into an Event never panics: it gives
// an Event that holds together, or an error wrapping ErrEventDecode.
func FuzzDecodeEvent(f *testing.F) {
	regs := wireRegistries(f)
	placed := []byte(`{"order_id":"7","amount":42}`)
	now := "2026-01-02T03:04:05.123456789Z"
	all := uint8(wireHasID | wireHasEntity | wireHasType | wireHasTime | wireHasCodec | wireHasMeta)
	subject := "$ES.orders.order.7.placed"
	for _, seed := range []struct {
		subject, id, entity, typ, tm, codecName, metaKey, metaVal string
		data                                                      []byte
		reg, present                                              uint8
		metaCount                                                 uint16
	}{
		{subject, "id-1", "order.7", "placed", now, "json", "user", "ann", placed, 1, all, 0},
		{subject, "id-1", "", "", "", "", "", "", placed, 1, 0, 0},                       // everything from the subject
		{"not.an.event", "", "", "", "", "", "", "", placed, 1, 0, 0},                    // nor a subject to derive from
		{subject, "id-1", "order", "placed", now, "json", "", "", placed, 1, all, 0},     // one-token entity
		{subject, "id-1", "order.7.x", "placed", now, "json", "", "", placed, 1, all, 0}, // three-token entity
		{subject, "id-1", "order.*", "placed", now, "json", "", "", placed, 1, all, 0},   // wildcard entity
		{"$ES.s.a.b.", "", "", "", "", "", "", "", nil, 0, 0, 0},                         // empty type token
		{subject, "id-1", "order.7", "placed", "yesterday", "json", "", "", placed, 1, all, 0},
		{subject, "id-1", "order.7", "placed", now, "yaml", "", "", placed, 1, all, 0},      // unknown codec
		{subject, "id-1", "order.7", "shipped", now, "json", "", "", placed, 1, all, 0},     // unknown type
		{subject, "id-1", "order.7", "placed", now, "json", "", "", []byte("{"), 1, all, 0}, // garbage payload
		{subject, "id-1", "order.7", "placed", now, "msgpack", "", "", []byte{0xc1}, 2, all, 0},
		{subject, "id-1", "order.7", "placed", now, "protobuf", "", "", []byte{0xff, 0xff}, 3, all, 0},
		{subject, "id-1", "order.7", "placed", now, "binary", "", "", []byte{1, 2}, 4, all, 0}, // panics in UnmarshalBinary
		{subject, "id-1", "order.7", "placed", now, "msgpack", "", "", placed, 1, all, 0},      // another known codec
		{subject, "id-1", "order.7", "placed", now, "json", "k", strings.Repeat("v", 4096), placed, 1, all, 1000},
		{subject, "", "order.7", "placed", "", "", "", "x", []byte("raw"), 0, wireHasMeta, 0}, // "Rita-Meta-" alone
	} {
		f.Add(seed.subject, seed.id, seed.entity, seed.typ, seed.tm, seed.codecName, seed.metaKey, seed.metaVal,
			seed.data, seed.reg, seed.present, seed.metaCount)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, subject, id, entity, typ, tm, codecName, metaKey, metaVal string,
		data []byte, regIndex, present uint8, metaCount uint16) {
		reg := regs[int(regIndex)%len(regs)]
		h := wireHeader(present, id, entity, typ, tm, codecName, metaKey, metaVal, metaCount)
		e, err := decodeEvent(context.Background(), reg, nil, &jsapi.Msg{Subject: subject, Header: h, Data: data, Seq: 7, Time: ts})
		if err != nil {
			if !errors.Is(err, ErrEventDecode) {
				t.Fatalf("error %v does not wrap ErrEventDecode", err)
			}
			if e != nil {
				t.Fatalf("an event %+v with the error %v", e, err)
			}
			return
		}
		if err := validateEntity(e.Entity); err != nil {
			t.Errorf("decoded entity %q: %v", e.Entity, err)
		}
		if e.Type == "" || e.Sequence() != 7 || e.Subject() != subject || e.ID != h.Get(wire.HdrMsgID) {
			t.Errorf("decoded %+v from subject %q, sequence 7", e, subject)
		}
		if present&wireHasTime == 0 && !e.Time.Equal(ts) {
			t.Errorf("time %v without a header, want the stored time %v", e.Time, ts)
		}
		for k, v := range h {
			if key, ok := strings.CutPrefix(k, wire.HdrMetaPrefix); ok && key != "" && e.Meta[key] != v[0] {
				t.Errorf("meta %q = %q, want %q", key, e.Meta[key], v[0])
			}
		}
		if reg == nil {
			if raw, ok := e.Data.([]byte); !ok || !bytes.Equal(raw, data) {
				t.Errorf("data %v, want the payload as is", e.Data)
			}
			return
		}
		want, err := reg.Init(e.Type)
		if err != nil || reflect.TypeOf(e.Data) != reflect.TypeOf(want) {
			t.Errorf("data of type %T for type %q (registry says %T, %v)", e.Data, e.Type, want, err)
		}
	})
}

// Each way a stored message can be wrong is an error that says which.
func TestDecodeEventErrors(t *testing.T) {
	regs := wireRegistries(t)
	json := regs[1]
	ts := time.Now()
	good := func() nats.Header {
		return nats.Header{
			wire.HdrMsgID:  {"id-1"},
			wire.HdrEntity: {"order.7"},
			wire.HdrType:   {"placed"},
			wire.HdrTime:   {"2026-01-02T03:04:05Z"},
			wire.HdrCodec:  {"json"},
		}
	}
	with := func(k, v string) nats.Header {
		h := good()
		if v == "" {
			delete(h, k)
		} else {
			h[k] = []string{v}
		}
		return h
	}
	subject := "$ES.orders.order.7.placed"
	payload := []byte(`{"order_id":"7"}`)
	tests := []struct {
		name    string
		reg     *types.Registry
		subject string
		h       nats.Header
		data    []byte
		want    []error
	}{
		{"not an event subject", json, "orders.7", with(wire.HdrEntity, ""), payload, []error{ErrEventDecode}},
		{"entity of one token", json, subject, with(wire.HdrEntity, "order"), payload, []error{ErrEventDecode, ErrEventEntityInvalid}},
		{"entity with a wildcard", json, subject, with(wire.HdrEntity, "order.>"), payload, []error{ErrEventDecode, ErrEventEntityInvalid}},
		{"entity from an empty token", json, "$ES.orders..7.placed", with(wire.HdrEntity, ""), payload, []error{ErrEventDecode, ErrEventEntityInvalid}},
		{"type from an empty token", json, "$ES.orders.order.7.", with(wire.HdrType, ""), payload, []error{ErrEventDecode, ErrEventTypeRequired}},
		{"malformed time", json, subject, with(wire.HdrTime, "03/04/2026"), payload, []error{ErrEventDecode}},
		{"unknown codec", json, subject, with(wire.HdrCodec, "yaml"), payload, []error{ErrEventDecode, types.ErrCodecUnknown}},
		{"unknown type", json, subject, with(wire.HdrType, "shipped"), payload, []error{ErrEventDecode, types.ErrTypeNotRegistered}},
		{"garbage payload", json, subject, good(), []byte("{not json"), []error{ErrEventDecode}},
		{"decoding that panics", regs[4], subject, with(wire.HdrCodec, "binary"), []byte{1}, []error{ErrEventDecode}},
		{"nil header", json, subject, nil, payload, nil},
		{"no registry", nil, subject, good(), []byte("anything"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := decodeEvent(context.Background(), tc.reg, nil, &jsapi.Msg{Subject: tc.subject, Header: tc.h, Data: tc.data, Seq: 1, Time: ts})
			if tc.want == nil {
				if err != nil || e == nil {
					t.Fatalf("decodeEvent = %v, %v; want an event", e, err)
				}
				return
			}
			if e != nil {
				t.Fatalf("decoded %+v, want an error", e)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
		})
	}
}

// Entities, event types and store names are accepted only when they make
// valid literal subject tokens, and refused with the sentinel that says so.
func FuzzEntity(f *testing.F) {
	for _, s := range []string{"order.7", "order", "order.", ".7", "order.7.x", "order.*", "order.>", "a b.c",
		"order.\x00", "ørder.7", "\xff.1", "", "orders", "ES_x", "a/b", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := validateEntity(s); err != nil {
			if !isSentinel(err, ErrEventEntityRequired, ErrEventEntityInvalid) {
				t.Fatalf("validateEntity(%q): %v wraps no entity sentinel", s, err)
			}
		} else {
			toks := strings.Split(wire.EventSubject("store", s, "placed"), ".")
			if len(toks) != 5 || !literalSubjectToken(toks[2]) || !literalSubjectToken(toks[3]) {
				t.Fatalf("entity %q accepted, but makes subject tokens %q", s, toks)
			}
		}
		if err := validateEventType(s); err != nil {
			if !isSentinel(err, ErrEventTypeRequired, ErrEventTypeInvalid) {
				t.Fatalf("validateEventType(%q): %v wraps no type sentinel", s, err)
			}
		} else if !literalSubjectToken(s) {
			t.Fatalf("event type %q accepted, but is no literal subject token", s)
		}
		if err := validateStoreName(s); err != nil {
			if !isSentinel(err, ErrEventStoreNameRequired, ErrEventStoreNameInvalid) {
				t.Fatalf("validateStoreName(%q): %v wraps no store name sentinel", s, err)
			}
		} else if !literalSubjectToken(s) || strings.ContainsAny(s, "/\\") || len(wire.StreamName(s)) > 255 {
			t.Fatalf("store name %q accepted, but cannot name a stream and a subject token", s)
		}
	})
}
