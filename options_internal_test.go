package rita

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/synadia-labs/rita/internal/wire"
)

// isSentinel reports whether err wraps one of targets.
func isSentinel(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// literalSubjectToken reports whether tok can be a token of a subject that
// is published to.
func literalSubjectToken(tok string) bool {
	return tok != "" && !strings.ContainsAny(tok, "*>.") && strings.IndexFunc(tok, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) < 0
}

// Filters are turned into subject patterns of the store's five tokens, or
// refused with ErrFilterInvalid or ErrSubjectTooManyTokens; a set of them
// into consumer subjects that select the same events.
func FuzzFilter(f *testing.F) {
	for _, s := range [][3]string{
		{"order", "order.7", "order.7.placed"},
		{"*", "*.*", "*.*.*"},
		{">", "order.>", "*.7"},
		{"order.*.placed", "*.*.placed", "order.7"},
		{"", "order..placed", "a.b.c.d"},
		{"order.>.x", "or der", "order.\t"},
		{"order.7.placed", "order.7.shipped", "x"},
	} {
		f.Add(s[0], s[1], s[2], "order.7.placed")
	}
	f.Fuzz(func(t *testing.T, f1, f2, f3, event string) {
		filters := []string{f1, f2, f3}
		valid := true
		for _, flt := range filters {
			p, err := filterPattern("store", flt)
			if err != nil {
				valid = false
				if !isSentinel(err, ErrFilterInvalid, ErrSubjectTooManyTokens) {
					t.Fatalf("filterPattern(%q): %v wraps no filter sentinel", flt, err)
				}
				continue
			}
			toks := strings.Split(p, ".")
			if !strings.HasPrefix(p, "$ES.store.") || len(toks) > 5 || len(toks) < 3 ||
				(len(toks) < 5 && toks[len(toks)-1] != ">") {
				t.Fatalf("filter %q makes pattern %q", flt, p)
			}
			for i, tok := range toks[2:] {
				if tok != "*" && !(tok == ">" && i == len(toks)-3) && !literalSubjectToken(tok) {
					t.Fatalf("filter %q makes pattern %q with token %q", flt, p, tok)
				}
			}
		}
		patterns := make([]string, len(filters))
		var err error
		for i, flt := range filters {
			if patterns[i], err = filterPattern("store", flt); err != nil {
				break
			}
		}
		var subjects []string
		var exact bool
		if err == nil {
			subjects, exact = wire.ConsumerSubjects(patterns)
		}
		if !valid {
			if err == nil || !isSentinel(err, ErrFilterInvalid, ErrSubjectTooManyTokens) {
				t.Fatalf("filterPattern of %q = %v, %v; want a filter error", filters, subjects, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("filterPattern of %q: %v", filters, err)
		}
		// An event subject matches a filter if and only if the consumer
		// would deliver it and, when not exact, the match patterns keep it.
		parts := strings.Split(event, ".")
		if len(parts) != 3 || !literalSubjectToken(parts[0]) || !literalSubjectToken(parts[1]) || !literalSubjectToken(parts[2]) {
			return
		}
		subj := wire.EventSubject("store", parts[0]+"."+parts[1], parts[2])
		want := false
		for _, flt := range filters {
			p, _ := filterPattern("store", flt)
			want = want || wire.Matches(p, subj)
		}
		got := wire.MatchesAny(subjects, subj)
		if exact {
			for i := range subjects {
				for j := i + 1; j < len(subjects); j++ {
					if wire.Overlap(subjects[i], subjects[j]) {
						t.Fatalf("exact subjects %q overlap", subjects)
					}
				}
			}
		} else {
			got = got && wire.MatchesAny(patterns, subj)
		}
		if got != want {
			t.Fatalf("filters %q select %q: %v, consumer subjects %q (exact %v): %v", filters, subj, want, subjects, exact, got)
		}
	})
}
