package graft_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// fastGossip shortens memberlist's timers for tests on loopback.
func fastGossip(c *memberlist.Config) {
	l := memberlist.DefaultLocalConfig()
	c.ProbeInterval, c.ProbeTimeout = 200*time.Millisecond, 100*time.Millisecond
	c.SuspicionMult, c.GossipInterval, c.PushPullInterval = 2, 20*time.Millisecond, time.Second
	c.TCPTimeout, c.IndirectChecks = l.TCPTimeout, l.IndirectChecks
}

type clusterMember struct {
	cfg *graft.Config
	m   *graft.Manager
}

// startCluster starts n members on loopback that bootstrap together; each
// gets its nodes from register. They are stopped when the test ends.
func startCluster(t *testing.T, n int, register func(*graft.Manager)) []*clusterMember {
	t.Helper()
	peers := make([]graft.StaticPeer, n)
	for i := range peers {
		peers[i] = graft.StaticPeer{ID: fmt.Sprintf("n%d", i+1), Address: "127.0.0.1",
			Port: portOf(t, freeAddr(t)), GossipPort: portOf(t, freeAddr(t))}
	}
	return startMembers(t, peers, func(p graft.StaticPeer, cfg *graft.Config) {
		cfg.BindAddr = "127.0.0.1:" + strconv.Itoa(p.Port)
	}, register)
}

// startMembers starts one member per peer, all listing every peer for
// discovery, with test timings; tweak sets what differs per member (at
// least BindAddr). It waits until every member's Start returned.
func startMembers(t *testing.T, peers []graft.StaticPeer, tweak func(graft.StaticPeer, *graft.Config), register func(*graft.Manager)) []*clusterMember {
	t.Helper()
	cfgs := make([]*graft.Config, len(peers))
	for i, p := range peers {
		cfgs[i] = clusterConfig(t, p.ID, "", p.GossipPort, peers)
		tweak(p, cfgs[i])
	}
	return startConfigs(t, cfgs, register)
}

// clusterConfig is a member of a cluster of len(peers) members that finds
// the others through static discovery, with test timings.
func clusterConfig(t *testing.T, id, bindAddr string, gossipPort int, peers []graft.StaticPeer) *graft.Config {
	cfg := graft.DefaultConfig(id, bindAddr, t.TempDir())
	cfg.Logger = testLogger(t, id)
	cfg.Cluster.ExpectedMembers = len(peers)
	cfg.Cluster.ShardCount = 4
	cfg.Cluster.GossipPort = gossipPort
	cfg.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryStatic, Static: peers}}
	cfg.Expert.Memberlist = fastGossip
	cfg.Engine.RetryDelay, cfg.Engine.MaxRetryDelay = 5*time.Millisecond, 20*time.Millisecond
	cfg.Engine.DrainTimeout = 2 * time.Second
	return cfg
}

// startConfigs starts one member per config concurrently and requires all
// to start; they are stopped when the test ends.
func startConfigs(t *testing.T, cfgs []*graft.Config, register func(*graft.Manager)) []*clusterMember {
	t.Helper()
	longScenario(t)
	members := make([]*clusterMember, len(cfgs))
	for i, cfg := range cfgs {
		m := graft.NewWithConfig(cfg)
		if register != nil {
			register(m)
		}
		members[i] = &clusterMember{cfg: cfg, m: m}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(cfgs))
	for i, cm := range members {
		wg.Go(func() { errs[i] = cm.m.Start(ctx, 0) })
	}
	wg.Wait()
	var failed []error
	stopAtEnd(t, members)
	for i := range members {
		if errs[i] != nil {
			failed = append(failed, fmt.Errorf("member %s: %w", cfgs[i].NodeID, errs[i]))
		}
	}
	require.NoError(t, errors.Join(failed...), "starting the members")
	return members
}

// longScenario skips a multi-member scenario under -short (make
// test-short); make test runs them all.
func longScenario(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a multi-member scenario: runs without -short (make test)")
	}
}

