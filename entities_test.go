package rita_test

import "testing"

// EntityCount counts the entities with events, up to a limit of subjects.
func TestEntityCount(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, "count")
	n, ok, err := s.EntityCount(testCtx(t), 100)
	requireNoError(t, err)
	if n != 0 || !ok {
		t.Fatalf("EntityCount of an empty store = %d, %v", n, ok)
	}
	appendEach(t, s, rawEvent("order.1", "placed", "x"), rawEvent("order.1", "shipped", "x"), rawEvent("order.2", "placed", "x"), rawEvent("user.1", "joined", "x"))
	n, ok, err = s.EntityCount(testCtx(t), 100)
	requireNoError(t, err)
	if n != 3 || !ok {
		t.Fatalf("EntityCount = %d, %v, want 3", n, ok)
	}
	n, ok, err = s.EntityCount(testCtx(t), 3)
	requireNoError(t, err)
	if ok || n != 0 {
		t.Fatalf("EntityCount over the limit = %d, %v, want not counted", n, ok)
	}
}
