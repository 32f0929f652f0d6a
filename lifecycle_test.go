package graft_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestStopIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) { register(t, m, fnNode("Ok", nil)) })
	startWF(t, b.m, "before-stop", nil, "Ok")
	waitStatus(t, b.m, "before-stop", graft.WorkflowStateCompleted)

	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = b.m.Stop() })
	}
	wg.Wait()
	for _, err := range errs {
		require.Equal(t, errs[0], err, "every Stop call returns the first call's result")
	}
	require.NoError(t, errs[0])
	select {
	case <-b.m.Done():
	default:
		require.FailNow(t, "Done is not closed after Stop returned")
	}
	require.Equal(t, errs[0], b.m.Stop())
	require.ErrorIs(t, b.m.Start(context.Background(), 0), graft.ErrClosed)
}

func TestStartTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	require.ErrorIs(t, b.m.Start(context.Background(), 0), graft.ErrAlreadyStarted)

	// Concurrent Starts of a fresh member: exactly one wins.
	cfg := graft.DefaultConfig("n2", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n2")
	cfg.Cluster.ShardCount = 2
	m := graft.NewWithConfig(cfg)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = m.Start(context.Background(), 0) })
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, graft.ErrAlreadyStarted)
	}
	require.Equal(t, 1, ok)
}

func TestConcurrentStartWorkflow(t *testing.T) {
	t.Parallel()
	const total, goroutines = 200, 16
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("One", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["one"] = true
				return &graft.NodeResult{GlobalState: s, NextNodes: next("Two")}, nil
			}),
			fnNode("Two", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["two"] = true
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	done := collect(t, b.m.OnWorkflowCompleted)
	var seq atomic.Int32
	errs := make(chan error, total)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for {
				i := seq.Add(1)
				if i > total {
					return
				}
				id := fmt.Sprintf("c-%03d", i)
				errs <- b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id,
					InitialNodes: []graft.NodeConfig{{Name: "One"}}, InitialState: map[string]any{"id": id}})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[string]bool{}
	for len(seen) < total {
		e := waitEvent(t, done, fmt.Sprintf("completion %d of %d", len(seen)+1, total), nil)
		require.JSONEq(t, fmt.Sprintf(`{"id":%q,"one":true,"two":true}`, e.WorkflowID), string(e.FinalStateJSON))
		seen[e.WorkflowID] = true
	}
	for _, id := range []string{"c-001", "c-100", "c-200"} {
		s, err := b.m.GetWorkflowStatus(id)
		require.NoError(t, err)
		require.Equal(t, graft.WorkflowStateCompleted, s.Status)
	}
	mt := awaitMetrics(t, b.m, func(m graft.ClusterMetrics) bool {
		return m.CompletedWorkflows == total && m.StepsExecuted == 2*total
	})
	require.Equal(t, total, mt.CompletedWorkflows)
	require.Equal(t, 2*total, mt.StepsExecuted)
	require.Zero(t, mt.ActiveWorkflows)
}

