package wf

import (
	"encoding/json"
	"fmt"
)

// Status is the lifecycle state of a workflow as stored in its record.
type Status uint8

// Workflow statuses. Blocked is not stored: it is Running with BlockedSince set.
const (
	StatusRunning Status = iota + 1
	StatusPaused
	StatusCompleted
	StatusFailed
	StatusStopped
)

// String returns the lower-case name used in the public API.
func (s Status) String() string {
	switch s {
	case StatusRunning:
		return "running"
	case StatusPaused:
		return "paused"
	case StatusCompleted:
		return "completed"
	case StatusFailed:
		return "failed"
	case StatusStopped:
		return "stopped"
	case ListBlocked:
		return "blocked"
	default:
		return fmt.Sprintf("status(%d)", uint8(s))
	}
}

// Terminal reports whether no further transitions are possible.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusStopped
}

// Task is one pending step of a workflow: a node to run with its config.
type Task struct {
	ID         uint64          `json:"id"`
	Node       string          `json:"node"`
	Config     json.RawMessage `json:"cfg,omitempty"`
	Priority   int             `json:"pri,omitempty"`
	NotBefore  int64           `json:"nb,omitempty"`  // unix nanos; 0 = ready now
	Key        string          `json:"key,omitempty"` // idempotency key
	HasKey     bool            `json:"hk,omitempty"`
	Claims     int             `json:"cl,omitempty"` // times claimed (the attempt number of the next run is Claims+1)
	Failures   int             `json:"fl,omitempty"` // errors returned so far
	EnqueuedAt int64           `json:"eq"`
	LastError  string          `json:"le,omitempty"`
}

// Execution is a claimed task that a member is running.
type Execution struct {
	Task
	ExecID      string `json:"x"`
	Member      string `json:"m"`
	Incarnation string `json:"inc"`
	StartedAt   int64  `json:"st"`
	LeaseUntil  int64  `json:"lu"`
	// ClaimNonce is the nonce of the command that claimed it, so a retried
	// claim is recognised.
	ClaimNonce string `json:"cn,omitempty"`
}

// Record is a workflow's stored record (everything but its state and history,
// which have keys of their own so that claims do not rewrite large states).
type Record struct {
	ID           string            `json:"id"`
	Rev          uint64            `json:"r"` // bumped by every change, so views can be ordered
	Status       Status            `json:"s"`
	StateVersion uint64            `json:"sv"`
	StateSize    int               `json:"ss"`
	Metadata     map[string]string `json:"md,omitempty"`
	CreatedAt    int64             `json:"c"`
	UpdatedAt    int64             `json:"u"`
	EndedAt      int64             `json:"e,omitempty"`
	Pending      []Task            `json:"p,omitempty"`
	Executing    []Execution       `json:"x,omitempty"`
	DoneKeys     []string          `json:"dk,omitempty"` // sorted idempotency keys of completed tasks
	NextSeq      uint64            `json:"ns"`
	Steps        uint64            `json:"n"`
	LastError    string            `json:"le,omitempty"`
	FailedNode   string            `json:"fn,omitempty"`
	FailedTry    int               `json:"ft,omitempty"`
	BlockedSince int64             `json:"b,omitempty"`
	Starter      string            `json:"st,omitempty"`
	InitialNodes []string          `json:"in,omitempty"`
	// StartNonce is the nonce of the start command, so a retried start is
	// recognised as the same start.
	StartNonce string `json:"sn,omitempty"`
}

// HistoryEntry is one finished (or failed) run of a task.
type HistoryEntry struct {
	TaskID    uint64   `json:"t"`
	Node      string   `json:"n"`
	ExecID    string   `json:"x"`
	Member    string   `json:"m,omitempty"`
	Attempt   int      `json:"a"`
	StartedAt int64    `json:"s"`
	Duration  int64    `json:"d"`
	Error     string   `json:"e,omitempty"`
	Next      []string `json:"nx,omitempty"`
}

// View is an immutable copy of a record handed to the executor and the event
// layer. Slices and raw messages in a View are never mutated afterwards.
type View struct {
	Record
	// State is set on terminal views and on query results; nil otherwise.
	State json.RawMessage `json:"state,omitempty"`
	// Executed lists the node names of the workflow's history entries in
	// order; set only on the view of a ChangeCompleted change.
	Executed []string `json:"executed,omitempty"`
}

func (r *Record) view() View {
	v := View{Record: *r}
	v.Pending = append([]Task(nil), r.Pending...)
	v.Executing = append([]Execution(nil), r.Executing...)
	v.DoneKeys = nil
	return v
}

func (r *Record) hasKey(key string) bool {
	for _, k := range r.DoneKeys {
		if k == key {
			return true
		}
	}
	for _, t := range r.Pending {
		if t.HasKey && t.Key == key {
			return true
		}
	}
	for _, e := range r.Executing {
		if e.HasKey && e.Key == key {
			return true
		}
	}
	return false
}

func (r *Record) pendingIndex(taskID uint64) int {
	for i := range r.Pending {
		if r.Pending[i].ID == taskID {
			return i
		}
	}
	return -1
}

func (r *Record) executingIndex(taskID uint64, execID string) int {
	for i := range r.Executing {
		if r.Executing[i].ID == taskID && r.Executing[i].ExecID == execID {
			return i
		}
	}
	return -1
}
