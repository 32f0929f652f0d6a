package graft

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/eleven-am/graft/internal/operator"
)

// operatorService serves the operator methods of the member RPC (the graft
// command) with the Manager's public API, so an operator sees what the API
// returns.
type operatorService struct{ m *Manager }

var _ operator.Service = operatorService{}

// Members describes the cluster's members (GetClusterInfo).
func (s operatorService) Members(context.Context) (*operator.MembersAnswer, error) {
	if err := s.m.member.Running(); err != nil {
		return nil, err
	}
	info := s.m.GetClusterInfo()
	out := &operator.MembersAnswer{NodeID: info.NodeID, ClusterID: info.ClusterID, Status: info.Status,
		Coordinator: info.IsLeader, Shards: info.Shards, Members: make([]operator.Member, 0, len(info.Members))}
	for _, mi := range info.Members {
		out.Members = append(out.Members, operator.Member{ID: mi.ID, Status: mi.Status, GossipAddr: mi.GossipAddr,
			RaftAddr: mi.RaftAddr, RPCAddr: mi.RPCAddr, NodeTypes: mi.NodeTypes, WorkerCapacity: mi.WorkerCapacity,
			Executing: mi.Executing, Queued: mi.Queued, ShardsHeld: mi.ShardsHeld, ShardsLed: mi.ShardsLed,
			SoftwareVersion: mi.SoftwareVersion, StartedAt: mi.StartedAt, UpdatedAt: mi.UpdatedAt,
			DiskFull: mi.DiskFull, Metadata: mi.Metadata})
	}
	return out, nil
}

// Shards describes every shard: its leader and replicas from the members'
// entries in the cluster state, and this member's replica as its storage
// knows it (no state is read: ReplicaStates would hash every shard).
func (s operatorService) Shards(context.Context) (*operator.ShardsAnswer, error) {
	if err := s.m.member.Running(); err != nil {
		return nil, err
	}
	info := s.m.GetClusterInfo()
	h, err := s.m.member.Storage()
	if err != nil {
		return nil, err
	}
	out := &operator.ShardsAnswer{NodeID: info.NodeID, Shards: make([]operator.Shard, 0, info.Shards)}
	for id := uint64(1); id <= uint64(info.Shards); id++ {
		sh := operator.Shard{ID: id}
		for _, mi := range info.Members {
			if slices.Contains(mi.ShardsLed, id) {
				sh.Leader = mi.ID
			}
			if slices.Contains(mi.ShardsHeld, id) {
				sh.Replicas = append(sh.Replicas, mi.ID)
			}
		}
		if rid, ok := h.ReplicaID(id); ok {
			r := &operator.Replica{Replica: rid, Leader: h.IsLeader(id)}
			if _, term, ok := h.Leader(id); ok {
				r.Term = term
			}
			if mem, ok := h.AppliedMembership(id); ok {
				r.Members = slices.Sorted(maps.Keys(mem))
			}
			sh.Local = r
			if r.Leader {
				sh.Leader = info.NodeID // fresher than this member's published entry
			}
			if !slices.Contains(sh.Replicas, info.NodeID) {
				sh.Replicas = append(sh.Replicas, info.NodeID)
			}
		}
		slices.Sort(sh.Replicas)
		out.Shards = append(out.Shards, sh)
	}
	return out, nil
}

// List returns a page of workflows (ListWorkflows).
func (s operatorService) List(ctx context.Context, req operator.ListRequest) (*operator.ListAnswer, error) {
	f := listFilterOf(req.Filter)
	page, err := s.m.ListWorkflows(ctx, ListOptions{Status: f.Status, Metadata: f.Metadata, NodeName: f.NodeName,
		StartedAfter: f.StartedAfter, StartedBefore: f.StartedBefore, Limit: req.Limit, PageToken: req.PageToken})
	if err != nil {
		return nil, err
	}
	out := &operator.ListAnswer{Workflows: make([]operator.Summary, 0, len(page.Workflows)), NextPageToken: page.NextPageToken}
	for _, w := range page.Workflows {
		out.Workflows = append(out.Workflows, operator.Summary{ID: w.WorkflowID, Status: string(w.Status), Metadata: w.Metadata,
			StartedAt: w.StartedAt, UpdatedAt: w.UpdatedAt, CompletedAt: w.CompletedAt, PendingNodes: w.PendingNodes,
			ExecutingNodes: w.ExecutingNodes, FailedNode: w.FailedNode, LastError: w.LastError, Steps: w.Steps, StartedBy: w.StartedBy})
	}
	return out, nil
}

