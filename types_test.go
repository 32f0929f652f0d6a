package graft_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// TestPublishedFieldShapes checks the fields kept in the published API's
// types: decoded states, executed node names, *string LastError,
// *time.Time CompletedAt and the cluster counters.
func TestPublishedFieldShapes(t *testing.T) {
	t.Parallel()
	var g *gate // set below, before any node runs
	b := setup(t, func(c *graft.Config) { c.Engine.MaxRetries = graft.NoRetries }, func(m *graft.Manager) {
		register(t, m,
			fnNode("Intake", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				if err := hold(ctx, g.c); err != nil {
					return nil, err
				}
				s["history"] = []any{"intake"}
				return &graft.NodeResult{GlobalState: s, NextNodes: next("Finalize")}, nil
			}),
			fnNode("Finalize", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["status"] = "final"
				return &graft.NodeResult{GlobalState: s}, nil
			}),
			fnNode("Broken", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				return nil, errors.New("broken input")
			}),
		)
	})
	g = release(t)
	completed := collect(t, b.m.OnWorkflowCompleted)

	startWF(t, b.m, "ok", map[string]any{"id": "doc-1"}, "Intake")
	s := waitUntil(t, b.m, "ok", "Intake running", func(s *graft.WorkflowStatus) bool { return len(s.ExecutingNodes) == 1 })
	require.Equal(t, graft.WorkflowStateRunning, s.Status)
	require.Nil(t, s.CompletedAt, "CompletedAt is nil until the workflow is terminal")
	require.Nil(t, s.LastError)
	require.Equal(t, map[string]interface{}{"id": "doc-1"}, s.CurrentState)

	g.open()
	e := waitEvent(t, completed, "ok completed", nil)
	require.Equal(t, []string{"Intake", "Finalize"}, e.ExecutedNodes, "names in execution order")
	final, ok := e.FinalState.(map[string]interface{})
	require.True(t, ok, "FinalState is %T", e.FinalState)
	require.Equal(t, "final", final["status"])
	require.Equal(t, []interface{}{"intake"}, final["history"])
	require.JSONEq(t, `{"id":"doc-1","history":["intake"],"status":"final"}`, string(e.FinalStateJSON))
	var typed struct {
		Status  string   `json:"status"`
		History []string `json:"history"`
	}
	require.NoError(t, e.DecodeFinalState(&typed))
	require.Equal(t, "final", typed.Status)
	require.Equal(t, []string{"intake"}, typed.History)

	s = waitStatus(t, b.m, "ok", graft.WorkflowStateCompleted)
	require.Nil(t, s.LastError, "LastError is nil on success")
	require.Empty(t, s.LastErrorText())
	require.NotNil(t, s.CompletedAt)
	require.False(t, s.CompletedAt.Before(s.StartedAt))
	require.Equal(t, final, s.CurrentState)
	var doc map[string]any
	require.NoError(t, s.DecodeState(&doc))
	require.Equal(t, "final", doc["status"])

	startWF(t, b.m, "bad", map[string]any{"id": "doc-2"}, "Broken")
	s = waitStatus(t, b.m, "bad", graft.WorkflowStateFailed)
	require.NotNil(t, s.LastError, "LastError is set on failure")
	require.Contains(t, *s.LastError, "broken input")
	require.Equal(t, *s.LastError, s.LastErrorText())
	require.NotNil(t, s.CompletedAt, "a failed workflow is terminal")

	awaitMetrics(t, b.m, func(m graft.ClusterMetrics) bool { return m.FailedWorkflows == 1 && m.CompletedWorkflows == 1 })
	info := b.m.GetClusterInfo()
	require.Equal(t, "running", info.Status)
	require.Equal(t, 2, info.Metrics.TotalWorkflows)
	require.Equal(t, 1, info.Metrics.CompletedWorkflows)
	require.Equal(t, 1, info.Metrics.FailedWorkflows)
	require.Equal(t, 0, info.Metrics.ActiveWorkflows)
	require.Equal(t, 3, info.Metrics.NodesExecuted, "Intake, Finalize and Broken's failed run")
	require.Equal(t, 2, info.Metrics.StepsExecuted)
	require.Equal(t, 1, info.Metrics.StepErrors)
}
