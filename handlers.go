package graft

import (
	"fmt"

	"github.com/eleven-am/graft/events"
)

// Event handlers. Each runs on its own goroutine, in the order events were
// published; a slow handler delays only itself (events beyond
// Engine.EventBufferSize are dropped for it and counted in
// ClusterMetrics.DroppedEvents) and a panicking one is logged and kept.
// Delivery is at-least-once across restarts: make handlers idempotent.
// Handlers may be registered before or after Start. Each On* method returns
// nil once the handler is registered, or why it was refused: a nil handler
// (ErrInvalidHandler) or a stopped Manager (ErrClosed). Ignoring the result
// (m.OnWorkflowCompleted(h) as a statement) is fine where neither can
// happen.

// subscribe registers fn for events of type *T unless it is nil or the
// Manager is stopped.
func subscribe[T any](m *Manager, what string, fn func(*T)) error {
	if fn == nil {
		return fmt.Errorf("%w: %s handler is nil", ErrInvalidHandler, what)
	}
	if m.member.Stopped() {
		return fmt.Errorf("registering %s handler: %w", what, ErrClosed)
	}
	events.Subscribe(m.member.Bus(), fn)
	return nil
}

// OnWorkflowStarted registers a handler for accepted workflows.
func (m *Manager) OnWorkflowStarted(fn func(*WorkflowStartedEvent)) error {
	return subscribe(m, "WorkflowStarted", fn)
}

// OnWorkflowCompleted registers a handler for completed workflows.
func (m *Manager) OnWorkflowCompleted(fn func(*WorkflowCompletedEvent)) error {
	return subscribe(m, "WorkflowCompleted", fn)
}

// OnWorkflowError registers a handler for failed workflows.
func (m *Manager) OnWorkflowError(fn func(*WorkflowErrorEvent)) error {
	return subscribe(m, "WorkflowError", fn)
}

// OnWorkflowFailed is the published API's name of OnWorkflowError: it
// registers a handler for failed workflows.
func (m *Manager) OnWorkflowFailed(fn func(*WorkflowErrorEvent)) error {
	return subscribe(m, "WorkflowFailed", fn)
}

// OnWorkflowPaused registers a handler for paused workflows.
func (m *Manager) OnWorkflowPaused(fn func(*WorkflowPausedEvent)) error {
	return subscribe(m, "WorkflowPaused", fn)
}

// OnWorkflowResumed registers a handler for resumed workflows.
func (m *Manager) OnWorkflowResumed(fn func(*WorkflowResumedEvent)) error {
	return subscribe(m, "WorkflowResumed", fn)
}

// OnWorkflowStopped registers a handler for stopped workflows.
func (m *Manager) OnWorkflowStopped(fn func(*WorkflowStoppedEvent)) error {
	return subscribe(m, "WorkflowStopped", fn)
}

// OnNodeStarted registers a handler for started steps.
func (m *Manager) OnNodeStarted(fn func(*NodeStartedEvent)) error {
	return subscribe(m, "NodeStarted", fn)
}

// OnNodeCompleted registers a handler for steps that returned without error.
func (m *Manager) OnNodeCompleted(fn func(*NodeCompletedEvent)) error {
	return subscribe(m, "NodeCompleted", fn)
}

// OnNodeError registers a handler for steps that returned an error or panicked.
func (m *Manager) OnNodeError(fn func(*NodeErrorEvent)) error {
	return subscribe(m, "NodeError", fn)
}

// OnNodeJoined registers a handler for members joining the cluster.
func (m *Manager) OnNodeJoined(fn func(*NodeJoinedEvent)) error {
	return subscribe(m, "NodeJoined", fn)
}

// OnNodeLeft registers a handler for members leaving or failing.
func (m *Manager) OnNodeLeft(fn func(*NodeLeftEvent)) error {
	return subscribe(m, "NodeLeft", fn)
}

// OnForeignCluster registers a handler for members of other clusters
// (bootstrapped apart, with another cluster ID) that this member met and
// refused; see ForeignClusterEvent.
func (m *Manager) OnForeignCluster(fn func(*ForeignClusterEvent)) error {
	return subscribe(m, "ForeignCluster", fn)
}

// OnLeaderChanged registers a handler for changes of the cluster coordinator.
func (m *Manager) OnLeaderChanged(fn func(*LeaderChangedEvent)) error {
	return subscribe(m, "LeaderChanged", fn)
}

// OnShardLeaderChanged registers a handler for changes of a shard's
// leader, as this member's replicas see them (an operator observation; see
// ShardLeaderChangedEvent).
func (m *Manager) OnShardLeaderChanged(fn func(*ShardLeaderChangedEvent)) error {
	return subscribe(m, "ShardLeaderChanged", fn)
}

// OnShardMoved registers a handler for the replica moves rebalancing makes
// or applies on this member (an operator observation; see
// ShardMovedEvent).
func (m *Manager) OnShardMoved(fn func(*ShardMovedEvent)) error {
	return subscribe(m, "ShardMoved", fn)
}

// WorkflowError is the error a failed workflow reports in its
// WorkflowErrorEvent: the failing node, its attempt and its error text.
type WorkflowError = events.WorkflowError
