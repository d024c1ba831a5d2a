package rita_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
	"github.com/synadia-labs/rita/clock"
	"github.com/synadia-labs/rita/id"
	"github.com/synadia-labs/rita/types"
)

// The documented API (shared/reference/api.txt), checked at compile time:
// each name must exist with exactly this signature.
var (
	_ func(*nats.Conn, ...rita.ManagerOption) (*rita.Manager, error)                                             = rita.New
	_ func(*rita.Manager, context.Context, rita.EventStoreConfig) (*rita.EventStore, error)                      = (*rita.Manager).CreateEventStore
	_ func(*rita.Manager, context.Context, string) (*rita.EventStore, error)                                     = (*rita.Manager).GetEventStore
	_ func(*rita.Manager, context.Context, rita.EventStoreConfig) error                                          = (*rita.Manager).UpdateEventStore
	_ func(*rita.Manager, context.Context, string) error                                                         = (*rita.Manager).DeleteEventStore
	_ func(clock.Clock) rita.ManagerOption                                                                       = rita.WithClock
	_ func(id.ID) rita.ManagerOption                                                                             = rita.WithIDer
	_ func(*slog.Logger) rita.ManagerOption                                                                      = rita.WithLogger
	_ func(*types.Registry) rita.ManagerOption                                                                   = rita.WithRegistry
	_ func(*rita.EventStore, context.Context, []*rita.Event) (uint64, error)                                     = (*rita.EventStore).Append
	_ func(*rita.EventStore, context.Context, rita.Decider, *rita.Command) ([]*rita.Event, uint64, error)        = (*rita.EventStore).Decide
	_ func(*rita.EventStore, context.Context, rita.DeciderEvolver, *rita.Command) ([]*rita.Event, uint64, error) = (*rita.EventStore).DecideAndEvolve
	_ func(*rita.EventStore, context.Context, rita.Evolver, ...rita.EvolveOption) (uint64, error)                = (*rita.EventStore).Evolve
	_ func(*rita.EventStore, context.Context, rita.Evolver, ...rita.WatchOption) (rita.Watcher, error)           = (*rita.EventStore).Watch
	_ func(uint64) rita.EvolveOption                                                                             = rita.WithAfterSequence
	_ func(uint64) rita.EvolveOption                                                                             = rita.WithStopSequence
	_ func(...string) rita.EvolveOption                                                                          = rita.WithFilters
	_ func(func(error, *rita.Event, jetstream.Msg)) rita.WatchOption                                             = rita.WithErrHandler
	_ func() rita.WatchOption                                                                                    = rita.WithNoWait
	_ func(uint64) *rita.Expect                                                                                  = rita.ExpectSequence
	_ func(uint64, string) *rita.Expect                                                                          = rita.ExpectSequenceSubject
	_ func(*rita.Event) uint64                                                                                   = (*rita.Event).Sequence
	_ func(*rita.Event) string                                                                                   = (*rita.Event).Subject
	_ func(any) *rita.Model[any]                                                                                 = rita.NewModel[any]
	_ func(*rita.Model[any], *rita.Command) ([]*rita.Event, error)                                               = (*rita.Model[any]).Decide
	_ func(*rita.Model[any], *rita.Event) error                                                                  = (*rita.Model[any]).Evolve
	_ func(*rita.Model[any], func(any) error) error                                                              = (*rita.Model[any]).View

	_ rita.DeciderEvolver = (*rita.Model[any])(nil)
	_ rita.Viewer[any]    = (*rita.Model[any])(nil)
	_ rita.Decider        = rita.DeciderEvolver(nil)
	_ rita.Evolver        = rita.DeciderEvolver(nil)
	_ rita.WatchOption    = rita.WithFilters() // an EvolveOption passes to Watch
	_ interface{ Stop() } = rita.Watcher(nil)  // a Watcher stops (it also tells when it ended)

	_ = rita.Command{ID: "", Time: time.Time{}, Type: "", Data: nil, Meta: map[string]string{}}
	_ = rita.Event{ID: "", Entity: "", Time: time.Time{}, Type: "", Data: nil, Meta: map[string]string{}, Expect: &rita.Expect{Sequence: 0, Pattern: ""}}
	_ = rita.EventStoreConfig{
		Name: "", Description: "", Metadata: map[string]string{}, Replicas: 0,
		Storage: jetstream.FileStorage, Placement: &jetstream.Placement{}, RePublish: &jetstream.RePublish{},
		MaxMsgs: 0, MaxAge: time.Duration(0), MaxBytes: 0,
	}

	_ func(map[string]*types.Type, ...types.RegistryOption) (*types.Registry, error) = types.NewRegistry
	_ func(string) types.RegistryOption                                              = types.Codec
	_                                                                                = types.Type{Init: func() any { return nil }}
	_ func(id.ID) string                                                             = id.ID.New
	_ id.ID                                                                          = id.NUID
	_ id.ID                                                                          = id.UUID
	_ clock.Clock                                                                    = clock.Time
	_ func(clock.Clock) time.Time                                                    = clock.Clock.Now
)
