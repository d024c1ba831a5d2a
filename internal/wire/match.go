package wire

import "strings"

// Matches reports whether the literal subject subj matches pattern.
func Matches(pattern, subj string) bool {
	for {
		ptok, prest, pmore := strings.Cut(pattern, ".")
		stok, srest, smore := strings.Cut(subj, ".")
		if ptok == ">" {
			return true
		}
		if ptok != "*" && ptok != stok {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subj = prest, srest
	}
}

// MatchesAny reports whether subj matches one of patterns.
func MatchesAny(patterns []string, subj string) bool {
	for _, p := range patterns {
		if Matches(p, subj) {
			return true
		}
	}
	return false
}

// Covers reports whether every subject matching b also matches a.
func Covers(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i, tok := range at {
		if tok == ">" {
			return len(bt) > i
		}
		if i >= len(bt) {
			return false
		}
		switch {
		case bt[i] == ">":
			return false
		case tok == "*":
		case tok != bt[i] || bt[i] == "*":
			return false
		}
	}
	return len(at) == len(bt)
}

// Overlap reports whether some subject matches both a and b.
func Overlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(at) || i == len(bt) {
			return len(at) == len(bt)
		}
		if at[i] == ">" || bt[i] == ">" {
			return true
		}
		if at[i] != "*" && bt[i] != "*" && at[i] != bt[i] {
			return false
		}
	}
}

// ConsumerSubjects turns subject patterns into the filter subjects of one
// consumer. The server refuses a consumer whose filters overlap, so a
// pattern covered by another is dropped (of two equal ones the first is
// kept). If two of those left still overlap, exact is false: the consumer
// must then read wider (the whole store) and the reader match each message
// against kept itself.
func ConsumerSubjects(patterns []string) (kept []string, exact bool) {
	kept = make([]string, 0, len(patterns))
	for i, s := range patterns {
		covered := false
		for j, o := range patterns {
			if i != j && Covers(o, s) && (!Covers(s, o) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, s)
		}
	}
	for i := range kept {
		for j := i + 1; j < len(kept); j++ {
			if Overlap(kept[i], kept[j]) {
				return kept, false
			}
		}
	}
	return kept, true
}
