package rita_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// Durables lists every durable consumer of a store with its progress and
// parked events, and leaves out the store's own readers.
func TestDurables(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "durables")
	list, err := s.Durables(testCtx(t))
	requireNoError(t, err)
	if len(list) != 0 {
		t.Fatalf("Durables of a store without any = %+v", list)
	}
	appendN(t, s, "order.1", "placed", 3)
	appendN(t, s, "order.2", "placed", 2)
	w, err := s.Watch(testCtx(t), &recorder{}) // an ordered reader: not listed
	requireNoError(t, err)
	defer w.Stop()

	mail := s.Durable("mail")
	sub, err := mail.React(testCtx(t), func(_ context.Context, ev *rita.Event) error {
		if ev.Entity == "order.2" {
			return fmt.Errorf("no: %w", rita.ErrUnprocessable)
		}
		return nil
	}, rita.WithErrHandler(func(error, *rita.Event, jetstream.Msg) {}))
	requireNoError(t, err)
	requireNoError(t, mail.WaitCaughtUp(testCtx(t)))
	stopSub(t, sub)
	sub, err = s.Durable("audit").Watch(testCtx(t), &recorder{})
	requireNoError(t, err)
	defer stopSub(t, sub)

	list, err = s.Durables(testCtx(t))
	requireNoError(t, err)
	if len(list) != 2 || list[0].Name != "audit" || list[1].Name != "mail" {
		t.Fatalf("Durables = %+v, want audit and mail", list)
	}
	for _, p := range list {
		want, err := s.Durable(p.Name).Progress(testCtx(t))
		requireNoError(t, err)
		if !reflect.DeepEqual(p, want) {
			t.Errorf("Durables has %+v, Progress says %+v", p, want)
		}
	}
	if list[1].Parked != 2 || list[1].Active || !list[0].Active || list[0].StoreSequence != 5 {
		t.Fatalf("Durables = %+v", list)
	}
}
