package graft

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eleven-am/graft/internal/wf"
)

// StartWorkflow starts a workflow and returns once it is durably stored.
// It waits at most Engine.RequestTimeout; see StartWorkflowContext.
func (m *Manager) StartWorkflow(trigger WorkflowTrigger) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Engine.RequestTimeout)
	defer cancel()
	return m.StartWorkflowContext(ctx, trigger)
}

// StartWorkflowContext starts a workflow and returns once it is committed on
// a quorum of its shard. A refused trigger (errors.Is ErrInvalidWorkflow or
// ErrWorkflowExists) stores nothing. On ErrTimeout the start may still have
// been committed: retrying with the same WorkflowID is safe (it then reports
// ErrWorkflowExists).
func (m *Manager) StartWorkflowContext(ctx context.Context, trigger WorkflowTrigger) error {
	if err := m.member.Running(); err != nil {
		return err
	}
	cmd, err := m.startCommand(trigger)
	if err != nil {
		return err
	}
	res, err := m.member.StartWorkflow(ctx, cmd)
	if err != nil {
		return fmt.Errorf("starting workflow %q: %w", trigger.WorkflowID, err)
	}
	switch res.Code {
	case wf.OK:
		return nil
	case wf.Exists:
		return fmt.Errorf("%w: %q", ErrWorkflowExists, trigger.WorkflowID)
	default:
		return fmt.Errorf("%w: %s", ErrInvalidWorkflow, res.Message)
	}
}

// startCommand validates a trigger and encodes it as a start command.
func (m *Manager) startCommand(t WorkflowTrigger) (*wf.Command, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidWorkflow, fmt.Sprintf(format, args...))
	}
	if err := validateWorkflowID(t.WorkflowID); err != nil {
		return nil, invalid("%v", err)
	}
	if len(t.InitialNodes) == 0 {
		return nil, invalid("workflow %q: InitialNodes is empty", t.WorkflowID)
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	c := &wf.Command{Op: wf.OpStart, WF: t.WorkflowID, Now: time.Now().UnixNano(), Metadata: t.Metadata,
		Starter: m.cfg.NodeID, Nonce: hex.EncodeToString(nonce)}
	for i, n := range t.InitialNodes {
		if !m.member.HasNode(n.Name) {
			return nil, invalid("workflow %q: InitialNodes[%d]: node %q is not registered", t.WorkflowID, i, n.Name)
		}
		var cfg json.RawMessage
		if n.Config != nil {
			b, err := json.Marshal(n.Config)
			if err != nil {
				return nil, invalid("workflow %q: InitialNodes[%d] (%q): config is not JSON-encodable: %v", t.WorkflowID, i, n.Name, err)
			}
			if err := wf.CheckDepth(b); err != nil {
				return nil, invalid("workflow %q: InitialNodes[%d] (%q): config is %v", t.WorkflowID, i, n.Name, err)
			}
			cfg = b
		}
		c.Tasks = append(c.Tasks, wf.NewTask{Node: n.Name, Config: cfg})
	}
	state := json.RawMessage("{}")
	if t.InitialState != nil {
		b, err := json.Marshal(t.InitialState)
		if err != nil {
			return nil, invalid("workflow %q: InitialState is not JSON-encodable: %v", t.WorkflowID, err)
		}
		switch {
		case string(b) == "null":
		case len(b) == 0 || b[0] != '{':
			return nil, invalid("workflow %q: InitialState must encode to a JSON object, got %.40s", t.WorkflowID, b)
		default:
			state = b
		}
	}
	if len(state) > m.cfg.Engine.MaxStateBytes {
		return nil, invalid("workflow %q: InitialState is %d bytes, over the limit of %d (Engine.MaxStateBytes)",
			t.WorkflowID, len(state), m.cfg.Engine.MaxStateBytes)
	}
	if err := wf.CheckDepth(state); err != nil {
		return nil, invalid("workflow %q: InitialState is %v", t.WorkflowID, err)
	}
	c.State = state
	return c, nil
}

func validateWorkflowID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("WorkflowID is empty")
	case len(id) > MaxWorkflowIDLength:
		return fmt.Errorf("WorkflowID is %d bytes, over the limit of %d", len(id), MaxWorkflowIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("WorkflowID %q is not valid UTF-8", id)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("WorkflowID %q contains a control character", id)
		}
	}
	return nil
}

// GetWorkflowStatus returns a linearizable snapshot of a workflow: its
// status, state, executed, executing and pending nodes. An unknown ID gives
// an error that errors.Is ErrWorkflowNotFound.
func (m *Manager) GetWorkflowStatus(workflowID string) (*WorkflowStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Engine.RequestTimeout)
	defer cancel()
	return m.GetWorkflowStatusContext(ctx, workflowID)
}

