package wire

import "testing"

func TestEscapeToken(t *testing.T) {
	seen := map[string]string{}
	for _, in := range []string{"orders", "a-b", "a_b", "a_5Fb", "a.b", "ä", "x y", "x_20y", "A9"} {
		out := EscapeToken(in)
		for i := 0; i < len(out); i++ {
			if !isPlainByte(out[i]) && out[i] != '_' {
				t.Fatalf("EscapeToken(%q) = %q holds %q", in, out, out[i])
			}
		}
		if prev, dup := seen[out]; dup {
			t.Fatalf("EscapeToken(%q) = EscapeToken(%q) = %q", in, prev, out)
		}
		seen[out] = in
	}
	// The key of a snapshot is its entity's two tokens and the model's
	// name, each escaped, under the store's bucket.
	if got := SnapshotSubject("s", "order.x y", "default"); got != "$KV.rita-snapshots-s.order.x_20y.default" {
		t.Fatalf("SnapshotSubject = %q", got)
	}
	if got := SnapshotBucket("a b"); got != "rita-snapshots-a_20b" {
		t.Fatalf("SnapshotBucket = %q", got)
	}
}

func TestUnescapeToken(t *testing.T) {
	for _, in := range []string{"orders", "a-b", "a_b", "a_5Fb", "a.b", "ä", "x y", "", "_"} {
		got, ok := UnescapeToken(EscapeToken(in))
		if !ok || got != in {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"_", "_4", "a_zz", "_4g"} {
		if got, ok := UnescapeToken(bad); ok {
			t.Fatalf("UnescapeToken(%q) = %q, true; want false", bad, got)
		}
	}
	entity, name, ok := SplitSnapshotSubject("s", SnapshotSubject("s", "order.x y", "default"))
	if !ok || entity != "order.x y" || name != "default" {
		t.Fatalf("SplitSnapshotSubject = %q, %q, %v", entity, name, ok)
	}
}
