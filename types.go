package graft

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/executor"
)

// NodeResult is what a node's Execute returns: the new state and the nodes
// to run next. See executor.NodeResult.
type NodeResult = executor.NodeResult

// NextNode schedules a node after the current one. See executor.NextNode.
type NextNode = executor.NextNode

// WorkflowContext describes the step being executed. See GetWorkflowContext.
type WorkflowContext = executor.WorkflowContext

// GetWorkflowContext returns the workflow context of the step running with
// ctx (workflow ID, node name, member, execution ID, attempt, metadata,
// start times). ok is false outside a step.
func GetWorkflowContext(ctx context.Context) (*WorkflowContext, bool) {
	return executor.GetWorkflowContext(ctx)
}

// Permanent marks a node's error as not worth retrying: the workflow fails
// at once instead of after MaxRetries.
func Permanent(err error) error { return executor.Permanent(err) }

// Event types delivered to the On* handlers.
type (
	// WorkflowStartedEvent reports that a workflow was accepted.
	WorkflowStartedEvent = events.WorkflowStartedEvent
	// WorkflowCompletedEvent reports that a workflow finished with nothing left to run.
	WorkflowCompletedEvent = events.WorkflowCompletedEvent
	// WorkflowErrorEvent reports that a workflow failed.
	WorkflowErrorEvent = events.WorkflowErrorEvent
	// WorkflowPausedEvent reports that a workflow was paused.
	WorkflowPausedEvent = events.WorkflowPausedEvent
	// WorkflowResumedEvent reports that a workflow was resumed.
	WorkflowResumedEvent = events.WorkflowResumedEvent
	// WorkflowStoppedEvent reports that a workflow was stopped.
	WorkflowStoppedEvent = events.WorkflowStoppedEvent
	// NodeStartedEvent reports that a step started.
	NodeStartedEvent = events.NodeStartedEvent
	// NodeCompletedEvent reports that a step returned without error.
	NodeCompletedEvent = events.NodeCompletedEvent
	// NodeErrorEvent reports that a step returned an error or panicked.
	NodeErrorEvent = events.NodeErrorEvent
	// NodeJoinedEvent reports that a member joined the cluster.
	NodeJoinedEvent = events.NodeJoinedEvent
	// NodeLeftEvent reports that a member left or failed.
	NodeLeftEvent = events.NodeLeftEvent
	// LeaderChangedEvent reports that the cluster coordinator changed.
	LeaderChangedEvent = events.LeaderChangedEvent
	// ForeignClusterEvent reports a member of another cluster, refused.
	ForeignClusterEvent = events.ForeignClusterEvent
	// ShardLeaderChangedEvent reports that a shard's Raft leader changed.
	ShardLeaderChangedEvent = events.ShardLeaderChangedEvent
	// ShardMovedEvent reports that rebalancing added, started, removed or
	// deleted a replica of a shard.
	ShardMovedEvent = events.ShardMovedEvent
	// ShardMove says how a ShardMovedEvent's replica moved.
	ShardMove = events.ShardMove
)

// How a ShardMovedEvent's replica moved; see events.ShardMove.
const (
	// ReplicaAdded: the shard's leader added the replica to the shard.
	ReplicaAdded = events.ReplicaAdded
	// ReplicaRemoved: the shard's leader removed the replica from the shard.
	ReplicaRemoved = events.ReplicaRemoved
	// ReplicaJoined: the replica's member started it.
	ReplicaJoined = events.ReplicaJoined
	// ReplicaDropped: the replica's member deleted it.
	ReplicaDropped = events.ReplicaDropped
)

// NodeConfig names an initial node of a workflow and its config.
type NodeConfig struct {
	// Name is the registered node name.
	Name string
	// Config is passed to the node; it must be JSON-encodable.
	Config interface{}
}

// WorkflowTrigger starts a workflow.
type WorkflowTrigger struct {
	// WorkflowID identifies the workflow: 1 to MaxWorkflowIDLength bytes of
	// UTF-8 without control characters, unique among retained workflows.
	WorkflowID string
	// InitialNodes run first (at least one; each must be registered).
	InitialNodes []NodeConfig
	// InitialState is the workflow's starting state: anything that encodes
	// to a JSON object (struct, pointer to struct, map); nil means {}.
	InitialState interface{}
	// Metadata is carried with the workflow and passed to every step.
	Metadata map[string]string
}

// WorkflowState is a workflow's status as GetWorkflowStatus reports it.
type WorkflowState string

// Workflow statuses.
const (
	WorkflowStateRunning   WorkflowState = "running"
	WorkflowStatePaused    WorkflowState = "paused"
	WorkflowStateBlocked   WorkflowState = "blocked" // running, but every pending node is refused by CanStart
	WorkflowStateCompleted WorkflowState = "completed"
	WorkflowStateFailed    WorkflowState = "failed"
	WorkflowStateStopped   WorkflowState = "stopped"
)

