package graft_test

import (
	"fmt"
	"slices"
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
	peers := make([]graft.StaticPeer, n)
	for i := range peers {
		name := fmt.Sprintf("n%d", i+1)
		peers[i] = graft.StaticPeer{ID: name, Address: net.IP(name).String(), Port: 7000, GossipPort: chaos.MemberlistPort}
	}
	return startMembers(t, peers, func(p graft.StaticPeer, cfg *graft.Config) {
		cfg.BindAddr = p.ID + ":7000"
		cfg.Expert.Network = net
	}, register)
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

// A member killed without a graceful leave (cut off for good): the others
// keep completing workflows, including those on shards it led and those it
// had claimed steps of.
func TestKilledMemberIsRoutedAround(t *testing.T) {
	net := chaos.NewNetwork(11)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	var runs atomic.Int64
	members := startChaosCluster(t, net, 5, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"A", "B"}, &runs}))
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"B", ""}, &runs}))
	})
	var acked []string
	for j := range 10 {
		id := fmt.Sprintf("load-%d", j)
		require.NoError(t, members[j%5].m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}}, InitialState: map[string]any{"trail": []string{}},
		}))
		acked = append(acked, id)
	}
	net.Isolate("n5") // killed: no leave, no goodbye
	for j := range 8 {
		id := fmt.Sprintf("after-kill-%d", j)
		require.NoError(t, members[j%4].m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}}, InitialState: map[string]any{"trail": []string{}},
		}))
		acked = append(acked, id)
	}
	for _, id := range acked {
		s := waitStatus(t, members[0].m, id, graft.WorkflowStateCompleted)
		require.JSONEq(t, `{"trail":["A","B"]}`, string(s.CurrentState), id)
	}
}
