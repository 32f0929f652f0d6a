package member

import (
	"context"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

func TestLeaderViewNext(t *testing.T) {
	type obs struct {
		src          leaderSource
		term, leader uint64
	}
	cases := []struct {
		name    string
		from    leaderView
		obs     obs
		want    leaderView
		current bool
	}{
		{"first event", leaderView{}, obs{fromEvent, 1, 0}, leaderView{term: 1}, true},
		{"a later term wins", leaderView{term: 1}, obs{fromEvent, 2, 1}, leaderView{term: 2, leader: 1, queued: true}, true},
		{"an earlier term is late", leaderView{term: 3, leader: 1, queued: true}, obs{fromEvent, 2, 2}, leaderView{term: 3, leader: 1, queued: true}, false},
		{"a read ahead of the queue", leaderView{term: 1}, obs{fromRead, 2, 1}, leaderView{term: 2, leader: 1}, true},
		{"the election event behind a read", leaderView{term: 2, leader: 1}, obs{fromEvent, 2, 0}, leaderView{term: 2, leader: 1}, false},
		{"the queue catches up with a read", leaderView{term: 2, leader: 1}, obs{fromEvent, 2, 1}, leaderView{term: 2, leader: 1, queued: true}, true},
		{"a step-down after the queued election", leaderView{term: 2, leader: 1, queued: true}, obs{fromEvent, 2, 0}, leaderView{term: 2, queued: true}, true},
		{"a read behind a queued step-down", leaderView{term: 2, queued: true}, obs{fromRead, 2, 1}, leaderView{term: 2, queued: true}, false},
		{"a read of an earlier term", leaderView{term: 4, leader: 2, queued: true}, obs{fromRead, 3, 1}, leaderView{term: 4, leader: 2, queued: true}, false},
		{"a read seeing no leader yet", leaderView{term: 2}, obs{fromRead, 2, 0}, leaderView{term: 2}, false},
		{"a read finds the leader the queue has not", leaderView{term: 2}, obs{fromRead, 2, 3}, leaderView{term: 2, leader: 3}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, current := tc.from.next(tc.obs.src, tc.obs.term, tc.obs.leader)
			require.Equal(t, tc.current, current)
			require.Equal(t, tc.want, got)
		})
	}
}

// gatedStep reports each run's attempt and waits for release.
type gatedStep struct {
	ran     chan int
	release chan struct{}
}

func (n *gatedStep) GetName() string { return "only" }

func (n *gatedStep) Execute(ctx context.Context, s map[string]any, _ map[string]any) (*executor.NodeResult, error) {
	wc, _ := executor.GetWorkflowContext(ctx)
	n.ran <- wc.Attempt
	select {
	case <-n.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &executor.NodeResult{GlobalState: s}, nil
}

// Leader events that Dragonboat's queue delivers after the member read the
// shard's leader directly (at start, under load) must not take leadership
// away and give it back: the engine would re-queue the step it is running,
// and the step would run a second time as attempt 2. This is the
// TestStepErrors/NoRetries flake, made deterministic by delivering the
// election's own events late by hand.
func TestLateLeaderEventsDoNotRerunAStep(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cluster.ShardCount = 1
	m := New(cfg, nil)
	node := &gatedStep{ran: make(chan int, 4), release: make(chan struct{})}
	require.NoError(t, m.RegisterNode(node))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	defer func() { require.NoError(t, m.Stop(nil)) }()
	released := false
	defer func() {
		if !released {
			close(node.release)
		}
	}()

	_, err := m.StartWorkflow(ctx, startCommand("late"))
	require.NoError(t, err)
	select {
	case a := <-node.ran:
		require.Equal(t, 1, a)
	case <-ctx.Done():
		t.Fatal("the step never ran")
	}

	h, err := m.running()
	require.NoError(t, err)
	leader, term, ok := h.Leader(1)
	require.True(t, ok)
	require.NotZero(t, leader)
	// As a lagging queue leaves it: the member knows the leader from its
	// read at start, no event has been delivered. Then the election's
	// events arrive: no leader in the terms before and in the current one,
	// then the leader.
	m.leaderMu.Lock()
	m.leaders[1] = leaderView{term: term, leader: leader}
	m.leaderMu.Unlock()
	for tm := uint64(0); tm < term; tm++ {
		m.onLeaderChange(1, 0, tm)
	}
	m.onLeaderChange(1, 0, term)
	m.onLeaderChange(1, leader, term)

	select {
	case a := <-node.ran:
		t.Fatalf("the step ran again (attempt %d) while its first run was still going", a)
	case <-time.After(time.Second):
	}
	close(node.release)
	released = true
	require.Eventually(t, func() bool {
		a, err := m.Status(ctx, "late")
		return err == nil && a.Found && a.View.Status == wf.StatusCompleted
	}, 10*time.Second, 5*time.Millisecond)
	a, err := m.Status(ctx, "late")
	require.NoError(t, err)
	require.Len(t, a.History, 1)
	require.Equal(t, 1, a.History[0].Attempt)
}
