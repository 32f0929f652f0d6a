// Package operator is the operator side of the member RPC: the methods an
// operator (a person or tool such as the graft command) calls on any
// member, their requests and answers, how a member decodes the requests
// (bounded, strict), and who may call them (Guard). A member serves the
// methods through a Service; internal/opclient calls them.
//
// Requests and answers are JSON. A request is at most MaxRequestBytes and
// is refused, naming what is wrong, if it has unknown fields, trailing
// data or a value out of bounds; answers are bounded by the member RPC's
// message limit.
package operator

import (
	"context"
	"encoding/json"
	"time"
)

// The operator methods of the member RPC.
const (
	MethodMembers   = "op.members"
	MethodShards    = "op.shards"
	MethodList      = "op.list"
	MethodCount     = "op.count"
	MethodShow      = "op.show"
	MethodPause     = "op.pause"
	MethodResume    = "op.resume"
	MethodStop      = "op.stop"
	MethodBroadcast = "op.broadcast"
	MethodQuery     = "op.query"
)

// KindRefused is the error kind (rpc.CodedError.Kind) of a call the Guard
// refused.
const KindRefused = "operator-refused"

// Service is what a member serves the operator methods with. Its methods
// are called concurrently and must be safe for concurrent use; each
// honours ctx.
type Service interface {
	// Members describes the cluster's members as this member sees them.
	Members(ctx context.Context) (*MembersAnswer, error)
	// Shards describes the cluster's shards as this member sees them.
	Shards(ctx context.Context) (*ShardsAnswer, error)
	// List returns a page of workflows.
	List(ctx context.Context, req ListRequest) (*ListAnswer, error)
	// Count counts workflows by status.
	Count(ctx context.Context, f Filter) (*Counts, error)
	// Show returns one workflow; an unknown ID is an error wrapping the
	// member's workflow-not-found sentinel.
	Show(ctx context.Context, id string) (*Workflow, error)
	// Control pauses (MethodPause), resumes (MethodResume) or stops
	// (MethodStop) a workflow.
	Control(ctx context.Context, method, id string) error
	// Broadcast sends a dev command to every member.
	Broadcast(ctx context.Context, req CommandRequest) error
	// Query sends a dev command to every member and collects outcomes.
	Query(ctx context.Context, req CommandRequest) (*QueryAnswer, error)
}

// Filter selects workflows (graft.ListFilter).
type Filter struct {
	// Status is running, paused, blocked, completed, failed or stopped;
	// empty selects every status.
	Status string `json:"status,omitempty"`
	// Metadata pairs must all be in a workflow's metadata.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Node selects the workflows waiting on or failed in this node.
	Node string `json:"node,omitempty"`
	// StartedAfter and StartedBefore bound the start time, exclusive;
	// zero means unbounded.
	StartedAfter  time.Time `json:"started_after,omitzero"`
	StartedBefore time.Time `json:"started_before,omitzero"`
}

// ListRequest asks for a page of workflows (graft.ListOptions).
type ListRequest struct {
	Filter
	// Limit is the page size: 0 means the member's default, at most
	// MaxListLimit.
	Limit int `json:"limit,omitempty"`
	// PageToken continues a listing; empty for the first page.
	PageToken string `json:"page_token,omitempty"`
}

// WorkflowRequest names a workflow (show, pause, resume, stop).
type WorkflowRequest struct {
	ID string `json:"id"`
}

// CommandRequest is a dev command (graft.DevCommand).
type CommandRequest struct {
	// Command names the handler.
	Command string `json:"command"`
	// Params is the command's params as JSON; empty for none.
	Params json.RawMessage `json:"params,omitempty"`
}

// MembersAnswer is the answer of MethodMembers.
type MembersAnswer struct {
	// NodeID is the answering member; ClusterID its cluster's ID ("" for
	// a lone member); Status its state (running, starting, joining,
	// stopped); Coordinator whether it coordinates the cluster.
	NodeID      string   `json:"node_id"`
	ClusterID   string   `json:"cluster_id,omitempty"`
	Status      string   `json:"status"`
	Coordinator bool     `json:"coordinator"`
	Shards      int      `json:"shards"`
	Members     []Member `json:"members"`
}

