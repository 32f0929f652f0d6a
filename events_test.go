package graft_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// work simulates a step that takes d, giving up if ctx ends.
func work(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestEventsOfACompletedWorkflow(t *testing.T) {
	t.Parallel()
	const stepTime = 20 * time.Millisecond
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("First", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				if err := work(ctx, stepTime); err != nil {
					return nil, err
				}
				s["first"] = 1
				return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{{NodeName: "Second", Config: map[string]any{"c": 2}}}}, nil
			}),
			fnNode("Second", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["second"] = 2
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	wfStarted := collect(t, b.m.OnWorkflowStarted)
	wfDone := collect(t, b.m.OnWorkflowCompleted)
	nodeStarted := collect(t, b.m.OnNodeStarted)
	nodeDone := collect(t, b.m.OnNodeCompleted)
	meta := map[string]string{"src": "events"}

	before := time.Now()
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID: "ev", InitialNodes: []graft.NodeConfig{{Name: "First", Config: map[string]any{"c": 1}}},
		InitialState: map[string]any{"seed": 0}, Metadata: meta,
	}))

	ws := waitEvent(t, wfStarted, "WorkflowStarted", nil)
	require.Equal(t, "ev", ws.WorkflowID)
	require.Equal(t, []string{"First"}, ws.InitialNodes)
	require.Equal(t, meta, ws.Metadata)
	require.Equal(t, "n1", ws.NodeID)
	require.False(t, ws.StartedAt.Before(before))

	for i, name := range []string{"First", "Second"} {
		ns := waitEvent(t, nodeStarted, "NodeStarted "+name, nil)
		require.Equal(t, "ev", ns.WorkflowID)
		require.Equal(t, name, ns.NodeName)
		require.Equal(t, 1, ns.Attempt)
		require.Equal(t, "n1", ns.NodeID)
		require.NotEmpty(t, ns.ExecutionID)
		require.JSONEq(t, fmt.Sprintf(`{"c":%d}`, i+1), string(ns.Config))

		nd := waitEvent(t, nodeDone, "NodeCompleted "+name, nil)
		require.Equal(t, "ev", nd.WorkflowID)
		require.Equal(t, name, nd.NodeName)
		require.Equal(t, ns.ExecutionID, nd.ExecutionID)
		require.Equal(t, 1, nd.Attempt)
		require.Equal(t, "n1", nd.NodeID)
		require.Equal(t, ns.StartedAt, nd.StartedAt)
		if name == "First" {
			require.GreaterOrEqual(t, nd.Duration, stepTime)
			require.Equal(t, []string{"Second"}, nd.NextNodes)
		} else {
			require.Positive(t, nd.Duration)
			require.Empty(t, nd.NextNodes)
		}
	}

	wc := waitEvent(t, wfDone, "WorkflowCompleted", nil)
	require.Equal(t, "ev", wc.WorkflowID)
	require.Equal(t, "n1", wc.NodeID)
	require.Equal(t, meta, wc.Metadata)
	require.Equal(t, []string{"First", "Second"}, wc.ExecutedNodes)
	require.JSONEq(t, `{"seed":0,"first":1,"second":2}`, string(wc.FinalStateJSON))
	require.GreaterOrEqual(t, wc.Duration, stepTime)
	require.Equal(t, wc.CompletedAt.Sub(wc.StartedAt), wc.Duration)
	require.Equal(t, ws.StartedAt, wc.StartedAt)

	s, err := b.m.GetWorkflowStatus("ev")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateCompleted, s.Status, "WorkflowCompleted fired before the status was completed")
}

func TestEventsOfAFailedWorkflow(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *graft.Config) { c.Engine.MaxRetries = 1 }, func(m *graft.Manager) {
		register(t, m, fnNode("Bad", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			wc, _ := graft.GetWorkflowContext(ctx)
			return nil, fmt.Errorf("bad attempt %d", wc.Attempt)
		}))
	})
	nodeErrs := collect(t, b.m.OnNodeError)
	wfErrs := collect(t, b.m.OnWorkflowError)
	startWF(t, b.m, "fail", map[string]any{"v": 1}, "Bad")

	for attempt := 1; attempt <= 2; attempt++ {
		ne := waitEvent(t, nodeErrs, "NodeError", nil)
		require.Equal(t, "fail", ne.WorkflowID)
		require.Equal(t, "Bad", ne.NodeName)
		require.Equal(t, attempt, ne.Attempt)
		require.EqualError(t, ne.Error, fmt.Sprintf("bad attempt %d", attempt))
		require.Equal(t, "n1", ne.NodeID)
		require.Equal(t, attempt == 1, ne.WillRetry)
		require.Equal(t, attempt == 1, !ne.RetryAt.IsZero())
		if ne.WillRetry {
			require.True(t, ne.RetryAt.After(ne.StartedAt))
		}
	}
	we := waitEvent(t, wfErrs, "WorkflowError", nil)
	require.Equal(t, "fail", we.WorkflowID)
	require.Equal(t, "Bad", we.NodeName)
	require.Equal(t, 2, we.Attempt)
	require.Equal(t, "n1", we.NodeID)
	require.ErrorContains(t, we.Error, "bad attempt 2")
	require.JSONEq(t, `{"v":1}`, string(we.CurrentStateJSON))
	require.Equal(t, we.FailedAt.Sub(we.StartedAt), we.Duration)
}

