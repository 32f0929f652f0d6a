package graft_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// deepState returns an object nested depth levels deep along key "a"; the
// innermost object is {"leaf":leaf}.
func deepState(depth int, leaf float64) map[string]any {
	m := map[string]any{"leaf": leaf}
	for range depth - 1 {
		m = map[string]any{"a": m}
	}
	return m
}

// deepList returns a JSON array nested depth levels deep.
func deepList(depth int) []any {
	l := []any{}
	for range depth - 1 {
		l = []any{l}
	}
	return l
}

// State and configs may nest up to MaxStateDepth levels. A start nested
// deeper is refused and stores nothing; a step returning a deeper state or
// next-node config fails the workflow, whose status stays readable.
func TestStateDepthLimit(t *testing.T) {
	t.Parallel()
	over := graft.MaxStateDepth + 1
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("Ok", nil),
			fnNode("BumpLeaf", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				inner := s
				for inner["a"] != nil {
					inner = inner["a"].(map[string]any)
				}
				inner["leaf"] = inner["leaf"].(float64) + 1
				return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{{NodeName: "Ok",
					Config: deepState(graft.MaxStateDepth, 0)}}}, nil
			}),
			fnNode("Deepen", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["deep"] = deepState(graft.MaxStateDepth, 0) // one level inside the state
				return &graft.NodeResult{GlobalState: s, NextNodes: next("Ok")}, nil
			}),
			fnNode("DeepConfig", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: "Ok", Config: deepList(over)}}}, nil
			}),
		)
	})
	wantOver := []string{fmt.Sprintf("nested %d levels deep", over), fmt.Sprintf("limit of %d", graft.MaxStateDepth), "MaxStateDepth"}

	t.Run("start and steps at the limit", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "at-limit",
			InitialNodes: []graft.NodeConfig{{Name: "BumpLeaf", Config: deepState(graft.MaxStateDepth, 0)}},
			InitialState: deepState(graft.MaxStateDepth, 1)}))
		s := waitStatus(t, b.m, "at-limit", graft.WorkflowStateCompleted)
		want, err := json.Marshal(deepState(graft.MaxStateDepth, 2))
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(s.CurrentStateJSON))
		require.Equal(t, deepState(graft.MaxStateDepth, 2), s.CurrentState)
	})
	refused := []struct {
		name string
		tr   graft.WorkflowTrigger
		want []string
	}{
		{"state one level over", graft.WorkflowTrigger{WorkflowID: "deep-state", InitialNodes: []graft.NodeConfig{{Name: "Ok"}},
			InitialState: deepState(over, 1)}, append([]string{"InitialState"}, wantOver...)},
		{"state 9,999 deep", graft.WorkflowTrigger{WorkflowID: "deeper-state", InitialNodes: []graft.NodeConfig{{Name: "Ok"}},
			InitialState: deepState(9999, 1)}, []string{"InitialState", "nested 9999 levels deep", "MaxStateDepth"}},
		{"config one level over", graft.WorkflowTrigger{WorkflowID: "deep-config",
			InitialNodes: []graft.NodeConfig{{Name: "Ok"}, {Name: "Ok", Config: deepList(over)}}},
			append([]string{`InitialNodes[1] ("Ok")`, "config"}, wantOver...)},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := b.m.StartWorkflow(tc.tr)
			require.ErrorIs(t, err, graft.ErrInvalidWorkflow)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			_, err = b.m.GetWorkflowStatus(tc.tr.WorkflowID)
			require.ErrorIs(t, err, graft.ErrWorkflowNotFound, "a refused trigger stored a workflow")
		})
	}
	for _, node := range []string{"Deepen", "DeepConfig"} {
		t.Run("step "+node, func(t *testing.T) {
			t.Parallel()
			id := "step-" + node
			startWF(t, b.m, id, map[string]any{"seed": 1}, node)
			s := waitStatus(t, b.m, id, graft.WorkflowStateFailed)
			require.Contains(t, s.LastErrorText(), fmt.Sprintf("%q", node))
			for _, w := range wantOver {
				require.Contains(t, s.LastErrorText(), w)
			}
			require.Equal(t, node, s.FailedNode)
			require.Len(t, s.ExecutedNodes, 1, "an over-deep output must fail at once, without retries: %s", describe(s))
			require.JSONEq(t, `{"seed":1}`, string(s.CurrentStateJSON), "the over-deep state was recorded")
		})
	}
}
