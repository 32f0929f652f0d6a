package graft

import (
	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/internal/wf"
)

// Event handlers. Each runs on its own goroutine, in the order events were
// published; a slow handler delays only itself (events beyond
// Engine.EventBufferSize are dropped for it and counted in
// ClusterMetrics.DroppedEvents) and a panicking one is logged and kept.
// Delivery is at-least-once across restarts: make handlers idempotent.
// Handlers may be registered before or after Start.

// OnWorkflowStarted registers a handler for accepted workflows.
func (m *Manager) OnWorkflowStarted(fn func(*WorkflowStartedEvent)) { events.Subscribe(m.bus, fn) }

// OnWorkflowCompleted registers a handler for completed workflows.
func (m *Manager) OnWorkflowCompleted(fn func(*WorkflowCompletedEvent)) {
	events.Subscribe(m.bus, fn)
}

// OnWorkflowError registers a handler for failed workflows.
func (m *Manager) OnWorkflowError(fn func(*WorkflowErrorEvent)) { events.Subscribe(m.bus, fn) }

// OnWorkflowPaused registers a handler for paused workflows.
func (m *Manager) OnWorkflowPaused(fn func(*WorkflowPausedEvent)) { events.Subscribe(m.bus, fn) }

// OnWorkflowResumed registers a handler for resumed workflows.
func (m *Manager) OnWorkflowResumed(fn func(*WorkflowResumedEvent)) { events.Subscribe(m.bus, fn) }

// OnWorkflowStopped registers a handler for stopped workflows.
func (m *Manager) OnWorkflowStopped(fn func(*WorkflowStoppedEvent)) { events.Subscribe(m.bus, fn) }

// OnNodeStarted registers a handler for started steps.
func (m *Manager) OnNodeStarted(fn func(*NodeStartedEvent)) { events.Subscribe(m.bus, fn) }

// OnNodeCompleted registers a handler for steps that returned without error.
func (m *Manager) OnNodeCompleted(fn func(*NodeCompletedEvent)) { events.Subscribe(m.bus, fn) }

// OnNodeError registers a handler for steps that returned an error or panicked.
func (m *Manager) OnNodeError(fn func(*NodeErrorEvent)) { events.Subscribe(m.bus, fn) }

// OnNodeJoined registers a handler for members joining the cluster.
func (m *Manager) OnNodeJoined(fn func(*NodeJoinedEvent)) { events.Subscribe(m.bus, fn) }

// OnNodeLeft registers a handler for members leaving or failing.
func (m *Manager) OnNodeLeft(fn func(*NodeLeftEvent)) { events.Subscribe(m.bus, fn) }

// OnForeignCluster registers a handler for members of other clusters
// (bootstrapped apart, with another cluster ID) that this member met and
// refused; see ForeignClusterEvent.
func (m *Manager) OnForeignCluster(fn func(*ForeignClusterEvent)) { events.Subscribe(m.bus, fn) }

// OnLeaderChanged registers a handler for changes of the cluster coordinator.
func (m *Manager) OnLeaderChanged(fn func(*LeaderChangedEvent)) { events.Subscribe(m.bus, fn) }

// workflowEvent maps a committed lifecycle change to its event, or nil.
// node is the member that applied it (NodeID of the event).
func (m *Manager) workflowEvent(c *wf.Change, node string) any {
	v := &c.View
	started := unixTime(v.CreatedAt)
	at := unixTime(v.UpdatedAt)
	switch c.Kind {
	case wf.ChangeStarted:
		return &events.WorkflowStartedEvent{WorkflowID: v.ID, StartedAt: started, InitialNodes: v.InitialNodes,
			Metadata: v.Metadata, NodeID: node}
	case wf.ChangeCompleted:
		return &events.WorkflowCompletedEvent{WorkflowID: v.ID, StartedAt: started, CompletedAt: at,
			Duration: at.Sub(started), FinalState: v.State, ExecutedNodes: int(v.Steps), Metadata: v.Metadata, NodeID: node}
	case wf.ChangeFailed:
		return &events.WorkflowErrorEvent{WorkflowID: v.ID, NodeName: v.FailedNode, Error: &WorkflowError{
			WorkflowID: v.ID, NodeName: v.FailedNode, Attempt: v.FailedTry, Message: v.LastError},
			Attempt: v.FailedTry, StartedAt: started, FailedAt: at, Duration: at.Sub(started), FinalState: v.State,
			Metadata: v.Metadata, NodeID: node}
	case wf.ChangePaused:
		return &events.WorkflowPausedEvent{WorkflowID: v.ID, PausedAt: at, Metadata: v.Metadata, NodeID: node}
	case wf.ChangeResumed:
		return &events.WorkflowResumedEvent{WorkflowID: v.ID, ResumedAt: at, Metadata: v.Metadata, NodeID: node}
	case wf.ChangeStopped:
		return &events.WorkflowStoppedEvent{WorkflowID: v.ID, StoppedAt: at, Duration: at.Sub(started),
			Metadata: v.Metadata, NodeID: node}
	}
	return nil
}

// WorkflowError is the error a failed workflow reports in its
// WorkflowErrorEvent: the failing node, its attempt and its error text.
type WorkflowError struct {
	WorkflowID string
	NodeName   string
	Attempt    int
	Message    string
}

// Error describes the failure.
func (e *WorkflowError) Error() string {
	if e.NodeName == "" {
		return "workflow " + e.WorkflowID + " failed: " + e.Message
	}
	return "workflow " + e.WorkflowID + " failed in node " + e.NodeName + ": " + e.Message
}
