package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/testlog"
	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitFor = 15 * time.Second

// fastMemberlist shortens memberlist's timers for loopback tests. With 3
// members a silent member is suspected after one failed probe round
// (ProbeInterval+ProbeTimeout) and declared failed after the suspicion
// timeout (SuspicionMult × ProbeInterval = 400ms).
func fastMemberlist(c *memberlist.Config) {
	local := memberlist.DefaultLocalConfig()
	c.TCPTimeout = 500 * time.Millisecond
	c.IndirectChecks = local.IndirectChecks
	c.RetransmitMult = local.RetransmitMult
	c.SuspicionMult = 2
	c.SuspicionMaxTimeoutMult = 2
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = 2 * time.Second
	c.GossipToTheDeadTime = 2 * time.Second
}

func testLogger(t *testing.T, id string) *slog.Logger {
	t.Helper()
	return testlog.Logger(t, "["+id+"] ", slog.LevelInfo)
}

func testConfig(t *testing.T, id string, peers ...string) Config {
	t.Helper()
	return Config{
		NodeID:              id,
		BindAddr:            "127.0.0.1",
		Discovery:           []Discoverer{Static(peers...)},
		JoinRetryMin:        50 * time.Millisecond,
		JoinRetryMax:        500 * time.Millisecond,
		RejoinInterval:      300 * time.Millisecond,
		LeavePropagateDelay: 100 * time.Millisecond,
		MemberlistConfig:    fastMemberlist,
		Logger:              testLogger(t, id),
	}
}

// startNode starts a Node and registers Stop as cleanup.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func addrOf(t *testing.T, n *Node) string {
	t.Helper()
	m, ok := n.LocalMember()
	require.True(t, ok)
	return m.Address()
}

// startCluster starts len(ids) members; each joins the ones started before
// it. It returns once every member sees all of them alive.
func startCluster(t *testing.T, ids []string, mutate func(*Config)) []*Node {
	t.Helper()
	var nodes []*Node
	var addrs []string
	for _, id := range ids {
		cfg := testConfig(t, id, addrs...)
		if mutate != nil {
			mutate(&cfg)
		}
		n := startNode(t, cfg)
		nodes = append(nodes, n)
		addrs = append(addrs, addrOf(t, n))
	}
	waitMembers(t, nodes, ids)
	return nodes
}

func memberIDs(n *Node) []string {
	var ids []string
	for _, m := range n.Members() {
		ids = append(ids, m.ID)
	}
	return ids
}

// waitMembers waits until every node in nodes sees exactly want alive.
func waitMembers(t *testing.T, nodes []*Node, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if !slices.Equal(memberIDs(n), want) {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "members never converged to %v", want)
}

// recorder collects a Node's membership events until the Node stops.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func record(t *testing.T, n *Node) *recorder {
	t.Helper()
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range n.Events() {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = n.Stop()
		<-done
	})
	return r
}

func (r *recorder) find(kind EventKind, id string) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.evs {
		if ev.Kind == kind && ev.Member.ID == id {
			return ev, true
		}
	}
	return Event{}, false
}

func (r *recorder) waitEvent(t *testing.T, kind EventKind, id string) Event {
	t.Helper()
	var ev Event
	require.Eventually(t, func() bool {
		var ok bool
		ev, ok = r.find(kind, id)
		return ok
	}, waitFor, 10*time.Millisecond, "no %s event for %s", kind, id)
	return ev
}

// userLog collects user events delivered to a Node's handler.
type userLog struct {
	mu  sync.Mutex
	got []string // "name|payload|from"
}

func (l *userLog) handler(name string, payload []byte, from string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf("%s|%s|%s", name, payload, from))
}

func (l *userLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.got, s)
}

// requireAllocBound runs f once and fails if the bytes it allocated exceed
// 16×inputLen + extra + 64 KiB: a decoder of peer bytes may allocate in
// proportion to what it was sent (plus a fixed budget, e.g. a decompression
// limit), never by what the bytes claim.
func requireAllocBound(t *testing.T, inputLen, extra int, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	bound := uint64(16*inputLen + extra + 64<<10)
	require.LessOrEqual(t, allocated, bound, "decoding %d bytes allocated %d bytes", inputLen, allocated)
}