// Terminal reports whether the workflow can no longer change.
func (s WorkflowState) Terminal() bool {
	return s == WorkflowStateCompleted || s == WorkflowStateFailed || s == WorkflowStateStopped
}

// ExecutedNode is one finished run of a step.
type ExecutedNode struct {
	NodeName    string
	ExecutionID string
	MemberID    string
	Attempt     int
	StartedAt   time.Time
	Duration    time.Duration
	// Error is the step's error; empty when it succeeded.
	Error string
	// NextNodes are the nodes it scheduled.
	NextNodes []string
}

// ExecutingNode is a step that a member has claimed and is running.
type ExecutingNode struct {
	NodeName    string
	ExecutionID string
	MemberID    string
	Attempt     int
	StartedAt   time.Time
}

// PendingNode is a step waiting to run.
type PendingNode struct {
	NodeName string
	Config   json.RawMessage
	Priority int
	// ReadyAt is when a delayed or retried step may start; zero means now.
	ReadyAt time.Time
	// IdempotencyKey is set when HasKey is true.
	IdempotencyKey string
	HasKey         bool
	// Failures counts the errors the step returned so far; LastError is the latest.
	Failures  int
	LastError string
}

// WorkflowStatus is a linearizable snapshot of a workflow.
type WorkflowStatus struct {
	WorkflowID string
	Status     WorkflowState
	// CurrentState is the workflow's state decoded from JSON as
	// encoding/json decodes into interface{}: a map[string]interface{}
	// (numbers are float64, arrays []interface{}), as the published API
	// reported it. CurrentStateJSON holds the same state as JSON, and
	// DecodeState decodes it into a type of yours.
	CurrentState interface{}
	// CurrentStateJSON is the workflow's state as JSON (a JSON object).
	CurrentStateJSON json.RawMessage
	Metadata         map[string]string
	// ExecutedNodes are the finished step runs, successful or not, in
	// commit order.
	ExecutedNodes  []ExecutedNode
	ExecutingNodes []ExecutingNode
	PendingNodes   []PendingNode
	// LastError is nil while no step has failed and on a completed
	// workflow; otherwise it points to the error that failed the workflow,
	// or, while it runs, the latest step error (being retried).
	// LastErrorText returns it as a string ("" for nil).
	LastError *string
	// FailedNode is the node whose error failed the workflow, if any.
	FailedNode string
	StartedAt  time.Time
	UpdatedAt  time.Time
	// CompletedAt is when the workflow reached a terminal status
	// (completed, failed or stopped); nil before.
	CompletedAt *time.Time
	// BlockedSince is when the workflow became blocked; zero if it is not.
	BlockedSince time.Time
}

// DecodeState decodes the workflow's state (CurrentStateJSON) into v, a
// pointer to a struct or map.
func (s *WorkflowStatus) DecodeState(v any) error {
	if err := json.Unmarshal(s.CurrentStateJSON, v); err != nil {
		return fmt.Errorf("decoding state of workflow %q: %w", s.WorkflowID, err)
	}
	return nil
}

// LastErrorText returns *LastError, or "" when LastError is nil.
func (s *WorkflowStatus) LastErrorText() string {
	if s.LastError == nil {
		return ""
	}
	return *s.LastError
}

// ExecutedNodeData is the published API's name of ExecutedNode. Its
// fields are ExecutedNode's (StartedAt where the published type had
// ExecutedAt; Error is a string, empty on success).
type ExecutedNodeData = ExecutedNode

// ExecutingNodeData is the published API's name of ExecutingNode (its
// ExecutionID stands where the published type had ClaimID).
type ExecutingNodeData = ExecutingNode

// ClusterMetrics are the cluster's figures as this member sees them. The
// totals are the sums of every member's counters in the cluster's CRDT
// state (each event is counted once, by the member that committed it; see
// MemberCounters): every member reports the same totals once the state
// has converged (usually within a few seconds), a lone member its own.
// Counters are persisted by each member and survive restarts and
// retention purges; a member that left keeps counting towards the totals
// until its tombstone is collected (24 hours). A total may lag the
// workflow's status by a moment: the count is made when its proposer sees
// the command commit.
type ClusterMetrics struct {
	// TotalWorkflows counts the workflows ever started: ActiveWorkflows +
	// CompletedWorkflows + FailedWorkflows + StoppedWorkflows.
	TotalWorkflows int
	// ActiveWorkflows counts running and paused workflows: TotalWorkflows
	// minus those that ended.
	ActiveWorkflows int
	// CompletedWorkflows counts workflows that completed successfully.
	CompletedWorkflows int
	// FailedWorkflows counts workflows that failed.
	FailedWorkflows int
	// StoppedWorkflows counts workflows stopped on request.
	StoppedWorkflows int
	// NodesExecuted counts the step runs that finished, with or without
	// error: StepsExecuted + StepErrors.
	NodesExecuted int
	// StepsExecuted counts steps that completed without error.
	StepsExecuted int
	// StepErrors counts step runs that returned an error or panicked.
	StepErrors int
	// QueueDepth is the number of ready steps waiting for a worker, over
	// the cluster's members (delayed steps are not counted).
	QueueDepth int
	// ExecutingSteps is the number of steps running, over the cluster's
	// members.
	ExecutingSteps int
	// BlockedWorkflows counts running workflows blocked by CanStart in the
	// shards this member leads (summed over members, it is the cluster's).
	BlockedWorkflows int
	// DroppedEvents counts events not delivered to a handler that fell
	// behind (this member's handlers only).
	DroppedEvents int
}

