package harness

import (
	"slices"
	"sync"
	"time"
)

// OpKind names a client operation of a run's workload.
type OpKind string

// The client operations a workload issues.
const (
	OpStart  OpKind = "start"
	OpStatus OpKind = "status"
	OpPause  OpKind = "pause"
	OpResume OpKind = "resume"
	OpStop   OpKind = "stop"
)

// Outcome classifies what a client operation returned.
type Outcome string

// Outcomes of client operations. Only OutcomeUnknown leaves open whether the
// operation took effect.
const (
	// OutcomeOK: the call returned nil.
	OutcomeOK Outcome = "ok"
	// OutcomeExists: a start returned graft.ErrWorkflowExists.
	OutcomeExists Outcome = "exists"
	// OutcomeNotFound: the call returned graft.ErrWorkflowNotFound.
	OutcomeNotFound Outcome = "not-found"
	// OutcomeRejected: pause, resume or stop returned
	// graft.ErrInvalidTransition.
	OutcomeRejected Outcome = "rejected"
	// OutcomeUnknown: any other error, a timeout included; the operation
	// may or may not have taken effect.
	OutcomeUnknown Outcome = "unknown"
)

// ClientOp is one recorded client operation. Times are offsets from the
// start of the run (monotonic clock).
type ClientOp struct {
	// Client is the workload client that issued the operation (clients
	// issue one operation at a time; the settle phase has its own).
	Client int    `json:"client"`
	Kind   OpKind `json:"kind"`
	// Workflow is the workflow operated on; Member the member called.
	Workflow string `json:"workflow"`
	Member   string `json:"member"`
	// Invoke is when the call was made, Return when it returned.
	Invoke  Duration `json:"invoke"`
	Return  Duration `json:"return"`
	Outcome Outcome  `json:"outcome"`
	// Status is the workflow status a successful status read returned
	// ("blocked" is reported as "running": both are a running record).
	Status string `json:"status,omitempty"`
	// Committed lists, for a successful status read, the execution IDs of
	// the workflow's successful steps the read saw committed.
	Committed []string `json:"committed,omitempty"`
	// Error is the error text of a call that did not return nil.
	Error string `json:"error,omitempty"`
}

// StepRun is one recorded execution of a workload step, as the node saw
// it: it may have ended without its result being committed (a crash, a
// partition, a stop).
type StepRun struct {
	// Workflow and Node are the step's workflow and registered node name.
	Workflow string `json:"workflow"`
	Node     string `json:"node"`
	// Task names the step within its workflow: a workload never schedules
	// two different steps under one task name, so runs of one task are runs
	// of one step.
	Task string `json:"task"`
	// Key is the step's idempotency key when HasKey is set.
	Key    string `json:"key,omitempty"`
	HasKey bool   `json:"has_key,omitempty"`
	// ExecutionID, Member and Attempt are what graft.GetWorkflowContext
	// gave the step.
	ExecutionID string `json:"execution_id"`
	Member      string `json:"member"`
	Attempt     int    `json:"attempt"`
	// Start and End bound the node's Execute call.
	Start Duration `json:"start"`
	End   Duration `json:"end"`
	// Result is "ok", "injected-error" or "cancelled".
	Result string `json:"result"`
}

// Final is the last status read of a workflow, taken after the faults
// stopped and the workflow had settled (or the liveness bound passed).
type Final struct {
	// Status is the workflow's status, or "not-found", or "" when no read
	// succeeded (Error says why).
	Status string `json:"status"`
	// Committed lists the execution IDs of the workflow's successful steps.
	Committed []string `json:"committed,omitempty"`
	// Stopped reports whether a client's StopWorkflow may have taken
	// effect (returned nil or an unknown outcome).
	Stopped bool `json:"stopped,omitempty"`
	// Shape is the workflow's harness shape ("" for a workflow of
	// Workload.Trigger), from its metadata.
	Shape string `json:"shape,omitempty"`
	Error string `json:"error,omitempty"`
	// Executing describes the executions in flight the last read saw
	// (execution ID, attempt, member, start in UTC), and Pending counts
	// its pending steps: what a workflow still active at the bound was
	// waiting for.
	Executing []string `json:"executing,omitempty"`
	Pending   int      `json:"pending,omitempty"`
}

// History is everything a run recorded: the client operations in the order
// they returned, the step executions in the order they ended, and each
// workflow's final status. The checkers read nothing else.
type History struct {
	Ops   []ClientOp       `json:"ops"`
	Steps []StepRun        `json:"steps"`
	Final map[string]Final `json:"final"`
}

// Duration is a time.Duration that reads as a Go duration string in JSON
// reports ("1.5s") and as nanoseconds in code.
type Duration time.Duration

// MarshalText encodes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText decodes a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// recorder collects a run's history; safe for concurrent use.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	h     History
}

func newRecorder(start time.Time) *recorder {
	return &recorder{start: start, h: History{Final: map[string]Final{}}}
}

// now is the offset of the current time from the start of the run.
func (r *recorder) now() Duration { return Duration(time.Since(r.start)) }

func (r *recorder) op(o ClientOp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Ops = append(r.h.Ops, o)
}

func (r *recorder) step(s StepRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Steps = append(r.h.Steps, s)
}

func (r *recorder) final(id string, f Final) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Final[id] = f
}

// snapshot returns a copy of the history recorded so far.
func (r *recorder) snapshot() *History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &History{Ops: slices.Clone(r.h.Ops), Steps: slices.Clone(r.h.Steps), Final: make(map[string]Final, len(r.h.Final))}
	for k, v := range r.h.Final {
		h.Final[k] = v
	}
	return h
}

// workflows returns the IDs of every workflow a start was issued for, in
// first-issue order.
func (h *History) workflows() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range h.Ops {
		if o.Kind == OpStart && !seen[o.Workflow] {
			seen[o.Workflow] = true
			out = append(out, o.Workflow)
		}
	}
	return out
}
