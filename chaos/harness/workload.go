package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/eleven-am/graft"
)

// The node types the harness registers on every member.
const (
	stepNodeName = "chaos.step"
	joinNodeName = "chaos.join"
)

// Shape is a kind of workflow the workload starts.
type Shape string

// The workflow shapes. Every step sleeps a few milliseconds (drawn from the
// seed) and records its execution.
const (
	// ShapeSequential runs four steps one after another.
	ShapeSequential Shape = "sequential"
	// ShapeFanOut runs three branches in parallel and a join whose
	// CanStart waits for all three, then a last step.
	ShapeFanOut Shape = "fan-out"
	// ShapeKeyed schedules a keyed step twice under one key, then a step
	// under that key again (it must not run) and one under a new key.
	ShapeKeyed Shape = "keyed"
	// ShapeDelayed runs three steps with a delay of 100-500ms before each
	// of the last two.
	ShapeDelayed Shape = "delayed"
	// ShapeRetry runs two steps whose first attempt returns an injected
	// error (retried by Graft).
	ShapeRetry Shape = "retry"
	// ShapeLong runs six steps of 100-200ms each, long enough for pause,
	// resume and stop to find it running.
	ShapeLong Shape = "long"
)

// AllShapes returns every shape, in the order a Workload draws from.
func AllShapes() []Shape {
	return []Shape{ShapeSequential, ShapeFanOut, ShapeKeyed, ShapeDelayed, ShapeRetry, ShapeLong}
}

// Workload says what the clients do during a run. The zero value is a
// small default workload; every draw comes from the run's seed.
type Workload struct {
	// Workflows is how many workflows are started, spread evenly over the
	// fault phase. Zero means 30.
	Workflows int
	// Shapes are the shapes drawn from (uniformly); nil means AllShapes().
	Shapes []Shape
	// Controls is the fraction of workflows that also get a pause (then a
	// resume) or a stop from a random member, in [0, 1]. Zero means 0.3;
	// negative means none. Such a workflow takes ShapeLong (unless Trigger
	// is set), so that the controls find it running.
	Controls float64
	// Reads is how many status reads each workflow gets from random
	// members during the run (the final reads come on top). Zero means 3;
	// negative means none.
	Reads int
	// Clients is how many operations may be in flight at once; each
	// client issues one at a time. Zero means 16.
	Clients int
	// OpTimeout bounds each client operation. Zero means 5s.
	OpTimeout time.Duration
	// Trigger, when set, starts workflow i with the trigger it returns
	// instead of a harness shape (its WorkflowID is replaced by the
	// harness's), so a user can put their own node types (registered by
	// Options.Register) under faults. The client operations on such
	// workflows are recorded and checked like the others; their steps are
	// not recorded, so the keyed and rerun checkers see nothing of them.
	Trigger func(i int, r *rand.Rand) graft.WorkflowTrigger
}

func (w Workload) withDefaults() Workload {
	if w.Workflows == 0 {
		w.Workflows = 30
	}
	if len(w.Shapes) == 0 {
		w.Shapes = AllShapes()
	}
	switch {
	case w.Controls == 0:
		w.Controls = 0.3
	case w.Controls < 0:
		w.Controls = 0
	}
	switch {
	case w.Reads == 0:
		w.Reads = 3
	case w.Reads < 0:
		w.Reads = 0
	}
	if w.Clients <= 0 {
		w.Clients = 16
	}
	if w.OpTimeout <= 0 {
		w.OpTimeout = 5 * time.Second
	}
	return w
}

// plannedOp is one client operation of the plan: at At from the start of
// the run, on the member the plan's index picks.
type plannedOp struct {
	At       time.Duration
	Kind     OpKind
	Workflow string
	// Member indexes the run's member names; if that member is down the
	// next one up is used.
	Member  int
	Trigger *graft.WorkflowTrigger // starts only
}

