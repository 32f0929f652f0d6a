package shards

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Data directories written before Graft had its own node registry name
// replicas by Raft address in their committed memberships and keep a
// random NodeHost ID. Restarted on the current code they keep working:
// address targets resolve to themselves, batches now carry NodeHost IDs,
// replicas added afterwards are named by NodeHost ID, and a second
// restart still works.
func TestRestartOnAddressTargetDataDirectories(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	const shard = 3
	cfgs := make([]Config, 3)
	addrs := map[uint64]string{}
	for i := range cfgs {
		cfgs[i] = Config{DataDir: t.TempDir(), RaftAddress: freeAddr(t), SnapshotEntries: 20, CompactionOverhead: 5}
		addrs[uint64(i+1)] = cfgs[i].RaftAddress
	}

	// Written as earlier versions did.
	old := make([]*testNode, 3)
	for i, cfg := range cfgs {
		cfg.addressTargets = true
		old[i] = newTestNode(t, fmt.Sprintf("n%d", i+1), cfg)
	}
	for i, n := range old {
		require.NoError(t, n.h.StartShard(shard, uint64(i+1), addrs, false))
	}
	waitLeader(t, old[0].h, shard)
	for i := range 40 { // past SnapshotEntries: a snapshot records the membership too
		_, err := old[0].h.Propose(ctx, shard, fmt.Appendf(nil, "k%d=%d", i, i))
		require.NoError(t, err)
	}
	oldIDs := make([]string, 3)
	for i, n := range old {
		oldIDs[i] = n.h.NodeHostID()
		require.NotEqual(t, NodeHostIDOf(fmt.Sprintf("n%d", i+1)), oldIDs[i])
		require.NoError(t, n.h.Close())
	}

	// Restarted on the current code.
	dir := &testDir{}
	restart := func(i int) *testNode {
		cfg := cfgs[i]
		cfg.Directory = dir
		n := newTestNode(t, fmt.Sprintf("n%d", i+1), cfg)
		require.Equal(t, oldIDs[i], n.h.NodeHostID(), "the recorded NodeHost ID is kept")
		require.NoError(t, n.h.StartShard(shard, uint64(i+1), nil, false))
		return n
	}
	nodes := make([]*testNode, 4)
	for i := range 3 {
		nodes[i] = restart(i)
	}
	waitLeader(t, nodes[0].h, shard)
	for i := 40; i < 60; i++ {
		_, err := nodes[1].h.Propose(ctx, shard, fmt.Appendf(nil, "k%d=%d", i, i))
		require.NoError(t, err)
	}
	mem, err := nodes[0].h.Membership(ctx, shard)
	require.NoError(t, err)
	require.Equal(t, addrs, mem.Replicas, "the committed membership names replicas by address")

	// A replica added now is named by NodeHost ID, beside the address
	// targets, and catches up.
	nodes[3] = newTestNode(t, "n4", Config{Directory: dir, SnapshotEntries: 20, CompactionOverhead: 5})
	require.Equal(t, NodeHostIDOf("n4"), nodes[3].h.NodeHostID(), "a new data directory gets the derived ID")
	require.NoError(t, nodes[0].h.AddReplica(ctx, shard, 4, nodes[3].target(), mem.ConfigChangeID))
	require.NoError(t, nodes[3].h.StartShard(shard, 4, nil, true))
	requireKeys(t, nodes[3], shard, 60)
	mem, err = nodes[0].h.Membership(ctx, shard)
	require.NoError(t, err)
	require.NoError(t, nodes[0].h.RemoveReplica(ctx, shard, 3, mem.ConfigChangeID))
	// The removal is committed: n3's replica may go (whether or not it
	// heard of its removal before the leader stopped sending to it).
	require.NoError(t, nodes[2].h.DropShard(ctx, shard))

	// Restarted once more: the mixed membership still works.
	require.NoError(t, nodes[0].h.Close())
	nodes[0] = restart(0)
	for i := 60; i < 80; i++ {
		_, err := nodes[0].h.Propose(ctx, shard, fmt.Appendf(nil, "k%d=%d", i, i))
		require.NoError(t, err)
	}
	for _, n := range []*testNode{nodes[0], nodes[1], nodes[3]} {
		requireKeys(t, n, shard, 80)
	}
	mem, err = nodes[0].h.Membership(ctx, shard)
	require.NoError(t, err)
	require.Equal(t, map[uint64]string{1: addrs[1], 2: addrs[2], 4: NodeHostIDOf("n4")}, mem.Replicas)
	for _, n := range nodes {
		require.Zero(t, n.h.TransportStats().AddressConflicts, "no target conflicted")
	}
}

// requireKeys checks that n's replica of shard holds k0..k(n-1) (a
// proposal retried under load may be applied twice, so the command count
// may exceed n).
func requireKeys(t *testing.T, n *testNode, shard uint64, count int) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	for i := range count {
		got, err := n.h.Read(ctx, shard, fmt.Appendf(nil, "kv/k%d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), string(got), "key k%d on %s", i, n.cfg.NodeID)
	}
}
