package graft_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/chaos"
	"github.com/stretchr/testify/require"
)

// startChaosCluster starts n members whose gossip, Raft and RPC links run
// over the chaos network; tweaks adjust every member's config.
func startChaosCluster(t *testing.T, net *chaos.Network, n int, register func(*graft.Manager), tweaks ...func(*graft.Config)) []*clusterMember {
	t.Helper()
	peers := chaosPeers(net, n)
	return startMembers(t, peers, func(p graft.StaticPeer, cfg *graft.Config) {
		chaosMember(net, p, cfg)
		for _, tw := range tweaks {
			tw(cfg)
		}
	}, register)
}

// chaosPeers names n members n1..nn on the chaos network.
func chaosPeers(net *chaos.Network, n int) []graft.StaticPeer {
	peers := make([]graft.StaticPeer, n)
	for i := range peers {
		name := fmt.Sprintf("n%d", i+1)
		peers[i] = graft.StaticPeer{ID: name, Address: net.IP(name).String(), Port: 7000, GossipPort: chaos.MemberlistPort}
	}
	return peers
}

// chaosMember puts member p's links on the chaos network.
func chaosMember(net *chaos.Network, p graft.StaticPeer, cfg *graft.Config) {
	cfg.BindAddr = p.ID + ":7000"
	cfg.Expert.Network = net
}

// A member cut off for longer than the failure-detection timeout: the
// majority keeps completing workflows during the cut; after the heal the
// cluster is one again by itself and every acknowledged workflow completes.
func TestMinorityPartitionHeals(t *testing.T) {
	net := chaos.NewNetwork(7)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	var runs atomic.Int64
	members := startChaosCluster(t, net, 3, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"A", "B"}, &runs}))
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"B", ""}, &runs}))
	})
	start := func(cm *clusterMember, id string) {
		t.Helper()
		require.NoError(t, cm.m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}}, InitialState: map[string]any{"trail": []string{}},
		}), "starting %s", id)
	}
	var acked []string
	for i, cm := range members {
		id := fmt.Sprintf("before-%d", i)
		start(cm, id)
		acked = append(acked, id)
	}

	hosted := hostedBy(members)
	obs := observeShards(t, members)
	net.Isolate("n3")
	require.Eventually(t, func() bool {
		return !slices.Contains(members[0].m.GetClusterInfo().Peers, "n3")
	}, 20*time.Second, 20*time.Millisecond, "n1 never saw n3 fail")
	for j := range 8 {
		id := fmt.Sprintf("during-%d", j)
		start(members[j%2], id)
		acked = append(acked, id)
		waitStatus(t, members[(j+1)%2].m, id, graft.WorkflowStateCompleted)
	}
	// Cut off, n3 knows no leader of the shards it holds: it is live but
	// not ready, and says why.
	var cut graft.Health
	require.Eventually(t, func() bool {
		cut = members[2].m.Health()
		return cut.Live && !cut.Ready && !cut.Checks[3].OK
	}, 20*time.Second, 20*time.Millisecond, "n3 stayed ready while cut off: %+v", members[2].m.Health())
	require.Contains(t, cut.Checks[3].Detail, "no known leader for shards")
	// The majority elects new leaders for the shards n3 led, which a
	// loaded machine may not have done yet when n3 first reports; n1 is
	// ready once it knows every shard's leader, while n3 is still cut off.
	require.Eventually(t, func() bool { return members[0].m.Health().Ready }, 30*time.Second, 20*time.Millisecond,
		"the majority stays ready: %+v", members[0].m.Health())

	net.Heal()
	require.Eventually(t, func() bool {
		return slices.Contains(members[0].m.GetClusterInfo().Peers, "n3") &&
			len(members[2].m.GetClusterInfo().Peers) == 2
	}, 20*time.Second, 20*time.Millisecond, "the cluster never became one again")
	require.Eventually(t, func() bool { return members[2].m.Health().Ready }, 20*time.Second, 20*time.Millisecond,
		"n3 never became ready again: %+v", members[2].m.Health())
	for j := range 4 {
		id := fmt.Sprintf("after-%d", j)
		start(members[2], id)
		acked = append(acked, id)
	}
	// The cut was shorter than FailureGrace (default 30s): no replica moved.
	require.Equal(t, hosted, hostedBy(members))
	require.Empty(t, obs.all(), "replicas moved")
	for _, id := range acked {
		for _, cm := range members {
			s := waitStatus(t, cm.m, id, graft.WorkflowStateCompleted)
			require.JSONEq(t, `{"trail":["A","B"]}`, string(s.CurrentStateJSON), "%s from %s", id, cm.cfg.NodeID)
		}
	}
}