// planWorkload returns the client operations of a run, sorted by time: a
// pure function of its arguments.
func planWorkload(seed int64, w Workload, members int, span time.Duration) []plannedOp {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed_0f_c1_1e_475))
	var ops []plannedOp
	for i := range w.Workflows {
		id := fmt.Sprintf("wf-%03d", i)
		at := span * time.Duration(i) / time.Duration(w.Workflows)
		controlled := r.Float64() < w.Controls
		shape := w.Shapes[r.IntN(len(w.Shapes))]
		if controlled {
			shape = ShapeLong
		}
		var tr graft.WorkflowTrigger
		if w.Trigger != nil {
			tr = w.Trigger(i, r)
		} else {
			tr = shapeTrigger(shape, r)
		}
		tr.WorkflowID = id
		ops = append(ops, plannedOp{At: at, Kind: OpStart, Workflow: id, Member: r.IntN(members), Trigger: &tr})
		if controlled {
			first := at + time.Duration(50+r.IntN(400))*time.Millisecond
			if r.IntN(3) == 0 {
				ops = append(ops, plannedOp{At: first, Kind: OpStop, Workflow: id, Member: r.IntN(members)})
			} else {
				ops = append(ops,
					plannedOp{At: first, Kind: OpPause, Workflow: id, Member: r.IntN(members)},
					plannedOp{At: first + time.Duration(100+r.IntN(900))*time.Millisecond, Kind: OpResume, Workflow: id, Member: r.IntN(members)})
			}
		}
		for range w.Reads {
			ops = append(ops, plannedOp{At: at + time.Duration(r.IntN(3000))*time.Millisecond, Kind: OpStatus, Workflow: id, Member: r.IntN(members)})
		}
	}
	slices.SortStableFunc(ops, func(a, b plannedOp) int { return int(a.At - b.At) })
	return ops
}

// stepConfig is the config of a workload step: what it is, how it behaves
// and what it schedules next. The workflow's shape lives in it.
type stepConfig struct {
	Task      string     `json:"task"`
	Key       string     `json:"key,omitempty"`
	HasKey    bool       `json:"has_key,omitempty"`
	FailFirst int        `json:"fail_first,omitempty"`
	SleepMS   int        `json:"sleep_ms,omitempty"`
	Join      []string   `json:"join,omitempty"`
	Next      []nextStep `json:"next,omitempty"`
}

// nextStep is a step scheduled by another.
type nextStep struct {
	Node    string     `json:"node"`
	DelayMS int        `json:"delay_ms,omitempty"`
	Step    stepConfig `json:"step"`
}

// shapeTrigger builds a workflow of shape s with durations drawn from r.
func shapeTrigger(s Shape, r *rand.Rand) graft.WorkflowTrigger {
	sleep := func() int { return 5 + r.IntN(40) }
	step := func(task string, next ...nextStep) stepConfig {
		return stepConfig{Task: task, SleepMS: sleep(), Next: next}
	}
	then := func(c stepConfig) nextStep { return nextStep{Node: stepNodeName, Step: c} }
	keyed := func(c stepConfig, key string) nextStep {
		c.Key, c.HasKey = key, true
		return then(c)
	}
	var root stepConfig
	switch s {
	case ShapeSequential:
		root = step("s0", then(step("s1", then(step("s2", then(step("s3")))))))
	case ShapeFanOut:
		join := nextStep{Node: joinNodeName, Step: stepConfig{Task: "join", SleepMS: sleep(), Join: []string{"b0", "b1", "b2"},
			Next: []nextStep{then(step("end"))}}}
		root = step("fan", then(step("b0")), then(step("b1")), then(step("b2")), join)
	case ShapeKeyed:
		k1 := step("k1", keyed(step("k2"), "a"), keyed(step("k3"), "b"))
		root = step("k0", keyed(k1, "a"), keyed(k1, "a"))
	case ShapeDelayed:
		d2 := then(step("d2"))
		d2.DelayMS = 100 + r.IntN(400)
		d1 := then(step("d1", d2))
		d1.DelayMS = 100 + r.IntN(400)
		root = step("d0", d1)
	case ShapeRetry:
		r1 := step("r1")
		r1.FailFirst = 1
		root = step("r0", then(r1))
		root.FailFirst = 1
	case ShapeLong:
		var next []nextStep
		for i := 5; i >= 0; i-- {
			c := stepConfig{Task: fmt.Sprintf("l%d", i), SleepMS: 100 + r.IntN(100), Next: next}
			if i == 0 {
				root = c
			}
			next = []nextStep{then(c)}
		}
	default:
		panic(fmt.Sprintf("chaos: unknown shape %q", s))
	}
	return graft.WorkflowTrigger{
		InitialNodes: []graft.NodeConfig{{Name: stepNodeName, Config: root}},
		InitialState: map[string]any{},
		Metadata:     map[string]string{shapeKey: string(s)},
	}
}

