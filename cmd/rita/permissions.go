package main

import (
	"context"
	"fmt"

	"github.com/synadia-labs/rita"
)

func (a *cli) permissionCommands() {
	p := a.command(a.app, "permissions", `Print the least NATS permissions a user needs to play roles on a store, as a block for a server configuration (needs no connection).

Roles: reader (Evolve, Watch), writer (Append, Decide), consumer (durable Watch, React, Project, parked events), admin (create, update, delete, rebuild). Without a role, every role's block.

Example:
  rita permissions bank writer
  rita permissions bank reader consumer --json`, a.permissions)
	p.Arg("store", "The store").Required().StringVar(&a.args.store)
	p.Arg("roles", "Roles: reader, writer, consumer, admin").StringsVar(&a.args.roles)
}

func (a *cli) permissions(context.Context) error {
	roles := make([]rita.Role, 0, len(a.args.roles))
	for _, r := range a.args.roles {
		roles = append(roles, rita.Role(r))
	}
	each := [][]rita.Role{roles}
	if len(roles) == 0 {
		each = nil
		for _, r := range rita.Roles() {
			each = append(each, []rita.Role{r})
		}
	}
	for i, rs := range each {
		perms, err := rita.Permissions(a.args.store, rs...)
		if err != nil {
			return withCode(exitUsage, err)
		}
		if a.json {
			if err := jsonLine(a.stdout, map[string]any{"store": a.args.store, "roles": rs, "publish": perms.Publish, "subscribe": perms.Subscribe}); err != nil {
				return err
			}
			continue
		}
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintf(a.stdout, "# %v of store %s\n%s", rs, a.args.store, perms)
	}
	return nil
}