// Count counts workflows by status (CountWorkflows).
func (s operatorService) Count(ctx context.Context, f operator.Filter) (*operator.Counts, error) {
	c, err := s.m.CountWorkflows(ctx, listFilterOf(f))
	if err != nil {
		return nil, err
	}
	out := &operator.Counts{ByStatus: make(map[string]int, len(c.ByStatus)), Total: c.Total, Complete: c.Complete}
	for st, n := range c.ByStatus {
		out.ByStatus[string(st)] = n
	}
	return out, nil
}

// listFilterOf is the ListFilter of an operator's filter.
func listFilterOf(f operator.Filter) ListFilter {
	return ListFilter{Status: WorkflowState(f.Status), Metadata: f.Metadata, NodeName: f.Node,
		StartedAfter: f.StartedAfter, StartedBefore: f.StartedBefore}
}

// Show returns one workflow (GetWorkflowStatusContext).
func (s operatorService) Show(ctx context.Context, id string) (*operator.Workflow, error) {
	st, err := s.m.GetWorkflowStatusContext(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &operator.Workflow{ID: st.WorkflowID, Status: string(st.Status), State: st.CurrentStateJSON, Metadata: st.Metadata,
		StartedAt: st.StartedAt, UpdatedAt: st.UpdatedAt, CompletedAt: st.CompletedAt, BlockedSince: st.BlockedSince,
		FailedNode: st.FailedNode, Executed: make([]operator.ExecutedStep, 0, len(st.ExecutedNodes)),
		Executing: make([]operator.ExecutingStep, 0, len(st.ExecutingNodes)), Pending: make([]operator.PendingStep, 0, len(st.PendingNodes))}
	if st.LastError != nil {
		out.LastError = *st.LastError
	}
	for _, e := range st.ExecutedNodes {
		out.Executed = append(out.Executed, operator.ExecutedStep{Node: e.NodeName, ExecutionID: e.ExecutionID, Member: e.MemberID,
			Attempt: e.Attempt, StartedAt: e.StartedAt, Duration: e.Duration, Error: e.Error, NextNodes: e.NextNodes})
	}
	for _, e := range st.ExecutingNodes {
		out.Executing = append(out.Executing, operator.ExecutingStep{Node: e.NodeName, ExecutionID: e.ExecutionID, Member: e.MemberID,
			Attempt: e.Attempt, StartedAt: e.StartedAt})
	}
	for _, p := range st.PendingNodes {
		out.Pending = append(out.Pending, operator.PendingStep{Node: p.NodeName, Priority: p.Priority, ReadyAt: p.ReadyAt,
			Failures: p.Failures, LastError: p.LastError})
	}
	return out, nil
}

// Control pauses, resumes or stops a workflow.
func (s operatorService) Control(ctx context.Context, method, id string) error {
	switch method {
	case operator.MethodPause:
		return s.m.PauseWorkflow(ctx, id)
	case operator.MethodResume:
		return s.m.ResumeWorkflow(ctx, id)
	case operator.MethodStop:
		return s.m.StopWorkflow(ctx, id)
	}
	return fmt.Errorf("%q is not a workflow control method", method)
}

// Broadcast sends a dev command to every member (BroadcastCommand).
func (s operatorService) Broadcast(ctx context.Context, req operator.CommandRequest) error {
	return s.m.BroadcastCommand(ctx, devCommandOf(req))
}

// Query sends a dev command to every member and collects their outcomes
// (QueryCommand).
func (s operatorService) Query(ctx context.Context, req operator.CommandRequest) (*operator.QueryAnswer, error) {
	res, err := s.m.QueryCommand(ctx, devCommandOf(req))
	if err != nil {
		return nil, err
	}
	out := &operator.QueryAnswer{Outcomes: make(map[string]string, len(res))}
	for id, e := range res {
		out.Outcomes[id] = ""
		if e != nil {
			out.Outcomes[id] = e.Error()
		}
	}
	return out, nil
}

// devCommandOf is the DevCommand of an operator's request; its params
// travel as the JSON the operator gave.
func devCommandOf(req operator.CommandRequest) *DevCommand {
	cmd := &DevCommand{Command: req.Command}
	if len(req.Params) > 0 {
		cmd.Params = json.RawMessage(req.Params)
	}
	return cmd
}
