package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/synadia-labs/rita"
)

// entityLimit is the most subjects a store may have for rita stores and
// rita info to count its entities.
const entityLimit = 100_000

func (a *cli) storeCommands() {
	a.command(a.app, "stores", `List the event stores on the connection.

Example:
  rita stores
  rita stores --json | jq -r .name`, a.stores)

	info := a.command(a.app, "info", `Show one store: its stream and settings, its durable consumers with their lag, parked events and snapshots.

Example:
  rita info bank`, a.info)
	info.Arg("store", "The store").Required().StringVar(&a.args.store)
}

// storeJSON is a store as rita stores --json prints it.
type storeJSON struct {
	Name          string     `json:"name"`
	Events        uint64     `json:"events"`
	Entities      *uint64    `json:"entities"`
	Bytes         uint64     `json:"bytes"`
	Replicas      int        `json:"replicas"`
	FirstSequence uint64     `json:"first_seq"`
	LastSequence  uint64     `json:"last_seq"`
	FirstTime     *time.Time `json:"first_time"`
	LastTime      *time.Time `json:"last_time"`
}

func (a *cli) stores(ctx context.Context) error {
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.close()
	var infos []*rita.EventStoreInfo
	for info, err := range s.m.EventStores(ctx) {
		if err != nil {
			return err
		}
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(x, y *rita.EventStoreInfo) int { return strings.Compare(x.Config.Name, y.Config.Name) })
	t := newTable(a.stdout, "STORE", "EVENTS", "ENTITIES", "SIZE", "REPLICAS", "FIRST", "LAST")
	for _, info := range infos {
		entities, err := s.entities(ctx, info.Config.Name)
		if err != nil {
			return err
		}
		if a.json {
			if err := jsonLine(a.stdout, storeJSON{
				Name: info.Config.Name, Events: info.Events, Entities: entities, Bytes: info.Bytes, Replicas: max(info.Config.Replicas, 1),
				FirstSequence: info.FirstSequence, LastSequence: info.LastSequence, FirstTime: timeOrNil(info.FirstTime), LastTime: timeOrNil(info.LastTime),
			}); err != nil {
				return err
			}
			continue
		}
		t.row(info.Config.Name, num(info.Events), countOrDash(entities), size(info.Bytes), num(max(info.Config.Replicas, 1)), when(info.FirstTime), when(info.LastTime))
	}
	if a.json {
		return nil
	}
	if len(infos) == 0 {
		fmt.Fprintln(a.stderr, "no event stores on this connection")
		return nil
	}
	return t.flush()
}

// entities counts a store's entities if that is cheap; nil otherwise.
func (s *session) entities(ctx context.Context, name string) (*uint64, error) {
	st, err := s.m.GetEventStore(ctx, name)
	if err != nil {
		return nil, err
	}
	n, ok, err := st.EntityCount(ctx, entityLimit)
	if err != nil || !ok {
		return nil, err
	}
	return &n, nil
}

func countOrDash(n *uint64) string {
	if n == nil {
		return "-"
	}
	return num(*n)
}

// infoJSON is a store as rita info --json prints it.
type infoJSON struct {
	storeJSON
	Stream         string            `json:"stream"`
	Subjects       string            `json:"subjects"`
	Description    string            `json:"description,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Storage        string            `json:"storage"`
	MaxAge         string            `json:"max_age,omitempty"`
	MaxMsgs        int64             `json:"max_msgs,omitempty"`
	MaxBytes       int64             `json:"max_bytes,omitempty"`
	Duplicates     string            `json:"duplicate_window"`
	Created        time.Time         `json:"created"`
	Consumers      []consumerJSON    `json:"consumers"`
	Parked         int               `json:"parked"`
	SnapshotBucket string            `json:"snapshot_bucket"`
	Snapshots      int               `json:"snapshots"`
}

func (a *cli) info(ctx context.Context) error {
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	entities, err := s.entities(ctx, info.Config.Name)
	if err != nil {
		return err
	}
	durables, err := st.Durables(ctx)
	if err != nil {
		return err
	}
	snapshots := 0
	for _, err := range st.Snapshots(ctx, "") {
		if err != nil {
			return err
		}
		snapshots++
	}
	out := infoJSON{
		storeJSON: storeJSON{
			Name: info.Config.Name, Events: info.Events, Entities: entities, Bytes: info.Bytes, Replicas: max(info.Config.Replicas, 1),
			FirstSequence: info.FirstSequence, LastSequence: info.LastSequence, FirstTime: timeOrNil(info.FirstTime), LastTime: timeOrNil(info.LastTime),
		},
		Stream:         "ES_" + info.Config.Name,
		Subjects:       "$ES." + info.Config.Name + ".>",
		Description:    info.Config.Description,
		Metadata:       info.Config.Metadata,
		Storage:        info.Config.Storage.String(),
		MaxMsgs:        info.Config.MaxMsgs,
		MaxBytes:       info.Config.MaxBytes,
		Duplicates:     duplicates(info.Config.Duplicates).String(),
		Created:        info.Created.UTC(),
		Consumers:      make([]consumerJSON, 0, len(durables)),
		SnapshotBucket: "rita-snapshots-" + info.Config.Name,
		Snapshots:      snapshots,
	}
	if info.Config.MaxAge > 0 {
		out.MaxAge = info.Config.MaxAge.String()
	}
	for _, p := range durables {
		out.Consumers = append(out.Consumers, consumerOf(p))
		out.Parked += p.Parked
	}
	if a.json {
		return jsonLine(a.stdout, out)
	}
	w := a.stdout
	limits := []string{}
	if out.MaxAge != "" {
		limits = append(limits, "age "+out.MaxAge)
	}
	if out.MaxMsgs > 0 {
		limits = append(limits, "events "+num(out.MaxMsgs))
	}
	if out.MaxBytes > 0 {
		limits = append(limits, "size "+size(uint64(out.MaxBytes)))
	}
	if len(limits) == 0 {
		limits = append(limits, "none")
	}
	fmt.Fprintf(w, "Store %s\n\n", out.Name)
	t := newFields(w)
	t.row("Stream:", out.Stream+" on "+out.Subjects)
	if out.Description != "" {
		t.row("Description:", out.Description)
	}
	t.row("Created:", when(out.Created))
	t.row("Storage:", fmt.Sprintf("%s, %d replica(s)", out.Storage, out.Replicas))
	t.row("Limits:", strings.Join(limits, ", "))
	t.row("Duplicate window:", out.Duplicates)
	t.row("Events:", fmt.Sprintf("%d (%s), sequences %d to %d", out.Events, size(out.Bytes), out.FirstSequence, out.LastSequence))
	t.row("Entities:", countOrDash(out.Entities))
	t.row("First event:", when(info.FirstTime))
	t.row("Last event:", when(info.LastTime))
	t.row("Parked events:", num(out.Parked))
	t.row("Snapshots:", fmt.Sprintf("%d in bucket %s", out.Snapshots, out.SnapshotBucket))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(durables) == 0 {
		fmt.Fprintln(w, "No durable consumers.")
		return nil
	}
	fmt.Fprintln(w, "Durable consumers:")
	fmt.Fprintln(w)
	return a.consumerTable(durables)
}

// duplicates is the duplicate window as the server applies it.
func duplicates(d time.Duration) time.Duration {
	if d == 0 {
		return 2 * time.Minute
	}
	return d
}
