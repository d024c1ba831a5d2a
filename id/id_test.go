package id_test

import (
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/synadia-labs/rita/id"
)

var generators = map[string]id.ID{"NUID": id.NUID, "UUID": id.UUID}

func TestUnique(t *testing.T) {
	const n = 100_000
	for name, gen := range generators {
		t.Run(name, func(t *testing.T) {
			seen := make(map[string]struct{}, n)
			for range n {
				v := gen.New()
				if v == "" {
					t.Fatal("New returned an empty string")
				}
				if _, dup := seen[v]; dup {
					t.Fatalf("New returned %q twice", v)
				}
				seen[v] = struct{}{}
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	const workers, perWorker = 8, 2_000
	for name, gen := range generators {
		t.Run(name, func(t *testing.T) {
			results := make([][]string, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range perWorker {
						results[w] = append(results[w], gen.New())
					}
				}()
			}
			wg.Wait()
			seen := make(map[string]struct{}, workers*perWorker)
			for _, ids := range results {
				for _, v := range ids {
					if _, dup := seen[v]; dup {
						t.Fatalf("%q generated twice", v)
					}
					seen[v] = struct{}{}
				}
			}
		})
	}
}

func TestNUIDFormat(t *testing.T) {
	v := id.NUID.New()
	if len(v) != 22 {
		t.Errorf("NUID %q has length %d, want 22", v, len(v))
	}
	for _, c := range v {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			t.Errorf("NUID %q has non-base-62 character %q", v, c)
		}
	}
}

func TestUUIDFormat(t *testing.T) {
	for range 100 {
		v := id.UUID.New()
		u, err := uuid.Parse(v)
		if err != nil {
			t.Fatalf("uuid.Parse(%q): %v", v, err)
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Errorf("%q is version %d variant %v, want 4 RFC4122", v, u.Version(), u.Variant())
		}
		if u.String() != v {
			t.Errorf("%q is not in canonical form %q", v, u.String())
		}
	}
}
