package graft_test

import (
	"context"
	"testing"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

type seqState struct {
	Trail []string `json:"trail"`
}

type seqNode struct {
	name string
	next string
}

func (n *seqNode) GetName() string { return n.name }

func (n *seqNode) Execute(ctx context.Context, s *seqState, _ map[string]any) (*graft.NodeResult, error) {
	wc, ok := graft.GetWorkflowContext(ctx)
	if !ok || wc.NodeName != n.name {
		return nil, graft.Permanent(context.Canceled)
	}
	s.Trail = append(s.Trail, n.name)
	r := &graft.NodeResult{GlobalState: s}
	if n.next != "" {
		r.NextNodes = []graft.NextNode{{NodeName: n.next}}
	}
	return r, nil
}

func TestSequentialWorkflowCompletes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", "B"}))
		require.NoError(t, m.RegisterNode(&seqNode{"B", "C"}))
		require.NoError(t, m.RegisterNode(&seqNode{"C", ""}))
	})
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID:   "seq-1",
		InitialNodes: []graft.NodeConfig{{Name: "A"}},
		InitialState: map[string]any{"trail": []string{}},
		Metadata:     map[string]string{"source": "test"},
	}))
	s := waitStatus(t, b.m, "seq-1", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"trail":["A","B","C"]}`, string(s.CurrentStateJSON))
	require.Len(t, s.ExecutedNodes, 3)
	require.Equal(t, "test", s.Metadata["source"])
	require.Empty(t, s.PendingNodes)
	require.NotNil(t, s.CompletedAt)
}
