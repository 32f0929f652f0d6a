package graft_test

import (
	"context"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// A disk below Expert.MinFreeDiskBytes refuses new workflows with
// ErrStorageFull and stores nothing; the member stays up and serves reads,
// and its readiness says "storage-full".
func TestFullDiskRefusesNewWorkflows(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *graft.Config) { c.Expert.MinFreeDiskBytes = 1 << 62 }, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
	})
	err := b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "full", InitialNodes: []graft.NodeConfig{{Name: "A"}}})
	require.ErrorIs(t, err, graft.ErrStorageFull)
	require.ErrorContains(t, err, "Expert.MinFreeDiskBytes")
	_, err = b.m.GetWorkflowStatus("full")
	require.ErrorIs(t, err, graft.ErrWorkflowNotFound)
	require.Equal(t, 0, b.m.GetClusterInfo().Metrics.ActiveWorkflows)

	require.Eventually(t, func() bool { return b.m.GetReadinessState() == graft.ReadinessStorageFull },
		5*time.Second, 5*time.Millisecond)
	require.False(t, b.m.IsReady())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.m.WaitUntilReady(ctx), context.DeadlineExceeded, "waits until space is freed")
}
