package graft_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/chaos"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// The cluster's CRDT state as the public API shows it: ClusterInfo.Metrics
// (the cluster's totals), ClusterInfo.Members (every member's entry),
// SetMemberMetadata, and routing steps by the node types members publish.

// memberEntry returns the entry of member id in m's ClusterInfo.Members.
func memberEntry(m *graft.Manager, id string) (graft.MemberInfo, bool) {
	for _, mi := range m.GetClusterInfo().Members {
		if mi.ID == id {
			return mi, true
		}
	}
	return graft.MemberInfo{}, false
}

// awaitTotals waits until every member reports completed workflows, all of
// them ended, with steps executed, as the cluster's totals.
func awaitTotals(t *testing.T, members []*clusterMember, completed, steps int) {
	t.Helper()
	for _, cm := range members {
		awaitMetrics(t, cm.m, func(m graft.ClusterMetrics) bool {
			return m.CompletedWorkflows == completed && m.TotalWorkflows == completed &&
				m.StepsExecuted == steps && m.ActiveWorkflows == 0
		})
	}
}

// longNodeTypes returns n node type names of more than 35 bytes: together
// far beyond Serf's 512-byte tag limit that a comma-joined tag hit.
func longNodeTypes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("com.example.documents.pipeline.stage%02d.Process", i)
	}
	return out
}

// A member that registers 60 node types with long names starts (the old
// node-type gossip tag broke Serf's tag limit with 15), and the others,
// which lack them, start workflows at any of them and have their steps run
// there.
func TestMemberWithSixtyLongNodeTypes(t *testing.T) {
	names := longNodeTypes(60)
	require.Greater(t, len(strings.Join(names, ",")), 60*35)
	members := startCluster(t, 3, func(m *graft.Manager) {
		if m.GetClusterInfo().NodeID != "n3" {
			return
		}
		for i, name := range names {
			next := ""
			if i%3 != 2 {
				next = names[i+1]
			}
			require.NoError(t, m.RegisterNode(&whereNode{name, next}))
		}
	})
	for _, cm := range members[:2] {
		require.Eventually(t, func() bool {
			mi, ok := memberEntry(cm.m, "n3")
			return ok && len(mi.NodeTypes) == len(names)
		}, 20*time.Second, 20*time.Millisecond, "%s never saw n3's node types", cm.cfg.NodeID)
	}
	for i := 0; i < len(names); i += 3 {
		id := fmt.Sprintf("long-%02d", i)
		require.NoError(t, members[(i/3)%2].m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: names[i]}}}), "starting %s at %s", id, names[i])
	}
	for i := 0; i < len(names); i += 3 {
		id := fmt.Sprintf("long-%02d", i)
		s := waitStatus(t, members[(i/3+1)%2].m, id, graft.WorkflowStateCompleted)
		var st map[string]string
		require.NoError(t, s.DecodeState(&st))
		require.Equal(t, map[string]string{names[i]: "n3", names[i+1]: "n3", names[i+2]: "n3"}, st, id)
	}
	awaitTotals(t, members, 20, 60)
}

