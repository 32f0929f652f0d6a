package graft_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/ring"
	"github.com/stretchr/testify/require"
)

// Like the other cluster tests these run one at a time (no t.Parallel).

// onceNode is a step of the A → B → C chain that records every execution
// by workflow, so a test can tell a step that ran twice.
type onceNode struct {
	seqNode
	runs *sync.Map // workflowID/node → *atomic.Int64
}

func (n *onceNode) Execute(ctx context.Context, s *seqState, c map[string]any) (*graft.NodeResult, error) {
	wc, _ := graft.GetWorkflowContext(ctx)
	v, _ := n.runs.LoadOrStore(wc.WorkflowID+"/"+n.name, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	return n.seqNode.Execute(ctx, s, c)
}

func onceNodes(t *testing.T, runs *sync.Map) func(*graft.Manager) {
	return func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&onceNode{seqNode{"A", "B"}, runs}))
		require.NoError(t, m.RegisterNode(&onceNode{seqNode{"B", "C"}, runs}))
		require.NoError(t, m.RegisterNode(&onceNode{seqNode{"C", ""}, runs}))
	}
}

// requireRanOnce checks every step of every workflow in ids ran exactly
// once, unless gossip declared a member failed meanwhile (leaves counts
// that, see countLeaves): steps claimed by a member declared failed run
// again elsewhere, by design (at least once), so then every step ran at
// least once.
func requireRanOnce(t *testing.T, runs *sync.Map, ids []string, leaves *leaveCounter) {
	t.Helper()
	for _, id := range ids {
		for _, node := range []string{"A", "B", "C"} {
			v, ok := runs.Load(id + "/" + node)
			require.True(t, ok, "%s/%s never ran", id, node)
			if n := v.(*atomic.Int64).Load(); n != 1 {
				leaves.requireExplains(t, fmt.Sprintf("%s/%s ran %d times", id, node, n))
			}
		}
	}
}

// leaveCounter counts the members that gossip declared gone (NodeLeft
// events) while a test ran.
type leaveCounter struct {
	mu   sync.Mutex
	seen []leave
}

// leave is one NodeLeft event: observer saw member declared gone.
type leave struct{ observer, member string }

// countLeaves counts from now on the NodeLeft events of members: a member
// that left or that gossip declared failed. With the test's fast gossip
// timers a loaded machine can get a live member declared failed for a
// moment, and the steps it had claimed then run again elsewhere.
func countLeaves(t *testing.T, members []*clusterMember) *leaveCounter {
	t.Helper()
	c := &leaveCounter{}
	for _, cm := range members {
		observer := cm.cfg.NodeID
		require.NoError(t, cm.m.OnNodeLeft(func(e *graft.NodeLeftEvent) {
			c.mu.Lock()
			c.seen = append(c.seen, leave{observer, e.NodeID})
			c.mu.Unlock()
		}))
	}
	return c
}

// requireExplains fails the test with what unless a member (other than
// those in except, whose departure the test caused) was declared gone
// meanwhile, which explains a step running more than once; then it logs
// what.
func (c *leaveCounter) requireExplains(t *testing.T, what string, except ...string) {
	t.Helper()
	c.mu.Lock()
	var seen []string
	for _, l := range c.seen {
		if !slices.Contains(except, l.member) {
			seen = append(seen, l.observer+" saw "+l.member+" gone")
		}
	}
	c.mu.Unlock()
	require.NotEmpty(t, seen, "%s, and no member was declared gone", what)
	t.Logf("%s; members declared gone meanwhile: %v", what, seen)
}

// load starts A → B → C workflows from the members members() returns, one
// after the other, until stop is called; stop returns the acknowledged IDs
// and any start error.
func load(t *testing.T, prefix string, members func() []*clusterMember) *loader {
	l := &loader{t: t, done: make(chan struct{}), members: members}
	l.cond = sync.NewCond(&l.mu)
	mu, done, wg := &l.mu, l.done, &l.wg
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			ms := members()
			id := fmt.Sprintf("%s-%d", prefix, i)
			err := ms[i%len(ms)].m.StartWorkflow(graft.WorkflowTrigger{
				WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}},
				InitialState: map[string]any{"trail": []string{}},
			})
			mu.Lock()
			switch {
			case errors.Is(err, graft.ErrTimeout):
				l.timedOut = append(l.timedOut, id)
			case err != nil:
				l.errs = append(l.errs, fmt.Errorf("%s: %w", id, err))
			default:
				l.acked = append(l.acked, id)
			}
			l.cond.Broadcast()
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	return l
}

