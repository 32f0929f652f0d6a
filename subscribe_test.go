package graft_test

import (
	"context"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// drain reads statuses until the channel is closed, failing after 20s.
func drain(t *testing.T, ch <-chan *graft.WorkflowStatus) []*graft.WorkflowStatus {
	t.Helper()
	var got []*graft.WorkflowStatus
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return got
			}
			require.NotNil(t, s)
			got = append(got, s)
		case <-deadline.C:
			require.FailNow(t, "status channel not closed", "got %d statuses", len(got))
		}
	}
}

// heldWorkflow starts workflow id whose node A waits for the returned gate
// and then schedules B.
func heldWorkflow(t *testing.T, id string) (*bundle, *gate) {
	t.Helper()
	var g *gate // set below, before any node runs
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("A", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				if err := hold(ctx, g.c); err != nil {
					return nil, err
				}
				s["a"] = true
				return &graft.NodeResult{GlobalState: s, NextNodes: next("B")}, nil
			}),
			fnNode("B", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["b"] = true
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	g = release(t) // after setup: opened before the member stops
	startWF(t, b.m, id, map[string]any{"seed": 1}, "A")
	return b, g
}

func TestSubscribeToWorkflowStateSeesRunningThenCompleted(t *testing.T) {
	t.Parallel()
	b, g := heldWorkflow(t, "sub")
	ch, unsubscribe, err := b.m.SubscribeToWorkflowState("sub")
	require.NoError(t, err)
	defer unsubscribe()

	first := recv(t, ch, "first status")
	require.Equal(t, graft.WorkflowStateRunning, first.Status)
	require.Nil(t, first.CompletedAt)
	require.Nil(t, first.LastError)

	g.open()
	got := drain(t, ch)
	require.NotEmpty(t, got)
	last := got[len(got)-1]
	require.Equal(t, graft.WorkflowStateCompleted, last.Status, "the last status is terminal")
	require.NotNil(t, last.CompletedAt)
	require.Equal(t, []string{"A", "B"}, executedNames(last))
	require.Equal(t, map[string]interface{}{"seed": float64(1), "a": true, "b": true}, last.CurrentState)
	for _, s := range got[:len(got)-1] {
		require.False(t, s.Status.Terminal(), "only the last status is terminal")
	}
	unsubscribe() // after the channel closed: a no-op
}

func TestUnsubscribeClosesTheChannel(t *testing.T) {
	t.Parallel()
	b, g := heldWorkflow(t, "unsub")
	ch, unsubscribe, err := b.m.SubscribeToWorkflowState("unsub")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateRunning, recv(t, ch, "first status").Status)

	unsubscribe()
	unsubscribe() // safe twice
	// Closed when unsubscribe returns: at most one status was still
	// buffered, and nothing comes after the workflow changes.
	g.open()
	waitStatus(t, b.m, "unsub", graft.WorkflowStateCompleted)
	n := 0
	for s := range ch {
		require.NotEqual(t, graft.WorkflowStateCompleted, s.Status, "no update after unsubscribe")
		n++
	}
	require.LessOrEqual(t, n, 1)
}

func TestSubscribeToAFinishedWorkflow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) { register(t, m, fnNode("Only", nil)) })
	startWF(t, b.m, "done", nil, "Only")
	waitStatus(t, b.m, "done", graft.WorkflowStateCompleted)

	ch, unsubscribe, err := b.m.SubscribeToWorkflowState("done")
	require.NoError(t, err)
	defer unsubscribe()
	got := drain(t, ch)
	require.Len(t, got, 1)
	require.Equal(t, graft.WorkflowStateCompleted, got[0].Status)
}

func TestSubscribeRefusals(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	_, _, err := m.SubscribeToWorkflowState("any")
	require.ErrorIs(t, err, graft.ErrNotStarted)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	ch, unsubscribe, err := m.SubscribeToWorkflowState("no-such-workflow")
	require.ErrorIs(t, err, graft.ErrWorkflowNotFound)
	require.Nil(t, ch)
	require.Nil(t, unsubscribe)

	require.NoError(t, m.Stop())
	_, _, err = m.SubscribeToWorkflowState("any")
	require.ErrorIs(t, err, graft.ErrClosed)
}

// TestStopClosesSubscriptions: Stop ends the subscription's goroutine
// (goleak checks that) and closes its channel.
func TestStopClosesSubscriptions(t *testing.T) {
	t.Parallel()
	b, _ := heldWorkflow(t, "held")
	ch, unsubscribe, err := b.m.SubscribeToWorkflowState("held")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateRunning, recv(t, ch, "first status").Status)

	stopped := make(chan error, 1)
	go func() { stopped <- b.m.Stop() }()
	for s := range ch {
		require.False(t, s.Status.Terminal())
	}
	require.NoError(t, recv(t, stopped, "Stop"))
	unsubscribe() // after Stop: a no-op
}

// TestSubscriptionKeepsOnlyTheNewestStatus: a reader that does not read
// while the workflow goes through many statuses finds at most three (see
// below), the last the newest, terminal one.
func TestSubscriptionKeepsOnlyTheNewestStatus(t *testing.T) {
	t.Parallel()
	const steps = 8
	var g *gate // set below, before any node runs
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, fnNode("Step", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			if err := hold(ctx, g.c); err != nil {
				return nil, err
			}
			n, _ := s["n"].(float64)
			s["n"] = n + 1
			if n+1 == steps {
				return &graft.NodeResult{GlobalState: s}, nil
			}
			return &graft.NodeResult{GlobalState: s, NextNodes: next("Step")}, nil
		}))
	})
	g = release(t)
	startWF(t, b.m, "slow", map[string]any{"n": 0}, "Step")
	ch, unsubscribe, err := b.m.SubscribeToWorkflowState("slow")
	require.NoError(t, err)
	defer unsubscribe()
	g.open() // and read nothing while the workflow runs
	s := waitStatus(t, b.m, "slow", graft.WorkflowStateCompleted)
	require.Len(t, s.ExecutedNodes, steps)
	got := drain(t, ch)
	require.NotEmpty(t, got)
	// One slot: older statuses were replaced. At most three remain: the
	// one waiting in the slot, one the subscription's goroutine had read
	// before the completion and offers after the drain took the first,
	// and the completed one.
	require.LessOrEqual(t, len(got), 3, "one slot: older statuses were replaced")
	require.Equal(t, graft.WorkflowStateCompleted, got[len(got)-1].Status)
	require.Equal(t, float64(steps), got[len(got)-1].CurrentState.(map[string]interface{})["n"])
}