// ClusterInfo describes the cluster as this member sees it.
type ClusterInfo struct {
	NodeID string
	// ClusterID identifies the cluster this member belongs to: created at
	// bootstrap, recorded in DataDir/cluster.json and gossiped; members of
	// clusters with other IDs are refused. Empty on a lone member.
	ClusterID string
	// Status is "running" once the member is ready (GetReadinessState is
	// "ready"), otherwise its readiness state: "starting", "joining" or
	// "stopped".
	Status string
	// IsLeader reports whether this member is the cluster coordinator
	// (advisory; a lone member always is).
	IsLeader bool
	// Peers lists the other members' node IDs.
	Peers   []string
	Metrics ClusterMetrics
	// Shards is the cluster's shard count.
	Shards int
	// HostedShards are the shards this member holds a replica of, and
	// LeadShards those it leads (and so executes), both sorted.
	HostedShards []uint64
	LeadShards   []uint64
	// Members are the cluster's members as this member sees them, sorted
	// by ID, itself included: every member in the cluster state (those
	// that left until their entries are collected, 24 hours later, so
	// their counters add up to Metrics' totals) or in gossip's view. A
	// lone member lists itself.
	Members []MemberInfo
}

// MemberInfo is one member of the cluster as this member sees it: its
// entry in the cluster's CRDT state (published by that member, spread by
// gossip) and its gossip status. This member's own entry is read fresh.
type MemberInfo struct {
	// ID is the member's node ID.
	ID string
	// GossipAddr is its gossip address (host:port), RaftAddr its Raft
	// address (Config.BindAddr) and RPCAddr its member RPC address; empty
	// when gossip does not know them (a lone member has only RaftAddr).
	GossipAddr, RaftAddr, RPCAddr string
	// Status is its gossip status: "alive", "leaving", "left", "failed";
	// "left" too for a member the state holds as left that gossip no
	// longer lists, and "unknown" for one the state lists but gossip does
	// not.
	Status string
	// NodeTypes are the node types it registered, sorted.
	NodeTypes []string
	// WorkerCapacity is how many steps it runs at once
	// (EngineConfig.WorkerCount).
	WorkerCapacity int
	// Executing is the number of steps it is running; Queued the number of
	// ready steps waiting for one of its workers.
	Executing, Queued int
	// Counters are its counters: the events it committed.
	Counters MemberCounters
	// ShardsHeld are the shards it holds a replica of, ShardsLed those it
	// leads, both sorted.
	ShardsHeld, ShardsLed []uint64
	// SoftwareVersion is its Graft module version as its build recorded
	// it ("(devel)" when built from a checkout).
	SoftwareVersion string
	// StartedAt is when it started, by its clock.
	StartedAt time.Time
	// DiskFull is set while its disk guard refuses new workflows.
	DiskFull bool
	// Metadata is its user metadata (SetMemberMetadata).
	Metadata map[string]string
	// Incarnation counts its starts (persisted in its DataDir); Version
	// counts its updates within the incarnation. Together they order its
	// entries.
	Incarnation, Version uint64
	// UpdatedAt is when this member last saw the entry change, by this
	// member's clock (zero for its gossip-only members).
	UpdatedAt time.Time
}

// MemberCounters are one member's counters. Each event is counted once in
// the cluster, by the member whose replica proposed the command that
// recorded it and saw it commit: a start by the shard's leader it was sent
// to (or the starting member), a step's outcome and the workflow's end by
// the shard leader that committed it (whichever member ran the node), a
// stop by the member that proposed it.
type MemberCounters struct {
	// WorkflowsStarted counts workflow starts.
	WorkflowsStarted uint64
	// WorkflowsCompleted, WorkflowsFailed and WorkflowsStopped count
	// workflows that ended so.
	WorkflowsCompleted, WorkflowsFailed, WorkflowsStopped uint64
	// StepsExecuted counts step runs without error; StepErrors step runs
	// that returned an error or panicked.
	StepsExecuted, StepErrors uint64
}
