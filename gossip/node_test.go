package gossip

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClusterForms(t *testing.T) {
	t.Parallel()
	ids := []string{"c1", "c2", "c3"}
	start := time.Now()
	nodes := startCluster(t, ids, func(c *Config) { c.Tags = map[string]string{"role": "worker"} })
	t.Logf("3-member cluster formed in %s", time.Since(start))

	for _, n := range nodes {
		ms := n.Members()
		require.Len(t, ms, 3)
		for _, m := range ms {
			require.Equal(t, StatusAlive, m.Status)
			require.Equal(t, "127.0.0.1", m.Addr)
			require.NotZero(t, m.Port)
			require.Equal(t, "worker", m.Tags["role"])
		}
		c, ok := n.Coordinator()
		require.True(t, ok)
		require.Equal(t, "c1", c.ID)
	}

	// Tag updates reach the others.
	require.NoError(t, nodes[2].SetTags(map[string]string{"role": "gpu"}))
	require.Eventually(t, func() bool {
		for _, m := range nodes[0].Members() {
			if m.ID == "c3" {
				return m.Tags["role"] == "gpu"
			}
		}
		return false
	}, waitFor, 10*time.Millisecond)
}

// A tag update still being broadcast when Serf's BroadcastTimeout passes
// is applied and reaches the others, so SetTags reports success. (Ten
// members starting at once on two loaded cores took longer than the 5s
// default, and the member's Start failed.)
func TestSetTagsOutlastingTheBroadcastTimeout(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, []string{"b1", "b2"}, func(c *Config) { c.broadcastTimeout = time.Nanosecond })
	require.NoError(t, nodes[1].SetTags(map[string]string{"role": "gpu"}))
	require.Eventually(t, func() bool {
		for _, m := range nodes[0].Members() {
			if m.ID == "b2" {
				return m.Tags["role"] == "gpu"
			}
		}
		return false
	}, waitFor, 10*time.Millisecond)

	// Tags Serf refuses are still an error, and the old ones stay.
	err := nodes[1].SetTags(map[string]string{"role": strings.Repeat("x", 600)})
	require.ErrorContains(t, err, "setting tags")
	local, ok := nodes[1].LocalMember()
	require.True(t, ok)
	require.Equal(t, "gpu", local.Tags["role"])
}

func TestLeaveAndFailedEvents(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, []string{"e1", "e2", "e3", "e4"}, nil)
	rec := record(t, nodes[0])

	// Graceful stop: the others see a Leave.
	require.NoError(t, nodes[3].Stop())
	rec.waitEvent(t, EventLeave, "e4")
	waitMembers(t, nodes[:3], []string{"e1", "e2", "e3"})
	// Serf's leave intent and memberlist's dead notice travel separately;
	// when the notice wins, Serf reports Failed first, then the Leave.
	if _, failed := rec.find(EventFailed, "e4"); failed {
		t.Log("e4's graceful leave was first seen as a failure (Serf race), then as a leave")
	}

	// Hard shutdown: the others see a Failed.
	killed := time.Now()
	require.NoError(t, nodes[2].Close())
	ev := rec.waitEvent(t, EventFailed, "e3")
	t.Logf("failure detected after %s", ev.At.Sub(killed))
	require.Equal(t, StatusFailed, ev.Member.Status)
	waitMembers(t, nodes[:2], []string{"e1", "e2"})
}

