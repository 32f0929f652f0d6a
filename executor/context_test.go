package executor_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/executor"
)

func TestWorkflowContext(t *testing.T) {
	t.Parallel()

	wc := &executor.WorkflowContext{
		WorkflowID:    "wf-1",
		NodeName:      "charge",
		MemberID:      "m-1",
		ExecutionID:   "ex-1",
		Attempt:       1,
		Metadata:      map[string]string{"tenant": "acme"},
		StartedAt:     time.Unix(100, 0),
		StepStartedAt: time.Unix(200, 0),
	}
	cases := []struct {
		name   string
		ctx    context.Context
		want   *executor.WorkflowContext
		wantOK bool
	}{
		{name: "attached", ctx: executor.WithWorkflowContext(t.Context(), wc), want: wc, wantOK: true},
		{name: "survives derived contexts", ctx: context.WithValue(executor.WithWorkflowContext(t.Context(), wc), struct{}{}, 1), want: wc, wantOK: true},
		{name: "missing", ctx: t.Context()},
		{name: "nil attached", ctx: executor.WithWorkflowContext(t.Context(), nil)},
		{name: "nil context", ctx: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := executor.GetWorkflowContext(tc.ctx)
			require.Equal(t, tc.wantOK, ok)
			require.Same(t, tc.want, got)
		})
	}
}

// contextNode reports the workflow context it was called with.
type contextNode struct {
	canStartSaw *executor.WorkflowContext
}

func (*contextNode) GetName() string { return "ctx-reader" }

func (n *contextNode) Execute(ctx context.Context, state, config any) (*executor.NodeResult, error) {
	wc, ok := executor.GetWorkflowContext(ctx)
	if !ok {
		return &executor.NodeResult{GlobalState: map[string]any{"has_context": false}}, nil
	}
	return &executor.NodeResult{GlobalState: map[string]any{"has_context": true, "workflow": wc.WorkflowID, "attempt": wc.Attempt}}, nil
}

func (n *contextNode) CanStart(ctx context.Context, state, config any) bool {
	n.canStartSaw, _ = executor.GetWorkflowContext(ctx)
	return true
}

func TestNodeReceivesContext(t *testing.T) {
	t.Parallel()

	t.Run("workflow context", func(t *testing.T) {
		t.Parallel()
		node := &contextNode{}
		n := register(t, node)
		wc := &executor.WorkflowContext{WorkflowID: "wf-9", Attempt: 2}
		ctx := executor.WithWorkflowContext(t.Context(), wc)

		ok, err := n.CanStart(ctx, nil, nil)
		require.NoError(t, err)
		require.True(t, ok)
		require.Same(t, wc, node.canStartSaw)

		out, err := n.Execute(ctx, nil, nil)
		require.NoError(t, err)
		require.JSONEq(t, `{"has_context":true,"workflow":"wf-9","attempt":2}`, string(out.State))
	})

	t.Run("nil context becomes background", func(t *testing.T) {
		t.Parallel()
		n := register(t, &contextNode{})
		//lint:ignore SA1012 deliberately passing a nil context
		out, err := n.Execute(nil, json.RawMessage(`{}`), nil)
		require.NoError(t, err)
		require.JSONEq(t, `{"has_context":false}`, string(out.State))
	})
}
