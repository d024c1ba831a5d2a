package rita_test

import (
	"context"
	"maps"
	"testing"

	"github.com/synadia-labs/rita"
)

func TestDecideCorrelates(t *testing.T) {
	type decideFunc func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error)
	decides := []struct {
		name string
		fn   decideFunc
	}{
		{"Decide", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.Decide(ctx, m, cmd)
		}},
		{"DecideAndEvolve", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.DecideAndEvolve(ctx, m, cmd)
		}},
		{"DecideWithRetry", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.DecideWithRetry(ctx, m, cmd)
		}},
		{"DecideAndEvolveWithRetry", func(ctx context.Context, s *rita.EventStore, m rita.DeciderEvolver, cmd *rita.Command) ([]*rita.Event, uint64, error) {
			return s.DecideAndEvolveWithRetry(ctx, m, cmd)
		}},
	}
	shared := map[string]string{"source": "test"} // one map shared by the decided events
	tests := []struct {
		name     string
		cmd      *rita.Command
		meta     map[string]string // what the decider sets on each event
		wantMeta map[string]string
	}{
		{"command ID starts the correlation", &rita.Command{ID: "cmd-1"}, nil,
			map[string]string{rita.MetaCausationID: "cmd-1", rita.MetaCorrelationID: "cmd-1"}},
		{"correlation flows from the command", &rita.Command{ID: "cmd-2", Meta: map[string]string{rita.MetaCorrelationID: "req-9", "other": "x"}}, nil,
			map[string]string{rita.MetaCausationID: "cmd-2", rita.MetaCorrelationID: "req-9"}},
		{"decider's values are kept", &rita.Command{ID: "cmd-3", Meta: map[string]string{rita.MetaCorrelationID: "req-9"}},
			map[string]string{rita.MetaCausationID: "mine", rita.MetaCorrelationID: "mine too", "k": "v"},
			map[string]string{rita.MetaCausationID: "mine", rita.MetaCorrelationID: "mine too", "k": "v"}},
		{"decider's causation kept, correlation added", &rita.Command{ID: "cmd-4"},
			map[string]string{rita.MetaCausationID: "mine"},
			map[string]string{rita.MetaCausationID: "mine", rita.MetaCorrelationID: "cmd-4"}},
		{"a shared map is not written to", &rita.Command{ID: "cmd-5"}, shared,
			map[string]string{rita.MetaCausationID: "cmd-5", rita.MetaCorrelationID: "cmd-5", "source": "test"}},
	}
	for _, d := range decides {
		t.Run(d.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, s := newBankEnv(t, "bank")
					ctx := testCtx(t)
					model := rita.NewModel(&script{})
					decided := []*rita.Event{
						{Entity: "account.1", Data: &depositedEvt{Amount: 1}, Meta: tt.meta},
						{Entity: "account.2", Data: &depositedEvt{Amount: 2}, Meta: tt.meta},
					}
					cmd := *tt.cmd
					cmd.Data = decided
					events, _, err := d.fn(ctx, s, model, &cmd)
					requireNoError(t, err)
					for i, e := range events {
						if !maps.Equal(e.Meta, tt.wantMeta) {
							t.Errorf("decided event %d: Meta %v, want %v", i, e.Meta, tt.wantMeta)
						}
					}
					// The metadata is stored: read it back.
					stored := &recorder{}
					_, err = s.Evolve(ctx, stored)
					requireNoError(t, err)
					for i, e := range stored.all() {
						if !maps.Equal(e.Meta, tt.wantMeta) {
							t.Errorf("stored event %d: Meta %v, want %v", i, e.Meta, tt.wantMeta)
						}
					}
					if len(stored.all()) != 2 {
						t.Fatalf("stored %d events", len(stored.all()))
					}
				})
			}
			if len(shared) != 1 {
				t.Fatalf("the decider's shared map was written to: %v", shared)
			}
		})
	}
}

func TestDecideCorrelatesFilledCommandID(t *testing.T) {
	e := newEnv(t, rita.WithRegistry(newRegistry(t, bankTypes())), rita.WithIDer(&countingIDer{}))
	s := e.store(t, "bank")
	events, _, err := s.Decide(testCtx(t), rita.NewModel(newLedger()), &rita.Command{Data: &depositCmd{Account: "1", Amount: 5}})
	requireNoError(t, err)
	// id-1 is the command's, filled before the decider ran; id-2 the event's.
	if got := events[0].Meta; got[rita.MetaCausationID] != "id-1" || got[rita.MetaCorrelationID] != "id-1" || events[0].ID != "id-2" {
		t.Fatalf("event %s: Meta %v", events[0].ID, got)
	}
}

func TestDecideRefusesInvalidCommandID(t *testing.T) {
	e, s := newBankEnv(t, "bank")
	// The command ID becomes a header value, where a line break cannot go.
	_, _, err := s.Decide(testCtx(t), rita.NewModel(newLedger()), &rita.Command{ID: "a\r\nb", Data: &depositCmd{Account: "1", Amount: 5}})
	requireErrorIs(t, err, rita.ErrEventMetaInvalid)
	if n := e.msgs(t, "bank"); n != 0 {
		t.Fatalf("stored %d", n)
	}
}
