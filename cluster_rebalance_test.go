package graft_test

import (
	"context"
	"fmt"
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

// requireRanOnce checks every step of every workflow in ids ran exactly once.
func requireRanOnce(t *testing.T, runs *sync.Map, ids []string) {
	t.Helper()
	for _, id := range ids {
		for _, node := range []string{"A", "B", "C"} {
			v, ok := runs.Load(id + "/" + node)
			require.True(t, ok, "%s/%s never ran", id, node)
			require.Equal(t, int64(1), v.(*atomic.Int64).Load(), "%s/%s ran more than once", id, node)
		}
	}
}

// load starts A → B → C workflows from the members members() returns, one
// after the other, until stop is called; stop returns the acknowledged IDs
// and any start error.
func load(t *testing.T, prefix string, members func() []*clusterMember) (stop func() ([]string, []error)) {
	var (
		mu    sync.Mutex
		acked []string
		errs  []error
		done  = make(chan struct{})
		wg    sync.WaitGroup
	)
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
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
			} else {
				acked = append(acked, id)
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	return func() ([]string, []error) {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(acked), slices.Clone(errs)
	}
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
// gives them and every shard has a leader.
func requirePlaced(t *testing.T, members []*clusterMember, place *ring.Placement, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
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
	}, within, 50*time.Millisecond, "replicas never matched the placement: have %v", hostedBy(members))
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

// A fourth member joins a loaded three-member cluster: the shards whose
// placement changed move (add on the new member, catch up, remove the old
// replica), the others stay where they were, every shard keeps three
// replicas, and no acknowledged workflow is lost or runs a step twice.
func TestFourthMemberJoinsUnderLoad(t *testing.T) {
	var runs sync.Map
	register := onceNodes(t, &runs)
	addrs := newMemberAddrs(t, "n1", "n2", "n3", "n4")
	tweak := func(c *graft.Config) {
		c.Cluster.ShardCount = 8
		c.Cluster.FailureGrace = 2 * time.Second
	}
	var cfgs []*graft.Config
	for _, a := range addrs[:3] {
		cfgs = append(cfgs, memberConfig(t, a, 3, staticPeers(addrs[:3]...), tweak))
	}
	members := startConfigs(t, cfgs, register)
	before := placeOn(t, 8, 3, "n1", "n2", "n3")
	requirePlaced(t, members, before, 20*time.Second)

	var mu sync.Mutex
	current := func() []*clusterMember {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(members)
	}
	stop := load(t, "join", current)
	time.Sleep(500 * time.Millisecond)

	// n4 knows everyone; the others learn of it through gossip.
	joiner := startConfigs(t, []*graft.Config{memberConfig(t, addrs[3], 3, staticPeers(addrs...), tweak)}, register)
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

	time.Sleep(time.Second) // keep loading the rebalanced cluster
	acked, errs := stop()
	require.Empty(t, errs, "starting workflows during the join")
	require.NotEmpty(t, acked)
	for _, id := range acked {
		waitDone(t, joiner[0].m, id)
	}
	requireRanOnce(t, &runs, acked)
	t.Logf("%d workflows across the join; hosted shards now %v", len(acked), hostedBy(members))

	// Every replica of every shard agrees (n4 answers from its own
	// replicas for the shards it holds and forwards for the others).
	for _, id := range acked[:min(len(acked), 20)] {
		requireAgree(t, members, id)
	}
}
