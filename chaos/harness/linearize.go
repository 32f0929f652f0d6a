package harness

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// The workflow record as the linearizability model sees it: whether the
// workflow exists and its status.
type recordState uint8

const (
	stAbsent recordState = iota
	stRunning
	stPaused
	stCompleted
	stFailed
	stStopped
)

var stateNames = [...]string{"absent", "running", "paused", "completed", "failed", "stopped"}

func (s recordState) String() string { return stateNames[s] }

func (s recordState) terminal() bool { return s >= stCompleted }

// parseStatus maps a status read's result onto the model ("blocked" is a
// running record whose pending steps wait).
func parseStatus(s string) (recordState, bool) {
	switch s {
	case "running", "blocked":
		return stRunning, true
	case "paused":
		return stPaused, true
	case "completed":
		return stCompleted, true
	case "failed":
		return stFailed, true
	case "stopped":
		return stStopped, true
	case "not-found":
		return stAbsent, true
	}
	return 0, false
}

// spontaneous returns s and every state the engine can move the record to
// without a client: a running or paused workflow completes or fails when
// its steps finish (a step running when it was paused may finish it).
func spontaneous(s recordState) []recordState {
	if s == stRunning || s == stPaused {
		return []recordState{s, stCompleted, stFailed}
	}
	return []recordState{s}
}

type linInput struct {
	kind OpKind
}

type linOutput struct {
	outcome Outcome
	status  string
}

// stepModel applies one operation to a record state, returning every state
// it may leave (none: the output is impossible from s).
func stepModel(s recordState, in linInput, out linOutput) []recordState {
	var next []recordState
	for _, cur := range spontaneous(s) {
		next = append(next, applyOp(cur, in.kind, out)...)
	}
	return next
}

// applyOp is Graft's documented semantics of a client operation on a
// record in state s.
func applyOp(s recordState, kind OpKind, out linOutput) []recordState {
	unknown := out.outcome == OutcomeUnknown
	exists := s != stAbsent
	active := s == stRunning || s == stPaused
	switch kind {
	case OpStart:
		switch {
		case unknown && !exists:
			return []recordState{s, stRunning}
		case unknown:
			return []recordState{s}
		case out.outcome == OutcomeOK && !exists:
			return []recordState{stRunning}
		case out.outcome == OutcomeExists && exists:
			return []recordState{s}
		}
	case OpStatus:
		if want, ok := parseStatus(out.status); ok && out.outcome == OutcomeOK && want == s {
			return []recordState{s}
		}
		if out.outcome == OutcomeNotFound && !exists {
			return []recordState{s}
		}
	case OpPause, OpResume, OpStop:
		to := map[OpKind]recordState{OpPause: stPaused, OpResume: stRunning, OpStop: stStopped}[kind]
		allowed := active || (kind == OpStop && s == stStopped)
		switch {
		case unknown && allowed:
			return []recordState{s, to}
		case unknown:
			return []recordState{s}
		case out.outcome == OutcomeOK && allowed:
			return []recordState{to}
		case out.outcome == OutcomeRejected && exists && !allowed:
			return []recordState{s}
		case out.outcome == OutcomeNotFound && !exists:
			return []recordState{s}
		}
	}
	return nil
}

// workflowModel is the porcupine model of one workflow record, partitioned
// by workflow ID.
func workflowModel() porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
			byWF := map[string][]porcupine.Operation{}
			var order []string
			for _, o := range ops {
				id := o.Metadata.(string)
				if _, ok := byWF[id]; !ok {
					order = append(order, id)
				}
				byWF[id] = append(byWF[id], o)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, id := range order {
				out = append(out, byWF[id])
			}
			return out
		},
		Init: func() []any { return []any{stAbsent} },
		Step: func(state, input, output any) []any {
			var out []any
			for _, s := range stepModel(state.(recordState), input.(linInput), output.(linOutput)) {
				out = append(out, s)
			}
			return out
		},
		Equal: func(a, b any) bool { return a == b },
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			if out.status != "" {
				return fmt.Sprintf("%s -> %s", in.kind, out.status)
			}
			return fmt.Sprintf("%s -> %s", in.kind, out.outcome)
		},
		DescribeState:             func(s any) string { return s.(recordState).String() },
		DescribeOperationMetadata: func(m any) string { return m.(string) },
	}).ToModel()
}

// linearizationOps turns the client operations into porcupine operations.
// An operation with an unknown outcome may take effect at any time after
// its invocation, so its return is moved past the end of the history; a
// status read with an unknown outcome says nothing and is left out.
func linearizationOps(ops []ClientOp) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		if o.Kind == OpStatus && o.Outcome == OutcomeUnknown {
			continue
		}
		ret := int64(o.Return)
		if o.Outcome == OutcomeUnknown {
			ret = math.MaxInt64 - 1
		}
		out = append(out, porcupine.Operation{ClientId: o.Client, Input: linInput{o.Kind},
			Output: linOutput{o.Outcome, o.Status}, Call: int64(o.Invoke), Return: ret, Metadata: o.Workflow})
	}
	return out
}

// CheckLinearizability checks, per workflow, that the recorded client
// operations (starts, status reads, pause, resume, stop) are linearizable
// against a model of the workflow record: a record is absent, running,
// paused, completed, failed or stopped; starts, pause, resume and stop
// change it as Graft documents; the engine may complete or fail a running
// or paused workflow at any time; a status read returns the record's
// status. Checked counts the operations given to the checker. When the
// history is not linearizable and dir is not empty, porcupine's HTML
// visualisation is written to dir/history.html (Note says so). timeout
// bounds porcupine's search (0 means a minute); running out of time is a
// failure that says so.
func CheckLinearizability(ops []ClientOp, dir string, timeout time.Duration) CheckResult {
	c := CheckResult{Name: CheckerLinearizable}
	history := linearizationOps(ops)
	c.Checked = len(history)
	if timeout <= 0 {
		timeout = time.Minute
	}
	model := workflowModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, timeout)
	switch res {
	case porcupine.Ok:
		return c.done()
	case porcupine.Unknown:
		c.violate("porcupine did not finish within %v", timeout)
	default:
		for _, id := range illegalWorkflows(model, history) {
			c.violate("%s: the client operations on it are not linearizable", id)
		}
		if c.Count == 0 {
			c.violate("the history is not linearizable")
		}
	}
	if dir != "" {
		path := filepath.Join(dir, "history.html")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.Note = fmt.Sprintf("writing the visualisation: %v", err)
		} else if err := porcupine.VisualizePath(model, info, path); err != nil {
			c.Note = fmt.Sprintf("writing the visualisation to %s: %v", path, err)
		} else {
			c.Note = "visualisation: " + path
		}
	}
	return c.done()
}

// illegalWorkflows returns the workflows whose own operations are not
// linearizable, sorted.
func illegalWorkflows(model porcupine.Model, history []porcupine.Operation) []string {
	var bad []string
	for _, part := range model.Partition(history) {
		if !porcupine.CheckOperations(model, part) {
			bad = append(bad, part[0].Metadata.(string))
		}
	}
	slices.Sort(bad)
	return bad
}
