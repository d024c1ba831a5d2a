package jsapi

import (
	"strconv"
	"strings"
)

// Version is a nats-server version: major, minor, patch.
type Version [3]int

func (v Version) String() string {
	return strconv.Itoa(v[0]) + "." + strconv.Itoa(v[1]) + "." + strconv.Itoa(v[2])
}

// Before reports whether v is older than w.
func (v Version) Before(w Version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// ParseVersion parses "2.15.2" or "v2.15.2-beta.1" into its numbers.
func ParseVersion(s string) (Version, bool) {
	var out Version
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// OlderThan reports whether the server behind version string s is known to
// be older than min. A version that does not parse (not connected yet, say)
// is not known to be older.
func OlderThan(s string, min Version) bool {
	v, ok := ParseVersion(s)
	return ok && v.Before(min)
}