func TestClusterInfo(t *testing.T) {
	t.Parallel()
	rel := release(t)
	started := make(chan struct{}, 1)
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("One", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: next("Two")}, nil
			}),
			fnNode("Two", nil),
			fnNode("Bad", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return nil, graft.Permanent(errors.New("bad"))
			}),
			fnNode("Wait", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(started, struct{}{})
				return nil, hold(ctx, rel.c)
			}),
		)
	})
	info := b.m.GetClusterInfo()
	require.Equal(t, "n1", info.NodeID)
	require.True(t, info.IsLeader)
	require.Equal(t, 2, info.Shards)
	require.Equal(t, []uint64{1, 2}, info.HostedShards)
	require.Equal(t, []uint64{1, 2}, info.LeadShards)
	require.Zero(t, info.Metrics.ActiveWorkflows)

	for i := range 3 {
		startWF(t, b.m, fmt.Sprintf("ok-%d", i), nil, "One")
	}
	startWF(t, b.m, "bad", nil, "Bad")
	startWF(t, b.m, "waiting", nil, "Wait")
	for i := range 3 {
		waitStatus(t, b.m, fmt.Sprintf("ok-%d", i), graft.WorkflowStateCompleted)
	}
	waitStatus(t, b.m, "bad", graft.WorkflowStateFailed)
	recv(t, started, "Wait to start")

	m := awaitMetrics(t, b.m, func(m graft.ClusterMetrics) bool {
		return m.CompletedWorkflows == 3 && m.FailedWorkflows == 1 && m.StepErrors == 1 && m.StepsExecuted == 6
	})
	require.Equal(t, 1, m.ActiveWorkflows)
	require.Equal(t, 3, m.CompletedWorkflows)
	require.Equal(t, 1, m.FailedWorkflows)
	require.Equal(t, 6, m.StepsExecuted)
	require.Equal(t, 1, m.StepErrors)
	require.Equal(t, 1, m.ExecutingSteps)
	require.Zero(t, m.QueueDepth)

	require.NoError(t, b.m.StopWorkflow(context.Background(), "waiting"))
	waitStatus(t, b.m, "waiting", graft.WorkflowStateStopped)
	m = awaitMetrics(t, b.m, func(m graft.ClusterMetrics) bool { return m.StoppedWorkflows == 1 })
	require.Zero(t, m.ActiveWorkflows)
	require.Equal(t, 1, m.StoppedWorkflows)
}

// Stop cancels a step still running after DrainTimeout; the step re-runs
// when the member restarts on the same DataDir, and the workflow completes.
func TestStopCancelsAfterDrainAndRestartResumes(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	cancelled := make(chan struct{}, 1)
	started := make(chan struct{}, 1)
	long := func() any {
		return fnNode("Long", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			if runs.Add(1) == 1 {
				signal(started, struct{}{})
				<-ctx.Done() // only the member stopping ends the first run
				signal(cancelled, struct{}{})
				return nil, ctx.Err()
			}
			s["long"] = "done"
			return &graft.NodeResult{GlobalState: s}, nil
		})
	}
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	cfg.Engine.DrainTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	m1 := graft.NewWithConfig(cfg)
	register(t, m1, long())
	require.NoError(t, m1.Start(ctx, 0))
	t.Cleanup(func() { _ = m1.Stop() })
	startWF(t, m1, "survivor", map[string]any{"x": 1}, "Long")
	recv(t, started, "Long to start")
	t0 := time.Now()
	require.NoError(t, m1.Stop())
	require.GreaterOrEqual(t, time.Since(t0), cfg.Engine.DrainTimeout, "Stop did not wait for the drain timeout")
	recv(t, cancelled, "Long's context to be cancelled by Stop")

	m2 := graft.NewWithConfig(cfg)
	register(t, m2, long())
	require.NoError(t, m2.Start(ctx, 0))
	t.Cleanup(func() { require.NoError(t, m2.Stop()) })
	s := waitStatus(t, m2, "survivor", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"x":1,"long":"done"}`, string(s.CurrentStateJSON))
	require.Equal(t, int32(2), runs.Load())
	awaitMetrics(t, m2, func(m graft.ClusterMetrics) bool { return m.CompletedWorkflows == 1 && m.TotalWorkflows == 1 })
}

// Calls racing Stop either succeed or report ErrClosed (or a retryable
// error); none panics, hangs or leaks.
func TestCallsRacingStop(t *testing.T) {
	t.Parallel()
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	m := graft.NewWithConfig(cfg)
	register(t, m, fnNode("Ok", nil))
	require.NoError(t, m.Start(context.Background(), 0))

	var started atomic.Int32
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("race-%d-%d", g, i)
				err := m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "Ok"}}})
				if err == nil {
					started.Add(1)
					_, err = m.GetWorkflowStatus(id)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return started.Load() >= 20 }, 20*time.Second, time.Millisecond)
	require.NoError(t, m.Stop())
	wg.Wait()
	close(errs)
	for err := range errs {
		require.True(t, errors.Is(err, graft.ErrClosed) || graft.IsRetryable(err), "unexpected error racing Stop: %v", err)
	}
}

// A step that finishes within DrainTimeout while the member stops has its
// result committed: after a restart the workflow is completed and the step
// does not run again.
func TestStopCommitsStepsFinishingDuringDrain(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	started := make(chan struct{}, 1)
	rel := release(t)
	node := func() any {
		return fnNode("Finish", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			runs.Add(1)
			signal(started, struct{}{})
			if err := hold(ctx, rel.c); err != nil {
				return nil, err
			}
			s["finished"] = true
			return &graft.NodeResult{GlobalState: s}, nil
		})
	}
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	cfg.Engine.DrainTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	m1 := graft.NewWithConfig(cfg)
	register(t, m1, node())
	require.NoError(t, m1.Start(ctx, 0))
	t.Cleanup(func() { _ = m1.Stop() })
	startWF(t, m1, "drained", nil, "Finish")
	recv(t, started, "Finish to start")

	stopped := make(chan error, 1)
	go func() { stopped <- m1.Stop() }()
	require.Eventually(t, func() bool {
		_, err := m1.GetWorkflowStatus("drained")
		return errors.Is(err, graft.ErrClosed)
	}, 20*time.Second, time.Millisecond, "Stop never began")
	require.Never(t, func() bool {
		select {
		case <-m1.Done():
			return true
		default:
			return false
		}
	}, 200*time.Millisecond, 5*time.Millisecond, "Stop returned while a step was still running within DrainTimeout")
	rel.open()
	require.NoError(t, recv(t, stopped, "Stop to return"))

	m2 := graft.NewWithConfig(cfg)
	register(t, m2, node())
	require.NoError(t, m2.Start(ctx, 0))
	t.Cleanup(func() { require.NoError(t, m2.Stop()) })
	s := waitStatus(t, m2, "drained", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"finished":true}`, string(s.CurrentStateJSON))
	require.Equal(t, int32(1), runs.Load(), "the step returned within DrainTimeout but its result was not committed: it ran again after the restart")
	require.Len(t, s.ExecutedNodes, 1)
}