func TestCoordinatorChangesWhenLowestLeaves(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, []string{"k1", "k2", "k3"}, nil)
	for _, n := range nodes {
		c, _ := n.Coordinator()
		require.Equal(t, "k1", c.ID)
	}
	require.NoError(t, nodes[0].Leave(context.Background()))
	require.Eventually(t, func() bool {
		for _, n := range nodes[1:] {
			if c, ok := n.Coordinator(); !ok || c.ID != "k2" {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond)
	// After Leave, Stop only shuts down.
	require.NoError(t, nodes[0].Stop())
}

func TestRestartedMemberRejoins(t *testing.T) {
	t.Parallel()
	ids := []string{"r1", "r2", "r3"}
	nodes := startCluster(t, ids, nil)
	peers := []string{addrOf(t, nodes[0]), addrOf(t, nodes[1])}
	local, _ := nodes[2].LocalMember()
	rec := record(t, nodes[0])

	require.NoError(t, nodes[2].Close()) // crash, no leave
	rec.waitEvent(t, EventFailed, "r3")

	// Same NodeID, same port, new Node: it rejoins by itself.
	cfg := testConfig(t, "r3", peers...)
	cfg.BindPort = local.Port
	start := time.Now()
	restarted := startNode(t, cfg)
	waitMembers(t, []*Node{nodes[0], nodes[1], restarted}, ids)
	t.Logf("restarted member alive again everywhere after %s", time.Since(start))
	ev := rec.waitEvent(t, EventJoin, "r3")
	require.Equal(t, local.Port, ev.Member.Port)
}

func TestFailedPeerIsRejoined(t *testing.T) {
	t.Parallel()
	// r2 only knows r1 through discovery; r1 knows nobody. When r2 crashes
	// and comes back without discovery (SnapshotPath-free, no peers), only
	// r1's rejoin loop (which retries failed members) can bring it back.
	nodes := startCluster(t, []string{"f1", "f2"}, nil)
	local, _ := nodes[1].LocalMember()
	require.NoError(t, nodes[1].Close())
	require.Eventually(t, func() bool { return len(nodes[0].Members()) == 1 }, waitFor, 10*time.Millisecond)
	// The crashed member is still known, as failed, with its tags.
	all := nodes[0].AllMembers()
	require.Len(t, all, 2)
	require.Equal(t, "f2", all[1].ID)
	require.Equal(t, StatusFailed, all[1].Status)
	require.Nil(t, (&Node{}).AllMembers())

	cfg := testConfig(t, "f2") // no peers at all
	cfg.BindPort = local.Port
	restarted := startNode(t, cfg)
	waitMembers(t, []*Node{nodes[0], restarted}, []string{"f1", "f2"})
}

func TestSnapshotRejoin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nodes := startCluster(t, []string{"s1", "s2"}, func(c *Config) {
		if c.NodeID == "s2" {
			c.SnapshotPath = dir + "/serf.snapshot"
		}
		c.RejoinInterval = time.Hour // only the snapshot can bring s2 back
	})
	local, _ := nodes[1].LocalMember()
	require.NoError(t, nodes[1].Close())
	require.Eventually(t, func() bool { return len(nodes[0].Members()) == 1 }, waitFor, 10*time.Millisecond)

	cfg := testConfig(t, "s2") // no discovery: the snapshot knows s1
	cfg.BindPort = local.Port
	cfg.SnapshotPath = dir + "/serf.snapshot"
	cfg.RejoinInterval = time.Hour
	restarted := startNode(t, cfg)
	waitMembers(t, []*Node{nodes[0], restarted}, []string{"s1", "s2"})
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	n, err := New(testConfig(t, "l1"))
	require.NoError(t, err)
	require.Nil(t, n.Members())
	_, ok := n.Coordinator()
	require.False(t, ok)
	_, ok = n.LocalMember()
	require.False(t, ok)
	require.ErrorIs(t, n.Leave(ctx), ErrNotStarted)
	require.ErrorIs(t, n.SetTags(nil), ErrNotStarted)
	_, err = n.Query(ctx, "q", nil)
	require.ErrorIs(t, err, ErrNotStarted)

	require.NoError(t, n.Start(ctx))
	require.ErrorIs(t, n.Start(ctx), ErrAlreadyStarted)
	require.Equal(t, []string{"l1"}, memberIDs(n))
	c, ok := n.Coordinator()
	require.True(t, ok)
	require.Equal(t, "l1", c.ID)
	ev := <-n.Events()
	require.Equal(t, EventJoin, ev.Kind)
	require.Equal(t, "l1", ev.Member.ID)

	require.NoError(t, n.Stop())
	require.NoError(t, n.Stop())
	require.NoError(t, n.Close())
	require.ErrorIs(t, n.Start(ctx), ErrClosed)
	require.ErrorIs(t, n.Leave(ctx), ErrClosed)
	require.ErrorIs(t, n.Broadcast("x", nil), ErrClosed)
	require.Nil(t, n.Members())
	for range n.Events() { // buffered events, then closed
	}

	// Stop on a never-started Node, then Close.
	n2, err := New(testConfig(t, "l2"))
	require.NoError(t, err)
	require.NoError(t, n2.Stop())
	require.NoError(t, n2.Close())
	require.ErrorIs(t, n2.Start(ctx), ErrClosed)

	// Close then Stop, concurrently with Leave.
	n3 := startNode(t, testConfig(t, "l3"))
	done := make(chan error, 1)
	go func() { done <- n3.Leave(ctx) }()
	require.NoError(t, n3.Close())
	require.NoError(t, n3.Stop())
	<-done
}

func TestStartFailsOnBusyPort(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig(t, "p1"))
	local, _ := a.LocalMember()
	cfg := testConfig(t, "p2")
	cfg.BindPort = local.Port
	b, err := New(cfg)
	require.NoError(t, err)
	require.ErrorContains(t, b.Start(context.Background()), "binding gossip port")
	// A failed bind leaves the Node startable: free the port and retry.
	require.NoError(t, a.Close())
	require.NoError(t, b.Start(context.Background()))
	got, _ := b.LocalMember()
	require.Equal(t, local.Port, got.Port)
	require.NoError(t, b.Stop())
	require.ErrorIs(t, b.Start(context.Background()), ErrClosed)
}

func TestEventsDropWhenNobodyReads(t *testing.T) {
	t.Parallel()
	n, err := New(testConfig(t, "d1"))
	require.NoError(t, err)
	// Fill the channel directly; emit must not block.
	for range DefaultEventBuffer + 5 {
		n.emit(Event{Kind: EventUpdate})
	}
	m, _, _ := n.DroppedEvents()
	require.Equal(t, uint64(5), m)
	require.NoError(t, n.Stop())
}
