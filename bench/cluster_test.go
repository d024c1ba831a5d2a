package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita/ritatest"
)

// Replicated stores: the pairs again on a JetStream cluster of three
// embedded servers on loopback (ritatest.NewCluster), every store with
// Replicas: 3, the library and the raw side on the same cluster.
//
// Where the client sits against the stream leader decides a publish's path
// (client -> its server -> the leader -> a quorum -> back), so it is fixed:
// clients connect to the first server, and every store's stream leader is
// kept off it (moved by a step down when it was elected there), so both
// sides of every pair talk to a follower that forwards to the leader, as two
// clients in three do in a cluster of three.

// envReplicated set to 0 leaves the cluster out.
const envReplicated = "RITA_BENCH_R3"

var replicatedOnce struct {
	once sync.Once
	be   *backend
	err  error
}

// backends returns the deployments the pairs run on: the single server and,
// unless RITA_BENCH_R3=0, the three-node cluster, started on first use and
// kept until the process ends.
func backends(b testing.TB) []*backend {
	b.Helper()
	if os.Getenv(envReplicated) == "0" {
		return []*backend{the}
	}
	return []*backend{the, replicated(b)}
}

// replicated returns the three-node cluster, starting it on first use.
func replicated(b testing.TB) *backend {
	b.Helper()
	r := &replicatedOnce
	r.once.Do(func() {
		pt := &processTB{}
		cleanups = append(cleanups, pt.cleanup)
		r.be, r.err = pt.run(func() *backend {
			c := ritatest.NewCluster(pt, 3)
			url := c.Servers[0].ClientURL()
			nc, err := nats.Connect(url)
			if err != nil {
				pt.Fatalf("connect: %v", err)
			}
			pt.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				pt.Fatalf("jetstream: %v", err)
			}
			return &backend{
				prefix:   "replicas=3/",
				replicas: 3,
				url:      url,
				nc:       nc,
				js:       js,
				cluster:  c,
				avoid:    c.Servers[0].Name(),
				fixtures: map[string]*fixtureOnce{},
			}
		})
	})
	if r.err != nil {
		b.Fatalf("cluster: %v", r.err)
	}
	return r.be
}

// placeLeader moves the leader of the stream of store name off be.avoid,
// the server the clients connect to, and waits until every replica is
// current. It does nothing on the single server.
func (be *backend) placeLeader(ctx context.Context, name string) error {
	if be.cluster == nil {
		return nil
	}
	stream := "ES_" + name
	deadline := time.Now().Add(time.Minute)
	var last string // the last stepdown answer
	var stepped time.Time
	for {
		// While its replicas change, a stream can leave a request
		// unanswered: ask again until the deadline.
		infoCtx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := be.streamInfo(infoCtx, stream)
		cancel()
		switch {
		case err != nil && time.Now().After(deadline):
			return fmt.Errorf("stream info: %w", err)
		case err != nil:
			continue
		}
		settled := info.Cluster != nil && info.Cluster.Leader != "" &&
			len(info.Cluster.Replicas) == be.replicas-1 && current(info.Cluster.Replicas)
		if settled && info.Cluster.Leader != be.avoid {
			return nil
		}
		// One step down at a time, once every replica has caught up (a
		// replica behind the leader cannot take over), and another only if
		// the election it started has not ended after a while. Any other
		// server will do, so no preference is sent: a step down with one
		// waits for that server, which on a busy machine could take long.
		if settled && time.Since(stepped) > 2*time.Second {
			stepped = time.Now()
			resp, err := be.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil)
			if err != nil {
				return fmt.Errorf("step down: %w", err)
			}
			last = string(resp.Data)
		}
		if time.Now().After(deadline) {
			state, _ := json.Marshal(info.Cluster)
			return fmt.Errorf("stream %s not led by another server than %s with all replicas current within a minute (cluster %s, last step down: %s)", stream, be.avoid, state, last)
		}
		// A poll with a deadline, as ritatest's waits: the cluster has no
		// event to wait on for a leader change.
		time.Sleep(20 * time.Millisecond)
	}
}

func (be *backend) streamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	s, err := be.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

func current(peers []*jetstream.PeerInfo) bool {
	for _, p := range peers {
		if !p.Current || p.Offline {
			return false
		}
	}
	return true
}

// processTB lets ritatest.NewCluster, which takes a testing.TB, start a
// cluster that lives as long as the process, not as one benchmark: its
// cleanups run when TestMain ends, and its Fatalf ends run, not a
// benchmark. It implements only what ritatest calls; the embedded TB is nil.
type processTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

type processFatal struct{ msg string }

func (p *processTB) Helper() {}

func (p *processTB) Fatalf(format string, args ...any) {
	panic(processFatal{fmt.Sprintf(format, args...)})
}

func (p *processTB) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// run calls f and turns a Fatalf in it into an error.
func (p *processTB) run(f func() *backend) (be *backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			pf, ok := r.(processFatal)
			if !ok {
				panic(r)
			}
			err = errors.New(pf.msg)
		}
	}()
	return f(), nil
}

func (p *processTB) cleanup() {
	p.mu.Lock()
	fs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
