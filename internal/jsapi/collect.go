package jsapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Collector sends several requests on one inbox and hands out their answers
// as they arrive, each with the tag of its request. A request whose answer
// is a stream of messages (a direct batch get) has them all under one tag.
// Answers are queued without limit: callers ask for bounded batches.
//
// A Collector is used from one goroutine.
type Collector struct {
	nc    *nats.Conn
	ctx   context.Context
	sub   *nats.Subscription
	inbox string
	idle  time.Duration
	timer *time.Timer

	mu    sync.Mutex
	queue []*nats.Msg
	head  int
	ready chan struct{} // signalled when a message is queued
}

// NewCollector subscribes to a new inbox. An answer stays out for at most
// idle (FirstAttemptTimeout when 0): Next then fails with nats.ErrTimeout.
func NewCollector(ctx context.Context, nc *nats.Conn, idle time.Duration) (*Collector, error) {
	if idle <= 0 {
		idle = FirstAttemptTimeout
	}
	c := &Collector{nc: nc, ctx: ctx, inbox: nc.NewInbox(), idle: idle, ready: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(c.inbox+".*", c.receive)
	if err != nil {
		return nil, err
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	c.sub = sub
	return c, nil
}

func (c *Collector) receive(msg *nats.Msg) {
	c.mu.Lock()
	c.queue = append(c.queue, msg)
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// Close unsubscribes.
func (c *Collector) Close() {
	_ = c.sub.Unsubscribe()
	if c.timer != nil {
		c.timer.Stop()
	}
}

// Request sends body to subject; its answers come with tag (one token).
func (c *Collector) Request(subject, tag string, body []byte) error {
	return c.nc.PublishRequest(subject, c.inbox+"."+tag, body)
}

// Next returns the next answer and its tag. An answer that says its
// request found no responder (a 503 status) is returned with
// nats.ErrNoResponders; none within the idle time, or the context's end,
// with nats.ErrTimeout or the context's error and no message.
func (c *Collector) Next() (string, *nats.Msg, error) {
	for {
		c.mu.Lock()
		if c.head < len(c.queue) {
			msg := c.queue[c.head]
			c.queue[c.head] = nil
			if c.head++; c.head == len(c.queue) {
				c.queue, c.head = c.queue[:0], 0
			}
			c.mu.Unlock()
			tag := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
			if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
				return tag, msg, nats.ErrNoResponders
			}
			return tag, msg, nil
		}
		c.mu.Unlock()
		if c.timer == nil {
			c.timer = time.NewTimer(c.idle)
		} else {
			c.timer.Reset(c.idle)
		}
		select {
		case <-c.ready:
		case <-c.ctx.Done():
			return "", nil, c.ctx.Err()
		case <-c.timer.C:
			return "", nil, nats.ErrTimeout
		}
	}
}

// Get sends a batch direct get (body asks for several messages) to subject
// and returns the messages of its answer, up to the end-of-batch status.
// Answers of earlier requests are skipped. A get of one message is
// answered by the message alone, with no end-of-batch status: use GetOne.
func (c *Collector) Get(subject, tag string, body []byte) ([]Msg, error) {
	if err := c.Request(subject, tag, body); err != nil {
		return nil, err
	}
	var msgs []Msg
	for {
		at, msg, err := c.Next()
		if err != nil && at == tag || err != nil && msg == nil {
			return nil, err
		}
		if at != tag {
			continue
		}
		m, err := ParseOne(msg)
		if err != nil || m == nil {
			return msgs, err
		}
		msgs = append(msgs, *m)
	}
}

// GetOne sends a direct get of one message (by sequence, say) to subject
// and returns the message, or nil if there is none. Answers of earlier
// requests are skipped.
func (c *Collector) GetOne(subject, tag string, body []byte) (*Msg, error) {
	if err := c.Request(subject, tag, body); err != nil {
		return nil, err
	}
	answers, err := c.Gather(tag)
	if err != nil {
		return nil, err
	}
	return ParseOne(answers[tag])
}

// Gather reads answers until one has come for each of tags (the first of a
// tag; later ones of an earlier request are skipped) and returns them by
// tag. An answer that found no responder is returned as it is (the parsers
// of this package turn it into nats.ErrNoResponders). It fails with the
// first failure to get an answer at all, naming the request.
func (c *Collector) Gather(tags ...string) (map[string]*nats.Msg, error) {
	got := make(map[string]*nats.Msg, len(tags))
	for len(got) < len(tags) {
		tag, msg, err := c.Next()
		if !wanted(tags, tag) {
			continue
		}
		if msg != nil {
			err = nil
		}
		if err != nil {
			if tag == "" {
				tag = strings.Join(missing(tags, got), ", ")
			}
			return got, fmt.Errorf("request %s: %w", tag, err)
		}
		if _, dup := got[tag]; !dup {
			got[tag] = msg
		}
	}
	return got, nil
}

func wanted(tags []string, tag string) bool {
	if tag == "" {
		return true // a failure of the collector itself
	}
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

func missing(tags []string, got map[string]*nats.Msg) []string {
	var out []string
	for _, t := range tags {
		if _, ok := got[t]; !ok {
			out = append(out, t)
		}
	}
	return out
}
