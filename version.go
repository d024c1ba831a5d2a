package rita

import (
	"fmt"
	"strconv"
	"strings"
)

// minBatchServer is the oldest nats-server whose atomic batches check the
// expectations of several entities correctly.
var minBatchServer = [3]int{2, 14, 4}

// checkBatchServer refuses an atomic batch when the connected server is
// known to be older than minBatchServer. An unknown version (not connected
// yet, or one that does not parse) is let through: the server then answers
// for itself.
func (m *Manager) checkBatchServer() error {
	v := m.nc.ConnectedServerVersion()
	got, ok := parseServerVersion(v)
	if !ok || !versionBefore(got, minBatchServer) {
		return nil
	}
	return fmt.Errorf("%w: appending several events as one atomic batch needs nats-server v%d.%d.%d or newer, connected to v%s",
		ErrServerUnsupported, minBatchServer[0], minBatchServer[1], minBatchServer[2], v)
}

// parseServerVersion parses "2.15.2" or "v2.15.2-beta.1" into its numbers.
func parseServerVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
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

func versionBefore(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
