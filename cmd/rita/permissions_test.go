package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/synadia-labs/rita"
)

// TestPermissions checks rita permissions against the library's
// Permissions: the same blocks, by role, as text and as JSON.
func TestPermissions(t *testing.T) {
	e := newEnv(t)
	want, err := rita.Permissions("bank", rita.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	out := e.ok(t, "permissions", "bank", "writer").stdout
	if !strings.HasPrefix(out, "# [writer] of store bank\n") || !strings.Contains(out, want.String()) {
		t.Fatalf("rita permissions bank writer:\n%s\nwant the block\n%s", out, want)
	}
	all := e.ok(t, "permissions", "bank").stdout
	for _, r := range rita.Roles() {
		p, err := rita.Permissions("bank", r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(all, "# ["+string(r)+"] of store bank\n"+p.String()) {
			t.Errorf("rita permissions bank lacks the %s block", r)
		}
	}
	type block struct {
		Roles     []string `json:"roles"`
		Publish   []string `json:"publish"`
		Subscribe []string `json:"subscribe"`
	}
	both, err := rita.Permissions("bank", rita.RoleReader, rita.RoleConsumer)
	if err != nil {
		t.Fatal(err)
	}
	got := jsonLines[block](t, e.ok(t, "permissions", "bank", "reader", "consumer", "--json").stdout)
	if len(got) != 1 || !slices.Equal(got[0].Publish, both.Publish) || !slices.Equal(got[0].Subscribe, both.Subscribe) {
		t.Fatalf("rita permissions --json: %+v, want %+v", got, both)
	}
	e.fails(t, exitUsage, "permissions", "bank", "janitor")
}
