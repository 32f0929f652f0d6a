package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft"
	"github.com/hashicorp/memberlist"
)

// clusterSize is the number of in-process members of seq3-cluster.
const clusterSize = 3

// fastGossip shortens memberlist's timers for members on loopback (as the
// cluster tests do).
func fastGossip(c *memberlist.Config) {
	l := memberlist.DefaultLocalConfig()
	c.ProbeInterval, c.ProbeTimeout = 200*time.Millisecond, 100*time.Millisecond
	c.SuspicionMult, c.GossipInterval, c.PushPullInterval = 2, 20*time.Millisecond, time.Second
	c.TCPTimeout, c.IndirectChecks = l.TCPTimeout, l.IndirectChecks
}

// runSeq3Cluster runs seq3 closed-loop on three in-process members on
// loopback (RF 3, static discovery), workflow i started on member i mod 3.
// Only a shard's leader (and the starting member) publishes lifecycle
// events, so every member's completion events feed the tracker, which
// counts each workflow once.
func runSeq3Cluster(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
	sh := seq3()
	tr := newTracker(o.workflows)
	members, err := startClusterMembers(ctx, o, dir, clusterSpec{n: clusterSize, shards: o.shards, fastGossip: true}, sh, tr)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stopAll(members)
		}
	}()

	tr.base = time.Now()
	if err := runClosedLoop(o, members, tr, sh, o.clusterStarters); err != nil {
		return nil, err
	}
	res := tr.summarise(sh, false)
	res.Members = len(members)
	res.Concurrency = o.clusterStarters
	for _, m := range members {
		info := m.GetClusterInfo()
		res.Shards = info.Shards
		res.DroppedEvents += uint64(info.Metrics.DroppedEvents)
	}
	res.Workers = o.workers
	if res.Workers == 0 {
		res.Workers = graft.DefaultConfig("", "", "").Engine.WorkerCount
	}
	stopped = true
	if err := stopAll(members); err != nil {
		return nil, fmt.Errorf("stopping members: %w", err)
	}
	return res, nil
}

// clusterSpec describes the in-process cluster startClusterMembers starts.
type clusterSpec struct {
	// n is the number of members.
	n int
	// shards is Cluster.ShardCount (0: the Graft default).
	shards int
	// fastGossip shortens memberlist's timers (fastGossip); otherwise the
	// members use Graft's default gossip timings.
	fastGossip bool
}