func TestEventsOfPauseResumeStop(t *testing.T) {
	t.Parallel()
	rel := release(t)
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, fnNode("Wait", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			return nil, hold(ctx, rel.c)
		}))
	})
	paused := collect(t, b.m.OnWorkflowPaused)
	resumed := collect(t, b.m.OnWorkflowResumed)
	stopped := collect(t, b.m.OnWorkflowStopped)
	ctx := context.Background()
	meta := map[string]string{"m": "v"}
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "prs",
		InitialNodes: []graft.NodeConfig{{Name: "Wait"}}, Metadata: meta}))

	require.NoError(t, b.m.PauseWorkflow(ctx, "prs"))
	p := waitEvent(t, paused, "WorkflowPaused", nil)
	require.Equal(t, "prs", p.WorkflowID)
	require.Equal(t, "n1", p.NodeID)
	require.Equal(t, meta, p.Metadata)
	require.False(t, p.PausedAt.IsZero())

	require.NoError(t, b.m.ResumeWorkflow(ctx, "prs"))
	r := waitEvent(t, resumed, "WorkflowResumed", nil)
	require.Equal(t, "prs", r.WorkflowID)
	require.Equal(t, "n1", r.NodeID)
	require.False(t, r.ResumedAt.Before(p.PausedAt))

	require.NoError(t, b.m.StopWorkflow(ctx, "prs"))
	st := waitEvent(t, stopped, "WorkflowStopped", nil)
	require.Equal(t, "prs", st.WorkflowID)
	require.Equal(t, "n1", st.NodeID)
	require.Equal(t, meta, st.Metadata)
	require.False(t, st.StoppedAt.Before(r.ResumedAt))
	require.Positive(t, st.Duration)
}

func TestBlockedHandlerDoesNotStallWorkflows(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) { register(t, m, fnNode("Ok", nil)) })
	stuck := release(t) // the blocked handler returns when the test ends
	var entered atomic.Int32
	b.m.OnWorkflowCompleted(func(*graft.WorkflowCompletedEvent) {
		entered.Add(1)
		<-stuck.c
	})
	b.m.OnNodeStarted(func(*graft.NodeStartedEvent) { <-stuck.c })
	done := collect(t, b.m.OnWorkflowCompleted)

	const n = 5
	for i := range n {
		startWF(t, b.m, fmt.Sprintf("free-%d", i), nil, "Ok")
	}
	seen := map[string]bool{}
	for range n {
		seen[waitEvent(t, done, "WorkflowCompleted", nil).WorkflowID] = true
	}
	require.Len(t, seen, n)
	for i := range n {
		waitStatus(t, b.m, fmt.Sprintf("free-%d", i), graft.WorkflowStateCompleted)
	}
	// Each handler runs on its own goroutine: the stuck one may not have
	// taken its first event yet when the others are done.
	require.Eventually(t, func() bool { return entered.Load() > 0 }, 20*time.Second, time.Millisecond,
		"the stuck handler never received its first event")
	require.Equal(t, int32(1), entered.Load(), "the stuck handler should still be in its first call")
}

func TestPanickingHandlerKeepsReceiving(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) { register(t, m, fnNode("Ok", nil)) })
	got := make(chan string, 16)
	b.m.OnWorkflowCompleted(func(e *graft.WorkflowCompletedEvent) {
		got <- e.WorkflowID
		panic(errors.New("handler bug"))
	})
	for i := range 3 {
		id := fmt.Sprintf("p-%d", i)
		startWF(t, b.m, id, nil, "Ok")
		require.Equal(t, id, recv(t, got, "event after panics"))
	}
}

// A handler that falls more than EventBufferSize events behind loses the
// excess, counted in DroppedEvents; workflows are not slowed down.
func TestSlowHandlerDropsAndCountsEvents(t *testing.T) {
	t.Parallel()
	const buffer, workflows = 4, 12
	b := setup(t, func(c *graft.Config) { c.Engine.EventBufferSize = buffer }, func(m *graft.Manager) {
		register(t, m, fnNode("Ok", nil))
	})
	stuck := release(t)
	b.m.OnNodeStarted(func(*graft.NodeStartedEvent) { <-stuck.c })
	for i := range workflows {
		id := fmt.Sprintf("drop-%d", i)
		startWF(t, b.m, id, nil, "Ok")
		waitStatus(t, b.m, id, graft.WorkflowStateCompleted)
	}
	// One event is in the handler, at most buffer wait; the rest are dropped.
	require.GreaterOrEqual(t, b.m.GetClusterInfo().Metrics.DroppedEvents, workflows-1-buffer)
}

// A lone member publishes a ShardLeaderChangedEvent for each of its shards
// as its replica becomes the leader.
func TestShardLeaderChangedOnStart(t *testing.T) {
	t.Parallel()
	var leaders <-chan *graft.ShardLeaderChangedEvent
	b := setup(t, nil, func(m *graft.Manager) {
		leaders = collect(t, m.OnShardLeaderChanged)
	})
	led := map[uint64]bool{}
	for len(led) < 2 {
		e := waitEvent(t, leaders, "ShardLeaderChanged", func(e *graft.ShardLeaderChangedEvent) bool { return e.LeaderReplicaID != 0 })
		require.Equal(t, b.cfg.NodeID, e.LeaderNodeID)
		require.Equal(t, uint64(1), e.LeaderReplicaID)
		require.NotZero(t, e.Term)
		require.False(t, e.ChangedAt.IsZero())
		led[e.ShardID] = true
	}
	require.Equal(t, map[uint64]bool{1: true, 2: true}, led)
}