// GetWorkflowStatusContext is GetWorkflowStatus bounded by ctx.
func (m *Manager) GetWorkflowStatusContext(ctx context.Context, workflowID string) (*WorkflowStatus, error) {
	if err := m.member.Running(); err != nil {
		return nil, err
	}
	if err := validateWorkflowID(workflowID); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWorkflowNotFound, err)
	}
	a, err := m.member.Status(ctx, workflowID)
	if err != nil {
		return nil, fmt.Errorf("reading workflow %q: %w", workflowID, err)
	}
	if !a.Found {
		return nil, fmt.Errorf("%w: %q", ErrWorkflowNotFound, workflowID)
	}
	return statusFromView(a), nil
}

func statusFromView(a *wf.StatusAnswer) *WorkflowStatus {
	v := &a.View
	s := &WorkflowStatus{
		WorkflowID: v.ID, Status: WorkflowState(v.Status.String()), CurrentStateJSON: v.State,
		Metadata: v.Metadata, FailedNode: v.FailedNode,
		StartedAt: unixTime(v.CreatedAt), UpdatedAt: unixTime(v.UpdatedAt),
		BlockedSince:   unixTime(v.BlockedSince),
		ExecutedNodes:  make([]ExecutedNode, 0, len(a.History)),
		ExecutingNodes: make([]ExecutingNode, 0, len(v.Executing)),
		PendingNodes:   make([]PendingNode, 0, len(v.Pending)),
	}
	if v.BlockedSince != 0 && v.Status == wf.StatusRunning {
		s.Status = WorkflowStateBlocked
	}
	if v.Status.Terminal() && v.EndedAt != 0 {
		t := unixTime(v.EndedAt)
		s.CompletedAt = &t
	}
	if len(s.CurrentStateJSON) == 0 {
		s.CurrentStateJSON = json.RawMessage("{}")
	}
	s.CurrentState = decodeJSON(s.CurrentStateJSON)
	lastErr := v.LastError
	for _, h := range a.History {
		s.ExecutedNodes = append(s.ExecutedNodes, ExecutedNode{
			NodeName: h.Node, ExecutionID: h.ExecID, MemberID: h.Member, Attempt: h.Attempt,
			StartedAt: unixTime(h.StartedAt), Duration: time.Duration(h.Duration), Error: h.Error, NextNodes: h.Next,
		})
		if h.Error != "" && v.LastError == "" && v.Status != wf.StatusCompleted {
			lastErr = h.Error // the latest step error
		}
	}
	if lastErr != "" {
		s.LastError = &lastErr
	}
	for _, x := range v.Executing {
		s.ExecutingNodes = append(s.ExecutingNodes, ExecutingNode{
			NodeName: x.Node, ExecutionID: x.ExecID, MemberID: x.Member, Attempt: x.Claims, StartedAt: unixTime(x.StartedAt),
		})
	}
	for _, t := range v.Pending {
		s.PendingNodes = append(s.PendingNodes, PendingNode{
			NodeName: t.Node, Config: t.Config, Priority: t.Priority, ReadyAt: unixTime(t.NotBefore),
			IdempotencyKey: t.Key, HasKey: t.HasKey, Failures: t.Failures, LastError: t.LastError,
		})
	}
	return s
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

// PauseWorkflow pauses a workflow: no new steps start; steps already running
// finish and their results are kept. Pausing a paused workflow is a no-op.
func (m *Manager) PauseWorkflow(ctx context.Context, workflowID string) error {
	return m.control(ctx, wf.OpPause, workflowID)
}

// ResumeWorkflow resumes a paused workflow. Resuming a running workflow is a
// no-op.
func (m *Manager) ResumeWorkflow(ctx context.Context, workflowID string) error {
	return m.control(ctx, wf.OpResume, workflowID)
}

// StopWorkflow stops a workflow for good: pending steps never run and the
// contexts of running steps are cancelled. Stopping a stopped workflow is a
// no-op; stopping a completed or failed one is ErrInvalidTransition.
func (m *Manager) StopWorkflow(ctx context.Context, workflowID string) error {
	return m.control(ctx, wf.OpStop, workflowID)
}

func (m *Manager) control(ctx context.Context, op wf.Op, id string) error {
	if err := m.member.Running(); err != nil {
		return err
	}
	if err := validateWorkflowID(id); err != nil {
		return fmt.Errorf("%w: %v", ErrWorkflowNotFound, err)
	}
	res, err := m.member.Control(ctx, op, id)
	if err != nil {
		return fmt.Errorf("%s workflow %q: %w", op, id, err)
	}
	switch res.Code {
	case wf.OK:
		return nil
	case wf.NotFound:
		return fmt.Errorf("%w: %q", ErrWorkflowNotFound, id)
	default:
		return fmt.Errorf("%w: cannot %s: %s", ErrInvalidTransition, op, res.Message)
	}
}
