package member

import (
	"context"
	"encoding/json"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/internal/disk"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/ring"
)

// Running returns nil while the member runs, otherwise ErrNotStarted or
// ErrClosed.
func (m *Member) Running() error {
	_, err := m.running()
	return err
}

// HasNode reports whether node is registered here or on another alive
// member.
func (m *Member) HasNode(node string) bool {
	if _, ok := m.registry.Get(node); ok {
		return true
	}
	return remote{m}.Has(node)
}

// ShardOf returns the shard of workflow id.
func (m *Member) ShardOf(id string) uint64 {
	return ring.ShardFor(id, m.shardCount())
}

// StartWorkflow proposes a start command and returns its result (see
// route.Router.Start: start-at-leader and claim-in-start).
func (m *Member) StartWorkflow(ctx context.Context, cmd *wf.Command) (wf.Result, error) {
	return m.router().Start(ctx, m.ShardOf(cmd.WF), cmd)
}

// Status reads workflow id's status, linearizably.
func (m *Member) Status(ctx context.Context, id string) (*wf.StatusAnswer, error) {
	var a wf.StatusAnswer
	if err := m.read(ctx, m.ShardOf(id), wf.Query{Op: wf.QueryStatus, WF: id}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Control proposes a pause, resume or stop of workflow id.
func (m *Member) Control(ctx context.Context, op wf.Op, id string) (wf.Result, error) {
	return m.apply(ctx, m.ShardOf(id), &wf.Command{Op: op, WF: id, Now: time.Now().UnixNano()}, disk.Step)
}

// workflowEvent maps a committed lifecycle change to its event, or nil.
// node is the member that applied it (NodeID of the event).
func workflowEvent(c *wf.Change, node string) any {
	v := &c.View
	started := unixTime(v.CreatedAt)
	at := unixTime(v.UpdatedAt)
	switch c.Kind {
	case wf.ChangeStarted:
		return &events.WorkflowStartedEvent{WorkflowID: v.ID, StartedAt: started, InitialNodes: v.InitialNodes,
			Metadata: v.Metadata, NodeID: node}
	case wf.ChangeCompleted:
		state := stateJSON(v.State)
		return &events.WorkflowCompletedEvent{WorkflowID: v.ID, StartedAt: started, CompletedAt: at,
			Duration: at.Sub(started), FinalState: decodeJSON(state), FinalStateJSON: state,
			ExecutedNodes: executedList(v), Metadata: v.Metadata, NodeID: node}
	case wf.ChangeFailed:
		state := stateJSON(v.State)
		return &events.WorkflowErrorEvent{WorkflowID: v.ID, NodeName: v.FailedNode, FailedNode: v.FailedNode,
			Error:   &events.WorkflowError{WorkflowID: v.ID, NodeName: v.FailedNode, Attempt: v.FailedTry, Message: v.LastError},
			Attempt: v.FailedTry, StartedAt: started, FailedAt: at, Duration: at.Sub(started),
			CurrentState: decodeJSON(state), CurrentStateJSON: state, Metadata: v.Metadata, NodeID: node}
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

// stateJSON is a view's state, {} when it has none.
func stateJSON(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return b
}

// executedList is the completed workflow's executed node names, never nil.
func executedList(v *wf.View) []string {
	if v.Executed == nil {
		return []string{}
	}
	return v.Executed
}

// decodeJSON decodes b as encoding/json decodes into interface{} (objects
// become map[string]interface{}); nil if b is empty or not JSON.
func decodeJSON(b json.RawMessage) interface{} {
	var v interface{}
	if len(b) == 0 || json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