// Under load, one member of five is stopped (it leaves) and then another
// is killed (cut off for good, no leave): the stopped member's replicas
// move at once, the killed member's once it has been gone for
// FailureGrace; meanwhile and afterwards the rest keep completing
// workflows, including those of shards the killed member led, and every
// shard ends with three replicas on the three members left.
func TestStoppedAndKilledMembersUnderLoad(t *testing.T) {
	net := chaos.NewNetwork(11)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	var runs sync.Map
	members := startChaosCluster(t, net, 5, onceNodes(t, &runs), func(cfg *graft.Config) {
		cfg.Cluster.ShardCount = 8
		cfg.Cluster.FailureGrace = 2 * time.Second
	})
	requirePlaced(t, members, placeOn(t, 8, 3, "n1", "n2", "n3", "n4", "n5"), 30*time.Second)
	l := load(t, "churn", func() []*clusterMember { return members[:3] })
	l.waitAcked(10)

	require.NoError(t, members[4].m.Stop())
	four := placeOn(t, 8, 3, "n1", "n2", "n3", "n4")
	obs := observeShards(t, members[:4])
	requirePlaced(t, members[:4], four, 60*time.Second)
	// Leadership follows the replicas: the rebalancer hands n4 the shards
	// it is the preferred leader of once its replicas confirmed, after the
	// replicas matched the placement.
	require.NotEmpty(t, four.LeadersOf("n4"), "the placement gives n4 no shard to lead")
	var led []uint64
	obs.waitUntil(t, 30*time.Second, func() bool {
		led = members[3].m.GetClusterInfo().LeadShards
		return len(led) > 0
	}, func() string {
		return fmt.Sprintf("n4 leads no shard to lose; shards led: %s", shardLeaders(members[:4]))
	})

	net.Isolate("n4") // killed: no leave, no goodbye
	requirePlaced(t, members[:3], placeOn(t, 8, 3, "n1", "n2", "n3"), 60*time.Second)
	l.waitAcked(20)
	acked, errs := l.stop()
	require.Empty(t, errs, "starting workflows on the surviving members")
	require.NotEmpty(t, acked)
	for _, id := range acked {
		s := waitDone(t, members[0].m, id)
		require.JSONEq(t, `{"trail":["A","B","C"]}`, string(s.CurrentStateJSON), id)
	}
	t.Logf("%d workflows through a stop and a kill; n4 led shards %v", len(acked), led)
}

