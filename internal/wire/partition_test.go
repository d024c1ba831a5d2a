package wire

import (
	"strings"
	"testing"
)

// The transforms of a partition stream: sources that do not overlap, and
// every transform that can take an event of an entity hashing the same
// tokens of it, so that an entity has one partition.
func TestPartitionTransforms(t *testing.T) {
	cases := []struct {
		patterns []string
		sources  []string
		exact    bool
	}{
		{nil, []string{"$ES.s.*.*.*"}, true},
		{[]string{"$ES.s.>"}, []string{"$ES.s.*.*.*"}, true},
		{[]string{"$ES.s.order.*.*"}, []string{"$ES.s.order.*.*"}, true},
		{[]string{"$ES.s.order.>"}, []string{"$ES.s.order.*.*"}, true},
		{[]string{"$ES.s.order.*.placed", "$ES.s.order.*.shipped"}, []string{"$ES.s.order.*.placed", "$ES.s.order.*.shipped"}, true},
		{[]string{"$ES.s.order.*.placed", "$ES.s.order.*.*"}, []string{"$ES.s.order.*.*"}, false},
		{[]string{"$ES.s.order.7.*"}, []string{"$ES.s.order.*.*"}, false},
		{[]string{"$ES.s.*.*.placed", "$ES.s.user.*.*"}, []string{"$ES.s.*.*.*"}, false},
		{[]string{"$ES.s.*.*.placed", "$ES.s.order.*.placed"}, []string{"$ES.s.*.*.placed"}, false},
	}
	for _, c := range cases {
		got, exact := PartitionTransforms("s", 8, c.patterns)
		var sources []string
		for _, tr := range got {
			sources = append(sources, tr.Source)
		}
		if strings.Join(sources, " ") != strings.Join(c.sources, " ") {
			t.Errorf("%v: sources %v, want %v", c.patterns, sources, c.sources)
		}
		if exact != c.exact {
			t.Errorf("%v: exact %v, want %v", c.patterns, exact, c.exact)
		}
		hashes := map[string]bool{}
		for i, a := range got {
			hashes[a.Destination[:strings.Index(a.Destination, "}}")]] = true
			for _, b := range got[i+1:] {
				if overlapping(a.Source, b.Source) {
					t.Errorf("%v: sources %s and %s overlap", c.patterns, a.Source, b.Source)
				}
			}
		}
		if len(hashes) != 1 {
			t.Errorf("%v: transforms hash different tokens: %v", c.patterns, got)
		}
	}
}

// overlapping reports whether two patterns of the same length can match one
// subject.
func overlapping(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := range at {
		if at[i] != "*" && bt[i] != "*" && at[i] != bt[i] {
			return false
		}
	}
	return true
}

func TestStoreSubject(t *testing.T) {
	got, ok := StoreSubject("s", "$ES_PART.3.order.7.placed")
	if !ok || got != "$ES.s.order.7.placed" {
		t.Fatalf("StoreSubject: %q %v", got, ok)
	}
	if _, ok := StoreSubject("s", "$ES.s.order.7.placed"); ok {
		t.Fatal("StoreSubject took a store subject")
	}
}