// With four members every member reports the cluster's totals, not the
// shards it holds; each member's own counters add up to them, in
// ClusterInfo.Members and in the per-member Prometheus series; metadata
// set on one member is seen by all.
func TestEveryMemberReportsTheClusterTotals(t *testing.T) {
	var runs atomic.Int64
	members := startCluster(t, 4, seqNodes(t, &runs))
	const n = 40
	for i := range n {
		startSeq(t, members[i%4].m, fmt.Sprintf("total-%02d", i))
	}
	for i := range n {
		waitDone(t, members[(i+1)%4].m, fmt.Sprintf("total-%02d", i))
	}
	awaitTotals(t, members, n, 3*n)
	require.Equal(t, int64(3*n), runs.Load())

	for _, cm := range members {
		require.Eventually(t, func() bool {
			var completed, steps uint64
			info := cm.m.GetClusterInfo()
			for _, mi := range info.Members {
				completed += mi.Counters.WorkflowsCompleted
				steps += mi.Counters.StepsExecuted
			}
			return len(info.Members) == 4 && completed == n && steps == 3*n
		}, 20*time.Second, 20*time.Millisecond, "%s: members' counters do not add up to the totals", cm.cfg.NodeID)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(members[1].m.Collector())
	g := gather(t, reg)
	require.Equal(t, float64(n), g.value(t, graft.MetricWorkflowsCompleted))
	mf := g[graft.MetricMemberWorkflowsCompleted]
	require.NotNil(t, mf)
	var sum float64
	seen := map[string]bool{}
	for _, m := range mf.GetMetric() {
		sum += m.GetCounter().GetValue()
		seen[labels(m)[graft.LabelMember]] = true
		require.Equal(t, "n2", labels(m)[graft.LabelNode])
	}
	require.Equal(t, float64(n), sum, "the per-member series add up to the total")
	require.Len(t, seen, 4)

	require.NoError(t, members[2].m.SetMemberMetadata("zone", "eu-west-1a"))
	for _, cm := range members {
		require.Eventually(t, func() bool {
			mi, ok := memberEntry(cm.m, "n3")
			return ok && mi.Metadata["zone"] == "eu-west-1a"
		}, 20*time.Second, 20*time.Millisecond, "%s never saw n3's metadata", cm.cfg.NodeID)
	}
	mi, _ := memberEntry(members[0].m, "n3")
	require.Equal(t, "alive", mi.Status)
	require.NotEmpty(t, mi.RPCAddr)
	require.NotEmpty(t, mi.GossipAddr)
	require.Equal(t, []string{"A", "B", "C"}, mi.NodeTypes)
	require.Equal(t, graft.DefaultConfig("x", "", "").Engine.WorkerCount, mi.WorkerCapacity)
	require.NotZero(t, mi.StartedAt)
	require.NotZero(t, mi.UpdatedAt)
}

// A member that stops and starts again on its DataDir keeps its counters:
// the cluster's totals do not drop, and new work adds to them.
func TestRestartedMemberKeepsItsCounters(t *testing.T) {
	var runs atomic.Int64
	register := seqNodes(t, &runs)
	members := startCluster(t, 3, register)
	for i := range 9 {
		startSeq(t, members[i%3].m, fmt.Sprintf("before-%d", i))
	}
	for i := range 9 {
		waitDone(t, members[0].m, fmt.Sprintf("before-%d", i))
	}
	awaitTotals(t, members, 9, 27)
	// Restart the member that committed the most steps (it leads shards).
	v, other := 0, 1
	var before graft.MemberInfo
	require.Eventually(t, func() bool {
		before = graft.MemberInfo{}
		var sum uint64
		for i, cm := range members {
			mi, _ := memberEntry(members[0].m, cm.cfg.NodeID)
			sum += mi.Counters.StepsExecuted
			if mi.Counters.StepsExecuted > before.Counters.StepsExecuted {
				v, before = i, mi
			}
		}
		return sum == 27
	}, 20*time.Second, 20*time.Millisecond, "the members' counters never added up: %s", describeMembers(members))
	if v == other {
		other = 2
	}
	id := members[v].cfg.NodeID
	t.Logf("restarting %s, which committed %d steps", id, before.Counters.StepsExecuted)

	require.NoError(t, members[v].m.Stop())
	// The others learn of the leave through gossip.
	require.Eventually(t, func() bool { return !slices.Contains(peersOf(members[other].m), id) },
		30*time.Second, 10*time.Millisecond, "%s still lists %s after it stopped", members[other].cfg.NodeID, id)
	var rest []*clusterMember
	for i, cm := range members {
		if i != v {
			rest = append(rest, cm)
		}
	}
	awaitTotals(t, rest, 9, 27) // the leaver's counts stay
	require.Eventually(t, func() bool {
		mi, ok := memberEntry(members[other].m, id)
		return ok && mi.Status == "left" && mi.Counters.StepsExecuted == before.Counters.StepsExecuted
	}, 20*time.Second, 20*time.Millisecond, "%s does not list %s as left with its counters", members[other].cfg.NodeID, id)

	m := graft.NewWithConfig(members[v].cfg)
	register(m)
	members[v] = &clusterMember{cfg: members[v].cfg, m: m} // stopped at the end
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	mine, ok := memberEntry(m, id)
	require.True(t, ok)
	require.Equal(t, before.Incarnation+1, mine.Incarnation, "every start is a new incarnation")
	require.GreaterOrEqual(t, mine.Counters.StepsExecuted, before.Counters.StepsExecuted, "persisted counters")
	awaitTotals(t, members, 9, 27)
	for _, cm := range members {
		require.Eventually(t, func() bool {
			mi, ok := memberEntry(cm.m, id)
			return ok && mi.Incarnation == before.Incarnation+1 && mi.Status == "alive"
		}, 20*time.Second, 20*time.Millisecond, "%s never saw %s back", cm.cfg.NodeID, id)
	}

	for i := range 6 {
		startSeq(t, members[i%3].m, fmt.Sprintf("after-%d", i))
	}
	for i := range 6 {
		waitDone(t, members[v].m, fmt.Sprintf("after-%d", i))
	}
	awaitTotals(t, members, 15, 45)
}

// A member cut off from the others keeps its own entry current; the
// others keep counting. After the heal every member converges to the same
// totals and sees the metadata the cut-off member set meanwhile.
func TestPartitionedMemberConvergesAfterHeal(t *testing.T) {
	net := chaos.NewNetwork(19)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	var runs atomic.Int64
	members := startChaosCluster(t, net, 3, seqNodes(t, &runs))
	for i := range 3 {
		startSeq(t, members[i].m, fmt.Sprintf("before-%d", i))
	}
	for i := range 3 {
		waitDone(t, members[0].m, fmt.Sprintf("before-%d", i))
	}
	awaitTotals(t, members, 3, 9)

	net.Isolate("n3")
	require.Eventually(t, func() bool {
		return !slices.Contains(members[0].m.GetClusterInfo().Peers, "n3")
	}, 20*time.Second, 20*time.Millisecond, "n1 never saw n3 fail")
	require.NoError(t, members[2].m.SetMemberMetadata("cut", "yes"))
	for j := range 6 {
		id := fmt.Sprintf("during-%d", j)
		startSeq(t, members[j%2].m, id)
		waitDone(t, members[(j+1)%2].m, id)
	}
	awaitTotals(t, members[:2], 9, 27)
	_, hasCut := memberEntry(members[0].m, "n3")
	if hasCut {
		mi, _ := memberEntry(members[0].m, "n3")
		require.Empty(t, mi.Metadata["cut"], "n1 heard of n3's metadata through the partition")
	}

	net.Heal()
	awaitTotals(t, members, 9, 27)
	for _, cm := range members {
		require.Eventually(t, func() bool {
			mi, ok := memberEntry(cm.m, "n3")
			return ok && mi.Metadata["cut"] == "yes"
		}, 30*time.Second, 20*time.Millisecond, "%s never saw n3's metadata", cm.cfg.NodeID)
	}
}

// SetMemberMetadata on a lone member: refused before Start and beyond its
// bounds with an error naming the bound, kept across a restart with the
// member's counters, and shown in ClusterInfo.Members.
func TestSetMemberMetadataOnALoneMember(t *testing.T) {
	t.Parallel()
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	m := graft.NewWithConfig(cfg)
	require.ErrorIs(t, m.SetMemberMetadata("zone", "a"), graft.ErrNotStarted)
	require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
	require.NoError(t, m.Start(ctx, 0))
	t.Cleanup(func() { _ = m.Stop() })
	require.NoError(t, m.SetMemberMetadata("zone", "eu-west-1a"))

	for _, tc := range []struct {
		key, value, want string
	}{
		{"", "v", "the key is empty"},
		{strings.Repeat("k", 257), "v", "257 bytes, at most 256 allowed"},
		{"big", strings.Repeat("v", 1025), "1025 bytes, at most 1024 allowed"},
		{"bad\xff", "v", "not valid UTF-8"},
		{"bad", "v\xff", "not valid UTF-8"},
	} {
		err := m.SetMemberMetadata(tc.key, tc.value)
		require.ErrorIs(t, err, graft.ErrInvalidMetadata, "%q=%q", tc.key, tc.value)
		require.ErrorContains(t, err, tc.want, "%q=%q", tc.key, tc.value)
	}
	for i := range 63 {
		require.NoError(t, m.SetMemberMetadata(fmt.Sprintf("k%02d", i), "v"))
	}
	err := m.SetMemberMetadata("one-too-many", "v")
	require.ErrorIs(t, err, graft.ErrInvalidMetadata)
	require.ErrorContains(t, err, "65 keys, at most 64 allowed")
	for i := range 63 {
		require.NoError(t, m.SetMemberMetadata(fmt.Sprintf("k%02d", i), ""), "an empty value removes the key")
	}
	// The whole record is bounded too: 64 KiB.
	filled := 0
	for ; ; filled++ {
		err := m.SetMemberMetadata(fmt.Sprintf("%0256d", filled), strings.Repeat("v", 1024))
		if err != nil {
			require.ErrorIs(t, err, graft.ErrInvalidMetadata)
			require.ErrorContains(t, err, "at most 65536 allowed")
			require.Less(t, filled, 63)
			break
		}
	}
	for i := range filled {
		require.NoError(t, m.SetMemberMetadata(fmt.Sprintf("%0256d", i), ""))
	}

	startWF(t, m, "wf-1", nil, "A")
	waitStatus(t, m, "wf-1", graft.WorkflowStateCompleted)
	awaitMetrics(t, m, func(mt graft.ClusterMetrics) bool { return mt.CompletedWorkflows == 1 })
	info := m.GetClusterInfo()
	require.Len(t, info.Members, 1)
	self := info.Members[0]
	require.Equal(t, "n1", self.ID)
	require.Equal(t, "alive", self.Status)
	require.Equal(t, cfg.BindAddr, self.RaftAddr)
	require.Equal(t, []string{"A"}, self.NodeTypes)
	require.Equal(t, "eu-west-1a", self.Metadata["zone"])
	require.Equal(t, uint64(1), self.Incarnation)
	require.Equal(t, []uint64{1, 2}, self.ShardsHeld)
	require.Equal(t, []uint64{1, 2}, self.ShardsLed)
	require.Equal(t, uint64(1), self.Counters.WorkflowsCompleted)

	require.NoError(t, m.Stop())
	m2 := graft.NewWithConfig(cfg)
	require.NoError(t, m2.RegisterNode(&seqNode{"A", ""}))
	require.NoError(t, m2.Start(ctx, 0))
	t.Cleanup(func() { require.NoError(t, m2.Stop()) })
	self = m2.GetClusterInfo().Members[0]
	require.Equal(t, uint64(2), self.Incarnation)
	require.Equal(t, "eu-west-1a", self.Metadata["zone"])
	require.Equal(t, uint64(1), self.Counters.WorkflowsCompleted)
	require.Equal(t, 1, m2.GetClusterInfo().Metrics.CompletedWorkflows)
}

// describeMembers reports each member's shards led and counters, for
// failure messages.
func describeMembers(members []*clusterMember) string {
	var b strings.Builder
	for _, cm := range members {
		info := cm.m.GetClusterInfo()
		fmt.Fprintf(&b, "\n%s leads %v:", cm.cfg.NodeID, info.LeadShards)
		for _, mi := range info.Members {
			fmt.Fprintf(&b, " %s(%d.%d %+v)", mi.ID, mi.Incarnation, mi.Version, mi.Counters)
		}
	}
	return b.String()
}