// stopAtEnd stops the members (those members holds when the test ends)
// once the test ends, after checking that the replicas of each shard agree.
func stopAtEnd(t *testing.T, members []*clusterMember) {
	t.Cleanup(func() {
		if !t.Failed() {
			requireReplicasAgree(t, members)
		}
		for _, cm := range members {
			require.NoError(t, cm.m.Stop())
		}
	})
}

// requireReplicasAgree checks that the replicas of each shard of each
// cluster reach one applied index with equal state hashes, and never differ
// at the same applied index (compareReplicas).
func requireReplicasAgree(t *testing.T, members []*clusterMember) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		shards := map[replicaGroup][]replicaOn{}
		for _, cm := range members {
			id := cm.m.GetClusterInfo().ClusterID
			for s, st := range graft.ReplicaStates(cm.m) {
				k := replicaGroup{id, s}
				shards[k] = append(shards[k], replicaOn{cm.cfg.NodeID, st})
			}
		}
		behind, err := compareReplicas(shards)
		require.NoError(t, err)
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas never caught up: %v", behind)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaGroup is one shard of one cluster.
type replicaGroup struct {
	cluster string
	shard   uint64
}

// replicaOn is a replica's state on a member.
type replicaOn struct {
	member string
	graft.ReplicaState
}

// compareReplicas returns an error if two replicas of a shard differ at
// the same applied index, and otherwise the replicas behind the most
// advanced one of their shard. Only replicas the most advanced replica's
// membership lists are compared (a member cut off for good keeps replicas
// the shard removed).
func compareReplicas(shards map[replicaGroup][]replicaOn) (behind []string, err error) {
	for k, rs := range shards {
		top := slices.MaxFunc(rs, func(a, b replicaOn) int { return cmp.Compare(a.Applied, b.Applied) })
		for _, a := range rs {
			switch {
			case !slices.Contains(top.Members, a.Replica):
			case a.Applied == top.Applied && a.Hash != top.Hash:
				return nil, fmt.Errorf("cluster %s shard %d: replicas on %s and %s differ at applied index %d: %x vs %x",
					k.cluster, k.shard, a.member, top.member, a.Applied, a.Hash, top.Hash)
			case a.Applied != top.Applied:
				behind = append(behind, fmt.Sprintf("shard %d on %s at %d of %d", k.shard, a.member, a.Applied, top.Applied))
			}
		}
	}
	return behind, nil
}

// The replica comparison finds planted divergence and lag, and ignores
// replicas their shard removed.
func TestCompareReplicas(t *testing.T) {
	st := func(hash, applied, replica uint64) graft.ReplicaState {
		return graft.ReplicaState{Hash: hash, Applied: applied, Replica: replica, Members: []uint64{1, 2, 3}}
	}
	g := replicaGroup{"c", 1}
	behind, err := compareReplicas(map[replicaGroup][]replicaOn{g: {{"n1", st(7, 10, 1)}, {"n2", st(7, 10, 2)}, {"n3", st(7, 10, 3)}}})
	require.NoError(t, err)
	require.Empty(t, behind)

	_, err = compareReplicas(map[replicaGroup][]replicaOn{g: {{"n1", st(7, 10, 1)}, {"n2", st(8, 10, 2)}}})
	require.ErrorContains(t, err, "differ at applied index 10")

	behind, err = compareReplicas(map[replicaGroup][]replicaOn{g: {{"n1", st(7, 10, 1)}, {"n2", st(5, 9, 2)}}})
	require.NoError(t, err)
	require.Equal(t, []string{"shard 1 on n2 at 9 of 10"}, behind)

	removed := graft.ReplicaState{Hash: 1, Applied: 10, Replica: 4}
	behind, err = compareReplicas(map[replicaGroup][]replicaOn{g: {{"n1", st(7, 10, 1)}, {"n4", removed}}})
	require.NoError(t, err)
	require.Empty(t, behind)
}

func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// Cluster tests run one at a time (no t.Parallel): each starts several
// members, and several clusters at once on two cores under -race starve
// their Raft timers.