// The API may be called while Start runs: registering nodes, reading the
// cluster's state and broadcasting commands race with nothing Start writes
// (run under -race).
func TestAPIWhileClusterMemberStarts(t *testing.T) {
	a := newMemberAddrs(t, "n1")[0]
	cfg := memberConfig(t, a, 1, staticPeers(a), nil)
	m := graft.NewWithConfig(cfg)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(m.Collector()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { started <- m.Start(ctx, 0) })
	var calls int
	for done := false; !done; calls++ {
		select {
		case err := <-started:
			require.NoError(t, err)
			done = true
		default:
		}
		// Node types travel in a gossip tag of bounded size: register and
		// unregister the same two.
		require.NoError(t, m.RegisterNode(&seqNode{fmt.Sprintf("N%d", calls%2), ""}))
		if calls > 0 {
			require.NoError(t, m.UnregisterNode(fmt.Sprintf("N%d", (calls+1)%2)))
		}
		_ = m.GetClusterInfo()
		_, err := reg.Gather()
		require.NoError(t, err)
		_ = m.IsReady()
		_, _ = m.ListGossipKeys()
		_ = m.BroadcastCommand(ctx, &graft.DevCommand{Command: "noop"})
	}
	wg.Wait()
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	require.Greater(t, calls, 1)
	require.Len(t, m.ListNodes(), 1)
}

// Stop ends a Start that is still waiting for the cluster to form: Start
// returns ErrClosed and nothing keeps running.
func TestStopEndsAStartInProgress(t *testing.T) {
	addrs := newMemberAddrs(t, "w1", "w2")
	m := graft.NewWithConfig(memberConfig(t, addrs[0], 2, staticPeers(addrs...), nil))
	started := make(chan error, 1)
	go func() { started <- m.Start(context.Background(), 0) }()
	require.Eventually(t, func() bool { return m.GetReadinessState() == graft.ReadinessJoining },
		30*time.Second, 5*time.Millisecond, "the member never waited for its peer")
	require.NoError(t, m.Stop())
	select {
	case err := <-started:
		require.ErrorIs(t, err, graft.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Start still waits for the cluster after Stop returned")
	}
	require.ErrorIs(t, m.Start(context.Background(), 0), graft.ErrClosed)
}
