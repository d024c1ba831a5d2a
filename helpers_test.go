package rita_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"google.golang.org/protobuf/proto"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/internal/pb"
	"github.com/synadia-labs/rita/ritatest"
	"github.com/synadia-labs/rita/types"
)

// env is one embedded server with a connection, its JetStream context and a
// Manager on that connection.
type env struct {
	srv *ritatest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	m   *rita.Manager
}

// newEnv starts a server for t and makes a Manager with opts.
func newEnv(t *testing.T, opts ...rita.ManagerOption) *env {
	t.Helper()
	srv := ritatest.NewServer(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	m, err := rita.New(nc, opts...)
	if err != nil {
		t.Fatalf("rita.New: %v", err)
	}
	return &env{srv: srv, nc: nc, js: js, m: m}
}

// manager makes another Manager on the same connection.
func (e *env) manager(t *testing.T, opts ...rita.ManagerOption) *rita.Manager {
	t.Helper()
	m, err := rita.New(e.nc, opts...)
	if err != nil {
		t.Fatalf("rita.New: %v", err)
	}
	return m
}

// store creates an event store named name with default settings.
func (e *env) store(t *testing.T, name string) *rita.EventStore {
	t.Helper()
	return createStore(t, e.m, name)
}

func createStore(t *testing.T, m *rita.Manager, name string) *rita.EventStore {
	t.Helper()
	s, err := m.CreateEventStore(testCtx(t), rita.EventStoreConfig{Name: name})
	if err != nil {
		t.Fatalf("CreateEventStore(%q): %v", name, err)
	}
	return s
}

// stream returns the JetStream stream of store name.
func (e *env) stream(t *testing.T, name string) jetstream.Stream {
	t.Helper()
	s, err := e.js.Stream(testCtx(t), "ES_"+name)
	if err != nil {
		t.Fatalf("js.Stream(ES_%s): %v", name, err)
	}
	return s
}

// info returns the current stream info of store name.
func (e *env) info(t *testing.T, name string) *jetstream.StreamInfo {
	t.Helper()
	info, err := e.stream(t, name).Info(testCtx(t))
	if err != nil {
		t.Fatalf("stream info ES_%s: %v", name, err)
	}
	return info
}

// msgs returns the number of messages stored in store name.
func (e *env) msgs(t *testing.T, name string) uint64 {
	t.Helper()
	return e.info(t, name).State.Msgs
}

// consumers returns the number of consumers on store name.
func (e *env) consumers(t *testing.T, name string) int {
	t.Helper()
	return e.info(t, name).State.Consumers
}

// requireNoConsumers fails t unless store name has no consumer left.
func (e *env) requireNoConsumers(t *testing.T, name string) {
	t.Helper()
	if n := e.consumers(t, name); n != 0 {
		t.Fatalf("store %q has %d consumers, want 0", name, n)
	}
}

// rawMsg reads the stored message at seq of store name.
func (e *env) rawMsg(t *testing.T, name string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	msg, err := e.stream(t, name).GetMsg(testCtx(t), seq)
	if err != nil {
		t.Fatalf("GetMsg(%d) of ES_%s: %v", seq, name, err)
	}
	return msg
}

// streamNames lists the streams on the server.
func (e *env) streamNames(t *testing.T) []string {
	t.Helper()
	l := e.js.StreamNames(testCtx(t))
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("StreamNames: %v", err)
	}
	slices.Sort(names)
	return names
}

// testCtx returns a context that ends with t, bounded to keep a broken test
// from hanging.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// nilCtx returns a nil context, to check that it is refused.
func nilCtx() context.Context { return nil }

// eventually polls cond until it holds or timeout passes, then fails t.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consistently polls cond for the whole of d and fails t as soon as it does
// not hold. It is only used to check that something does NOT happen.
func consistently(t *testing.T, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("condition stopped holding: "+format, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireErrorIs fails t unless errors.Is(err, target).
func requireErrorIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want errors.Is(err, %v)", err, target)
	}
}

func requireNoError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// rawEvent is an event with pre-encoded data, for a Manager without registry.
func rawEvent(entity, typ, data string) *rita.Event {
	return &rita.Event{Entity: entity, Type: typ, Data: []byte(data)}
}

