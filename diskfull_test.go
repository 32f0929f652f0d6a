package graft_test

import (
	"testing"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// A disk below Expert.MinFreeDiskBytes refuses new workflows with
// ErrStorageFull and stores nothing; the member stays up and serves reads.
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
}