// shapeKey is the metadata key under which a workflow carries its shape.
const shapeKey = "chaos.shape"

// errInjected is the step error the retry shape injects.
var errInjected = errors.New("chaos: injected step error")

// stepNode runs a workload step on one member and records its execution.
// The join node is the same with a CanStart.
type stepNode struct {
	name   string
	member string
	rec    stepSink
}

// stepSink receives the step executions a member records: the run's
// recorder in this process, the stream to the harness in a member process.
type stepSink interface {
	// now is the offset of the current time from the start of the run.
	now() Duration
	// step records one execution.
	step(StepRun)
}

// GetName returns the node's registered name.
func (n *stepNode) GetName() string { return n.name }

// Execute sleeps, marks the task done in the state, schedules the next
// steps, and records the run; it fails attempts up to FailFirst.
func (n *stepNode) Execute(ctx context.Context, state map[string]any, cfg stepConfig) (*graft.NodeResult, error) {
	run := StepRun{Node: n.name, Task: cfg.Task, Key: cfg.Key, HasKey: cfg.HasKey, Member: n.member, Start: n.rec.now()}
	if wc, ok := graft.GetWorkflowContext(ctx); ok {
		run.Workflow, run.ExecutionID, run.Attempt = wc.WorkflowID, wc.ExecutionID, wc.Attempt
		if wc.MemberID != "" {
			run.Member = wc.MemberID
		}
	}
	t := time.NewTimer(time.Duration(cfg.SleepMS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		run.End, run.Result = n.rec.now(), "cancelled"
		n.rec.step(run)
		return nil, ctx.Err()
	}
	run.End = n.rec.now()
	if run.Attempt <= cfg.FailFirst {
		run.Result = "injected-error"
		n.rec.step(run)
		return nil, errInjected
	}
	run.Result = "ok"
	n.rec.step(run)
	if state == nil {
		state = map[string]any{}
	}
	state["done_"+cfg.Task] = true
	res := &graft.NodeResult{GlobalState: state}
	for _, nx := range cfg.Next {
		next := graft.NextNode{NodeName: nx.Node, Config: nx.Step}
		if nx.DelayMS > 0 {
			d := time.Duration(nx.DelayMS) * time.Millisecond
			next.Delay = &d
		}
		if nx.Step.HasKey {
			k := nx.Step.Key
			next.IdempotencyKey = &k
		}
		res.NextNodes = append(res.NextNodes, next)
	}
	return res, nil
}

// joinNode is a step that starts once the tasks in its Join are done.
type joinNode struct{ stepNode }

// CanStart reports whether every task the join waits for is done.
func (n *joinNode) CanStart(_ context.Context, state map[string]any, cfg stepConfig) bool {
	for _, t := range cfg.Join {
		if done, _ := state["done_"+t].(bool); !done {
			return false
		}
	}
	return true
}

// registerNodes registers the workload's node types on m.
func registerNodes(m *graft.Manager, member string, rec stepSink) error {
	if err := m.RegisterNode(&stepNode{name: stepNodeName, member: member, rec: rec}); err != nil {
		return fmt.Errorf("registering %s: %w", stepNodeName, err)
	}
	if err := m.RegisterNode(&joinNode{stepNode{name: joinNodeName, member: member, rec: rec}}); err != nil {
		return fmt.Errorf("registering %s: %w", joinNodeName, err)
	}
	return nil
}