func TestThreeMemberCluster(t *testing.T) {
	var commands sync.Map // member → sender
	var runs atomic.Int64
	members := startCluster(t, 3, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"A", "B"}, &runs}))
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"B", "C"}, &runs}))
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"C", ""}, &runs}))
	})
	leaves := countLeaves(t, members)
	var completedAt sync.Map // member/workflow → event
	for _, cm := range members {
		id := cm.cfg.NodeID
		cm.m.OnWorkflowCompleted(func(e *graft.WorkflowCompletedEvent) { completedAt.Store(id+"/"+e.WorkflowID, e) })
	}
	for i, cm := range members {
		id := cm.cfg.NodeID
		require.NoError(t, cm.m.RegisterCommandHandler("ping", func(_ context.Context, from string, _ any) error {
			commands.Store(id, from)
			return nil
		}), "member %d", i)
	}

	// Workflows started from every member complete, and every member's
	// status view agrees.
	var ids []string
	for i, cm := range members {
		for j := range 8 {
			id := fmt.Sprintf("wf-%d-%d", i, j)
			ids = append(ids, id)
			require.NoError(t, cm.m.StartWorkflow(graft.WorkflowTrigger{
				WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}},
				InitialState: map[string]any{"trail": []string{}},
			}))
		}
	}
	for _, id := range ids {
		for _, cm := range members {
			s := waitStatus(t, cm.m, id, graft.WorkflowStateCompleted)
			require.JSONEq(t, `{"trail":["A","B","C"]}`, string(s.CurrentStateJSON), "%s seen from %s", id, cm.cfg.NodeID)
		}
	}
	if n := runs.Load(); n != int64(3*len(ids)) {
		require.Greater(t, n, int64(3*len(ids)))
		leaves.requireExplains(t, fmt.Sprintf("%d step runs for %d steps", n, 3*len(ids)))
	}

	// The member that started a workflow receives its completion event,
	// wherever the workflow ran (forwarded to it, and delivered to its
	// handler asynchronously).
	for i, cm := range members {
		for j := range 8 {
			key := fmt.Sprintf("%s/wf-%d-%d", cm.cfg.NodeID, i, j)
			require.Eventually(t, func() bool { _, ok := completedAt.Load(key); return ok }, 30*time.Second, 5*time.Millisecond,
				"no completion event for %s", key)
		}
	}

	// A command broadcast from one member runs on all, with its sender
	// (through gossip, in the background).
	require.NoError(t, members[1].m.BroadcastCommand(context.Background(), &graft.DevCommand{Command: "ping"}))
	require.Eventually(t, func() bool {
		for _, cm := range members {
			from, ok := commands.Load(cm.cfg.NodeID)
			if !ok || from != "n2" {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "the broadcast did not reach every member")

	// A queried command collects every member's outcome, errors included.
	for _, cm := range members {
		id := cm.cfg.NodeID
		require.NoError(t, cm.m.RegisterCommandHandler("check", func(context.Context, string, any) error {
			if id == "n2" {
				return fmt.Errorf("disk almost full on %s", id)
			}
			return nil
		}))
	}
	// The query waits for every member's reply: time enough for a loaded
	// machine.
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	replies, err := members[0].m.QueryCommand(qctx, &graft.DevCommand{Command: "check"})
	qcancel()
	require.NoError(t, err)
	require.Len(t, replies, 3)
	require.NoError(t, replies["n1"])
	require.NoError(t, replies["n3"])
	require.ErrorContains(t, replies["n2"], "disk almost full on n2")

	// Cluster info: two peers each, exactly one coordinator (gossip's view,
	// which converges in the background).
	require.Eventually(t, func() bool {
		leaders := 0
		for _, cm := range members {
			info := cm.m.GetClusterInfo()
			if len(info.Peers) != 2 {
				return false
			}
			if info.IsLeader {
				leaders++
			}
		}
		return leaders == 1
	}, 30*time.Second, 10*time.Millisecond, "peers or coordinators never settled")

	// Shard leadership spreads over the members (4 shards on 3 members):
	// the rebalancer hands shards to their preferred leaders periodically.
	require.Eventually(t, func() bool {
		total, most, least := 0, 0, 4
		for _, cm := range members {
			n := len(cm.m.GetClusterInfo().LeadShards)
			total += n
			most, least = max(most, n), min(least, n)
		}
		return total == 4 && most-least <= 1
	}, 60*time.Second, 50*time.Millisecond, "leadership never balanced")

	// One member stops: the other two keep completing workflows at once,
	// including those on shards it led (a proposal lost with the old
	// leader is proposed again).
	require.NoError(t, members[2].m.Stop())
	for j := range 12 {
		id := fmt.Sprintf("after-%d", j)
		require.NoError(t, members[j%2].m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}}, InitialState: map[string]any{"trail": []string{}},
		}))
		waitStatus(t, members[(j+1)%2].m, id, graft.WorkflowStateCompleted)
	}
}