// loader is a running load: a workflow started every 20ms, round robin
// over the members.
type loader struct {
	t     *testing.T
	mu    sync.Mutex
	cond  *sync.Cond // signalled on every start's outcome
	acked []string
	errs  []error
	// timedOut are the starts that returned ErrTimeout: their outcome is
	// unknown (the start may have committed), so stop looks them up.
	timedOut []string
	members  func() []*clusterMember
	done     chan struct{}
	wg       sync.WaitGroup
}

// waitAcked waits until n more starts than now were acknowledged (the
// load is running through whatever happens to the cluster meanwhile).
func (l *loader) waitAcked(n int) {
	l.t.Helper()
	timer := time.AfterFunc(30*time.Second, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(30 * time.Second)
	l.mu.Lock()
	defer l.mu.Unlock()
	want := len(l.acked) + n
	for len(l.acked) < want {
		if time.Now().After(deadline) {
			l.t.Fatalf("the load acknowledged %d of %d more starts in 30s; errors: %v", n-(want-len(l.acked)), n, l.errs)
		}
		l.cond.Wait()
	}
}

// stop ends the load and returns the acknowledged workflows and the
// failed starts. A start that timed out (a busy machine can starve a shard
// past RequestTimeout while it changes leaders) is indeterminate, as in any
// client of a replicated store: stop looks each one up, and one that exists
// counts as acknowledged (the caller checks it completes). Timeouts for more
// than a quarter of the starts are failures.
func (l *loader) stop() ([]string, []error) {
	l.t.Helper()
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	acked, errs := slices.Clone(l.acked), slices.Clone(l.errs)
	if len(l.timedOut) > 0 {
		if 4*len(l.timedOut) > len(l.acked)+len(l.timedOut) {
			errs = append(errs, fmt.Errorf("%d of %d starts timed out: %v", len(l.timedOut), len(l.acked)+len(l.timedOut), l.timedOut))
		}
		m := l.members()[0].m
		var existed []string
		for _, id := range l.timedOut {
			_, err := m.GetWorkflowStatus(id)
			switch {
			case err == nil:
				existed = append(existed, id)
			case !errors.Is(err, graft.ErrWorkflowNotFound):
				errs = append(errs, fmt.Errorf("looking up %s, whose start timed out: %w", id, err))
			}
		}
		acked = append(acked, existed...)
		l.t.Logf("%d starts timed out; of those, %v exist", len(l.timedOut), existed)
	}
	return acked, errs
}

// hostedBy returns each member's hosted shards.
func hostedBy(members []*clusterMember) map[string][]uint64 {
	out := map[string][]uint64{}
	for _, cm := range members {
		out[cm.cfg.NodeID] = cm.m.GetClusterInfo().HostedShards
	}
	return out
}

// requirePlaced waits until the members host exactly the replicas place
// gives them and every shard has a leader. It checks now and again on each
// rebalancing or leadership observation a member publishes (a replica
// added, started, removed or deleted; a shard's leader changed), which
// every change it waits for comes with, rather than polling.
func requirePlaced(t *testing.T, members []*clusterMember, place *ring.Placement, within time.Duration) {
	t.Helper()
	obs := observeShards(t, members)
	obs.waitUntil(t, within, func() bool {
		led := map[uint64]bool{}
		for _, cm := range members {
			info := cm.m.GetClusterInfo()
			if !slices.Equal(info.HostedShards, place.ShardsOf(cm.cfg.NodeID)) {
				return false
			}
			for _, s := range info.LeadShards {
				led[s] = true
			}
		}
		return len(led) == place.ShardCount()
	}, func() string { return fmt.Sprintf("replicas never matched the placement: have %v", hostedBy(members)) })
}

// shardObserver collects the shard observations of a set of members: every
// ShardMovedEvent, and a wake-up on each move or leader change.
type shardObserver struct {
	changed chan struct{} // holds one pending wake-up
	mu      sync.Mutex
	moves   []graft.ShardMovedEvent
	leaders map[string]map[uint64]string // observing member -> shard -> leader last seen
}

func newShardObserver() *shardObserver {
	return &shardObserver{changed: make(chan struct{}, 1), leaders: map[string]map[uint64]string{}}
}

// observeShards subscribes to the shard observations of members.
func observeShards(t *testing.T, members []*clusterMember) *shardObserver {
	t.Helper()
	o := newShardObserver()
	for _, cm := range members {
		o.watch(t, cm.cfg.NodeID, cm.m)
	}
	return o
}

// watch subscribes to m's shard observations; call it before Start to see
// them all. (Handlers stay registered until m stops; they never block.)
func (o *shardObserver) watch(t *testing.T, id string, m *graft.Manager) {
	t.Helper()
	o.mu.Lock()
	o.leaders[id] = map[uint64]string{}
	o.mu.Unlock()
	require.NoError(t, m.OnShardMoved(func(e *graft.ShardMovedEvent) {
		o.mu.Lock()
		o.moves = append(o.moves, *e)
		o.mu.Unlock()
		signal(o.changed, struct{}{})
	}))
	require.NoError(t, m.OnShardLeaderChanged(func(e *graft.ShardLeaderChangedEvent) {
		o.mu.Lock()
		o.leaders[id][e.ShardID] = e.LeaderNodeID
		o.mu.Unlock()
		signal(o.changed, struct{}{})
	}))
}

// waitUntil returns once cond holds, checking it now and after each
// observation, and fails the test with what() if within passes first.
func (o *shardObserver) waitUntil(t *testing.T, within time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-o.changed:
		case <-deadline.C:
			if cond() {
				return
			}
			require.FailNow(t, what())
		}
	}
}