// appendOne appends events one Append call each and returns their sequences.
func appendEach(t *testing.T, s *rita.EventStore, events ...*rita.Event) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, len(events))
	for _, e := range events {
		seq, err := s.Append(testCtx(t), []*rita.Event{e})
		if err != nil {
			t.Fatalf("Append(%s %s): %v", e.Entity, e.Type, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// appendN appends n raw events of entity, in batches of at most
// rita.MaxBatchSize, and returns the last sequence.
func appendN(t *testing.T, s *rita.EventStore, entity, typ string, n int) uint64 {
	t.Helper()
	var last uint64
	for n > 0 {
		k := min(n, rita.MaxBatchSize)
		batch := make([]*rita.Event, k)
		for i := range batch {
			batch[i] = rawEvent(entity, typ, fmt.Sprintf("payload-%d", i))
		}
		seq, err := s.Append(testCtx(t), batch)
		if err != nil {
			t.Fatalf("Append %d events: %v", k, err)
		}
		last = seq
		n -= k
	}
	return last
}

// seqRange returns [from, to].
func seqRange(from, to uint64) []uint64 {
	var r []uint64
	for s := from; s <= to; s++ {
		r = append(r, s)
	}
	return r
}

// countingIDer is an id.ID that returns "id-1", "id-2", ...
type countingIDer struct{ n atomic.Int64 }

func (c *countingIDer) New() string { return fmt.Sprintf("id-%d", c.n.Add(1)) }

// recorder is a concurrency-safe Evolver that records every event applied,
// optionally failing or blocking on some.
type recorder struct {
	mu     sync.Mutex
	events []*rita.Event
	// fail, if set, is called before an event is recorded; a non-nil error
	// refuses the event.
	fail func(e *rita.Event, applied int) error
}

func (r *recorder) Evolve(e *rita.Event) error {
	if e == nil {
		return errors.New("recorder: nil event")
	}
	r.mu.Lock()
	n := len(r.events)
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(e, n); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// last returns the sequence of the last event recorded, 0 before the
// first.
func (r *recorder) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return 0
	}
	return r.events[len(r.events)-1].Sequence()
}

func (r *recorder) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.events))
	for i, e := range r.events {
		out[i] = e.Sequence()
	}
	return out
}

func (r *recorder) all() []*rita.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// requireSeqs fails t unless got equals want (nil and empty are equal).
func requireSeqs(t *testing.T, got, want []uint64) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sequences = %v, want %v", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Order events, registered under the names in orderTypes.

type placedEvt struct {
	OrderID string   `json:"order_id" msgpack:"order_id"`
	Amount  int      `json:"amount" msgpack:"amount"`
	Items   []string `json:"items" msgpack:"items"`
}

type shippedEvt struct {
	OrderID string `json:"order_id" msgpack:"order_id"`
	Carrier string `json:"carrier" msgpack:"carrier"`
}

// unregisteredEvt is a type no registry of these tests knows.
type unregisteredEvt struct{ X int }

func orderTypes() map[string]*types.Type {
	return map[string]*types.Type{
		"order-placed":  {Init: func() any { return new(placedEvt) }},
		"order-shipped": {Init: func() any { return new(shippedEvt) }},
	}
}

func newRegistry(t *testing.T, typs map[string]*types.Type, opts ...types.RegistryOption) *types.Registry {
	t.Helper()
	r, err := types.NewRegistry(typs, opts...)
	if err != nil {
		t.Fatalf("types.NewRegistry: %v", err)
	}
	return r
}

// sensorReading is a value with its own binary encoding, for the binary codec:
// 8 bytes of big-endian value, then the sensor name.
type sensorReading struct {
	Value  uint64
	Sensor string
}

func (r *sensorReading) MarshalBinary() ([]byte, error) {
	b := binary.BigEndian.AppendUint64(nil, r.Value)
	return append(b, r.Sensor...), nil
}

func (r *sensorReading) UnmarshalBinary(data []byte) error {
	if len(data) < 8 {
		return fmt.Errorf("reading: %d bytes, want at least 8", len(data))
	}
	r.Value = binary.BigEndian.Uint64(data[:8])
	r.Sensor = string(data[8:])
	return nil
}

// ledger account domain, for Decide and Model tests.

var errOverdraft = errors.New("insufficient funds")

// Commands.
type depositCmd struct {
	Account string
	Amount  int
}

type withdrawCmd struct {
	Account string
	Amount  int
}

type transferCmd struct {
	From, To string
	Amount   int
}

// badEventCmd makes the ledger decide an event with an invalid entity.
type badEventCmd struct{}

// Events.
type depositedEvt struct {
	Amount int `json:"amount"`
}

type withdrawnEvt struct {
	Amount int `json:"amount"`
}

func bankTypes() map[string]*types.Type {
	return map[string]*types.Type{
		"deposited": {Init: func() any { return new(depositedEvt) }},
		"withdrawn": {Init: func() any { return new(withdrawnEvt) }},
	}
}

