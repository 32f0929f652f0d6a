package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// WorkflowStartedEvent is published when a workflow is accepted and its
// initial steps are scheduled.
type WorkflowStartedEvent struct {
	// WorkflowID identifies the workflow.
	WorkflowID string
	// StartedAt is when the workflow started.
	StartedAt time.Time
	// InitialNodes lists the names of the steps scheduled first.
	InitialNodes []string
	// Metadata is the user metadata attached to the workflow. It may be nil.
	Metadata map[string]string
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// WorkflowCompletedEvent is published when a workflow finishes successfully.
type WorkflowCompletedEvent struct {
	// WorkflowID identifies the workflow.
	WorkflowID string
	// StartedAt is when the workflow started.
	StartedAt time.Time
	// CompletedAt is when the workflow completed.
	CompletedAt time.Time
	// Duration is CompletedAt minus StartedAt.
	Duration time.Duration
	// FinalState is the workflow state at completion, decoded from JSON as
	// encoding/json decodes into interface{}: a map[string]interface{}
	// (numbers are float64). Every handler receives the same value, so
	// treat it as read-only. FinalStateJSON holds it as JSON and
	// DecodeFinalState decodes it into a type of yours.
	FinalState interface{}
	// FinalStateJSON is the workflow state at completion, encoded as JSON.
	FinalStateJSON json.RawMessage
	// ExecutedNodes lists the names of the step runs that finished,
	// successful or not (retries included), in commit order: the NodeName
	// of each of the workflow status's ExecutedNodes.
	ExecutedNodes []string
	// Metadata is the user metadata attached to the workflow. It may be nil.
	Metadata map[string]string
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// DecodeFinalState decodes FinalStateJSON into v, a pointer to a struct or
// map.
func (e *WorkflowCompletedEvent) DecodeFinalState(v any) error {
	if err := json.Unmarshal(e.FinalStateJSON, v); err != nil {
		return fmt.Errorf("decoding final state of workflow %q: %w", e.WorkflowID, err)
	}
	return nil
}

// WorkflowErrorEvent is published when a workflow fails and will not be
// retried further.
type WorkflowErrorEvent struct {
	// WorkflowID identifies the workflow.
	WorkflowID string
	// NodeName is the step that failed. It is empty if the failure was not
	// caused by a particular step.
	NodeName string
	// Error is the error that failed the workflow.
	Error error
	// Attempt is the attempt number of the failing step, starting at 1. It is
	// 0 when NodeName is empty.
	Attempt int
	// StartedAt is when the workflow started.
	StartedAt time.Time
	// FailedAt is when the workflow failed.
	FailedAt time.Time
	// Duration is FailedAt minus StartedAt.
	Duration time.Duration
	// FailedNode is NodeName under the published API's name.
	FailedNode string
	// CurrentState is the workflow state at the time of failure, decoded
	// from JSON like WorkflowCompletedEvent.FinalState (a
	// map[string]interface{}; read-only, shared by every handler).
	CurrentState interface{}
	// CurrentStateJSON is the workflow state at the time of failure,
	// encoded as JSON; DecodeCurrentState decodes it.
	CurrentStateJSON json.RawMessage
	// Metadata is the user metadata attached to the workflow. It may be nil.
	Metadata map[string]string
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// DecodeCurrentState decodes CurrentStateJSON into v, a pointer to a
// struct or map.
func (e *WorkflowErrorEvent) DecodeCurrentState(v any) error {
	if err := json.Unmarshal(e.CurrentStateJSON, v); err != nil {
		return fmt.Errorf("decoding state of failed workflow %q: %w", e.WorkflowID, err)
	}
	return nil
}

// WorkflowPausedEvent is published when a workflow is paused.
type WorkflowPausedEvent struct {
	// WorkflowID identifies the workflow.
	WorkflowID string
	// PausedAt is when the workflow was paused.
	PausedAt time.Time
	// Metadata is the user metadata attached to the workflow. It may be nil.
	Metadata map[string]string
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// WorkflowResumedEvent is published when a paused workflow is resumed.
type WorkflowResumedEvent struct {
	// WorkflowID identifies the workflow.
	WorkflowID string
	// ResumedAt is when the workflow was resumed.
	ResumedAt time.Time
	// Metadata is the user metadata attached to the workflow. It may be nil.
	Metadata map[string]string
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// WorkflowStoppedEvent is published when a workflow is stopped on request
// before it finished.
type WorkflowStoppedEvent struct {
	// WorkflowID identifies the workflow.
	WorkflowID string
	// StoppedAt is when the workflow was stopped.
	StoppedAt time.Time
	// Duration is how long the workflow ran before it was stopped.
	Duration time.Duration
	// Metadata is the user metadata attached to the workflow. It may be nil.
	Metadata map[string]string
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// NodeStartedEvent is published when one attempt of a workflow step starts.
// The "node" here is a workflow step, not a cluster member.
type NodeStartedEvent struct {
	// WorkflowID identifies the workflow the step belongs to.
	WorkflowID string
	// NodeName is the registered name of the step.
	NodeName string
	// ExecutionID identifies this execution of the step within the workflow.
	// Retries of the same execution share it and differ in Attempt.
	ExecutionID string
	// Attempt is the attempt number, starting at 1.
	Attempt int
	// StartedAt is when the attempt started.
	StartedAt time.Time
	// Config is the step's configuration, encoded as JSON. It may be nil.
	Config json.RawMessage
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// NodeCompletedEvent is published when an attempt of a workflow step
// succeeds.
type NodeCompletedEvent struct {
	// WorkflowID identifies the workflow the step belongs to.
	WorkflowID string
	// NodeName is the registered name of the step.
	NodeName string
	// ExecutionID identifies this execution of the step within the workflow.
	ExecutionID string
	// Attempt is the attempt number that succeeded, starting at 1.
	Attempt int
	// StartedAt is when the attempt started.
	StartedAt time.Time
	// Duration is how long the attempt took.
	Duration time.Duration
	// NextNodes lists the names of the steps the step scheduled next. It is
	// empty if the step ended its branch of the workflow.
	NextNodes []string
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// NodeErrorEvent is published when an attempt of a workflow step fails.
type NodeErrorEvent struct {
	// WorkflowID identifies the workflow the step belongs to.
	WorkflowID string
	// NodeName is the registered name of the step.
	NodeName string
	// ExecutionID identifies this execution of the step within the workflow.
	ExecutionID string
	// Attempt is the attempt number that failed, starting at 1.
	Attempt int
	// StartedAt is when the attempt started.
	StartedAt time.Time
	// Duration is how long the attempt ran before it failed.
	Duration time.Duration
	// Error is the error the attempt returned.
	Error error
	// WillRetry reports whether another attempt is scheduled.
	WillRetry bool
	// RetryAt is when the next attempt is due. It is the zero time when
	// WillRetry is false.
	RetryAt time.Time
	// NodeID is the cluster member that applied the transition.
	NodeID string
}

// NodeJoinedEvent is published when a member joins the cluster. The "node"
// here is a cluster member, not a workflow step.
type NodeJoinedEvent struct {
	// NodeID identifies the member that joined.
	NodeID string
	// Address is the member's network address.
	Address string
	// JoinedAt is when this process learned that the member joined.
	JoinedAt time.Time
	// Metadata holds optional data about the member, such as its role or
	// capabilities. It may be nil.
	Metadata map[string]any
}

// NodeLeftEvent is published when a member leaves the cluster, either
// gracefully or because it was detected as failed.
type NodeLeftEvent struct {
	// NodeID identifies the member that left.
	NodeID string
	// Address is the member's last known network address.
	Address string
	// LeftAt is when this process learned that the member left.
	LeftAt time.Time
	// Metadata holds optional data about the member. It may be nil.
	Metadata map[string]any
}

// LeaderChangedEvent is published when cluster leadership changes.
type LeaderChangedEvent struct {
	// NewLeaderID is the new leader's member ID. It is empty if the cluster
	// currently has no leader.
	NewLeaderID string
	// NewLeaderAddr is the new leader's network address. It is empty when
	// NewLeaderID is empty.
	NewLeaderAddr string
	// PreviousID is the previous leader's member ID. It is empty if there was
	// no known previous leader.
	PreviousID string
	// ChangedAt is when this process observed the change.
	ChangedAt time.Time
	// Metadata holds optional data about the change. It may be nil.
	Metadata map[string]any
}

// ForeignClusterEvent is published when this member meets a member of
// another cluster (one bootstrapped apart, with another cluster ID): the two
// never merge, and the foreign member is ignored. It is published once per
// foreign member and cluster ID.
type ForeignClusterEvent struct {
	// ClusterID is this member's cluster ID.
	ClusterID string
	// ForeignClusterID is the other member's cluster ID.
	ForeignClusterID string
	// NodeID is the other member's node ID.
	NodeID string
	// Address is the other member's gossip address (host:port).
	Address string
	// SeenAt is when this process refused it.
	SeenAt time.Time
}

// ShardLeaderChangedEvent is an operator observation, published when this
// process sees the leader of a shard's replica group change: each member
// holding a replica of the shard publishes it when its replica learns of a
// new leader, or of none (LeaderReplicaID 0).
type ShardLeaderChangedEvent struct {
	// ShardID identifies the shard.
	ShardID uint64
	// LeaderNodeID is the member that now leads the shard. It is empty if the
	// shard has no leader, for example during an election, or if this
	// process does not know which member holds the leading replica.
	LeaderNodeID string
	// LeaderReplicaID is the leading replica's ID within the shard, or 0
	// if the shard has no leader.
	LeaderReplicaID uint64
	// Term is the consensus term the leader was elected in.
	Term uint64
	// ChangedAt is when this process observed the change.
	ChangedAt time.Time
}

// ShardMove says how a ShardMovedEvent's replica moved.
type ShardMove int

const (
	// ReplicaAdded means the shard's leader added the replica to the
	// shard's Raft membership; its member starts it next.
	ReplicaAdded ShardMove = iota + 1
	// ReplicaRemoved means the shard's leader removed the replica from the
	// shard's Raft membership; its member deletes it next.
	ReplicaRemoved
	// ReplicaJoined means the replica's member started it, after the
	// shard's leader added it; it catches up from the leader.
	ReplicaJoined
	// ReplicaDropped means the replica's member deleted it (its log and
	// state), after the shard's leader removed it.
	ReplicaDropped
)

// String returns "added", "removed", "joined" or "dropped".
func (m ShardMove) String() string {
	switch m {
	case ReplicaAdded:
		return "added"
	case ReplicaRemoved:
		return "removed"
	case ReplicaJoined:
		return "joined"
	case ReplicaDropped:
		return "dropped"
	}
	return fmt.Sprintf("ShardMove(%d)", int(m))
}

// ShardMovedEvent is an operator observation, published when rebalancing
// moves a replica of a shard. A move is seen in two places, and each
// process publishes only what it did itself: the shard's leader publishes
// ReplicaAdded and ReplicaRemoved as it changes the shard's membership, and
// the replica's member publishes ReplicaJoined when it starts the new
// replica and ReplicaDropped when it deletes a removed one. A replica
// moving from one member to another shows as an add (and join) followed,
// once the new replica has caught up, by a removal (and drop).
type ShardMovedEvent struct {
	// ShardID identifies the shard.
	ShardID uint64
	// ReplicaID identifies the replica within the shard. Replica IDs are
	// never reused.
	ReplicaID uint64
	// NodeID is the member that holds (or held) the replica. It is empty
	// when no known member has the replica's Raft address, for example a
	// departed member's replica.
	NodeID string
	// Move says what happened to the replica.
	Move ShardMove
	// Reason says why, for example "placed", "left", "failed for 30s",
	// "no longer placed", "its member does not hold it" or "removed from
	// the shard while away".
	Reason string
	// ChangedAt is when this process made the change.
	ChangedAt time.Time
}
