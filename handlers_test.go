package graft_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// registrations calls every On* method of m with a nil or a no-op handler.
func registrations(m *graft.Manager, nilFn bool) map[string]error {
	out := map[string]error{}
	if nilFn {
		out["OnWorkflowStarted"] = m.OnWorkflowStarted(nil)
		out["OnWorkflowCompleted"] = m.OnWorkflowCompleted(nil)
		out["OnWorkflowError"] = m.OnWorkflowError(nil)
		out["OnWorkflowFailed"] = m.OnWorkflowFailed(nil)
		out["OnWorkflowPaused"] = m.OnWorkflowPaused(nil)
		out["OnWorkflowResumed"] = m.OnWorkflowResumed(nil)
		out["OnWorkflowStopped"] = m.OnWorkflowStopped(nil)
		out["OnNodeStarted"] = m.OnNodeStarted(nil)
		out["OnNodeCompleted"] = m.OnNodeCompleted(nil)
		out["OnNodeError"] = m.OnNodeError(nil)
		out["OnNodeJoined"] = m.OnNodeJoined(nil)
		out["OnNodeLeft"] = m.OnNodeLeft(nil)
		out["OnLeaderChanged"] = m.OnLeaderChanged(nil)
		return out
	}
	out["OnWorkflowStarted"] = m.OnWorkflowStarted(func(*graft.WorkflowStartedEvent) {})
	out["OnWorkflowCompleted"] = m.OnWorkflowCompleted(func(*graft.WorkflowCompletedEvent) {})
	out["OnWorkflowError"] = m.OnWorkflowError(func(*graft.WorkflowErrorEvent) {})
	out["OnWorkflowFailed"] = m.OnWorkflowFailed(func(*graft.WorkflowErrorEvent) {})
	out["OnWorkflowPaused"] = m.OnWorkflowPaused(func(*graft.WorkflowPausedEvent) {})
	out["OnWorkflowResumed"] = m.OnWorkflowResumed(func(*graft.WorkflowResumedEvent) {})
	out["OnWorkflowStopped"] = m.OnWorkflowStopped(func(*graft.WorkflowStoppedEvent) {})
	out["OnNodeStarted"] = m.OnNodeStarted(func(*graft.NodeStartedEvent) {})
	out["OnNodeCompleted"] = m.OnNodeCompleted(func(*graft.NodeCompletedEvent) {})
	out["OnNodeError"] = m.OnNodeError(func(*graft.NodeErrorEvent) {})
	out["OnNodeJoined"] = m.OnNodeJoined(func(*graft.NodeJoinedEvent) {})
	out["OnNodeLeft"] = m.OnNodeLeft(func(*graft.NodeLeftEvent) {})
	out["OnLeaderChanged"] = m.OnLeaderChanged(func(*graft.LeaderChangedEvent) {})
	return out
}

func TestOnHandlersReportRefusals(t *testing.T) {
	t.Parallel()
	m := newMember(t)

	for name, err := range registrations(m, false) {
		require.NoError(t, err, "%s before Start", name)
	}
	for name, err := range registrations(m, true) {
		require.ErrorIs(t, err, graft.ErrInvalidHandler, "%s with a nil handler", name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	for name, err := range registrations(m, false) {
		require.NoError(t, err, "%s while running", name)
	}
	require.NoError(t, m.Stop())
	for name, err := range registrations(m, false) {
		require.ErrorIs(t, err, graft.ErrClosed, "%s after Stop", name)
	}
}

// TestOnWorkflowFailedIsOnWorkflowError: the published name receives the
// same events as ours, with the published field names filled in.
func TestOnWorkflowFailedIsOnWorkflowError(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, fnNode("Broken", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			return nil, graft.Permanent(errors.New("document is corrupt"))
		}))
	})
	failed := collect(t, b.m.OnWorkflowFailed)
	errs := collect(t, b.m.OnWorkflowError)
	startWF(t, b.m, "broken", map[string]any{"doc": "d-1", "n": 2}, "Broken")

	for _, ch := range []<-chan *graft.WorkflowErrorEvent{failed, errs} {
		e := waitEvent(t, ch, "workflow failed", nil)
		require.Equal(t, "broken", e.WorkflowID)
		require.Equal(t, "Broken", e.FailedNode)
		require.Equal(t, "Broken", e.NodeName)
		require.ErrorContains(t, e.Error, "document is corrupt")
		state, ok := e.CurrentState.(map[string]interface{})
		require.True(t, ok, "CurrentState is %T", e.CurrentState)
		require.Equal(t, map[string]interface{}{"doc": "d-1", "n": float64(2)}, state)
		require.JSONEq(t, `{"doc":"d-1","n":2}`, string(e.CurrentStateJSON))
		var typed struct {
			Doc string `json:"doc"`
			N   int    `json:"n"`
		}
		require.NoError(t, e.DecodeCurrentState(&typed))
		require.Equal(t, "d-1", typed.Doc)
		require.Equal(t, 2, typed.N)
	}
}