// leaderSeen returns the leader of shard s that member id last observed,
// and whether it observed one.
func (o *shardObserver) leaderSeen(id string, s uint64) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l, ok := o.leaders[id][s]
	return l, ok
}

// all returns every move observed so far.
func (o *shardObserver) all() []graft.ShardMovedEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.moves)
}

// moved returns, for the moves of kind move observed so far, each member's
// shards, sorted (a shard moved twice is listed once).
func (o *shardObserver) moved(move graft.ShardMove) map[string][]uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]uint64{}
	for _, e := range o.moves {
		if e.Move == move && !slices.Contains(out[e.NodeID], e.ShardID) {
			out[e.NodeID] = append(out[e.NodeID], e.ShardID)
		}
	}
	for _, ss := range out {
		slices.Sort(ss)
	}
	return out
}

func placeOn(t *testing.T, shards, rf int, ids ...string) *ring.Placement {
	var ms []ring.Member
	for _, id := range ids {
		ms = append(ms, ring.Member{ID: id})
	}
	p, err := ring.Place(ring.Config{ShardCount: shards, ReplicationFactor: rf}, ms)
	require.NoError(t, err)
	return p
}

// startThreeOfFour starts n1, n2 and n3 as a cluster of 8 shards (RF 3,
// FailureGrace 2s) with register's nodes, and returns them with the config
// of a fourth member, n4, that knows all four.
func startThreeOfFour(t *testing.T, register func(*graft.Manager)) ([]*clusterMember, *graft.Config) {
	t.Helper()
	addrs := newMemberAddrs(t, "n1", "n2", "n3", "n4")
	tweak := func(c *graft.Config) {
		c.Cluster.ShardCount = 8
		c.Cluster.FailureGrace = 2 * time.Second
	}
	var cfgs []*graft.Config
	for _, a := range addrs[:3] {
		cfgs = append(cfgs, memberConfig(t, a, 3, staticPeers(addrs[:3]...), tweak))
	}
	return startConfigs(t, cfgs, register), memberConfig(t, addrs[3], 3, staticPeers(addrs...), tweak)
}

