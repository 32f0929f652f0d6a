package rebalance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/stretchr/testify/require"
)

// fakeShards is a Raft host with one shard whose membership changes commit
// at once. It records every call.
type fakeShards struct {
	mem   Membership
	calls []string
}

var _ Shards = (*fakeShards)(nil)

func (f *fakeShards) Membership(context.Context, uint64) (Membership, error) {
	return Membership{ConfigChangeID: f.mem.ConfigChangeID, Replicas: maps.Clone(f.mem.Replicas), Removed: maps.Clone(f.mem.Removed)}, nil
}

func (f *fakeShards) AddReplica(_ context.Context, shard, replica uint64, addr string, cc uint64) error {
	f.calls = append(f.calls, fmt.Sprintf("add %d/%d at %s", shard, replica, addr))
	if cc != f.mem.ConfigChangeID {
		return errors.New("stale config")
	}
	f.mem.ConfigChangeID++
	f.mem.Replicas[replica] = addr
	return nil
}

func (f *fakeShards) RemoveReplica(_ context.Context, shard, replica, cc uint64) error {
	f.calls = append(f.calls, fmt.Sprintf("remove %d/%d", shard, replica))
	if cc != f.mem.ConfigChangeID {
		return errors.New("stale config")
	}
	f.mem.ConfigChangeID++
	delete(f.mem.Replicas, replica)
	f.mem.Removed[replica] = struct{}{}
	return nil
}

func (f *fakeShards) TransferLeader(shard, replica uint64) error {
	f.calls = append(f.calls, fmt.Sprintf("transfer %d/%d", shard, replica))
	return nil
}

// fakePeers answers confirmations: replicas in lost are not held, those in
// silent do not answer. It records every call in the shared list.
type fakePeers struct {
	calls  *[]string
	lost   map[uint64]bool
	silent map[uint64]bool
}

var _ Peers = fakePeers{}

func (p fakePeers) Confirm(_ context.Context, member string, shard, replica uint64, isNew bool) error {
	*p.calls = append(*p.calls, fmt.Sprintf("confirm %d/%d on %s new=%t", shard, replica, member, isNew))
	switch {
	case p.lost[replica]:
		return fmt.Errorf("asking %s: %w", member, ErrNotHeld)
	case p.silent[replica]:
		return context.DeadlineExceeded
	}
	return nil
}

func (p fakePeers) TellRemoved(_ context.Context, member string, shard, replica uint64) {
	*p.calls = append(*p.calls, fmt.Sprintf("tell %s %d/%d removed", member, shard, replica))
}

// recorder collects published events.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Publish(ev any) {
	e := ev.(*events.ShardMovedEvent)
	r.mu.Lock()
	r.got = append(r.got, fmt.Sprintf("%d/%d %s %s: %s", e.ShardID, e.ReplicaID, e.NodeID, e.Move, e.Reason))
	r.mu.Unlock()
}

// testBundle is a Reconciler led by n1 over a fake host and a fake clock.
type testBundle struct {
	r      *Reconciler
	shards *fakeShards
	peers  fakePeers
	events *recorder
	now    time.Time
}

func setup(t *testing.T, replicas map[uint64]string) *testBundle {
	t.Helper()
	b := &testBundle{shards: &fakeShards{mem: Membership{ConfigChangeID: 1, Replicas: replicas, Removed: map[uint64]struct{}{}}},
		events: &recorder{}, now: epoch}
	b.peers = fakePeers{calls: &b.shards.calls, lost: map[uint64]bool{}, silent: map[uint64]bool{}}
	b.r = NewReconciler(Config{Self: "n1", Shards: b.shards, FailureGrace: 30 * time.Second,
		Now: func() time.Time { return b.now }, Events: b.events})
	return b
}

// members returns n1..n<n>, alive.
func members(n int) []Member {
	var out []Member
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		out = append(out, Member{ID: id, Target: raftAddr(id), Status: Alive})
	}
	return out
}

// pass runs one Reconcile of shard 1 and returns the calls it made.
func (b *testBundle) pass(t *testing.T, placed []string, ms []Member) []string {
	t.Helper()
	b.shards.calls = nil
	require.NoError(t, b.r.Reconcile(context.Background(), 1, placed, b.r.Observe(ms), b.peers))
	return b.shards.calls
}

func TestReconcilerMovesAReplica(t *testing.T) {
	t.Parallel()
	b := setup(t, map[uint64]string{1: "n1.raft", 2: "n2.raft", 3: "n3.raft"})
	ms := members(4)
	placed := []string{"n1", "n2", "n4"}

	// Pass 1 adds replica 4 on n4 and asks n4 to start it (new).
	require.Equal(t, []string{"add 1/4 at n4.raft", "confirm 1/4 on n4 new=true"}, b.pass(t, placed, ms))
	// Pass 2 confirms n2 (n4 confirmed already), then removes n3 and tells it.
	require.Equal(t, []string{"confirm 1/2 on n2 new=false", "remove 1/3", "tell n3 1/3 removed"}, b.pass(t, placed, ms))
	// Pass 3: placed and led by n1.
	require.Empty(t, b.pass(t, placed, ms))
	require.Equal(t, []string{"1/4 n4 added: placed", "1/3 n3 removed: no longer placed"}, b.events.got)

	// Confirmations expire after DefaultConfirmTTL: asked again.
	b.now = b.now.Add(DefaultConfirmTTL)
	require.Equal(t, []string{"confirm 1/2 on n2 new=false", "confirm 1/4 on n4 new=false"}, b.pass(t, placed, ms))
}

