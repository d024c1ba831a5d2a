package rita

import (
	"fmt"
	"slices"
	"strings"

	"github.com/synadia-labs/rita/internal/wire"
)

// Role is what a NATS user does with one event store. Permissions lists the
// subjects each role needs; docs/permissions.md explains them.
type Role string

// The roles of Permissions. Each is complete on its own: a user that plays
// several gets the union of their subjects.
const (
	// RoleReader reads the store: GetEventStore, Info, Evolve (with
	// snapshots, which it may save), Watch and Watcher.WaitFor.
	RoleReader Role = "reader"

	// RoleWriter appends to the store: what a reader does, and Append,
	// Decide and their variants. (Append reads its own events back after an
	// answer lost in a fault, and a decision is taken on a model evolved
	// from the store.)
	RoleWriter Role = "writer"

	// RoleConsumer runs durable consumers of the store: what a reader does,
	// and Durable.Watch, Durable.React, Project, Progress, WaitCaughtUp and
	// the parked events (Parked, GetParked, RetryParked, DeleteParked).
	RoleConsumer Role = "consumer"

	// RoleAdmin administers the store: what a reader does, and
	// CreateEventStore, UpdateEventStore, DeleteEventStore,
	// Manager.EventStores (which lists every stream of the account),
	// Durable.Rebuild, Durable.Delete, and EventStore.Forget and
	// PurgeEntity.
	RoleAdmin Role = "admin"
)

// Roles lists every Role, for a user interface to offer.
func Roles() []Role { return []Role{RoleReader, RoleWriter, RoleConsumer, RoleAdmin} }

// NATSPermissions are the subjects a NATS user may publish to and subscribe
// to, as a nats-server configuration gives them to a user (its
// permissions: publish: allow and subscribe: allow lists).
type NATSPermissions struct {
	Publish   []string
	Subscribe []string
}

// Permissions returns the least NATS permissions a user needs to play roles
// on the event store named store (every role when none is given). They
// assume the connection's inboxes are under the default prefix _INBOX;
// with nats.CustomInboxPrefix, subscribe to that prefix instead.
//
// A call outside them fails at once with ErrPermissionDenied. It fails with
// ErrEventStoreNameRequired or ErrEventStoreNameInvalid for a name rita
// cannot use, and with ErrInvalidArgument for a role it does not know.
func Permissions(store string, roles ...Role) (*NATSPermissions, error) {
	if err := validateStoreName(store); err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		roles = Roles()
	}
	var (
		stream  = wire.StreamName(store)
		parked  = wire.ParkedStream(store)
		kv      = "KV_" + wire.SnapshotBucket(store)
		keys    = wire.KeyStream(wire.KeyBucket(store))
		api     = "$JS.API."
		publish []string
	)
	// What every role does: open the store and read it.
	reader := []string{
		api + "STREAM.INFO." + stream,
		api + "STREAM.MSG.GET." + stream,
		api + "DIRECT.GET." + stream,
		api + "CONSUMER.CREATE." + stream + ".>",
		api + "CONSUMER.MSG.NEXT." + stream + ".>",
		api + "CONSUMER.DELETE." + stream + ".>",
		api + "INFO", // nats.go asks for the account's limits before creating the snapshot bucket
		api + "STREAM.INFO." + kv,
		api + "STREAM.CREATE." + kv,
		api + "DIRECT.GET." + kv + ".>",
		"$KV." + wire.SnapshotBucket(store) + ".>",
		// The data keys of personal data (WithEncryption), read to decrypt.
		api + "STREAM.INFO." + keys,
		api + "DIRECT.GET." + keys + ".>",
	}
	for _, role := range roles {
		publish = append(publish, reader...)
		switch role {
		case RoleReader:
		case RoleWriter:
			publish = append(publish, wire.StoreSubjects(store),
				api+"STREAM.CREATE."+keys, // an entity's first personal event makes its key
				"$KV."+wire.KeyBucket(store)+".>",
			)
		case RoleConsumer:
			publish = append(publish,
				api+"CONSUMER.INFO."+stream+".>",
				api+"CONSUMER.UNPIN."+stream+".>",
				"$JS.ACK."+stream+".>",
				api+"STREAM.INFO."+parked,
				api+"STREAM.CREATE."+parked,
				api+"STREAM.MSG.GET."+parked,
				api+"STREAM.MSG.DELETE."+parked,
				api+"DIRECT.GET."+parked,
				api+"DIRECT.GET."+parked+".>",
				api+"CONSUMER.CREATE."+parked+".>",
				api+"CONSUMER.INFO."+parked+".>",
				api+"CONSUMER.MSG.NEXT."+parked+".>",
				api+"CONSUMER.UNPIN."+parked+".>",
				"$JS.ACK."+parked+".>",
				wire.ParkedSubjects(store),
			)
		case RoleAdmin:
			publish = append(publish,
				api+"STREAM.CREATE."+stream,
				api+"STREAM.UPDATE."+stream,
				api+"STREAM.DELETE."+stream,
				api+"STREAM.DELETE."+parked,
				api+"STREAM.DELETE."+kv,
				api+"STREAM.LIST",
				api+"STREAM.NAMES", // DeleteEventStore looks for partition streams
				api+"CONSUMER.INFO."+stream+".>",
				api+"CONSUMER.RESET."+stream+".>",
				api+"STREAM.INFO."+parked,
				api+"STREAM.PURGE."+parked,
				api+"CONSUMER.DELETE."+parked+".>",
				// Forget and PurgeEntity, and deleting the key bucket.
				api+"STREAM.DELETE."+keys,
				api+"STREAM.PURGE."+keys,
				api+"STREAM.PURGE."+kv,
				api+"STREAM.PURGE."+stream,
				"$KV."+wire.KeyBucket(store)+".>",
			)
		default:
			return nil, fmt.Errorf("%w: unknown role %q (one of %v)", ErrInvalidArgument, role, Roles())
		}
	}
	slices.Sort(publish)
	return &NATSPermissions{Publish: slices.Compact(publish), Subscribe: []string{"_INBOX.>"}}, nil
}

// String returns p as the permissions block of a user in a nats-server
// configuration file, ready to paste into its entry of an authorization
// users list or of an account's users.
func (p *NATSPermissions) String() string {
	var b strings.Builder
	list := func(name string, subjects []string) {
		fmt.Fprintf(&b, "  %s: {\n    allow: [\n", name)
		for _, s := range subjects {
			fmt.Fprintf(&b, "      %q\n", s)
		}
		b.WriteString("    ]\n  }\n")
	}
	b.WriteString("permissions: {\n")
	list("publish", p.Publish)
	list("subscribe", p.Subscribe)
	b.WriteString("}\n")
	return b.String()
}
