package jsapi

import "testing"

func TestParseVersion(t *testing.T) {
	oldest := Version{2, 14, 4}
	tests := []struct {
		in     string
		want   Version
		ok     bool
		before bool // before oldest
	}{
		{"2.15.2", Version{2, 15, 2}, true, false},
		{"v2.14.4", Version{2, 14, 4}, true, false},
		{"2.14.3", Version{2, 14, 3}, true, true},
		{"2.12.0-beta.1", Version{2, 12, 0}, true, true},
		{"3.0.0", Version{3, 0, 0}, true, false},
		{"", Version{}, false, false},
		{"2.x.1", Version{}, false, false},
		{"2.14", Version{}, false, false},
	}
	for _, tt := range tests {
		got, ok := ParseVersion(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && got.Before(oldest) != tt.before {
			t.Errorf("%v.Before(%v) = %v; want %v", got, oldest, !tt.before, tt.before)
		}
		if ok && OlderThan(tt.in, oldest) != tt.before {
			t.Errorf("OlderThan(%q, %v) = %v; want %v", tt.in, oldest, !tt.before, tt.before)
		}
	}
}
