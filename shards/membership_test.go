package shards

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMoveReplica moves shard 7 from {n1,n2,n3} to {n1,n2,n4} the way a
// rebalancer does: add n4 (which catches up from a snapshot of compacted
// log), remove n3, drop n3's data. It then adds n3 back under a new
// replica ID, which starts from the shard's state, not from the stale
// state n3 held before.
func TestMoveReplica(t *testing.T) {
	t.Parallel()
	cfg := Config{SnapshotEntries: 20, CompactionOverhead: 5, Directory: &testDir{}}
	nodes := make([]*testNode, 4)
	addrs := map[uint64]string{}
	for i := range nodes {
		nodes[i] = newTestNode(t, fmt.Sprintf("n%d", i+1), cfg)
		if i < 3 {
			addrs[uint64(i+1)] = nodes[i].target()
		}
	}
	for i, n := range nodes[:3] {
		require.NoError(t, n.h.StartShard(7, uint64(i+1), addrs, false))
	}
	waitLeader(t, nodes[0].h, 7)
	ctx := testCtx(t, 60*time.Second)
	for i := range 100 {
		_, err := nodes[0].h.Propose(ctx, 7, fmt.Appendf(nil, "k%d=%d", i, i))
		require.NoError(t, err)
	}

	mem, err := nodes[0].h.Membership(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, mem.ReplicaIDs())
	leader, _ := nodes[1].h.LeaderID(7)
	require.Equal(t, map[uint64]string{7: mem.Replicas[leader]}, nodes[1].h.LeaderTargets())
	require.Empty(t, nodes[3].h.LeaderTargets(), "n4 does not host shard 7 yet")
	require.Equal(t, uint64(4), mem.NextReplicaID())
	require.NoError(t, nodes[0].h.AddReplica(ctx, 7, 4, nodes[3].target(), mem.ConfigChangeID))
	// A second change based on the same (now stale) membership is refused.
	err = nodes[0].h.AddReplica(ctx, 7, 5, NodeHostIDOf("n5"), mem.ConfigChangeID)
	require.ErrorIs(t, err, ErrNotReady)

	require.NoError(t, nodes[3].h.StartShard(7, 4, nil, true))
	got, err := nodes[3].h.Read(ctx, 7, []byte("n"))
	require.NoError(t, err)
	require.Equal(t, "100", string(got), "the added replica caught up")

	mem, err = nodes[0].h.Membership(ctx, 7)
	require.NoError(t, err)
	require.NoError(t, nodes[0].h.RemoveReplica(ctx, 7, 3, mem.ConfigChangeID))
	waitFor(t, 10*time.Second, "n3 to learn its removal", func() bool { return nodes[2].h.Removed(7) })
	require.NoError(t, nodes[2].h.DropShard(ctx, 7))
	_, err = nodes[2].h.Propose(ctx, 7, []byte("x=1"))
	require.ErrorIs(t, err, ErrShardNotFound)
	_, err = nodes[2].h.LocalRead(7, []byte("n"))
	require.ErrorIs(t, err, ErrShardNotFound)
	require.NoError(t, nodes[2].h.DropShard(ctx, 7), "dropping twice is a no-op")

	for i := 100; i < 150; i++ {
		_, err := nodes[1].h.Propose(ctx, 7, fmt.Appendf(nil, "k%d=%d", i, i))
		require.NoError(t, err)
	}
	mem, err = nodes[0].h.Membership(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 4}, mem.ReplicaIDs())
	require.Contains(t, mem.Removed, uint64(3))
	require.Equal(t, uint64(5), mem.NextReplicaID(), "removed IDs are never reused")

	// n3 comes back as replica 5 and converges on the current state.
	require.NoError(t, nodes[0].h.AddReplica(ctx, 7, 5, nodes[2].target(), mem.ConfigChangeID))
	require.NoError(t, nodes[2].h.StartShard(7, 5, nil, true))
	got, err = nodes[2].h.Read(ctx, 7, []byte("n"))
	require.NoError(t, err)
	require.Equal(t, "150", string(got))
	hash0, applied0, err := nodes[0].h.StateHash(7)
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "the re-added replica to converge", func() bool {
		h, a, err := nodes[2].h.StateHash(7)
		return err == nil && h == hash0 && a == applied0
	})
	id, ok := nodes[2].h.ReplicaID(7)
	require.True(t, ok)
	require.Equal(t, uint64(5), id)

	// Leadership moves on request (retried: transfers may not happen).
	waitFor(t, 10*time.Second, "leadership on replica 5", func() bool {
		if nodes[2].h.IsLeader(7) {
			return true
		}
		if leader, ok := nodes[0].h.LeaderID(7); ok {
			for _, n := range nodes {
				if rid, ok := n.h.ReplicaID(7); ok && rid == leader {
					_ = n.h.TransferLeader(7, 5)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
		return false
	})
}
