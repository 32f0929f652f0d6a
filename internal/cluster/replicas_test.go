package cluster

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/internal/loopback"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/shards"
	"github.com/stretchr/testify/require"
)

// hostOnly is the Local of a member that is only its shards.
type hostOnly struct{ h *shards.Host }

func (l hostOnly) Storage() (*shards.Host, error)          { return l.h, nil }
func (l hostOnly) Running() (*shards.Host, error)          { return l.h, nil }
func (hostOnly) AwaitLeader(context.Context, uint64) error { return nil }
func (hostOnly) SyncLeader(uint64)                         {}
func (hostOnly) LetGo(uint64) error                        { return nil }
func (hostOnly) Forget(uint64)                             {}
func (hostOnly) CallerID(context.Context) (string, bool)   { return "", false }
func (hostOnly) Joining()                                  {}

// A member learns that its replica 3 of a shard was removed (over an RPC,
// from the others) while the shard's leader added it anew as replica 5,
// which replaced 3 here meanwhile. Dropping "the replica of the shard" then
// deleted replica 5, the one the shard had just added, for its
// predecessor's removal; drop now names the replica and spares 5. Asked to
// drop 5 itself, it does.
func TestDropSparesTheReplicaThatReplacedTheRemovedOne(t *testing.T) {
	t.Parallel()
	var ports loopback.Ports
	addr, err := ports.Addr()
	require.NoError(t, err)
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	h, err := shards.NewHost(shards.Config{NodeID: "n1", RaftAddress: addr, DataDir: dir, Logger: log,
		NewLogic: func(s uint64) shards.Logic { return wf.NewLogic(s, nil) }})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	require.NoError(t, h.StartShard(1, 5, map[uint64]string{5: h.NodeHostID()}, false))
	require.Eventually(t, func() bool { return h.IsLeader(1) }, 20*time.Second, 5*time.Millisecond)

	bus := events.NewBus(events.Options{Logger: log})
	t.Cleanup(func() { require.NoError(t, bus.Close(context.Background())) })
	dropped := make(chan uint64, 8)
	bus.SubscribeAll(func(ev any) {
		if e, ok := ev.(*events.ShardMovedEvent); ok && e.Move == events.ReplicaDropped {
			dropped <- e.ReplicaID
		}
	})
	c := &Cluster{cfg: Config{NodeID: "n1", DataDir: dir}, local: hostOnly{h}, log: log, bus: bus, timing: DefaultRebalanceTiming(),
		leaderless: map[uint64]time.Time{}}
	c.layout.Store(&layout{Replicas: map[uint64]uint64{1: 5}})

	c.drop(context.Background(), 1, 3, "removed from the shard while away")
	rid, ok := h.ReplicaID(1)
	require.True(t, ok, "replica 5 was dropped for replica 3's removal")
	require.EqualValues(t, 5, rid)
	require.Equal(t, map[uint64]uint64{1: 5}, c.currentLayout().Replicas)

	c.drop(context.Background(), 1, 5, "removed from the shard")
	_, ok = h.ReplicaID(1)
	require.False(t, ok)
	require.Empty(t, c.currentLayout().Replicas)
	select {
	case r := <-dropped:
		require.EqualValues(t, 5, r, "the drop of replica 5 is published")
	case <-time.After(5 * time.Second):
		t.Fatal("the drop of replica 5 was not published")
	}
	require.Empty(t, dropped, "only replica 5 was dropped")
}
