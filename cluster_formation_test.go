package graft_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/chaos"
	"github.com/eleven-am/graft/ring"
	"github.com/stretchr/testify/require"
)

// specConfig is a member configured as the spec's "Static Peers" section
// shows: identity, data directory and static discovery, nothing else of the
// cluster (test gossip timings and a small shard count aside).
func specConfig(t *testing.T, a memberAddr, peers []graft.StaticPeer) *graft.Config {
	cfg := memberConfig(t, a, 0, peers, nil)
	cfg.Cluster.ExpectedMembers = 0
	return cfg
}

// requireOneCluster waits until every member sees the others and reports
// the same non-empty cluster ID, and returns it.
func requireOneCluster(t *testing.T, members []*clusterMember) string {
	t.Helper()
	requireAllSee(t, members, len(members)-1)
	id := members[0].m.GetClusterInfo().ClusterID
	require.NotEmpty(t, id)
	for _, cm := range members {
		require.Equal(t, id, cm.m.GetClusterInfo().ClusterID, "cluster ID of %s", cm.cfg.NodeID)
	}
	return id
}

// Three members configured only with static discovery of all three form one
// cluster, run workflows started on one member, take a broadcast command,
// and survive one leaving.
func TestStaticDiscoveryAloneFormsCluster(t *testing.T) {
	addrs := newMemberAddrs(t, "node-1", "node-2", "node-3")
	peers := staticPeers(addrs...)
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, specConfig(t, a, peers))
	}
	var runs atomic.Int64
	members := startConfigs(t, cfgs, seqNodes(t, &runs))
	cid := requireOneCluster(t, members)

	var ids []string
	for i := range 30 {
		id := fmt.Sprintf("static-%d", i)
		startSeq(t, members[0].m, id)
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitDone(t, members[1].m, id)
	}

	var got sync.Map
	for _, cm := range members {
		id := cm.cfg.NodeID
		require.NoError(t, cm.m.RegisterCommandHandler("hello", func(_ context.Context, from string, _ any) error {
			got.Store(id, from)
			return nil
		}))
	}
	require.NoError(t, members[1].m.BroadcastCommand(context.Background(), &graft.DevCommand{Command: "hello"}))
	require.Eventually(t, func() bool {
		n := 0
		got.Range(func(_, from any) bool {
			require.Equal(t, "node-2", from)
			n++
			return true
		})
		return n == 3
	}, 30*time.Second, 10*time.Millisecond, "the broadcast did not reach every member")

	require.NoError(t, members[2].m.Stop())
	rest := members[:2]
	requireAllSee(t, rest, 1)
	for i := range 10 {
		id := fmt.Sprintf("after-leave-%d", i)
		startSeq(t, rest[i%2].m, id)
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitDone(t, rest[0].m, id)
		waitDone(t, rest[1].m, id)
	}
	require.Equal(t, cid, rest[1].m.GetClusterInfo().ClusterID)
}

// Member 1 starts alone (its list names only itself) and serves at once;
// members 2 and 3 list member 1 and join; replicas grow to three; a
// workflow started before they existed is readable and controllable from
// them and survives member 1 stopping.
func TestClusterGrowsFromOneMember(t *testing.T) {
	addrs := newMemberAddrs(t, "g1", "g2", "g3")
	var runs atomic.Int64
	register := func(m *graft.Manager) {
		seqNodes(t, &runs)(m)
		require.NoError(t, m.RegisterNode(&gatedNode{mapNode: mapNode{name: "Hold", fn: func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
			return nil, nil
		}}, can: func(map[string]any) bool { return false }}))
	}
	first := startConfigs(t, []*graft.Config{specConfig(t, addrs[0], staticPeers(addrs[0]))}, register)[0]
	require.Equal(t, []uint64{1, 2, 3, 4}, first.m.GetClusterInfo().HostedShards)
	require.NotEmpty(t, first.m.GetClusterInfo().ClusterID)

	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("early-%d", i)
		startSeq(t, first.m, id)
		ids = append(ids, id)
	}
	require.NoError(t, first.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "held", InitialNodes: []graft.NodeConfig{{Name: "Hold"}}}))
	for _, id := range ids {
		waitDone(t, first.m, id)
	}

	later := startConfigs(t, []*graft.Config{
		specConfig(t, addrs[1], staticPeers(addrs[0])),
		specConfig(t, addrs[2], staticPeers(addrs[0])),
	}, register)
	members := append([]*clusterMember{first}, later...)
	requireOneCluster(t, members)
	// The replication factor grows to its target: every member holds every
	// shard (4 shards, RF 3, 3 members).
	requirePlaced(t, members, placeOn(t, 4, 3, "g1", "g2", "g3"), 60*time.Second)

	for _, cm := range later {
		for _, id := range ids {
			waitDone(t, cm.m, id)
		}
	}
	ctx := context.Background()
	require.NoError(t, later[0].m.PauseWorkflow(ctx, "held"))
	waitStatus(t, later[1].m, "held", graft.WorkflowStatePaused)
	require.NoError(t, later[1].m.ResumeWorkflow(ctx, "held"))
	require.Eventually(t, func() bool {
		s, err := later[0].m.GetWorkflowStatus("held")
		return err == nil && (s.Status == graft.WorkflowStateRunning || s.Status == graft.WorkflowStateBlocked)
	}, 20*time.Second, 10*time.Millisecond)

	for i := range 30 {
		id := fmt.Sprintf("grown-%d", i)
		startSeq(t, members[i%3].m, id)
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitDone(t, members[2].m, id)
	}

	require.NoError(t, first.m.Stop())
	requireAllSee(t, later, 1)
	for i := range 10 {
		id := fmt.Sprintf("without-first-%d", i)
		startSeq(t, later[i%2].m, id)
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitDone(t, later[0].m, id)
		waitDone(t, later[1].m, id)
	}
	require.NoError(t, later[0].m.StopWorkflow(ctx, "held"))
	waitStatus(t, later[1].m, "held", graft.WorkflowStateStopped)
}

