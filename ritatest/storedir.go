package ritatest

import (
	"os"
	"testing"
	"time"
)

// storeDir makes a directory for a server's JetStream store that is removed
// when t ends, after the server has shut down (cleanups run last-in,
// first-out, and this one is registered before the server's).
//
// It is not t.TempDir: a file store may still be closing files for a moment
// after its server has shut down, and t.TempDir fails the test when its
// removal finds the directory not empty. This removal tries again for a
// while and then leaves the directory to the system.
func storeDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ritatest-*")
	if err != nil {
		t.Fatalf("ritatest: store directory: %v", err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for os.RemoveAll(dir) != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // a back-off between removals, not synchronisation
		}
	})
	return dir
}
