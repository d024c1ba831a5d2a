package rita

import (
	"errors"
	"strings"
	"testing"
	"unicode"
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

// Entities, event types and store names are accepted only when they make
// valid literal subject tokens, and refused with the sentinel that says so.
func FuzzEntity(f *testing.F) {
	for _, s := range []string{"order.7", "order", "order.", ".7", "order.7.x", "order.*", "order.>", "a b.c",
		"order.\x00", "ørder.7", "\xff.1", "", "orders", "ES_x", "a/b", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := validateEntity(s); err != nil {
			if !isSentinel(err, ErrEventEntityRequired, ErrEventEntityInvalid) {
				t.Fatalf("validateEntity(%q): %v wraps no entity sentinel", s, err)
			}
		} else {
			toks := strings.Split(eventSubject("store", s, "placed"), ".")
			if len(toks) != 5 || !literalSubjectToken(toks[2]) || !literalSubjectToken(toks[3]) {
				t.Fatalf("entity %q accepted, but makes subject tokens %q", s, toks)
			}
		}
		if err := validateEventType(s); err != nil {
			if !isSentinel(err, ErrEventTypeRequired, ErrEventTypeInvalid) {
				t.Fatalf("validateEventType(%q): %v wraps no type sentinel", s, err)
			}
		} else if !literalSubjectToken(s) {
			t.Fatalf("event type %q accepted, but is no literal subject token", s)
		}
		if err := validateStoreName(s); err != nil {
			if !isSentinel(err, ErrEventStoreNameRequired, ErrEventStoreNameInvalid) {
				t.Fatalf("validateStoreName(%q): %v wraps no store name sentinel", s, err)
			}
		} else if !literalSubjectToken(s) || strings.ContainsAny(s, "/\\") || len(streamName(s)) > 255 {
			t.Fatalf("store name %q accepted, but cannot name a stream and a subject token", s)
		}
	})
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
			p, err := filterSubject("store", flt)
			if err != nil {
				valid = false
				if !isSentinel(err, ErrFilterInvalid, ErrSubjectTooManyTokens) {
					t.Fatalf("filterSubject(%q): %v wraps no filter sentinel", flt, err)
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
		subjects, exact, err := filterSubjects("store", filters)
		if !valid {
			if err == nil || !isSentinel(err, ErrFilterInvalid, ErrSubjectTooManyTokens) {
				t.Fatalf("filterSubjects(%q) = %v, %v; want a filter error", filters, subjects, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("filterSubjects(%q): %v", filters, err)
		}
		// An event subject matches a filter if and only if the consumer
		// would deliver it and, when not exact, the match patterns keep it.
		parts := strings.Split(event, ".")
		if len(parts) != 3 || !literalSubjectToken(parts[0]) || !literalSubjectToken(parts[1]) || !literalSubjectToken(parts[2]) {
			return
		}
		subj := eventSubject("store", parts[0]+"."+parts[1], parts[2])
		want := false
		for _, flt := range filters {
			p, _ := filterSubject("store", flt)
			want = want || subjectMatches(p, subj)
		}
		got := matchesAny(subjects, subj)
		if exact {
			for i := range subjects {
				for j := i + 1; j < len(subjects); j++ {
					if subjectsOverlap(subjects[i], subjects[j]) {
						t.Fatalf("exact subjects %q overlap", subjects)
					}
				}
			}
		} else {
			patterns := make([]string, len(filters))
			for i, flt := range filters {
				patterns[i], _ = filterSubject("store", flt)
			}
			got = got && matchesAny(patterns, subj)
		}
		if got != want {
			t.Fatalf("filters %q select %q: %v, consumer subjects %q (exact %v): %v", filters, subj, want, subjects, exact, got)
		}
	})
}