// Three members that know only an mDNS service type, with no
// ExpectedMembers, elect one founder and form one cluster.
func TestMDNSWithoutExpectedMembersFormsOneCluster(t *testing.T) {
	svc := mdnsService(t)

	addrs := newMemberAddrs(t, "m1", "m2", "m3")
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfg := memberConfig(t, a, 0, nil, nil)
		cfg.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryMDNS, Service: svc}}
		cfg.Cluster.BootstrapWait = time.Second
		cfgs = append(cfgs, cfg)
	}
	var runs atomic.Int64
	members := startConfigs(t, cfgs, seqNodes(t, &runs))
	requireOneCluster(t, members)
	startSeq(t, members[2].m, "elected")
	for _, cm := range members {
		waitDone(t, cm.m, "elected")
	}
}

// Two clusters bootstrapped apart (a partition at first start) and then
// made visible to each other never merge: both keep running, neither gets
// the other's members, replicas or workflows, and each logs the other's
// cluster ID and publishes a ForeignClusterEvent.
func TestClustersBootstrappedApartNeverMerge(t *testing.T) {
	net := chaos.NewNetwork(13)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	peers := chaosPeers(net, 4)
	net.Partition([]string{"n1", "n2"}, []string{"n3", "n4"})

	logs := make([]*lockedBuffer, len(peers))
	var cfgs []*graft.Config
	for i, p := range peers {
		cfg := clusterConfig(t, p.ID, "", p.GossipPort, peers)
		chaosMember(net, p, cfg)
		cfg.Cluster.ExpectedMembers = 2 // each side bootstraps alone
		logs[i] = &lockedBuffer{}
		cfg.Logger = slog.New(slog.NewTextHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelWarn}))
		cfgs = append(cfgs, cfg)
	}
	var runs atomic.Int64
	var foreign sync.Map // member -> *graft.ForeignClusterEvent
	members := startConfigs(t, cfgs, func(m *graft.Manager) {
		seqNodes(t, &runs)(m)
	})
	for _, cm := range members {
		id := cm.cfg.NodeID
		cm.m.OnForeignCluster(func(e *graft.ForeignClusterEvent) { foreign.Store(id, e) })
	}
	a, b := members[:2], members[2:]
	idA, idB := requireOneCluster(t, a), requireOneCluster(t, b)
	require.NotEqual(t, idA, idB)
	startSeq(t, a[0].m, "in-a")
	startSeq(t, b[0].m, "in-b")
	waitDone(t, a[1].m, "in-a")
	waitDone(t, b[1].m, "in-b")
	hosted := hostedBy(members)

	net.Heal()
	// Each side keeps trying to join the other's listed addresses (every
	// 5s) and is refused: every member logs the other cluster's ID.
	require.Eventually(t, func() bool {
		for i, cm := range members {
			other := idB
			if i >= 2 {
				other = idA
			}
			if !strings.Contains(logs[i].String(), other) {
				return false
			}
			if _, ok := foreign.Load(cm.cfg.NodeID); !ok {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "not every member logged the other cluster")
	for i, cm := range members {
		v, _ := foreign.Load(cm.cfg.NodeID)
		e := v.(*graft.ForeignClusterEvent)
		mine, theirs := idA, idB
		if i >= 2 {
			mine, theirs = idB, idA
		}
		require.Equal(t, mine, e.ClusterID)
		require.Equal(t, theirs, e.ForeignClusterID)
	}

	for i := range 4 {
		startSeq(t, a[i%2].m, fmt.Sprintf("a-after-%d", i))
		startSeq(t, b[i%2].m, fmt.Sprintf("b-after-%d", i))
	}
	for i := range 4 {
		waitDone(t, a[(i+1)%2].m, fmt.Sprintf("a-after-%d", i))
		waitDone(t, b[(i+1)%2].m, fmt.Sprintf("b-after-%d", i))
	}
	for _, cm := range a {
		require.Equal(t, []string{peerOf(a, cm)}, peersOf(cm.m))
		_, err := cm.m.GetWorkflowStatus("in-b")
		require.ErrorIs(t, err, graft.ErrWorkflowNotFound)
	}
	for _, cm := range b {
		require.Equal(t, []string{peerOf(b, cm)}, peersOf(cm.m))
		_, err := cm.m.GetWorkflowStatus("in-a")
		require.ErrorIs(t, err, graft.ErrWorkflowNotFound)
	}
	require.Equal(t, hosted, hostedBy(members), "replicas moved between the clusters")
}

// peerOf returns the ID of the other member of a two-member group.
func peerOf(group []*clusterMember, cm *clusterMember) string {
	i := slices.IndexFunc(group, func(o *clusterMember) bool { return o != cm })
	return group[i].cfg.NodeID
}

// A founding member waiting for the others says "joining" until they come.
func TestReadinessJoiningWhileFormingACluster(t *testing.T) {
	addrs := newMemberAddrs(t, "r1", "r2")
	peers := staticPeers(addrs...)
	cfg := specConfig(t, addrs[0], peers)
	first := graft.NewWithConfig(cfg)
	t.Cleanup(func() { require.NoError(t, first.Stop()) })
	started := make(chan error, 1)
	go func() { started <- first.Start(context.Background(), 0) }()
	require.Eventually(t, func() bool { return first.GetReadinessState() == graft.ReadinessJoining }, 30*time.Second, 5*time.Millisecond)
	require.False(t, first.IsReady())
	require.Equal(t, graft.ReadinessJoining, first.GetClusterInfo().Status)

	startConfigs(t, []*graft.Config{specConfig(t, addrs[1], peers)}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, first.WaitUntilReady(ctx))
	require.NoError(t, <-started)
	require.Equal(t, "running", first.GetClusterInfo().Status)
}

// A status subscription on one member sees a workflow that runs on another
// go from running to completed, then its channel closes.
func TestSubscriptionFollowsAWorkflowOnAnotherMember(t *testing.T) {
	addrs := newMemberAddrs(t, "s1", "s2", "s3")
	peers := staticPeers(addrs...)
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, specConfig(t, a, peers))
	}
	rel := release(t)
	members := startConfigs(t, cfgs, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(fnNode("Wait", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			return &graft.NodeResult{GlobalState: map[string]any{"done": true}}, hold(ctx, rel.c)
		})))
	})
	requireOneCluster(t, members)
	watcher := members[2]
	// A workflow whose shard another member leads, so its step runs there.
	var id string
	require.Eventually(t, func() bool {
		led := watcher.m.GetClusterInfo().LeadShards
		for i := range 100 {
			cand := fmt.Sprintf("elsewhere-%d", i)
			if !slices.Contains(led, ring.ShardFor(cand, uint64(cfgs[0].Cluster.ShardCount))) {
				id = cand
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "%s leads every shard", watcher.cfg.NodeID)
	require.NoError(t, members[0].m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "Wait"}}}))

	ch, unsubscribe, err := watcher.m.SubscribeToWorkflowState(id)
	require.NoError(t, err)
	defer unsubscribe()
	first := recv(t, ch, "the first status")
	require.Equal(t, graft.WorkflowStateRunning, first.Status)
	rel.open()
	var last *graft.WorkflowStatus
	for s := range ch {
		last = s
	}
	require.NotNil(t, last, "no status after running")
	require.Equal(t, graft.WorkflowStateCompleted, last.Status)
	require.Equal(t, map[string]any{"done": true}, last.CurrentState)
}