// ledger holds the balances of accounts, keyed by entity ("account.<id>"). It
// is not safe for concurrent use on its own; wrap it in a Model.
type ledger struct {
	Balances map[string]int
	// Applied counts how often each sequence was applied.
	Applied map[uint64]int
	// failOn, if set, makes Evolve fail with errEvolve for that sequence.
	failOn uint64
}

var errEvolve = errors.New("bank: evolve refused")

func newLedger() *ledger {
	return &ledger{Balances: map[string]int{}, Applied: map[uint64]int{}}
}

func accountEntity(id string) string { return "account." + id }

func (b *ledger) Decide(cmd *rita.Command) ([]*rita.Event, error) {
	switch c := cmd.Data.(type) {
	case *depositCmd:
		if c.Amount == 0 {
			return nil, nil
		}
		return []*rita.Event{{Entity: accountEntity(c.Account), Data: &depositedEvt{Amount: c.Amount}}}, nil
	case *withdrawCmd:
		if b.Balances[accountEntity(c.Account)] < c.Amount {
			return nil, fmt.Errorf("withdraw %d from %s: %w", c.Amount, c.Account, errOverdraft)
		}
		return []*rita.Event{{Entity: accountEntity(c.Account), Data: &withdrawnEvt{Amount: c.Amount}}}, nil
	case *transferCmd:
		if b.Balances[accountEntity(c.From)] < c.Amount {
			return nil, fmt.Errorf("transfer %d from %s: %w", c.Amount, c.From, errOverdraft)
		}
		return []*rita.Event{
			{Entity: accountEntity(c.From), Data: &withdrawnEvt{Amount: c.Amount}},
			{Entity: accountEntity(c.To), Data: &depositedEvt{Amount: c.Amount}},
		}, nil
	case badEventCmd:
		// The second event has an entity Append refuses.
		return []*rita.Event{
			{Entity: accountEntity("1"), Data: &depositedEvt{Amount: 1}},
			{Entity: "account", Data: &depositedEvt{Amount: 1}},
		}, nil
	default:
		return nil, fmt.Errorf("unknown command %T", cmd.Data)
	}
}

func (b *ledger) Evolve(e *rita.Event) error {
	if b.failOn != 0 && e.Sequence() == b.failOn {
		return errEvolve
	}
	switch d := e.Data.(type) {
	case *depositedEvt:
		b.Balances[e.Entity] += d.Amount
	case *withdrawnEvt:
		b.Balances[e.Entity] -= d.Amount
	default:
		return fmt.Errorf("unknown event %T", e.Data)
	}
	b.Applied[e.Sequence()]++
	return nil
}

// newBankEnv starts a server with a Manager that knows the bank's types and a
// store named name.
func newBankEnv(t *testing.T, name string) (*env, *rita.EventStore) {
	t.Helper()
	e := newEnv(t, rita.WithRegistry(newRegistry(t, bankTypes())))
	return e, e.store(t, name)
}

func balance(t *testing.T, m *rita.Model[*ledger], account string) int {
	t.Helper()
	var b int
	if err := m.View(func(bank *ledger) error {
		b = bank.Balances[accountEntity(account)]
		return nil
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	return b
}

// codecFixture returns a registry using codec, a value of a type it knows
// and the name of that type.
func codecFixture(t *testing.T, codec string) (*types.Registry, any, string) {
	t.Helper()
	switch codec {
	case "json", "msgpack":
		return newRegistry(t, orderTypes(), types.Codec(codec)),
			&placedEvt{OrderID: "7", Amount: 42, Items: []string{"a", "b"}}, "order-placed"
	case "protobuf":
		reg := newRegistry(t, map[string]*types.Type{
			"pb-order-placed":  {Init: func() any { return new(pb.OrderPlaced) }},
			"pb-order-shipped": {Init: func() any { return new(pb.OrderShipped) }},
		}, types.Codec(codec))
		return reg, &pb.OrderPlaced{OrderId: "7", Amount: 42, Items: []string{"a", "b"}}, "pb-order-placed"
	case "binary":
		reg := newRegistry(t, map[string]*types.Type{
			"reading": {Init: func() any { return new(sensorReading) }},
		}, types.Codec(codec))
		return reg, &sensorReading{Value: 42, Sensor: "s7"}, "reading"
	}
	t.Fatalf("unknown codec %q", codec)
	return nil, nil, ""
}

// sameData reports whether two decoded values are equal.
func sameData(got, want any) bool {
	if g, ok := got.(proto.Message); ok {
		w, ok := want.(proto.Message)
		return ok && proto.Equal(g, w)
	}
	return reflect.DeepEqual(got, want)
}

// stopSub stops a subscription, failing t if it does not stop in time.
func stopSub(t *testing.T, s *rita.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}