// A member is killed, its data directory is lost, and it comes back (same
// ID and address) within FailureGrace: the leaders find that it no longer
// holds the replicas the shards' membership gives it, replace them with new
// ones, and it serves its share again.
func TestMemberBackWithoutItsData(t *testing.T) {
	net := chaos.NewNetwork(13)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	var runs sync.Map
	register := onceNodes(t, &runs)
	members := startChaosCluster(t, net, 3, register)
	place := placeOn(t, 4, 3, "n1", "n2", "n3")
	requirePlaced(t, members, place, 30*time.Second)
	var acked []string
	for i := range 6 {
		id := fmt.Sprintf("before-%d", i)
		startSeq(t, members[i%3].m, id)
		acked = append(acked, id)
	}
	for _, id := range acked {
		waitDone(t, members[0].m, id)
	}

	net.Isolate("n3") // killed: its leave reaches nobody
	require.Eventually(t, func() bool { return !slices.Contains(peersOf(members[0].m), "n3") },
		20*time.Second, 20*time.Millisecond, "n1 never saw n3 fail")
	require.NoError(t, members[2].m.Stop())
	cfg := members[2].cfg
	require.NoError(t, os.RemoveAll(cfg.DataDir))
	net.Heal()

	m := graft.NewWithConfig(cfg)
	register(m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	members[2] = &clusterMember{cfg: cfg, m: m} // stopped at the end
	require.NoError(t, m.Start(ctx, 0))

	requirePlaced(t, members, place, 60*time.Second)
	for i := range 6 {
		id := fmt.Sprintf("after-%d", i)
		startSeq(t, members[i%3].m, id)
		acked = append(acked, id)
	}
	for _, id := range acked {
		requireAgree(t, members, id)
	}
}

// A member cut off past FailureGrace loses its replicas without hearing of
// it; meanwhile a fourth member joins and the placement changes, so when
// the cut heals, some of the replicas the returning member still holds
// belong to no placement. It finds out from the others (its replicas see no
// leader) and deletes them, and takes the replicas it is placed on again.
func TestReplicasRemovedWhileAwayAreDropped(t *testing.T) {
	net := chaos.NewNetwork(17)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	var runs sync.Map
	register := onceNodes(t, &runs)
	grace := func(cfg *graft.Config) {
		cfg.Cluster.FailureGrace = 2 * time.Second
		// n3 asks about its leaderless replicas after 1s instead of 5s.
		graft.SetRebalanceIntervals(cfg, 250*time.Millisecond, time.Second)
	}
	members := startChaosCluster(t, net, 3, register, grace)
	requirePlaced(t, members, placeOn(t, 4, 3, "n1", "n2", "n3"), 30*time.Second)
	startSeq(t, members[0].m, "before")
	waitDone(t, members[0].m, "before")

	obs := observeShards(t, members[:2])
	net.Isolate("n3")
	// n1 and n2 hold every shard all along: what to wait for is the
	// removal of n3's replicas, once its grace ended. (A member joining
	// before that is added next to a replica gossip may not have seen
	// fail yet, which would leave the shard without a majority.)
	obs.waitUntil(t, 30*time.Second, func() bool {
		return slices.Equal(obs.moved(graft.ReplicaRemoved)["n3"], []uint64{1, 2, 3, 4})
	}, func() string { return fmt.Sprintf("n3's replicas never removed: %v", obs.moved(graft.ReplicaRemoved)) })
	requirePlaced(t, members[:2], placeOn(t, 4, 3, "n1", "n2"), 30*time.Second)

	peers := chaosPeers(net, 4)
	cfg := clusterConfig(t, "n4", "", peers[3].GossipPort, peers)
	cfg.Cluster.ExpectedMembers = 3
	chaosMember(net, peers[3], cfg)
	grace(cfg)
	joiner := startConfigs(t, []*graft.Config{cfg}, register)
	requirePlaced(t, append(members[:2:2], joiner...), placeOn(t, 4, 3, "n1", "n2", "n4"), 30*time.Second)
	stale := members[2].m.GetClusterInfo().HostedShards
	after := placeOn(t, 4, 3, "n1", "n2", "n3", "n4")
	require.Greater(t, len(stale), len(after.ShardsOf("n3")), "the test needs n3 to hold shards it is no longer placed on")

	net.Heal()
	all := append(slices.Clone(members), joiner...)
	requirePlaced(t, all, after, 60*time.Second)
	startSeq(t, members[2].m, "after")
	for _, id := range []string{"before", "after"} {
		requireAgree(t, all, id)
	}
}