func TestReconcilerNewReplicaAskedAsNewUntilConfirmed(t *testing.T) {
	t.Parallel()
	b := setup(t, map[uint64]string{1: "n1.raft", 2: "n2.raft", 3: "n3.raft"})
	b.peers.silent[4] = true
	ms := members(4)
	placed := []string{"n1", "n2", "n4"}
	require.Equal(t, []string{"add 1/4 at n4.raft", "confirm 1/4 on n4 new=true"}, b.pass(t, placed, ms))
	// n4 does not answer: n3 stays, and n4 is asked again as new.
	require.Equal(t, []string{"confirm 1/2 on n2 new=false", "confirm 1/4 on n4 new=true"}, b.pass(t, placed, ms))
	delete(b.peers.silent, 4)
	require.Equal(t, []string{"confirm 1/4 on n4 new=true", "remove 1/3", "tell n3 1/3 removed"}, b.pass(t, placed, ms))
}

func TestReconcilerReplacesALostReplica(t *testing.T) {
	t.Parallel()
	b := setup(t, map[uint64]string{1: "n1.raft", 2: "n2.raft", 3: "n3.raft"})
	b.peers.lost[2] = true
	ms := members(3)
	placed := []string{"n1", "n2", "n3"}
	require.Equal(t, []string{"confirm 1/2 on n2 new=false", "remove 1/2"}, b.pass(t, placed, ms))
	delete(b.peers.lost, 2)
	require.Equal(t, []string{"add 1/4 at n2.raft", "confirm 1/4 on n2 new=true"}, b.pass(t, placed, ms))
	require.Equal(t, []string{"1/2 n2 removed: its member does not hold it", "1/4 n2 added: placed"}, b.events.got)
}

func TestReconcilerHandsLeadershipAwayBeforeLeaving(t *testing.T) {
	t.Parallel()
	b := setup(t, map[uint64]string{1: "n1.raft", 2: "n2.raft", 3: "n3.raft"})
	ms := members(3)
	placed := []string{"n2", "n3"}
	require.Equal(t, []string{"confirm 1/2 on n2 new=false", "confirm 1/3 on n3 new=false", "transfer 1/2"}, b.pass(t, placed, ms))
	require.Empty(t, b.events.got, "nothing removed yet")
}

func TestReconcilerObservesFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, map[uint64]string{1: "n1.raft", 2: "n2.raft", 3: "n3.raft"})
	ms := members(3)
	placed := []string{"n1", "n2", "n3"}
	require.Equal(t, []string{"confirm 1/2 on n2 new=false", "confirm 1/3 on n3 new=false"}, b.pass(t, placed, ms))

	// n3 fails: its grace starts when first seen so, and nothing moves.
	ms[2].Status = Failed
	seen := b.r.Observe(ms)
	require.Equal(t, b.now, seen["n3"].FailedSince)
	require.Equal(t, []string{"n1", "n2", "n3"}, b.r.Eligible(seen))
	b.now = b.now.Add(29 * time.Second)
	require.Empty(t, b.pass(t, []string{"n1", "n2", "n3"}, ms))
	require.Equal(t, epoch, b.r.Observe(ms)["n3"].FailedSince, "the grace runs from the first sighting")

	// Back within its grace: every replica is confirmed again (a member
	// back may have lost its data).
	ms[2].Status = Alive
	require.Equal(t, []string{"confirm 1/2 on n2 new=false", "confirm 1/3 on n3 new=false"}, b.pass(t, placed, ms))

	// Failed past the grace: out of the placement, its replica removed.
	ms[2].Status = Failed
	b.r.Observe(ms)
	b.now = b.now.Add(30 * time.Second)
	require.Equal(t, []string{"n1", "n2"}, b.r.Eligible(b.r.Observe(ms)))
	require.Equal(t, []string{"remove 1/3"}, b.pass(t, []string{"n1", "n2"}, ms))
	require.Equal(t, []string{"1/3 n3 removed: failed for 30s"}, b.events.got)
}

func TestReconcilerTimesUnknownAddresses(t *testing.T) {
	t.Parallel()
	b := setup(t, map[uint64]string{1: "n1.raft", 2: "n2.raft", 3: "10.0.0.9:7000"})
	ms := members(2)
	placed := []string{"n1", "n2"}
	require.Empty(t, b.pass(t, placed, ms), "an unknown address blocks adds during the grace")
	b.now = b.now.Add(30 * time.Second)
	require.Equal(t, []string{"remove 1/3"}, b.pass(t, placed, ms))
	require.Equal(t, []string{"1/3  removed: no member has its target for 30s"}, b.events.got)
}
