package rita

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Subjects of a store. Every event of store NAME is published on
//
//	$ES.NAME.<entity-type>.<entity-id>.<event-type>
//
// and the stream ES_NAME captures $ES.NAME.>. Filters and expectation patterns
// name a part of that space in one to three tokens; the tokens they leave out
// match anything. Each part is one token, so an event type has no dots.

const (
	streamPrefix  = "ES_"
	subjectPrefix = "$ES."

	// maxStoreNameLen keeps "ES_"+name within JetStream's 255-byte limit
	// on stream names.
	maxStoreNameLen = 255 - len(streamPrefix)
)

func streamName(store string) string { return streamPrefix + store }

func storeSubjects(store string) string { return subjectPrefix + store + ".>" }

// validateStoreName checks that name can be used both as part of a JetStream
// stream name and as a subject token.
func validateStoreName(name string) error {
	if name == "" {
		return ErrEventStoreNameRequired
	}
	if len(name) > maxStoreNameLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrEventStoreNameInvalid, len(name), maxStoreNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrEventStoreNameInvalid, name)
	}
	for _, r := range name {
		switch {
		case r == '.', r == '*', r == '>', r == '/', r == '\\':
			return fmt.Errorf("%w: %q contains %q", ErrEventStoreNameInvalid, name, r)
		case unicode.IsSpace(r), unicode.IsControl(r):
			return fmt.Errorf("%w: %q contains whitespace or a control character", ErrEventStoreNameInvalid, name)
		}
	}
	return nil
}

// validLiteralToken reports whether tok can stand as one token of a subject
// that is published to: non-empty, no wildcards, no whitespace or control
// characters.
func validLiteralToken(tok string) bool {
	if tok == "" || !utf8.ValidString(tok) {
		return false
	}
	for _, r := range tok {
		if r == '*' || r == '>' || r == '.' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// validateEntity checks that entity is exactly "<type>.<id>".
func validateEntity(entity string) error {
	if entity == "" {
		return ErrEventEntityRequired
	}
	typ, id, ok := strings.Cut(entity, ".")
	if !ok || !validLiteralToken(typ) || !validLiteralToken(id) {
		return fmt.Errorf("%w: %q must be two tokens <type>.<id> without wildcards or whitespace", ErrEventEntityInvalid, entity)
	}
	return nil
}

// validateEventType checks that typ can end an event subject: one literal
// token, so that "<entity-type>.<entity-id>.*" matches every event of an
// entity.
func validateEventType(typ string) error {
	if typ == "" {
		return ErrEventTypeRequired
	}
	if !validLiteralToken(typ) {
		return fmt.Errorf("%w: %q must be one subject token: no dots, wildcards or whitespace", ErrEventTypeInvalid, typ)
	}
	return nil
}

// eventSubject is the subject an event of entity and type is published on.
func eventSubject(store, entity, typ string) string {
	return subjectPrefix + store + "." + entity + "." + typ
}

// entityPattern matches every event of one entity.
func entityPattern(store, entity string) string {
	return subjectPrefix + store + "." + entity + ".*"
}

// filterSubject turns a filter of one to three tokens into the subject
// pattern it stands for. Missing trailing tokens mean "*": "order" becomes
// $ES.NAME.order.*.* and "order.1" becomes $ES.NAME.order.1.*. A token may be
// the wildcard "*"; the last one may also be ">".
func filterSubject(store, filter string) (string, error) {
	if filter == "" {
		return "", fmt.Errorf("%w: empty filter", ErrFilterInvalid)
	}
	toks := strings.Split(filter, ".")
	if len(toks) > 3 {
		return "", fmt.Errorf("%w: %q", ErrSubjectTooManyTokens, filter)
	}
	for i, tok := range toks {
		switch {
		case tok == "*":
		case tok == ">":
			if i != len(toks)-1 {
				return "", fmt.Errorf("%w: %q: '>' may only be the last token", ErrFilterInvalid, filter)
			}
		case !validLiteralToken(tok):
			return "", fmt.Errorf("%w: %q: token %q must be '*' or free of wildcards and whitespace", ErrFilterInvalid, filter, tok)
		}
	}
	prefix := subjectPrefix + store + "."
	switch {
	case toks[len(toks)-1] == ">":
		return prefix + filter, nil
	case len(toks) == 1:
		return prefix + filter + ".*.*", nil
	case len(toks) == 2:
		return prefix + filter + ".*", nil
	default:
		return prefix + filter, nil
	}
}

// filterSubjects turns filters into the subject patterns of a consumer. The
// server refuses a consumer whose filters overlap, so patterns covered by
// another are dropped; if two still overlap, the consumer reads the whole
// store and exact is false: the caller must then match each message's
// subject against the patterns itself. No filters means the whole store.
func filterSubjects(store string, filters []string) (patterns []string, exact bool, err error) {
	all := storeSubjects(store)
	if len(filters) == 0 {
		return []string{all}, true, nil
	}
	subs := make([]string, 0, len(filters))
	for _, f := range filters {
		s, err := filterSubject(store, f)
		if err != nil {
			return nil, false, err
		}
		subs = append(subs, s)
	}
	kept := subs[:0]
	for i, s := range subs {
		covered := false
		for j, o := range subs {
			if i == j {
				continue
			}
			// Drop s if another pattern covers it; of two equal patterns keep the first.
			if subjectCovers(o, s) && (!subjectCovers(s, o) || j < i) {
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
			if subjectsOverlap(kept[i], kept[j]) {
				return kept, false, nil
			}
		}
	}
	return kept, true, nil
}

// subjectMatches reports whether the literal subject subj matches pattern.
func subjectMatches(pattern, subj string) bool {
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

// subjectCovers reports whether every subject matching b also matches a.
func subjectCovers(a, b string) bool {
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

// subjectsOverlap reports whether some subject matches both a and b.
func subjectsOverlap(a, b string) bool {
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
