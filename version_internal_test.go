package rita

import "testing"

func TestParseServerVersion(t *testing.T) {
	tests := []struct {
		in     string
		want   [3]int
		ok     bool
		before bool // before minBatchServer
	}{
		{"2.15.2", [3]int{2, 15, 2}, true, false},
		{"v2.14.4", [3]int{2, 14, 4}, true, false},
		{"2.14.3", [3]int{2, 14, 3}, true, true},
		{"2.12.0-beta.1", [3]int{2, 12, 0}, true, true},
		{"3.0.0", [3]int{3, 0, 0}, true, false},
		{"", [3]int{}, false, false},
		{"2.x.1", [3]int{}, false, false},
		{"2.14", [3]int{}, false, false},
	}
	for _, tt := range tests {
		got, ok := parseServerVersion(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseServerVersion(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && versionBefore(got, minBatchServer) != tt.before {
			t.Errorf("versionBefore(%v, %v) = %v; want %v", got, minBatchServer, !tt.before, tt.before)
		}
	}
}
