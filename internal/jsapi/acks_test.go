package jsapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestAcks checks that concurrent publishes each get their own stream's
// acknowledgement, and that a publish nobody serves, one nobody answers,
// one whose context ends and one the stream refuses end as they should.
func TestAcks(t *testing.T) {
	nc := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	a := NewAcks(nc)
	w, _ := WatchDenials(nc).Watch()
	scope := func() *Scope { return &Scope{} }
	publish := func(ctx context.Context, msg *nats.Msg, timeout time.Duration) (*Ack, error) {
		p, err := a.Publish(msg)
		if err != nil {
			return nil, err
		}
		return p.Wait(ctx, timeout, &w, scope)
	}

	const n = 200
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			msg := nats.NewMsg(fmt.Sprintf("s.%d", i))
			msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("id-%d", i))
			ack, err := publish(ctx, msg, 5*time.Second)
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			if ack.Stream != "S" || msg.Reply != "" {
				t.Errorf("publish %d: ack %+v, reply left %q", i, ack, msg.Reply)
			}
			seqs[i] = ack.Sequence
		})
	}
	wg.Wait()
	// Each got the sequence its message was stored at.
	for i, seq := range seqs {
		m, err := js.Stream(ctx, "S")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := m.GetMsg(ctx, seq)
		if err != nil || raw.Subject != fmt.Sprintf("s.%d", i) {
			t.Fatalf("publish %d acknowledged at %d, which holds %v (%v)", i, seq, raw, err)
		}
	}
	// A duplicate is acknowledged as one, with the first sequence.
	msg := nats.NewMsg("s.0")
	msg.Header.Set(jetstream.MsgIDHeader, "id-0")
	if ack, err := publish(ctx, msg, 5*time.Second); err != nil || !ack.Duplicate || ack.Sequence != seqs[0] {
		t.Fatalf("duplicate: %+v, %v; want a duplicate at %d", ack, err, seqs[0])
	}
	// A refusal is the stream's API error.
	msg = nats.NewMsg("s.x")
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "7")
	var apiErr *jetstream.APIError
	if _, err := publish(ctx, msg, 5*time.Second); !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		t.Fatalf("refused: %v, want wrong last sequence", err)
	}
	// Nobody serves the subject.
	if _, err := publish(ctx, nats.NewMsg("nobody"), 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("no stream: %v, want no responders", err)
	}
	// Somebody listens and does not answer.
	sub, err := nc.SubscribeSync("silent")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if _, err := publish(ctx, nats.NewMsg("silent"), 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("unanswered: %v, want a timeout", err)
	}
	cctx, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := publish(cctx, nats.NewMsg("silent"), 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v, want context.Canceled", err)
	}
	a.mu.Lock()
	left := len(a.pending)
	a.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d publishes left in the table", left)
	}
}
