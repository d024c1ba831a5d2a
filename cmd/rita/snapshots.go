package main

import (
	"context"
	"fmt"
)

func (a *cli) snapshotCommands() {
	snaps := a.app.Command("snapshots", "List or delete the snapshots saved in a store.")
	list := a.command(snaps, "list", `List the snapshots of a store, of every entity or of one (the default of rita snapshots).

Example:
  rita snapshots bank
  rita snapshots list bank account.alice --json`, a.snapshotList).Default()
	list.Arg("store", "The store").Required().StringVar(&a.args.store)
	list.Arg("entity", "Only this entity's, <entity-type>.<entity-id>").StringVar(&a.args.entity)

	del := a.command(snaps, "delete", `Delete an entity's snapshot (asks first, unless --force); its next load reads its events from the start.

Example:
  rita snapshots delete bank account.alice
  rita snapshots delete bank account.alice statement --force`, a.snapshotDelete)
	del.Arg("store", "The store").Required().StringVar(&a.args.store)
	del.Arg("entity", "The entity, <entity-type>.<entity-id>").Required().StringVar(&a.args.entity)
	del.Arg("name", "The model's snapshot name").Default("default").StringVar(&a.args.name)
	del.Flag("force", "Do not ask for confirmation").Short('f').BoolVar(&a.args.force)
}

func (a *cli) snapshotList(ctx context.Context) error {
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	t := newTable(a.stdout, "ENTITY", "NAME", "VERSION", "SEQ", "EVENTS", "SIZE", "SAVED", "STALE")
	n := 0
	for snap, err := range st.Snapshots(ctx, a.args.entity) {
		if err != nil {
			return err
		}
		n++
		if a.json {
			if err := jsonLine(a.stdout, snapshotOf(snap, false)); err != nil {
				return err
			}
			continue
		}
		t.row(snap.Entity, snap.Name, snap.Version, num(snap.Sequence), num(snap.Count), size(uint64(len(snap.Data))), when(snap.Saved), yesNo(snap.Stale))
	}
	if a.json {
		return nil
	}
	if n == 0 {
		fmt.Fprintln(a.stderr, "no snapshots")
		return nil
	}
	return t.flush()
}

func (a *cli) snapshotDelete(ctx context.Context) error {
	s, st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if !a.args.force {
		ok, err := a.confirm(fmt.Sprintf("Delete snapshot %q of %s in store %s?", a.args.name, a.args.entity, a.args.store))
		if err != nil || !ok {
			return err
		}
	}
	if err := st.DeleteSnapshot(ctx, a.args.entity, a.args.name); err != nil {
		return err
	}
	if a.json {
		return jsonLine(a.stdout, map[string]any{"entity": a.args.entity, "name": a.args.name, "deleted": true})
	}
	fmt.Fprintf(a.stdout, "Deleted snapshot %q of %s.\n", a.args.name, a.args.entity)
	return nil
}