// countingNode counts its executions.
type countingNode struct {
	seqNode
	runs *atomic.Int64
}

func (n *countingNode) Execute(ctx context.Context, s *seqState, c map[string]any) (*graft.NodeResult, error) {
	n.runs.Add(1)
	return n.seqNode.Execute(ctx, s, c)
}

// A member whose shard count differs from the others' refuses to join.
func TestClusterRefusesDifferentShardCount(t *testing.T) {
	longScenario(t)
	raft := []int{portOf(t, freeAddr(t)), portOf(t, freeAddr(t))}
	gossipPorts := []int{portOf(t, freeAddr(t)), portOf(t, freeAddr(t))}
	peers := []graft.StaticPeer{
		{ID: "n1", Address: "127.0.0.1", Port: raft[0], GossipPort: gossipPorts[0]},
		{ID: "n2", Address: "127.0.0.1", Port: raft[1], GossipPort: gossipPorts[1]},
	}
	ms := make([]*graft.Manager, 2)
	for i, shards := range []int{4, 8} {
		cfg := clusterConfig(t, peers[i].ID, "127.0.0.1:"+strconv.Itoa(raft[i]), gossipPorts[i], peers)
		cfg.Cluster.ShardCount = shards
		ms[i] = graft.NewWithConfig(cfg)
		t.Cleanup(func() { require.NoError(t, ms[i].Stop()) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { errs[i] = m.Start(ctx, 0) })
	}
	wg.Wait()
	for i, err := range errs {
		require.ErrorIs(t, err, graft.ErrInvalidConfig, "member %d", i+1)
		require.ErrorContains(t, err, "ShardCount")
	}
}

// whereNode records the member it ran on in the state.
type whereNode struct{ name, next string }

func (n *whereNode) GetName() string { return n.name }

func (n *whereNode) Execute(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
	wc, _ := graft.GetWorkflowContext(ctx)
	s[n.name] = wc.MemberID
	r := &graft.NodeResult{GlobalState: s}
	if n.next != "" {
		r.NextNodes = []graft.NextNode{{NodeName: n.next}}
	}
	return r, nil
}

// A step whose node type only one member registered runs on that member,
// wherever its shard's leader is.
func TestStepRunsWhereItsNodeIsRegistered(t *testing.T) {
	members := startCluster(t, 3, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&whereNode{"First", "Special"}))
		require.NoError(t, m.RegisterNode(&whereNode{"Last", ""}))
	})
	require.NoError(t, members[2].m.RegisterNode(&whereNode{"Special", "Last"}))
	// Start only once the other members learned that n3 has it (through
	// the cluster state's gossip).
	require.Eventually(t, func() bool {
		return members[0].m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "probe", InitialNodes: []graft.NodeConfig{{Name: "Special"}}}) == nil
	}, 30*time.Second, 20*time.Millisecond, "n1 never learned that n3 runs Special")
	for i := range 9 {
		id := fmt.Sprintf("special-%d", i)
		require.NoError(t, members[i%3].m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "First"}}}))
		s := waitStatus(t, members[(i+1)%3].m, id, graft.WorkflowStateCompleted)
		var st map[string]string
		require.NoError(t, s.DecodeState(&st))
		require.Equal(t, "n3", st["Special"], "%s: Special ran on %s", id, st["Special"])
		require.NotEmpty(t, st["First"])
		require.NotEmpty(t, st["Last"])
	}
}
