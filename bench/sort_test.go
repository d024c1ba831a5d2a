package bench

import (
	"slices"

	"github.com/nats-io/nats.go"
)

// sortMsgs sorts msgs by the sequence seqOf gives.
func sortMsgs(msgs []*nats.Msg, seqOf func(*nats.Msg) uint64) {
	slices.SortFunc(msgs, func(a, b *nats.Msg) int {
		x, y := seqOf(a), seqOf(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
}