// Member is one member's entry (graft.MemberInfo).
type Member struct {
	ID              string            `json:"id"`
	Status          string            `json:"status"`
	GossipAddr      string            `json:"gossip_addr,omitempty"`
	RaftAddr        string            `json:"raft_addr,omitempty"`
	RPCAddr         string            `json:"rpc_addr,omitempty"`
	NodeTypes       []string          `json:"node_types,omitempty"`
	WorkerCapacity  int               `json:"worker_capacity"`
	Executing       int               `json:"executing"`
	Queued          int               `json:"queued"`
	ShardsHeld      []uint64          `json:"shards_held,omitempty"`
	ShardsLed       []uint64          `json:"shards_led,omitempty"`
	SoftwareVersion string            `json:"software_version,omitempty"`
	StartedAt       time.Time         `json:"started_at,omitzero"`
	UpdatedAt       time.Time         `json:"updated_at,omitzero"`
	DiskFull        bool              `json:"disk_full"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

// ShardsAnswer is the answer of MethodShards.
type ShardsAnswer struct {
	// NodeID is the answering member.
	NodeID string  `json:"node_id"`
	Shards []Shard `json:"shards"`
}

// Shard is one shard as the answering member sees it.
type Shard struct {
	ID uint64 `json:"id"`
	// Leader is the member leading it and Replicas the members holding
	// it, from the cluster's state (they lag by a few seconds; "" and
	// none when unknown).
	Leader   string   `json:"leader,omitempty"`
	Replicas []string `json:"replicas,omitempty"`
	// Local is the answering member's replica of it, if it holds one.
	Local *Replica `json:"local,omitempty"`
}

// Replica is a member's replica of a shard: its replica ID, the Raft term
// of the leader it knows, whether it leads, and the voting replica IDs it
// has applied.
type Replica struct {
	Replica uint64   `json:"replica"`
	Term    uint64   `json:"term"`
	Leader  bool     `json:"leader"`
	Members []uint64 `json:"members,omitempty"`
}

// ListAnswer is the answer of MethodList.
type ListAnswer struct {
	Workflows     []Summary `json:"workflows"`
	NextPageToken string    `json:"next_page_token,omitempty"`
}

// Summary is one workflow of a list (graft.WorkflowSummary).
type Summary struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	StartedAt      time.Time         `json:"started_at,omitzero"`
	UpdatedAt      time.Time         `json:"updated_at,omitzero"`
	CompletedAt    *time.Time        `json:"completed_at,omitempty"`
	PendingNodes   []string          `json:"pending_nodes,omitempty"`
	ExecutingNodes []string          `json:"executing_nodes,omitempty"`
	FailedNode     string            `json:"failed_node,omitempty"`
	LastError      string            `json:"last_error,omitempty"`
	Steps          int               `json:"steps"`
	StartedBy      string            `json:"started_by,omitempty"`
}

// Counts is the answer of MethodCount (graft.WorkflowCounts).
type Counts struct {
	ByStatus map[string]int `json:"by_status"`
	Total    int            `json:"total"`
	// Complete is false when the counts are lower bounds.
	Complete bool `json:"complete"`
}

// Workflow is the answer of MethodShow (graft.WorkflowStatus).
type Workflow struct {
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	State        json.RawMessage   `json:"state"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	StartedAt    time.Time         `json:"started_at,omitzero"`
	UpdatedAt    time.Time         `json:"updated_at,omitzero"`
	CompletedAt  *time.Time        `json:"completed_at,omitempty"`
	BlockedSince time.Time         `json:"blocked_since,omitzero"`
	FailedNode   string            `json:"failed_node,omitempty"`
	LastError    string            `json:"last_error,omitempty"`
	Executed     []ExecutedStep    `json:"executed"`
	Executing    []ExecutingStep   `json:"executing"`
	Pending      []PendingStep     `json:"pending"`
}

// ExecutedStep is one finished step run (graft.ExecutedNode).
type ExecutedStep struct {
	Node        string        `json:"node"`
	ExecutionID string        `json:"execution_id,omitempty"`
	Member      string        `json:"member,omitempty"`
	Attempt     int           `json:"attempt"`
	StartedAt   time.Time     `json:"started_at,omitzero"`
	Duration    time.Duration `json:"duration_ns"`
	Error       string        `json:"error,omitempty"`
	NextNodes   []string      `json:"next_nodes,omitempty"`
}

// ExecutingStep is one running step (graft.ExecutingNode).
type ExecutingStep struct {
	Node        string    `json:"node"`
	ExecutionID string    `json:"execution_id,omitempty"`
	Member      string    `json:"member,omitempty"`
	Attempt     int       `json:"attempt"`
	StartedAt   time.Time `json:"started_at,omitzero"`
}

// PendingStep is one step waiting to run (graft.PendingNode).
type PendingStep struct {
	Node      string    `json:"node"`
	Priority  int       `json:"priority"`
	ReadyAt   time.Time `json:"ready_at,omitzero"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
}

// QueryAnswer is the answer of MethodQuery: each member's outcome, by
// node ID: "" for success, else its handler's error.
type QueryAnswer struct {
	Outcomes map[string]string `json:"outcomes"`
}
