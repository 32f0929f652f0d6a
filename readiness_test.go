package graft_test

import (
	"context"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// newMember returns an unstarted lone member configured like setup's.
func newMember(t *testing.T) *graft.Manager {
	t.Helper()
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	cfg.Engine.DrainTimeout = 2 * time.Second
	return graft.NewWithConfig(cfg)
}

func TestReadinessGoesStartingReadyStopped(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })

	require.Equal(t, graft.ReadinessStarting, m.GetReadinessState())
	require.Equal(t, "starting", m.GetReadinessState())
	require.False(t, m.IsReady())
	require.Equal(t, "starting", m.GetClusterInfo().Status)

	// A waiter started before Start wakes when Start succeeds.
	waited := make(chan error, 1)
	go func() { waited <- m.WaitUntilReady(context.Background()) }()

	// A waiter whose context ends first gets ctx.Err().
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, m.WaitUntilReady(ctx), context.Canceled)

	startCtx, cancelStart := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStart()
	require.NoError(t, m.Start(startCtx, 0))
	require.NoError(t, recv(t, waited, "WaitUntilReady after Start"))
	require.Equal(t, graft.ReadinessReady, m.GetReadinessState())
	require.Equal(t, "ready", m.GetReadinessState())
	require.True(t, m.IsReady())
	require.NoError(t, m.WaitUntilReady(context.Background()))
	require.Equal(t, "running", m.GetClusterInfo().Status)

	require.NoError(t, m.Stop())
	require.Equal(t, "stopped", m.GetReadinessState())
	require.False(t, m.IsReady())
	require.ErrorIs(t, m.WaitUntilReady(context.Background()), graft.ErrClosed)
	require.Equal(t, "stopped", m.GetClusterInfo().Status)
}

func TestWaitUntilReadyWakesOnStop(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	waited := make(chan error, 1)
	go func() { waited <- m.WaitUntilReady(context.Background()) }()
	require.NoError(t, m.Stop())
	require.ErrorIs(t, recv(t, waited, "WaitUntilReady after Stop"), graft.ErrClosed)
}

func TestReadinessAfterFailedStart(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	require.ErrorIs(t, m.Start(context.Background(), -1), graft.ErrInvalidConfig)
	require.Equal(t, "stopped", m.GetReadinessState())
	require.False(t, m.IsReady())
	require.ErrorIs(t, m.WaitUntilReady(context.Background()), graft.ErrNotStarted)

	// Start may be tried again after a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	require.True(t, m.IsReady())
}
