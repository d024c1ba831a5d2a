package durable

import (
	"fmt"
	"slices"
	"testing"
)

// assign: every partition has an owner, the counts differ by at most one,
// the order of the members does not matter, and a member joining moves few
// partitions.
func TestAssign(t *testing.T) {
	for _, n := range []int{1, 4, 8, 16, 64} {
		for m := 1; m <= 9; m++ {
			var members []string
			for i := range m {
				members = append(members, fmt.Sprintf("member-%d", i))
			}
			owner := assign(n, members)
			count := map[string]int{}
			for k, id := range owner {
				if id == "" {
					t.Fatalf("n=%d m=%d: partition %d has no owner", n, m, k)
				}
				count[id]++
			}
			lo, hi := n, 0
			for _, id := range members {
				lo, hi = min(lo, count[id]), max(hi, count[id])
			}
			if n >= m && hi-lo > 1 || n < m && hi > 1 {
				t.Fatalf("n=%d m=%d: unbalanced %v", n, m, count)
			}
			rev := slices.Clone(members)
			slices.Reverse(rev)
			if !slices.Equal(assign(n, rev), owner) {
				t.Fatalf("n=%d m=%d: depends on the order of the members", n, m)
			}
			// A member joins: count the partitions that move.
			more := assign(n, append(slices.Clone(members), "joiner"))
			moved := 0
			for k := range owner {
				if owner[k] != more[k] {
					moved++
				}
			}
			if n == 64 {
				t.Logf("n=%d: %d members → %d: %d partitions moved (%d to the joiner)", n, m, m+1, moved, countOf(more, "joiner"))
			}
		}
	}
}

func countOf(owner []string, id string) int {
	n := 0
	for _, o := range owner {
		if o == id {
			n++
		}
	}
	return n
}