// A fourth member joins a loaded three-member cluster: the shards whose
// placement changed move (add on the new member, catch up, remove the old
// replica), the others stay where they were, every shard keeps three
// replicas, and no acknowledged workflow is lost or runs a step twice.
func TestFourthMemberJoinsUnderLoad(t *testing.T) {
	var runs sync.Map
	register := onceNodes(t, &runs)
	members, fourth := startThreeOfFour(t, register)
	leaves := countLeaves(t, members)
	before := placeOn(t, 8, 3, "n1", "n2", "n3")
	requirePlaced(t, members, before, 20*time.Second)

	var mu sync.Mutex
	current := func() []*clusterMember {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(members)
	}
	l := load(t, "join", current)
	l.waitAcked(10)

	// n4 knows everyone; the others learn of it through gossip.
	obs := observeShards(t, members)
	joiner := startConfigs(t, []*graft.Config{fourth}, func(m *graft.Manager) {
		register(m)
		obs.watch(t, "n4", m)
	})
	mu.Lock()
	members = append(members, joiner...)
	mu.Unlock()

	after := placeOn(t, 8, 3, "n1", "n2", "n3", "n4")
	require.NotEmpty(t, ring.Diff(before, after), "the placement gives n4 no shard")
	requirePlaced(t, members, after, 60*time.Second)
	// Only the shards whose owners changed moved: a member lost exactly
	// the shards the placement moved off it.
	for _, id := range []string{"n1", "n2", "n3"} {
		lost := slices.DeleteFunc(before.ShardsOf(id), func(s uint64) bool { return slices.Contains(after.ShardsOf(id), s) })
		var moved []uint64
		for _, mv := range ring.Diff(before, after) {
			if slices.Contains(mv.Remove, id) {
				moved = append(moved, mv.Shard)
			}
		}
		slices.Sort(moved)
		require.Equal(t, moved, lost, "shards moved off %s", id)
	}
	// The moves were observed as they happened: n4 started a replica of
	// each shard it gained, and each member deleted its replica of each
	// shard it lost, nothing else.
	joined, dropped := map[string][]uint64{"n4": after.ShardsOf("n4")}, map[string][]uint64{}
	for _, id := range []string{"n1", "n2", "n3"} {
		if lost := slices.DeleteFunc(before.ShardsOf(id), func(s uint64) bool { return slices.Contains(after.ShardsOf(id), s) }); len(lost) > 0 {
			dropped[id] = lost
		}
	}
	// A member publishes each move once it made it, to handlers that run
	// asynchronously: the last may come after the replicas matched.
	obs.waitUntil(t, 30*time.Second, func() bool {
		return maps.EqualFunc(obs.moved(graft.ReplicaJoined), joined, slices.Equal) &&
			maps.EqualFunc(obs.moved(graft.ReplicaDropped), dropped, slices.Equal)
	}, func() string {
		return fmt.Sprintf("observed joins %v and drops %v, want %v and %v",
			obs.moved(graft.ReplicaJoined), obs.moved(graft.ReplicaDropped), joined, dropped)
	})
	// Each member's last observation of a shard's leader names the member
	// that leads it (n4 among them, which leads shards since the join).
	leadersNow := func() map[uint64]string {
		out := map[uint64]string{}
		for _, cm := range members {
			for _, s := range cm.m.GetClusterInfo().LeadShards {
				out[s] = cm.cfg.NodeID
			}
		}
		return out
	}
	// The replicas match the placement before leadership follows it: the
	// rebalancer hands each shard to its preferred leader once that replica
	// has confirmed, so n4 comes to lead the shards placed first on it.
	require.NotEmpty(t, after.LeadersOf("n4"), "the placement gives n4 no shard to lead")
	obs.waitUntil(t, 30*time.Second, func() bool {
		return slices.Contains(slices.Collect(maps.Values(leadersNow())), "n4")
	}, func() string { return fmt.Sprintf("n4 leads no shard; leaders %v", leadersNow()) })
	// Every replica learns of a leader change on its own, a moment apart.
	obs.waitUntil(t, 30*time.Second, func() bool {
		leaders := leadersNow()
		for _, cm := range members {
			for _, s := range cm.m.GetClusterInfo().HostedShards {
				if l, ok := obs.leaderSeen(cm.cfg.NodeID, s); ok && l != leaders[s] {
					return false
				}
			}
		}
		return true
	}, func() string {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return fmt.Sprintf("observed leaders %v, leaders %v", obs.leaders, leadersNow())
	})

	l.waitAcked(20) // keep loading the rebalanced cluster
	acked, errs := l.stop()
	require.Empty(t, errs, "starting workflows during the join")
	require.NotEmpty(t, acked)
	for _, id := range acked {
		waitDone(t, joiner[0].m, id)
	}
	requireRanOnce(t, &runs, acked, leaves)
	t.Logf("%d workflows across the join; hosted shards now %v", len(acked), hostedBy(members))

	// Every replica of every shard agrees (n4 answers from its own
	// replicas for the shards it holds and forwards for the others).
	for _, id := range acked[:min(len(acked), 20)] {
		requireAgree(t, members, id)
	}
}
