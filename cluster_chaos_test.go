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
	"github.com/eleven-am/graft/chaos"
	"github.com/stretchr/testify/require"
)

// startChaosCluster starts n members whose gossip, Raft and RPC links run
// over the chaos network.
func startChaosCluster(t *testing.T, net *chaos.Network, n int, register func(*graft.Manager)) []*clusterMember {
	t.Helper()
	var peers []graft.StaticPeer
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		peers = append(peers, graft.StaticPeer{ID: name, Address: net.IP(name).String(), Port: 7000, GossipPort: chaos.MemberlistPort})
	}
	members := make([]*clusterMember, n)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		cfg := graft.DefaultConfig(id, id+":7000", t.TempDir())
		cfg.Logger = testLogger(t, id)
		cfg.Cluster.ExpectedMembers = n
		cfg.Cluster.ShardCount = 4
		cfg.Cluster.GossipPort = chaos.MemberlistPort
		cfg.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryStatic, Static: peers}}
		cfg.Expert.Memberlist = fastGossip
		cfg.Expert.Network = net
		cfg.Engine.RetryDelay, cfg.Engine.MaxRetryDelay = 5*time.Millisecond, 20*time.Millisecond
		cfg.Engine.DrainTimeout = 2 * time.Second
		m := graft.NewWithConfig(cfg)
		register(m)
		members[i] = &clusterMember{cfg: cfg, m: m}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, cm := range members {
		wg.Go(func() { errs[i] = cm.m.Start(ctx, 0) })
	}
	wg.Wait()
	for i, cm := range members {
		t.Cleanup(func() { require.NoError(t, cm.m.Stop()) })
		require.NoError(t, errs[i], "member n%d", i+1)
	}
	return members
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

	net.Heal()
	require.Eventually(t, func() bool {
		return slices.Contains(members[0].m.GetClusterInfo().Peers, "n3") &&
			len(members[2].m.GetClusterInfo().Peers) == 2
	}, 20*time.Second, 20*time.Millisecond, "the cluster never became one again")
	for j := range 4 {
		id := fmt.Sprintf("after-%d", j)
		start(members[2], id)
		acked = append(acked, id)
	}
	for _, id := range acked {
		for _, cm := range members {
			s := waitStatus(t, cm.m, id, graft.WorkflowStateCompleted)
			require.JSONEq(t, `{"trail":["A","B"]}`, string(s.CurrentState), "%s from %s", id, cm.cfg.NodeID)
		}
	}
}
