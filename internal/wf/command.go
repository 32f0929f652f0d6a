package wf

import (
	"encoding/json"
	"fmt"
)

// Op names a command.
type Op uint8

// Commands understood by the state machine.
const (
	OpStart Op = iota + 1
	OpClaim
	OpComplete
	OpFail
	OpRequeue
	OpPause
	OpResume
	OpStop
	OpBlock
	OpPurge
)

// String names the op for logs and errors.
func (o Op) String() string {
	switch o {
	case OpStart:
		return "start"
	case OpClaim:
		return "claim"
	case OpComplete:
		return "complete"
	case OpFail:
		return "fail"
	case OpRequeue:
		return "requeue"
	case OpPause:
		return "pause"
	case OpResume:
		return "resume"
	case OpStop:
		return "stop"
	case OpBlock:
		return "block"
	case OpPurge:
		return "purge"
	default:
		return fmt.Sprintf("op(%d)", uint8(o))
	}
}

// NewTask is a task to enqueue, as a command carries it.
type NewTask struct {
	Node      string          `json:"n"`
	Config    json.RawMessage `json:"c,omitempty"`
	Priority  int             `json:"p,omitempty"`
	NotBefore int64           `json:"nb,omitempty"`
	Key       string          `json:"k,omitempty"`
	HasKey    bool            `json:"hk,omitempty"`
	// Claim asks that the task be claimed in the same command for the
	// command's Member, if the workflow is running and the task is due.
	Claim bool `json:"cl,omitempty"`
}

// Command is one state-machine command. Only the fields of its Op are set.
// Now is the proposer's clock reading (unix nanos) and the only time source
// the state machine uses.
type Command struct {
	Op  Op     `json:"o"`
	WF  string `json:"w,omitempty"`
	Now int64  `json:"t"`
	// Nonce identifies one request across retries: a Start or Claim whose
	// first attempt committed answers its retry as the first.
	Nonce string `json:"n,omitempty"`

	// Start.
	State    json.RawMessage   `json:"s,omitempty"`
	Metadata map[string]string `json:"md,omitempty"`
	Tasks    []NewTask         `json:"tk,omitempty"`
	Starter  string            `json:"st,omitempty"`

	// Complete, Fail, Requeue: the execution acted on.
	TaskID uint64 `json:"id,omitempty"`
	ExecID string `json:"x,omitempty"`
	// Requeue: the execution never started, so it does not count as an attempt.
	Unstarted bool `json:"un,omitempty"`

	// Claim (and Start/Complete tasks with Claim set): who claims, until when.
	Member      string `json:"m,omitempty"`
	Incarnation string `json:"inc,omitempty"`
	LeaseUntil  int64  `json:"lu,omitempty"`

	// Complete.
	Patch         Patch `json:"pa,omitempty"`
	StartedAt     int64 `json:"sa,omitempty"`
	MaxStateBytes int   `json:"msb,omitempty"`

	// Fail: Retry re-queues the task at RetryAt; otherwise the workflow fails.
	Error   string `json:"e,omitempty"`
	Retry   bool   `json:"r,omitempty"`
	RetryAt int64  `json:"ra,omitempty"`

	// Block: the state version the proposer saw every pending task refused at.
	StateVersion uint64 `json:"sv,omitempty"`

	// Purge: terminal workflows that ended before Before, at most Limit of them.
	Before int64 `json:"b,omitempty"`
	Limit  int   `json:"l,omitempty"`

	// Proposer identifies the replica, and the run of its member, that
	// proposed the command; the changes it makes carry it
	// (Change.Proposer), so that exactly one replica counts them, once.
	// It does not affect the state.
	Proposer string `json:"pr,omitempty"`
}

// Code classifies a command's outcome.
type Code uint8

// Outcomes. Anything but OK leaves the state unchanged.
const (
	OK Code = iota
	NotFound
	Exists
	Rejected // the transition is not valid from the current status
	Stale    // the execution or version the proposer acted on is no longer current
	Invalid  // the command itself is malformed
)

// String names the code.
func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case NotFound:
		return "not found"
	case Exists:
		return "exists"
	case Rejected:
		return "rejected"
	case Stale:
		return "stale"
	case Invalid:
		return "invalid"
	default:
		return fmt.Sprintf("code(%d)", uint8(c))
	}
}

// Result is the outcome of one command, returned to its proposer.
type Result struct {
	Code    Code   `json:"c"`
	Message string `json:"m,omitempty"`
	Status  Status `json:"s,omitempty"`
	Purged  int    `json:"pg,omitempty"`

	// Claimed lists the executions the command claimed; when it is not
	// empty, State, Version, Meta and Created describe the workflow they
	// run against.
	Claimed []Claimed         `json:"cl,omitempty"`
	State   json.RawMessage   `json:"st,omitempty"`
	Version uint64            `json:"v,omitempty"`
	Meta    map[string]string `json:"md,omitempty"`
	Created int64             `json:"cr,omitempty"`
}

// Claimed is an execution a command claimed.
type Claimed struct {
	Task   Task   `json:"t"`
	ExecID string `json:"x"`
}