// startClusterMembers starts spec.n members (RF 3, or spec.n if smaller)
// on free loopback ports, each with its data under dir, sh's nodes and
// tr's handlers, concurrently (they bootstrap together once gossip sees
// all of them). Members are named n1, n2, ... (zero-padded from ten
// members on, so that names sort by number).
func startClusterMembers(ctx context.Context, o *options, dir string, spec clusterSpec, sh shape, tr *tracker) ([]*graft.Manager, error) {
	n := spec.n
	type ports struct{ raft, gossip int }
	ps := make([]ports, n)
	var peers []graft.StaticPeer
	for i := range ps {
		for _, p := range []*int{&ps[i].raft, &ps[i].gossip} {
			addr, err := o.ports.Addr()
			if err != nil {
				return nil, err
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if *p, err = strconv.Atoi(port); err != nil {
				return nil, err
			}
		}
		peers = append(peers, graft.StaticPeer{ID: memberName(i, n), Address: "127.0.0.1", Port: ps[i].raft, GossipPort: ps[i].gossip})
	}
	members := make([]*graft.Manager, n)
	for i, p := range ps {
		id := memberName(i, n)
		cfg := &graft.Config{NodeID: id, BindAddr: "127.0.0.1:" + strconv.Itoa(p.raft), DataDir: filepath.Join(dir, id), Logger: o.logger.With("member", id)}
		cfg.Cluster.ReplicationFactor = min(n, 3)
		cfg.Cluster.ShardCount = spec.shards
		cfg.Cluster.GossipPort = p.gossip
		cfg.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryStatic, Static: peers}}
		cfg.Engine.WorkerCount = o.workers
		if spec.fastGossip {
			cfg.Expert.Memberlist = fastGossip
		}
		m := graft.NewWithConfig(cfg)
		for _, n := range sh.nodes {
			if err := m.RegisterNode(&step{name: n.name, next: slices.Clone(n.next)}); err != nil {
				return nil, err
			}
		}
		m.OnWorkflowCompleted(tr.onCompleted)
		m.OnWorkflowError(tr.onError)
		members[i] = m
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range members {
		wg.Go(func() { errs[i] = m.Start(sctx, 0) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			stopAll(members)
			return nil, fmt.Errorf("starting member %s: %w", memberName(i, n), err)
		}
	}
	return members, nil
}

// memberName is the node ID of member i (from 0) of n: n1, n2, ..., or
// n01, n02, ... from ten members on.
func memberName(i, n int) string {
	return fmt.Sprintf("n%0*d", len(strconv.Itoa(n)), i+1)
}

// runClosedLoop starts tr's workflows of shape sh closed-loop from
// concurrency goroutines, workflow i on member i mod len(members), and
// waits until all completed (waitAll). Set tr.base first.
func runClosedLoop(o *options, members []*graft.Manager, tr *tracker, sh shape, concurrency int) error {
	var (
		errOnce  sync.Once
		startErr error
		quit     = make(chan struct{})
		quitOnce sync.Once
		wg       sync.WaitGroup
		next     atomic.Int64
	)
	stop := func() { quitOnce.Do(func() { close(quit) }) }
	for range concurrency {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				i := int(next.Add(1) - 1)
				if i >= tr.n {
					return
				}
				called := tr.since()
				tr.called[i].Store(called)
				tr.scheduled[i].Store(called)
				err := members[i%len(members)].StartWorkflow(graft.WorkflowTrigger{
					WorkflowID:   idPrefix + strconv.Itoa(i),
					InitialNodes: []graft.NodeConfig{{Name: sh.nodes[0].name}},
				})
				tr.startDur[i].Store(tr.since() - called)
				if err != nil {
					errOnce.Do(func() { startErr = fmt.Errorf("on member %s: %w", memberName(i%len(members), len(members)), err) })
					stop()
					return
				}
			}
		})
	}
	startsDone := make(chan struct{})
	go func() { wg.Wait(); close(startsDone) }()
	err := waitAll(o, tr, quit, func() {
		if n := tr.recheck(members[0]); n > 0 {
			progress("  %d completions whose events never arrived found by status", n)
		}
	})
	stop()
	<-startsDone
	if startErr != nil {
		return fmt.Errorf("starting workflows: %w", startErr)
	}
	if err != nil {
		return fmt.Errorf("%w%s", err, describeIncomplete(tr, members[0]))
	}
	return nil
}

// stopAll stops every member and returns the first error.
func stopAll(members []*graft.Manager) error {
	var first error
	for _, m := range members {
		if err := m.Stop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// describeIncomplete reports the status, as m sees it, of the first few
// workflows whose completion the tracker never saw.
func describeIncomplete(tr *tracker, m *graft.Manager) string {
	var b strings.Builder
	shown := 0
	for i := range tr.completed {
		if tr.completed[i].Load() != 0 || tr.called[i].Load() == 0 {
			continue
		}
		id := idPrefix + strconv.Itoa(i)
		st, err := m.GetWorkflowStatus(id)
		if err != nil {
			fmt.Fprintf(&b, "; %s: %v", id, err)
		} else {
			fmt.Fprintf(&b, "; %s: %s, executed %d, executing %+v, pending %d", id, st.Status, len(st.ExecutedNodes), st.ExecutingNodes, len(st.PendingNodes))
		}
		if shown++; shown == 3 {
			break
		}
	}
	return b.String()
}
