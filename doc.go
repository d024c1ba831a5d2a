// Package rita is a library for event-sourced applications on NATS
// JetStream. It takes a *nats.Conn, keeps events in JetStream streams (event
// stores), and gives an application the operations it is built from: append
// events, decide on commands, evolve models from the events, and follow a
// store as events arrive.
//
// The package's examples run as tests; examples/bank in the repository is a
// program that goes through all of it (go run ./examples/bank).
//
// # Stores and the Manager
//
// A [Manager] is made once per connection with [New]. It holds what every
// store it opens shares: the type registry ([WithRegistry]), the generator of
// event and command IDs ([WithIDer]; NUIDs by default), the clock
// ([WithClock]) and the logger ([WithLogger]; slog.Default by default). New
// makes no request, and the Manager holds no resource: the connection stays
// the caller's to close, and closing it ends every watcher and subscription
// on it.
//
//	m, err := rita.New(nc, rita.WithRegistry(reg))
//	if err != nil {
//		return err
//	}
//	store, err := m.CreateEventStore(ctx, rita.EventStoreConfig{Name: "bank"})
//
// An [EventStore] is one JetStream stream, ES_<name>, on the subjects
// $ES.<name>.>. [Manager.CreateEventStore] creates it (creating it again with
// the same configuration returns it), [Manager.GetEventStore] opens it,
// [Manager.UpdateEventStore] changes it, [Manager.DeleteEventStore] deletes it
// with its parked events and snapshots, and [Manager.EventStores] lists the
// stores with their [EventStoreInfo]; [EventStore.Info] reports one.
// [EventStoreConfig] maps to the stream's fields: Replicas: 3 on a cluster
// of three keeps every event on three servers, Duplicates sets the window of
// de-duplication. Managers and EventStores are safe for concurrent use.
//
// # Events and entities
//
// Every [Event] belongs to an entity, named by exactly two tokens,
// "<entity-type>.<entity-id>" such as "account.alice", and has a type of one
// token, such as "deposited". With the store's name they make the event's
// NATS subject:
//
//	$ES.<store>.<entity-type>.<entity-id>.<event-type>     $ES.bank.account.alice.deposited
//
// A token holds no dot, wildcard or whitespace ([ErrEventEntityInvalid],
// [ErrEventTypeInvalid]). With a type registry, an event's Type is the name
// its Go type is registered under and Data is a value of that type; without
// one, Type must be set and Data is a []byte (or an encoding.BinaryMarshaler)
// that is read back as a []byte. Meta holds string metadata.
//
// Append fills an empty ID (from the ID generator) and Time (from the clock),
// and sets each stored event's [Event.Sequence] and [Event.Subject]. The
// sequence is the event's place in the stream: one counter for the whole
// store, so the sequences of one entity have gaps. Events read back carry
// every field but Expect. A [Command] is what a decider decides on; it is
// never stored.
//
// # Appending
//
// [EventStore.Append] stores one event with one publish, and several as one
// atomic batch: all are stored, with consecutive sequences, or none is. A
// batch may span entities; it holds at most [MaxBatchSize] events, and a
// longer one is refused with [ErrTooManyEvents] rather than split. Every event
// is checked before anything is published, so a refused Append stores
// nothing. A batch needs nats-server v2.14.4 or newer ([ErrServerUnsupported]).
//
//	seq, err := store.Append(ctx, []*rita.Event{
//		{Entity: "account.alice", Data: &AccountOpened{Owner: "Alice"}, Expect: rita.ExpectSequence(0)},
//		{Entity: "account.alice", Data: &Deposited{Amount: 100}},
//	})
//
// Optimistic concurrency: an event's [Expect] makes the append conditional.
// The last event stored on the expected subjects must have the given sequence
// (0: there is none); otherwise nothing is stored and the error matches
// [ErrSequenceConflict]. [ExpectSequence] checks the event's own entity,
// [ExpectSequenceSubject] another pattern in the form of a filter, such as
// "account" for every account.
//
// De-duplication: an event's ID is its message ID, and the stream stores an
// ID once within its duplicate window (EventStoreConfig.Duplicates, two
// minutes by default). Appending one event whose ID is stored already stores
// nothing and returns the sequence it was stored at; a batch that holds a
// stored ID, or one ID twice, fails with [ErrDuplicateEvent].
//
// Retries: Append rides out transient faults (a stream leader election, a
// restarting server, a reconnecting connection) by sending the same events,
// under the same IDs, again with backoff until ctx ends, for at most 30 s
// when ctx has no deadline, and never later than half the duplicate window
// after the first try. The caller sees one success or one final error, never
// an event stored twice. A final error after a timeout matches
// context.DeadlineExceeded and does not tell whether the events were stored:
// appending the same events, with their IDs, again finds out. Conflicts,
// duplicates and invalid events are never retried.
//
// Many goroutines appending at once pipeline on the connection. For bulk
// ingestion from one goroutine, [EventStore.AppendAsync] sends an event
// without waiting for its acknowledgement; [PendingAppend.Wait] gives the
// outcome, with Append's guarantees. With 256 in flight it stores events at
// 0.90 to 1.02 of the rate of JetStream's own asynchronous publishing
// (BenchmarkAppendAsync in bench/, see BENCHMARKS.md).
//
// # Deciding
//
// A [Decider] turns a [Command] into the events that record it, or refuses
// it; an [Evolver] applies an event to its state. A state type usually
// implements both:
//
//	func (a *Account) Decide(cmd *rita.Command) ([]*rita.Event, error)
//	func (a *Account) Evolve(e *rita.Event) error
//
// [NewModel] wraps the state in a [Model], which is safe for concurrent use
// (Evolve takes a write lock, Decide and View a read lock) and remembers, per
// entity, the sequence of the last event it applied ([Model.EntitySequence]).
// It uses that twice. Evolve skips an event it has applied already. Decide
// stamps the first event it returns for each entity with an Expect of that
// sequence (unless the decider set one; 0 for an entity it has not seen), so
// that a decision taken on stale state fails with ErrSequenceConflict instead
// of being stored. A plain Decider, not wrapped in a Model, that sets no
// Expect gets no concurrency check at all: two deciders working from the same
// stale state both succeed. A Manager made with [WithExpectRequired] refuses
// such events with [ErrExpectRequired]. A refused expectation is a
// [*ConflictError]: it names the store, the event, its entity, the pattern,
// and the sequences expected and found.
//
// A command that writes several entities (an order and the stock it
// reserves) depends on all of them: load each into the model first, with
// WithFilters("order.o-7", "stock.sku-1"), from snapshots too when the
// state implements [EntitySnapshotter].
//
// [EventStore.Decide] asks the decider and appends what it decides;
// [EventStore.DecideAndEvolve] then evolves the model with the stored events.
// A decider's error is returned as is, and nothing is stored. Both fill an
// empty Command.ID and Command.Time, and put the command's causation and
// correlation IDs in each event's Meta ([MetaCausationID],
// [MetaCorrelationID]) unless the decider set them.
//
//	alice := rita.NewModel(&Account{})
//	_, seq, err := store.DecideAndEvolve(ctx, alice, &rita.Command{Data: &Deposit{Account: "alice", Amount: 100}})
//
// [EventStore.DecideWithRetry] and [EventStore.DecideAndEvolveWithRetry]
// decide again after a conflict: they wait ([WithBackoff]), bring the model
// up to date with the events it missed (on the subjects whose expectations
// failed, each from the sequence it expected, or [WithRetryFilters]) and
// decide the command afresh, up to [WithMaxAttempts] attempts (3 by
// default). Only ErrSequenceConflict is retried. docs/commands.md walks
// through writing a command handler.
//
// # Reading
//
// [EventStore.Evolve] applies the store's events to an Evolver in stream
// order and returns the sequence of the last one applied. [WithFilters]
// selects events with filters of one to three tokens,
// "<entity-type>[.<entity-id>[.<event-type>]]": any token may be "*", the
// last may be ">", and missing trailing tokens match anything ("account" is
// every account's events, "account.*.deposited" every deposit). Several
// filters select the events matching any of them. [WithAfterSequence] starts
// after a sequence, so that the result of an earlier Evolve can be passed as
// is; [WithStopSequence] stops at one.
//
//	seq, err := store.Evolve(ctx, alice, rita.WithFilters("account.alice"))
//
// Every read is bounded: it ends at the last matching event stored when it
// began, as the stream leader reports it. So an Evolve that starts after an
// Append has returned sees that event, on a replicated store too, whichever
// replica it reads from. A read rides out reconnects, lost consumers,
// restarting servers and changes of leader, going on from where it got to
// without skipping or repeating an event, until ctx ends, or, without a
// deadline, until it has failed to reach the store for 30 s; the error it
// gives up with matches context.DeadlineExceeded. An event that cannot be
// decoded ends Evolve with [ErrEventDecode].
//
// # Snapshots
//
// Loading one entity walks the stretch of the stream its events span, which
// grows with the store. With [WithSnapshot], Evolve of one entity starts
// from the model's latest snapshot and reads only the events after it.
// [SnapshotConfig] names and versions a model's snapshots, and its Every
// makes Evolve save new ones; [EventStore.SaveSnapshot] saves one on demand.
// The model must implement encoding.BinaryMarshaler and BinaryUnmarshaler. A
// snapshot saved under another Version, for an earlier store of the same
// name, or before some of the entity's events were removed is not used, so
// the model always ends as a replay of the entity's events leaves it.
//
// # Watching and durable consumers
//
// [EventStore.Watch] keeps an Evolver up to date from a goroutine of its own.
// It reads the store from the start (or after [WithAfterSequence]), returns
// once the events stored so far are applied (unless [WithNoWait]), and
// applies new ones as they are stored until [Watcher].Stop. It keeps no state
// on the server, so a process that starts reads the history again: right for
// a Model in memory. It replaces its consumer after a failure or a reconnect,
// without a gap or a repeat. An event that fails goes to the error handler
// ([WithErrHandler]; by default the Manager's logger), and the watcher goes
// on. To read your own writes through a watcher, wait for the sequence the
// write returned:
//
//	seq, err := store.Append(ctx, events)
//	...
//	err = w.WaitFor(ctx, seq) // the model now holds the events
//
// A durable consumer keeps its place on the server. [EventStore.Durable]
// returns the handle of one, by name: [Durable.Watch] feeds an Evolver whose
// state lives elsewhere (a read model in a database), [Durable.React] runs a
// handler for side effects. Both resume after the last event done, handle
// the events of one entity in order (and of different entities up to
// [WithConcurrency] at once), try a failing event again ([WithMaxAttempts],
// [WithBackoff]) and then park it. Several processes may run the same one:
// the server delivers to one at a time and hands over to another when it
// stops. Delivery is at least once, so handlers should be idempotent. Both
// return a [Subscription].
//
//	mail := store.Durable("welcome-mail")
//	sub, err := mail.React(ctx, sendWelcome, rita.WithFilters("account.*.account-opened"))
//	if err != nil {
//		return err
//	}
//	defer sub.Stop(ctx)
//
// Nothing is dropped silently. An event that failed every attempt, could not
// be decoded, or was refused with an error wrapping [ErrUnprocessable] is
// parked, and so are the later events of its entity, behind it.
// [Durable.Parked] and [Durable.GetParked] return them as [ParkedEvent] values,
// [Durable.RetryParked] sends them back, [Durable.DeleteParked] skips one.
// [Durable.Progress], [Durable.WaitCaughtUp], [Durable.Rebuild] and
// [Durable.Delete] work from any process.
//
// [EventStore.Project] needs no durable consumer: a [Projection] keeps its
// checkpoint in its own database, written in the same transaction as its
// rows, and Project runs it from there, so every event takes effect exactly
// once. A projection that cannot apply an event halts
// ([ErrProjectionHalted]) rather than skip it.
//
// Each operation takes options of its own type ([EvolveOption],
// [WatchOption], [DurableOption], [ProjectOption], [DecideOption],
// [RetryOption]), so that the compiler refuses most options that do not
// apply; the rest fail with [ErrInvalidOption].
//
// # Looking after a store
//
// Tools that know none of the application's types (the rita command in
// cmd/rita is one) read a store as it is stored: EventStore.RawEvents and
// EventStore.FollowRawEvents yield each event as a RawEvent, with its codec,
// version and payload bytes; EventStore.SequenceAt finds where a moment
// starts. EventStore.Durables lists the durable consumers with their
// Progress, EventStore.Snapshots and EventStore.DeleteSnapshot the saved
// snapshots, EventStore.EntityCount counts the entities. EventStore.Export
// writes the events as JSON lines and EventStore.Import stores them in
// another store, keeping their IDs; running Import again stores nothing
// twice (docs/export-format.md).
//
// # Types, codecs and upcasting
//
// A registry of package types, given with [WithRegistry], names the Go types
// of events:
//
//	reg, err := types.NewRegistry(map[string]*types.Type{
//		"account-opened": {Init: func() any { return &AccountOpened{} }},
//		"deposited":      {Init: func() any { return &Deposited{} }},
//	})
//
// With it, Append takes an event's Type from the registry and encodes Data
// with the registry's codec: JSON by default, or msgpack, protobuf or binary
// (types.Codec). A read decodes Data into a new value of the registered type,
// with the codec the event was stored with.
//
// A registered type may carry a Version, stored with each event. When an
// event of an older version is read, the upcasters registered with
// types.UpcastValue, types.Upcaster or types.Rename bring it up to the
// registered version, one version at a time, before it is decoded; so events
// written years ago still load after their Go types have changed. An event
// that cannot be brought up to date fails to decode with an error matching
// [ErrEventDecode] and the cause (types.ErrUpcasterMissing,
// types.ErrVersionUnsupported, types.ErrUpcastFailed, or
// types.ErrTypeNotRegistered).
//
// # Errors
//
// Every failure a caller can act on wraps one of this package's sentinel
// errors (or one of package types), with a message saying which event,
// entity or option was at fault. Match them with errors.Is; the variables of
// this package are the list, each with when it is returned.
//
//	_, _, err := store.DecideAndEvolve(ctx, model, cmd)
//	switch {
//	case errors.Is(err, rita.ErrSequenceConflict):
//		// decided on stale state: catch up and decide again (or DecideWithRetry)
//	case errors.Is(err, ErrInsufficientFunds):
//		// the decider's own error, returned as is
//	}
//
// Errors of JetStream are wrapped too: a missing store matches
// jetstream.ErrStreamNotFound, and a call that gave up waiting for the
// store matches context.DeadlineExceeded. A call the server's permissions
// refuse fails at once with [ErrPermissionDenied], naming the subject
// ([Permissions] lists what each role needs), and an append refused for lack
// of room with [ErrStoreFull]; neither is retried.
//
// # Traces and metrics
//
// rita reports through OpenTelemetry, using its API only: the Manager takes
// a tracer provider and a meter provider ([WithTracerProvider],
// [WithMeterProvider]; the global ones by default, which record nothing
// until an SDK is installed). Append, Evolve, Decide and its variants are
// spans, and so is each call of a durable consumer's, reactor's or
// projection's handler. Append stores the W3C trace context of its span in
// each event (headers traceparent and tracestate), and the handling of the
// event, in whatever process and however much later, continues that trace:
// a reactor's handler gets the span in its ctx, and [Event.TraceContext]
// gives it to an Evolver or any other code holding the event. The metrics
// count events appended, conflicts, duplicates, retries, events read,
// snapshot hits and misses, handler durations and failures, events parked,
// and the lag of each running durable consumer.
//
// # Personal data
//
// With [WithEncryption], the payloads of the event types that hold personal
// data are stored encrypted (AES-256-GCM) with a data key of their entity,
// which the application's [KeyProvider] wraps; every read path decrypts
// them. [EventStore.Forget] destroys an entity's key: its events still
// replay, in order, with [Event.Forgotten] set on those whose payload is
// gone, and no replay, watcher or reactor stops on them.
// [EventStore.PurgeEntity] removes an entity's events from the store when
// the bytes themselves must go. Entity IDs, types and metadata are never
// encrypted: keep personal data out of them.
//
// # Testing
//
// Package ritatest starts an embedded nats-server with JetStream for a test
// (ritatest.NewServer), or a JetStream cluster on loopback
// (ritatest.NewCluster), whose servers a test can stop and restart; nothing
// has to be installed. Its Spec checks a decider as given/when/then:
// Spec.Run on the state alone, Spec.RunStore through a real store. Pin IDs
// and times with [WithIDer] and [WithClock].
//
// A program that runs its own server, outside tests, starts one with
// package embedded (github.com/synadia-labs/rita/embedded), which ritatest
// builds on; the server is linked into a program only if it imports that
// package.
//
// # Further reading
//
// The docs directory of the repository has the long form:
//
//   - docs/durable-consumers.md: durable Watch, React and Project; parked
//     events, progress, rebuilding, scaling out and hand-over
//   - docs/operating.md: what rides out failures, replicated stores, limits,
//     deleting stores
//   - docs/observability.md: every span, attribute and metric, and how to
//     wire an exporter
//   - docs/personal-data.md: encryption of personal data, forgetting and
//     purging an entity, key rotation, backups
//   - docs/permissions.md: the NATS permissions of each role, accounts
//   - docs/snapshots.md: snapshots, when they are used, what they cost
//   - docs/testing.md: ritatest's servers, clusters and specs; the fault
//     tests
//   - docs/wire-format.md: the streams, subjects, headers and buckets rita
//     stores, shared with the first rita
//
// examples/bank, examples/sqlite-projection and examples/tracing are
// programs to run; the runnable examples of this package show each
// operation on its own.
package rita
