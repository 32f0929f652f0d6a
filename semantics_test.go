package graft_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// ---- 1. Node shapes ----------------------------------------------------

type shapeState struct {
	Input string   `json:"input"`
	Trail []string `json:"trail"`
}

type shapeConfig struct {
	Mode string `json:"mode"`
}

// ctxPtrNode: Execute(ctx, *S, *C) and CanStart(ctx, *S, *C).
type ctxPtrNode struct{ canStarts atomic.Int32 }

func (n *ctxPtrNode) GetName() string { return "CtxPtr" }

func (n *ctxPtrNode) CanStart(_ context.Context, s *shapeState, _ *shapeConfig) bool {
	n.canStarts.Add(1)
	return s.Input != ""
}

func (n *ctxPtrNode) Execute(ctx context.Context, s *shapeState, c *shapeConfig) (*graft.NodeResult, error) {
	wc, ok := graft.GetWorkflowContext(ctx)
	if !ok {
		return nil, graft.Permanent(errors.New("no workflow context"))
	}
	s.Trail = append(s.Trail, fmt.Sprintf("CtxPtr:%s:%s:%s:%d:%s", c.Mode, wc.WorkflowID, wc.NodeName, wc.Attempt, wc.Metadata["k"]))
	return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{
		{NodeName: "Value", Config: shapeConfig{Mode: "v"}},
	}}, nil
}

// valueNode: Execute(S, C) with value structs and no context.
type valueNode struct{}

func (valueNode) GetName() string { return "Value" }

func (valueNode) Execute(s shapeState, c shapeConfig) (*graft.NodeResult, error) {
	s.Trail = append(s.Trail, "Value:"+c.Mode)
	return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{
		{NodeName: "StateOnly", Config: map[string]any{"ignored": true}},
	}}, nil
}

// stateOnlyNode: Execute(map) with no config and no CanStart.
type stateOnlyNode struct{}

func (*stateOnlyNode) GetName() string { return "StateOnly" }

func (*stateOnlyNode) Execute(s map[string]interface{}) (*graft.NodeResult, error) {
	tr, _ := s["trail"].([]interface{})
	s["trail"] = append(tr, "StateOnly")
	return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{
		{NodeName: "Any", Config: map[string]any{"mode": "a"}},
	}}, nil
}

// anyNode: Execute(ctx, interface{}, interface{}) and CanStart(map).
type anyNode struct{}

func (*anyNode) GetName() string { return "Any" }

func (*anyNode) CanStart(s map[string]interface{}) bool { return s["input"] == "hello" }

func (*anyNode) Execute(_ context.Context, state interface{}, config interface{}) (*graft.NodeResult, error) {
	s, ok := state.(map[string]interface{})
	if !ok {
		return nil, graft.Permanent(fmt.Errorf("state is %T", state))
	}
	c, ok := config.(map[string]interface{})
	if !ok {
		return nil, graft.Permanent(fmt.Errorf("config is %T", config))
	}
	tr, _ := s["trail"].([]interface{})
	s["trail"] = append(tr, fmt.Sprintf("Any:%v", c["mode"]))
	return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{
		{NodeName: "PtrMap", Config: map[string]any{"mode": "p"}},
	}}, nil
}

// ptrMapNode: Execute(*S, map) and CanStart(S) with a value struct.
type ptrMapNode struct{}

func (*ptrMapNode) GetName() string { return "PtrMap" }

func (*ptrMapNode) CanStart(s shapeState) bool { return len(s.Trail) == 4 }

func (*ptrMapNode) Execute(s *shapeState, c map[string]interface{}) (*graft.NodeResult, error) {
	s.Trail = append(s.Trail, fmt.Sprintf("PtrMap:%v", c["mode"]))
	return &graft.NodeResult{GlobalState: s}, nil
}

func TestNodeShapesEndToEnd(t *testing.T) {
	t.Parallel()
	cp := &ctxPtrNode{}
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, cp, valueNode{}, &stateOnlyNode{}, &anyNode{}, &ptrMapNode{})
	})
	require.Equal(t, []string{"Any", "CtxPtr", "PtrMap", "StateOnly", "Value"}, b.m.ListNodes())

	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID:   "shapes",
		InitialNodes: []graft.NodeConfig{{Name: "CtxPtr", Config: &shapeConfig{Mode: "i"}}},
		InitialState: &shapeState{Input: "hello"},
		Metadata:     map[string]string{"k": "meta"},
	}))
	s := waitStatus(t, b.m, "shapes", graft.WorkflowStateCompleted)

	var final shapeState
	require.NoError(t, s.DecodeState(&final))
	require.Equal(t, shapeState{Input: "hello", Trail: []string{
		"CtxPtr:i:shapes:CtxPtr:1:meta", "Value:v", "StateOnly", "Any:a", "PtrMap:p",
	}}, final)
	require.Equal(t, []string{"CtxPtr", "Value", "StateOnly", "Any", "PtrMap"}, executedNames(s))
	require.GreaterOrEqual(t, cp.canStarts.Load(), int32(1), "CanStart of CtxPtr was never called")
}

// ---- 1b. Refusals ------------------------------------------------------

type noGetName struct{}

func (noGetName) Execute(map[string]any) (*graft.NodeResult, error) { return nil, nil }

type noExecute struct{}

func (noExecute) GetName() string { return "NoExecute" }

type fourParams struct{}

func (fourParams) GetName() string { return "FourParams" }
func (fourParams) Execute(context.Context, map[string]any, map[string]any, int) (*graft.NodeResult, error) {
	return nil, nil
}

type ctxOnly struct{}

func (ctxOnly) GetName() string                                    { return "CtxOnly" }
func (ctxOnly) Execute(context.Context) (*graft.NodeResult, error) { return nil, nil }

type wrongReturn struct{}

func (wrongReturn) GetName() string                                { return "WrongReturn" }
func (wrongReturn) Execute(map[string]any) (map[string]any, error) { return nil, nil }

type oneReturn struct{}

func (oneReturn) GetName() string              { return "OneReturn" }
func (oneReturn) Execute(map[string]any) error { return nil }

type badStateType struct{}

func (badStateType) GetName() string                           { return "BadState" }
func (badStateType) Execute(string) (*graft.NodeResult, error) { return nil, nil }

type badCanStart struct{}

func (badCanStart) GetName() string                                   { return "BadCanStart" }
func (badCanStart) Execute(map[string]any) (*graft.NodeResult, error) { return nil, nil }
func (badCanStart) CanStart(map[string]any) string                    { return "yes" }

type ptrReceiver struct{}

func (*ptrReceiver) GetName() string                                   { return "PtrReceiver" }
func (*ptrReceiver) Execute(map[string]any) (*graft.NodeResult, error) { return nil, nil }

type emptyName struct{}

func (emptyName) GetName() string                                   { return "" }
func (emptyName) Execute(map[string]any) (*graft.NodeResult, error) { return nil, nil }

func TestRegisterNodeRefusals(t *testing.T) {
	t.Parallel()
	m := graft.New("n1", freeAddr(t), t.TempDir(), testLogger(t, "n1"))
	t.Cleanup(func() { require.NoError(t, m.Stop()) })

	cases := []struct {
		name string
		node any
		want []string // substrings of the error
	}{
		{"nil", nil, []string{"nil"}},
		{"missing GetName", noGetName{}, []string{"noGetName", "GetName"}},
		{"missing Execute", noExecute{}, []string{`"NoExecute"`, "Execute"}},
		{"wrong arity", fourParams{}, []string{`"FourParams"`, "4 parameters"}},
		{"context only", ctxOnly{}, []string{`"CtxOnly"`, "context.Context"}},
		{"wrong return type", wrongReturn{}, []string{`"WrongReturn"`, "*NodeResult"}},
		{"one return value", oneReturn{}, []string{`"OneReturn"`, "1 return value"}},
		{"state of unsupported type", badStateType{}, []string{`"BadState"`, "state parameter", "string"}},
		{"CanStart returns string", badCanStart{}, []string{`"BadCanStart"`, "CanStart", "bool"}},
		{"pointer receiver registered as value", ptrReceiver{}, []string{"ptrReceiver", "pointer receiver"}},
		{"empty name", emptyName{}, []string{"emptyName", "empty name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := m.RegisterNode(tc.node)
			require.ErrorIs(t, err, graft.ErrInvalidNode)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	require.Empty(t, m.ListNodes(), "a refused node was registered")
	// The member's entry in the cluster state carries the names: bounded.
	err := m.RegisterNode(&seqNode{name: strings.Repeat("x", 257)})
	require.ErrorIs(t, err, graft.ErrInvalidNode)
	require.ErrorContains(t, err, "257 bytes, at most 256 allowed")
	require.Empty(t, m.ListNodes(), "a refused node was registered")

	require.NoError(t, m.RegisterNode(&seqNode{name: "B"}))
	require.NoError(t, m.RegisterNode(&seqNode{name: "A"}))
	err = m.RegisterNode(&seqNode{name: "A"})
	require.ErrorIs(t, err, graft.ErrDuplicateNode)
	require.ErrorContains(t, err, `"A"`)
	require.Equal(t, []string{"A", "B"}, m.ListNodes())

	require.NoError(t, m.UnregisterNode("A"))
	require.Equal(t, []string{"B"}, m.ListNodes())
	err = m.UnregisterNode("A")
	require.ErrorIs(t, err, graft.ErrNodeNotFound)
	require.ErrorContains(t, err, `"A"`)
	require.NoError(t, m.RegisterNode(&seqNode{name: "A"}), "a name is free again after UnregisterNode")
}

// A pending step whose node was unregistered waits, and runs once the node
// is registered again.
func TestUnregisteredPendingNodeWaitsForRegistration(t *testing.T) {
	t.Parallel()
	rel := release(t)
	started := make(chan struct{}, 1)
	var laterRuns atomic.Int32
	later := func() *mapNode {
		return fnNode("Later", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			laterRuns.Add(1)
			s["later"] = true
			return &graft.NodeResult{GlobalState: s}, nil
		})
	}
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, later(), fnNode("Hold", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			signal(started, struct{}{})
			if err := hold(ctx, rel.c); err != nil {
				return nil, err
			}
			return &graft.NodeResult{NextNodes: next("Later")}, nil
		}))
	})
	ctx := context.Background()
	startWF(t, b.m, "unreg", nil, "Hold")
	recv(t, started, "Hold to start")
	require.NoError(t, b.m.PauseWorkflow(ctx, "unreg"))
	rel.open()
	waitUntil(t, b.m, "unreg", "Later pending", func(s *graft.WorkflowStatus) bool {
		return len(s.PendingNodes) == 1 && s.PendingNodes[0].NodeName == "Later"
	})
	require.NoError(t, b.m.UnregisterNode("Later"))
	require.NoError(t, b.m.ResumeWorkflow(ctx, "unreg"))

	require.Never(t, func() bool { return laterRuns.Load() > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"an unregistered node ran")
	s, err := b.m.GetWorkflowStatus("unreg")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateRunning, s.Status, describe(s))
	require.Len(t, s.PendingNodes, 1)

	require.NoError(t, b.m.RegisterNode(later()))
	s = waitStatus(t, b.m, "unreg", graft.WorkflowStateCompleted)
	require.Equal(t, int32(1), laterRuns.Load())
	require.Equal(t, true, decodeMap(t, s)["later"])
}

// ---- 2. Branching and merging -----------------------------------------

func TestRouterChoosesPathByState(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("Router", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				path := "Low"
				if s["score"].(float64) > 0.5 {
					path = "High"
				}
				return &graft.NodeResult{GlobalState: s, NextNodes: next(path)}, nil
			}),
			fnNode("High", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["path"] = "high"
				return &graft.NodeResult{GlobalState: s}, nil
			}),
			fnNode("Low", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["path"] = "low"
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	for _, tc := range []struct {
		score float64
		path  string
		node  string
	}{{0.9, "high", "High"}, {0.1, "low", "Low"}} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			id := "route-" + tc.path
			startWF(t, b.m, id, map[string]any{"score": tc.score}, "Router")
			s := waitStatus(t, b.m, id, graft.WorkflowStateCompleted)
			require.Equal(t, []string{"Router", tc.node}, executedNames(s))
			require.Equal(t, tc.path, decodeMap(t, s)["path"])
		})
	}
}

func TestFanOutKeepsEveryBranchField(t *testing.T) {
	t.Parallel()
	setField := func(name, field string) *mapNode {
		return fnNode(name, func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			s[field] = name
			return &graft.NodeResult{GlobalState: s}, nil
		})
	}
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("A", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["a"] = "A"
				return &graft.NodeResult{GlobalState: s, NextNodes: next("B1", "B2", "B3")}, nil
			}),
			setField("B1", "b1"), setField("B2", "b2"), setField("B3", "b3"),
		)
	})
	startWF(t, b.m, "fan", map[string]any{"seed": 1}, "A")
	s := waitStatus(t, b.m, "fan", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"seed":1,"a":"A","b1":"B1","b2":"B2","b3":"B3"}`, string(s.CurrentStateJSON))
	require.ElementsMatch(t, []string{"A", "B1", "B2", "B3"}, executedNames(s))
}

func TestConflictingBranchesLastCommitWins(t *testing.T) {
	t.Parallel()
	writer := func(name, own string) *mapNode {
		return fnNode(name, func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			s["winner"] = name
			s[own] = true
			return &graft.NodeResult{GlobalState: s}, nil
		})
	}
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, writer("W1", "w1"), writer("W2", "w2"), &mapNode{name: "Split", fn: func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			return &graft.NodeResult{NextNodes: next("W1", "W2")}, nil
		}})
	})
	for i := range 3 {
		id := fmt.Sprintf("conflict-%d", i)
		startWF(t, b.m, id, map[string]any{"keep": "me"}, "Split")
		s := waitStatus(t, b.m, id, graft.WorkflowStateCompleted)
		st := decodeMap(t, s)
		require.Equal(t, "me", st["keep"])
		require.Equal(t, true, st["w1"], "W1's own field was lost")
		require.Equal(t, true, st["w2"], "W2's own field was lost")
		names := executedNames(s)
		require.Len(t, names, 3)
		last := names[len(names)-1] // history is in commit order
		require.Equal(t, last, st["winner"], "the branch that committed last must win (history %v)", names)
	}
}

type typedState struct {
	Known string `json:"known"`
}

// typedNode knows only "known"; CanStart (a map) waits for the field the
// other branch adds, so the node reads a state holding fields it can't see.
type typedNode struct{}

func (*typedNode) GetName() string { return "Typed" }

func (*typedNode) CanStart(s map[string]any) bool { _, ok := s["extra"]; return ok }

func (*typedNode) Execute(_ context.Context, s typedState, _ map[string]any) (*graft.NodeResult, error) {
	s.Known = "set"
	return &graft.NodeResult{GlobalState: s}, nil
}

func TestTypedNodeKeepsFieldsItDoesNotKnow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, &typedNode{},
			fnNode("Split", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: next("Typed", "Adder")}, nil
			}),
			fnNode("Adder", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["extra"] = map[string]any{"n": 1}
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	startWF(t, b.m, "typed", map[string]any{"foreign": "keep", "known": ""}, "Split")
	s := waitStatus(t, b.m, "typed", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"foreign":"keep","known":"set","extra":{"n":1}}`, string(s.CurrentStateJSON))
	names := executedNames(s)
	require.Equal(t, []string{"Split", "Adder", "Typed"}, names)
}

func TestMapNodeDeletesKey(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, fnNode("Del", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			delete(s, "k")
			delete(s["nested"].(map[string]any), "gone")
			return &graft.NodeResult{GlobalState: s}, nil
		}))
	})
	startWF(t, b.m, "del", map[string]any{"k": 1, "keep": 2, "nested": map[string]any{"gone": 1, "stay": 2}}, "Del")
	s := waitStatus(t, b.m, "del", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"keep":2,"nested":{"stay":2}}`, string(s.CurrentStateJSON))
}

// ---- 3. WorkerCount ----------------------------------------------------

func TestWorkerCountBoundsConcurrentSteps(t *testing.T) {
	t.Parallel()
	var cur, peak, done atomic.Int32
	started := make(chan struct{}, 16)
	tokens := make(chan struct{})
	rel := release(t)
	b := setup(t, func(c *graft.Config) { c.Engine.WorkerCount = 2 }, func(m *graft.Manager) {
		register(t, m,
			fnNode("Fan", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: next("Block", "Block", "Block", "Block", "Block", "Block")}, nil
			}),
			fnNode("Block", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				started <- struct{}{}
				defer func() { cur.Add(-1); done.Add(1) }()
				select {
				case <-tokens:
					return nil, nil
				case <-rel.c:
					return nil, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}),
		)
	})
	startWF(t, b.m, "workers", nil, "Fan")
	recv(t, started, "first Block")
	recv(t, started, "second Block")
	require.Never(t, func() bool { return cur.Load() > 2 }, 200*time.Millisecond, 5*time.Millisecond,
		"more than WorkerCount steps ran at once")
	for i := range 6 {
		tokens <- struct{}{}
		require.Eventually(t, func() bool { return done.Load() == int32(i+1) }, 20*time.Second, time.Millisecond)
		require.LessOrEqual(t, cur.Load(), int32(2))
	}
	waitStatus(t, b.m, "workers", graft.WorkflowStateCompleted)
	require.Equal(t, int32(2), peak.Load(), "peak concurrency must equal WorkerCount")
}

// ---- 4. CanStart -------------------------------------------------------

func TestCanStartWaitsForStateChange(t *testing.T) {
	t.Parallel()
	refused := make(chan struct{}, 1)
	var refusals atomic.Int32
	order := &trail{}
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			&gatedNode{
				mapNode: mapNode{name: "Waiter", fn: func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
					order.add("Waiter")
					s["waited"] = true
					return &graft.NodeResult{GlobalState: s}, nil
				}},
				can: func(s map[string]any) bool {
					if s["ready"] == true {
						return true
					}
					refusals.Add(1)
					signal(refused, struct{}{})
					return false
				},
			},
			fnNode("Setter", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				// Change the state only once Waiter has been refused.
				select {
				case <-refused:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				order.add("Setter")
				s["ready"] = true
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	startWF(t, b.m, "canstart", nil, "Waiter", "Setter")
	s := waitStatus(t, b.m, "canstart", graft.WorkflowStateCompleted)
	require.Equal(t, []string{"Setter", "Waiter"}, order.list())
	require.GreaterOrEqual(t, refusals.Load(), int32(1))
	require.JSONEq(t, `{"ready":true,"waited":true}`, string(s.CurrentStateJSON))
}

func TestBlockedWorkflowFailsAfterBlockedTimeout(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	b := setup(t, func(c *graft.Config) { c.Engine.BlockedTimeout = 500 * time.Millisecond }, func(m *graft.Manager) {
		register(t, m, &gatedNode{
			mapNode: mapNode{name: "Never", fn: func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				runs.Add(1)
				return nil, nil
			}},
			can: func(map[string]any) bool { return false },
		})
	})
	startWF(t, b.m, "blocked", map[string]any{"x": 1}, "Never")
	s := waitStatus(t, b.m, "blocked", graft.WorkflowStateBlocked)
	require.False(t, s.BlockedSince.IsZero())
	require.Len(t, s.PendingNodes, 1)
	require.Empty(t, s.ExecutingNodes)
	require.Equal(t, 1, b.m.GetClusterInfo().Metrics.BlockedWorkflows)

	s = waitStatus(t, b.m, "blocked", graft.WorkflowStateFailed)
	require.Contains(t, s.LastErrorText(), "blocked")
	require.Contains(t, s.LastErrorText(), "CanStart")
	require.Contains(t, s.LastErrorText(), "Never")
	require.Equal(t, int32(0), runs.Load())
	require.GreaterOrEqual(t, s.CompletedAt.Sub(s.StartedAt), 500*time.Millisecond,
		"failed before BlockedTimeout")
}

// ---- 5. Priority -------------------------------------------------------

func TestPriorityOrdersReadySteps(t *testing.T) {
	t.Parallel()
	fanStarted := make(chan struct{}, 1)
	holdStarted := make(chan struct{}, 1)
	fanRel, holdRel := release(t), release(t)
	order := &trail{}
	b := setup(t, func(c *graft.Config) { c.Engine.WorkerCount = 1 }, func(m *graft.Manager) {
		register(t, m,
			fnNode("Fan", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(fanStarted, struct{}{})
				if err := hold(ctx, fanRel.c); err != nil {
					return nil, err
				}
				n := func(label string, prio int) graft.NextNode {
					return graft.NextNode{NodeName: "Prio", Priority: prio, Config: map[string]any{"label": label}}
				}
				return &graft.NodeResult{NextNodes: []graft.NextNode{
					n("p1", 1), n("p5a", 5), n("p10", 10), n("p5b", 5), n("p5c", 5),
				}}, nil
			}),
			fnNode("Prio", func(_ context.Context, _ map[string]any, c map[string]any) (*graft.NodeResult, error) {
				order.add(c["label"].(string))
				return nil, nil
			}),
			fnNode("Holder", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(holdStarted, struct{}{})
				return nil, hold(ctx, holdRel.c)
			}),
		)
	})
	ctx := context.Background()
	// Commit the fan-out while the workflow is paused, so that its five
	// steps become pending together.
	startWF(t, b.m, "prio", nil, "Fan")
	recv(t, fanStarted, "Fan to start")
	require.NoError(t, b.m.PauseWorkflow(ctx, "prio"))
	fanRel.open()
	waitUntil(t, b.m, "prio", "five pending steps", func(s *graft.WorkflowStatus) bool {
		return s.Status == graft.WorkflowStatePaused && len(s.PendingNodes) == 5 && len(s.ExecutedNodes) == 1
	})
	// Occupy the only worker, then resume: all five are queued behind it.
	startWF(t, b.m, "prio-holder", nil, "Holder")
	recv(t, holdStarted, "Holder to start")
	require.NoError(t, b.m.ResumeWorkflow(ctx, "prio"))
	waitUntil(t, b.m, "prio", "five queued steps", func(s *graft.WorkflowStatus) bool {
		return len(s.ExecutingNodes) == 5
	})
	// The claims are committed; give the engine time to take their results
	// (nothing may run meanwhile: the only worker is busy).
	require.Never(t, func() bool { return len(order.list()) > 0 }, 200*time.Millisecond, 5*time.Millisecond,
		"a step ran while the only worker was busy")
	// The engine queues a claimed step once its claim's answer reaches it,
	// a moment after the status shows the claim (later on a loaded
	// machine): wait until all five wait for the worker, so that it picks
	// them by priority and not by arrival.
	var queued int
	require.Eventually(t, func() bool {
		queued = b.m.GetClusterInfo().Metrics.QueueDepth
		return queued == 5
	}, 20*time.Second, time.Millisecond, "steps queued for the worker: %d of 5", queued)
	require.Empty(t, order.list(), "a step ran while the only worker was busy")
	holdRel.open()
	waitStatus(t, b.m, "prio", graft.WorkflowStateCompleted)
	require.Equal(t, []string{"p10", "p5a", "p5b", "p5c", "p1"}, order.list())
}

// ---- 6. Delay ----------------------------------------------------------

func TestDelayedNextNode(t *testing.T) {
	t.Parallel()
	// The status must be read while Child waits: a delay long enough for
	// the poll below to see it on a loaded machine.
	const delay = 2 * time.Second
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("Parent", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				d := delay
				return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: "Child", Delay: &d}}}, nil
			}),
			fnNode("Child", nil),
		)
	})
	startWF(t, b.m, "delay", nil, "Parent")
	var seenAt time.Time
	s := waitUntil(t, b.m, "delay", "Parent executed", func(s *graft.WorkflowStatus) bool {
		seenAt = time.Now()
		return len(s.ExecutedNodes) >= 1
	})
	parentEnd := s.ExecutedNodes[0].StartedAt.Add(s.ExecutedNodes[0].Duration)
	require.Len(t, s.PendingNodes, 1, "Child must be pending while its delay runs (%s)", describe(s))
	p := s.PendingNodes[0]
	require.Equal(t, "Child", p.NodeName)
	require.False(t, p.ReadyAt.Before(parentEnd.Add(delay)), "ReadyAt %s is less than %s after the parent ended (%s)", p.ReadyAt, delay, parentEnd)
	require.True(t, p.ReadyAt.After(seenAt.Add(-5*time.Millisecond)), "ReadyAt %s is not in the future", p.ReadyAt)

	s = waitStatus(t, b.m, "delay", graft.WorkflowStateCompleted)
	require.Equal(t, []string{"Parent", "Child"}, executedNames(s))
	child := s.ExecutedNodes[1]
	require.GreaterOrEqual(t, child.StartedAt.Sub(parentEnd), delay, "Child started before its delay")
}

// ---- 7. Idempotency ----------------------------------------------------

func TestIdempotencyKeyRunsOnce(t *testing.T) {
	t.Parallel()
	mu := &trail{}
	key := func(k string) *string { return &k }
	once := func(k string) graft.NextNode {
		return graft.NextNode{NodeName: "Once", IdempotencyKey: key(k), Config: map[string]any{"key": k}}
	}
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("Parent", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: []graft.NextNode{once("k1"), once("k1"), once("k2"), once(""), once("")}}, nil
			}),
			fnNode("Once", func(_ context.Context, _ map[string]any, c map[string]any) (*graft.NodeResult, error) {
				mu.add(c["key"].(string))
				if c["key"] == "k1" {
					return &graft.NodeResult{NextNodes: next("Again")}, nil
				}
				return nil, nil
			}),
			fnNode("Again", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				// k1 has completed: scheduling it again must be a no-op.
				return &graft.NodeResult{NextNodes: []graft.NextNode{once("k1")}}, nil
			}),
		)
	})
	startWF(t, b.m, "idem", nil, "Parent")
	s := waitStatus(t, b.m, "idem", graft.WorkflowStateCompleted)
	require.ElementsMatch(t, []string{"k1", "k2", ""}, mu.list(), "each key (the empty key too) must run exactly once")
	require.ElementsMatch(t, []string{"Parent", "Once", "Once", "Once", "Again"}, executedNames(s))
}

// ---- 8. Errors and retries ---------------------------------------------

type decodeState struct {
	Count int `json:"count"`
}

type decodeNode struct{}

func (decodeNode) GetName() string { return "Decode" }
func (decodeNode) Execute(s *decodeState) (*graft.NodeResult, error) {
	return &graft.NodeResult{GlobalState: s}, nil
}

func TestStepErrors(t *testing.T) {
	t.Parallel()
	type outcome struct {
		status   graft.WorkflowState
		attempts []int    // attempt number of each history entry
		errs     []string // substring of each entry's error ("" = success)
		lastErr  []string // substrings of LastError when failed
		// failedNode is the node that fails the workflow; default: the
		// initial node.
		failedNode string
	}
	// fails returns a node that fails the first n attempts with err(attempt)
	// and then succeeds.
	fails := func(name string, n int, mk func(int) error) *mapNode {
		return fnNode(name, func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			wc, _ := graft.GetWorkflowContext(ctx)
			if wc.Attempt <= n {
				return nil, mk(wc.Attempt)
			}
			s["ok"] = wc.Attempt
			return &graft.NodeResult{GlobalState: s}, nil
		})
	}
	boom := func(a int) error { return fmt.Errorf("boom %d", a) }
	// timesOut returns a node whose first n attempts wait for their context
	// to be cancelled (by the step timeout) and return ctx.Err().
	timesOut := func(n int) *mapNode {
		return fnNode("Slow", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			wc, _ := graft.GetWorkflowContext(ctx)
			if wc.Attempt > n {
				return &graft.NodeResult{GlobalState: s}, nil
			}
			<-ctx.Done()
			return nil, ctx.Err()
		})
	}
	cases := []struct {
		name  string
		tweak func(*graft.Config)
		node  any
		extra []any // other nodes to register
		state map[string]any
		want  outcome
	}{
		{
			name: "fails twice then succeeds", tweak: func(c *graft.Config) { c.Engine.MaxRetries = 3 },
			node: fails("Flaky", 2, boom),
			want: outcome{status: graft.WorkflowStateCompleted, attempts: []int{1, 2, 3}, errs: []string{"boom 1", "boom 2", ""}},
		},
		{
			name: "exceeds MaxRetries", tweak: func(c *graft.Config) { c.Engine.MaxRetries = 2 },
			node: fails("Flaky", 100, boom),
			want: outcome{status: graft.WorkflowStateFailed, attempts: []int{1, 2, 3},
				errs: []string{"boom 1", "boom 2", "boom 3"}, lastErr: []string{"boom 3"}},
		},
		{
			name: "permanent error is not retried", tweak: func(c *graft.Config) { c.Engine.MaxRetries = 3 },
			node: fails("Flaky", 100, func(a int) error { return graft.Permanent(boom(a)) }),
			want: outcome{status: graft.WorkflowStateFailed, attempts: []int{1}, errs: []string{"boom 1"}, lastErr: []string{"boom 1"}},
		},
		{
			name: "NoRetries", tweak: func(c *graft.Config) { c.Engine.MaxRetries = graft.NoRetries },
			node: fails("Flaky", 100, boom),
			want: outcome{status: graft.WorkflowStateFailed, attempts: []int{1}, errs: []string{"boom 1"}, lastErr: []string{"boom 1"}},
		},
		{
			name: "panic is a step error", tweak: func(c *graft.Config) { c.Engine.MaxRetries = 1 },
			node: fnNode("Panicker", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				panic("kaboom")
			}),
			want: outcome{status: graft.WorkflowStateFailed, attempts: []int{1, 2},
				errs: []string{"kaboom", "kaboom"}, lastErr: []string{"panic", "kaboom", "Panicker"}},
		},
		{
			name: "panic then success", tweak: func(c *graft.Config) { c.Engine.MaxRetries = 1 },
			node: fails("Flaky", 1, func(int) error { panic("kaboom") }),
			want: outcome{status: graft.WorkflowStateCompleted, attempts: []int{1, 2}, errs: []string{"panic: kaboom", ""}},
		},
		{
			name: "config decode failure", tweak: func(c *graft.Config) { c.Engine.MaxRetries = 3 },
			node: fnNode("Kick", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: "Value", Config: map[string]any{"mode": 5}}}}, nil
			}),
			extra: []any{valueNode{}, &stateOnlyNode{}},
			want: outcome{status: graft.WorkflowStateFailed, attempts: []int{1, 1},
				errs: []string{"", "mode"}, lastErr: []string{`"Value"`, "config", `"mode"`}, failedNode: "Value"},
		},
		{
			name: "state decode failure", tweak: func(c *graft.Config) { c.Engine.MaxRetries = 3 },
			node: decodeNode{}, state: map[string]any{"count": "not a number"},
			want: outcome{status: graft.WorkflowStateFailed, attempts: []int{1},
				errs: []string{"count"}, lastErr: []string{`"Decode"`, `"count"`}},
		},
		{
			name: "step timeout then success",
			tweak: func(c *graft.Config) {
				c.Engine.MaxRetries = 2
				c.Engine.StepTimeout = 150 * time.Millisecond
			},
			node: timesOut(1),
			want: outcome{status: graft.WorkflowStateCompleted, attempts: []int{1, 2}, errs: []string{"deadline exceeded", ""}},
		},
		{
			name: "step timeout every time",
			tweak: func(c *graft.Config) {
				c.Engine.MaxRetries = 1
				c.Engine.StepTimeout = 150 * time.Millisecond
			},
			node: timesOut(100),
			want: outcome{status: graft.WorkflowStateFailed, attempts: []int{1, 2},
				errs: []string{"deadline exceeded", "deadline exceeded"}, lastErr: []string{"deadline exceeded", "step timeout"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node := tc.node
			name := node.(interface{ GetName() string }).GetName()
			b := setup(t, tc.tweak, func(m *graft.Manager) {
				register(t, m, node, fnNode("Ok", nil))
				register(t, m, tc.extra...)
			})
			wfErrs := collect(t, b.m.OnWorkflowError)
			startWF(t, b.m, "err", tc.state, name)
			s := waitStatus(t, b.m, "err", tc.want.status)
			require.Len(t, s.ExecutedNodes, len(tc.want.attempts), describe(s))
			failedNode := tc.want.failedNode
			if failedNode == "" {
				failedNode = name
			}
			for i, e := range s.ExecutedNodes {
				if i == len(s.ExecutedNodes)-1 {
					require.Equal(t, failedNode, e.NodeName)
				}
				require.Equal(t, tc.want.attempts[i], e.Attempt, "entry %d", i)
				require.False(t, e.StartedAt.IsZero())
				if tc.want.errs[i] == "" {
					require.Empty(t, e.Error, "entry %d", i)
				} else {
					require.Contains(t, e.Error, tc.want.errs[i], "entry %d", i)
				}
			}
			if tc.want.status == graft.WorkflowStateFailed {
				for _, w := range tc.want.lastErr {
					require.Contains(t, s.LastErrorText(), w)
				}
				require.Equal(t, s.ExecutedNodes[len(s.ExecutedNodes)-1].Error, s.LastErrorText(), "LastError must be the last error")
				require.Equal(t, failedNode, s.FailedNode)
				ev := waitEvent(t, wfErrs, "WorkflowErrorEvent", nil)
				require.Equal(t, "err", ev.WorkflowID)
				require.Equal(t, failedNode, ev.NodeName)
				require.Equal(t, tc.want.attempts[len(tc.want.attempts)-1], ev.Attempt)
				require.Error(t, ev.Error)
				require.Contains(t, ev.Error.Error(), s.LastErrorText())
				var we *graft.WorkflowError
				require.ErrorAs(t, ev.Error, &we)
				require.Equal(t, s.LastErrorText(), we.Message)
			}
			// The member survives the failure (and any panic).
			startWF(t, b.m, "after", nil, "Ok")
			waitStatus(t, b.m, "after", graft.WorkflowStateCompleted)
		})
	}
}

// ---- 9. Pause, resume, stop --------------------------------------------

func TestPauseKeepsRunningStepResultAndHoldsTheRest(t *testing.T) {
	t.Parallel()
	rel := release(t)
	started := make(chan struct{}, 1)
	var afterRuns atomic.Int32
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("Slow", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(started, struct{}{})
				if err := hold(ctx, rel.c); err != nil {
					return nil, err
				}
				s["slow"] = "done"
				return &graft.NodeResult{GlobalState: s, NextNodes: next("After")}, nil
			}),
			fnNode("After", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				afterRuns.Add(1)
				s["after"] = "done"
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	ctx := context.Background()
	startWF(t, b.m, "pause", nil, "Slow")
	recv(t, started, "Slow to start")
	require.NoError(t, b.m.PauseWorkflow(ctx, "pause"))
	require.NoError(t, b.m.PauseWorkflow(ctx, "pause"), "pausing a paused workflow is a no-op")
	rel.open()

	s := waitUntil(t, b.m, "pause", "Slow's result", func(s *graft.WorkflowStatus) bool {
		return len(s.ExecutedNodes) == 1
	})
	require.Equal(t, graft.WorkflowStatePaused, s.Status)
	require.Equal(t, "done", decodeMap(t, s)["slow"], "the running step's result was not kept")
	require.Len(t, s.PendingNodes, 1)
	require.Equal(t, "After", s.PendingNodes[0].NodeName)

	require.Never(t, func() bool { return afterRuns.Load() > 0 }, 300*time.Millisecond, 5*time.Millisecond,
		"a step started while the workflow was paused")
	s, err := b.m.GetWorkflowStatus("pause")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStatePaused, s.Status)
	require.Len(t, s.PendingNodes, 1)

	require.NoError(t, b.m.ResumeWorkflow(ctx, "pause"))
	s = waitStatus(t, b.m, "pause", graft.WorkflowStateCompleted)
	require.Equal(t, int32(1), afterRuns.Load())
	require.JSONEq(t, `{"slow":"done","after":"done"}`, string(s.CurrentStateJSON))
}

func TestStopCancelsRunningStep(t *testing.T) {
	t.Parallel()
	// The workflow must be stopped before Later is due: a delay the stop
	// beats on a loaded machine too.
	const laterDelay = 2 * time.Second
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	var laterRuns, afterRuns atomic.Int32
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("Kick", func(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				d := laterDelay
				return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: "Long"}, {NodeName: "Later", Delay: &d}}}, nil
			}),
			fnNode("Long", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(started, struct{}{})
				<-ctx.Done()
				signal(cancelled, context.Cause(ctx))
				s["long"] = "should not be kept"
				return &graft.NodeResult{GlobalState: s, NextNodes: next("After")}, nil
			}),
			fnNode("Later", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				laterRuns.Add(1)
				return nil, nil
			}),
			fnNode("After", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				afterRuns.Add(1)
				return nil, nil
			}),
		)
	})
	ctx := context.Background()
	startWF(t, b.m, "stop", map[string]any{"x": 1}, "Kick")
	recv(t, started, "Long to start")
	require.NoError(t, b.m.StopWorkflow(ctx, "stop"))
	cause := recv(t, cancelled, "Long's context to be cancelled")
	require.Error(t, cause)

	s := waitStatus(t, b.m, "stop", graft.WorkflowStateStopped)
	require.NotNil(t, s.CompletedAt)
	require.NoError(t, b.m.StopWorkflow(ctx, "stop"), "stopping a stopped workflow is a no-op")

	// Later was due laterDelay after Kick; neither it nor Long's next node
	// runs, watched until well past that.
	require.Equal(t, []string{"Kick"}, executedNames(s))
	kick := s.ExecutedNodes[0]
	due := kick.StartedAt.Add(kick.Duration).Add(laterDelay)
	require.Never(t, func() bool { return laterRuns.Load()+afterRuns.Load() > 0 }, max(time.Until(due), 0)+500*time.Millisecond, 10*time.Millisecond,
		"a step of a stopped workflow ran")
	s, err := b.m.GetWorkflowStatus("stop")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateStopped, s.Status)
	require.JSONEq(t, `{"x":1}`, string(s.CurrentStateJSON), "the cancelled step's result was recorded")
	require.Equal(t, []string{"Kick"}, executedNames(s))
}

func TestControlErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) { register(t, m, fnNode("Ok", nil)) })
	ctx := context.Background()
	startWF(t, b.m, "done", nil, "Ok")
	waitStatus(t, b.m, "done", graft.WorkflowStateCompleted)

	ops := map[string]func(context.Context, string) error{
		"pause": b.m.PauseWorkflow, "resume": b.m.ResumeWorkflow, "stop": b.m.StopWorkflow,
	}
	for name, op := range ops {
		t.Run(name+" unknown", func(t *testing.T) {
			require.ErrorIs(t, op(ctx, "no-such-workflow"), graft.ErrWorkflowNotFound)
			require.ErrorIs(t, op(ctx, ""), graft.ErrWorkflowNotFound)
		})
		t.Run(name+" completed", func(t *testing.T) {
			err := op(ctx, "done")
			require.ErrorIs(t, err, graft.ErrInvalidTransition)
			require.ErrorContains(t, err, "completed")
		})
	}
	s, err := b.m.GetWorkflowStatus("done")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateCompleted, s.Status, "a refused control changed the workflow")
}

// ---- 10. Status --------------------------------------------------------

type statusState struct {
	Name  string `json:"name"`
	Steps int    `json:"steps"`
}

func TestWorkflowStatusFields(t *testing.T) {
	t.Parallel()
	rel := release(t)
	started := make(chan struct{}, 1)
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("First", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["steps"] = s["steps"].(float64) + 1
				return &graft.NodeResult{GlobalState: s, NextNodes: next("Blocked")}, nil
			}),
			fnNode("Blocked", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(started, struct{}{})
				if err := hold(ctx, rel.c); err != nil {
					return nil, err
				}
				s["steps"] = s["steps"].(float64) + 1
				return &graft.NodeResult{GlobalState: s}, nil
			}),
		)
	})
	_, err := b.m.GetWorkflowStatus("unknown")
	require.ErrorIs(t, err, graft.ErrWorkflowNotFound)

	before := time.Now()
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID:   "status",
		InitialNodes: []graft.NodeConfig{{Name: "First"}},
		InitialState: statusState{Name: "s"},
		Metadata:     map[string]string{"team": "qa"},
	}))
	recv(t, started, "Blocked to start")
	s, err := b.m.GetWorkflowStatus("status")
	require.NoError(t, err)
	require.Equal(t, "status", s.WorkflowID)
	require.Equal(t, graft.WorkflowStateRunning, s.Status)
	require.Equal(t, map[string]string{"team": "qa"}, s.Metadata)
	require.Len(t, s.ExecutingNodes, 1)
	x := s.ExecutingNodes[0]
	require.Equal(t, "Blocked", x.NodeName)
	require.Equal(t, "n1", x.MemberID)
	require.Equal(t, 1, x.Attempt)
	require.NotEmpty(t, x.ExecutionID)
	require.False(t, x.StartedAt.Before(before))
	require.Empty(t, s.PendingNodes)
	require.Equal(t, []string{"First"}, executedNames(s))
	require.Equal(t, []string{"Blocked"}, s.ExecutedNodes[0].NextNodes)
	require.Nil(t, s.CompletedAt)
	require.False(t, s.StartedAt.Before(before))
	var mid statusState
	require.NoError(t, s.DecodeState(&mid))
	require.Equal(t, statusState{Name: "s", Steps: 1}, mid)

	rel.open()
	s = waitStatus(t, b.m, "status", graft.WorkflowStateCompleted)
	var final statusState
	require.NoError(t, s.DecodeState(&final))
	require.Equal(t, statusState{Name: "s", Steps: 2}, final)
	require.Empty(t, s.ExecutingNodes)
	require.Empty(t, s.PendingNodes)
	require.Empty(t, s.LastErrorText())
	require.Len(t, s.ExecutedNodes, 2)
	for i, e := range s.ExecutedNodes {
		require.Equal(t, []string{"First", "Blocked"}[i], e.NodeName)
		require.Equal(t, 1, e.Attempt)
		require.Equal(t, "n1", e.MemberID)
		require.NotEmpty(t, e.ExecutionID)
		require.Empty(t, e.Error)
		require.False(t, e.StartedAt.Before(s.StartedAt))
		require.Positive(t, e.Duration)
	}
	require.False(t, s.CompletedAt.Before(s.StartedAt))
	require.False(t, s.UpdatedAt.Before(s.StartedAt))
	end := s.ExecutedNodes[1].StartedAt.Add(s.ExecutedNodes[1].Duration)
	require.False(t, s.CompletedAt.Before(end))
	require.True(t, s.BlockedSince.IsZero())

	var wrong []string
	require.Error(t, s.DecodeState(&wrong), "DecodeState into a slice must fail")
}

// While a step is being retried, the status shows the pending retry with its
// failure count, last error and a ReadyAt in the future, and LastError is
// the latest step error.
func TestStatusOfARetryingStep(t *testing.T) {
	t.Parallel()
	rel := release(t)
	third := make(chan struct{}, 1)
	b := setup(t, func(c *graft.Config) {
		c.Engine.MaxRetries = 3
		// Each retry must be seen pending: backoffs long enough for the
		// poll below to see them on a loaded machine.
		c.Engine.RetryDelay = time.Second
		c.Engine.MaxRetryDelay = 2 * time.Second
	}, func(m *graft.Manager) {
		register(t, m, fnNode("Flaky", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			wc, _ := graft.GetWorkflowContext(ctx)
			if wc.Attempt < 3 {
				return nil, fmt.Errorf("boom %d", wc.Attempt)
			}
			signal(third, struct{}{})
			if err := hold(ctx, rel.c); err != nil {
				return nil, err
			}
			return &graft.NodeResult{GlobalState: map[string]any{"ok": true}}, nil
		}))
	})
	startWF(t, b.m, "retrying", nil, "Flaky")
	for failures := 1; failures <= 2; failures++ {
		want := fmt.Sprintf("boom %d", failures)
		s := waitUntil(t, b.m, "retrying", want, func(s *graft.WorkflowStatus) bool {
			return len(s.PendingNodes) == 1 && s.PendingNodes[0].Failures == failures
		})
		require.Equal(t, graft.WorkflowStateRunning, s.Status)
		p := s.PendingNodes[0]
		require.Equal(t, "Flaky", p.NodeName)
		require.Equal(t, want, p.LastError)
		require.Len(t, s.ExecutedNodes, failures)
		failed := s.ExecutedNodes[failures-1]
		require.Equal(t, want, failed.Error)
		require.Equal(t, failures, failed.Attempt)
		require.True(t, p.ReadyAt.After(failed.StartedAt.Add(failed.Duration)), "a retry must wait for its backoff")
		require.Equal(t, want, s.LastErrorText(), "LastError must be the latest step error")
	}
	recv(t, third, "third attempt")
	s, err := b.m.GetWorkflowStatus("retrying")
	require.NoError(t, err)
	require.Len(t, s.ExecutingNodes, 1)
	require.Equal(t, 3, s.ExecutingNodes[0].Attempt)
	rel.open()
	s = waitStatus(t, b.m, "retrying", graft.WorkflowStateCompleted)
	require.Empty(t, s.LastErrorText(), "a completed workflow reports no error")
	require.JSONEq(t, `{"ok":true}`, string(s.CurrentStateJSON))
}

// A step claimed while the only worker is busy, whose workflow is paused
// before it starts, runs once after ResumeWorkflow, as attempt 1.
func TestPauseBeforeClaimedStepStarts(t *testing.T) {
	t.Parallel()
	rel := release(t)
	holdStarted := make(chan struct{}, 1)
	var attempts trail
	b := setup(t, func(c *graft.Config) { c.Engine.WorkerCount = 1 }, func(m *graft.Manager) {
		register(t, m,
			fnNode("Holder", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(holdStarted, struct{}{})
				return nil, hold(ctx, rel.c)
			}),
			fnNode("Step", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				wc, _ := graft.GetWorkflowContext(ctx)
				attempts.add(fmt.Sprint(wc.Attempt))
				return nil, nil
			}),
		)
	})
	ctx := context.Background()
	startWF(t, b.m, "holder", nil, "Holder")
	recv(t, holdStarted, "Holder to start")
	startWF(t, b.m, "paused-early", nil, "Step")
	waitUntil(t, b.m, "paused-early", "Step claimed", func(s *graft.WorkflowStatus) bool {
		return len(s.ExecutingNodes) == 1 || len(s.ExecutedNodes) > 0
	})
	require.NoError(t, b.m.PauseWorkflow(ctx, "paused-early"))
	rel.open()
	waitStatus(t, b.m, "holder", graft.WorkflowStateCompleted)
	require.Never(t, func() bool { return len(attempts.list()) > 0 }, 200*time.Millisecond, 5*time.Millisecond,
		"a step of a paused workflow started")
	s, err := b.m.GetWorkflowStatus("paused-early")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStatePaused, s.Status)

	require.NoError(t, b.m.ResumeWorkflow(ctx, "paused-early"))
	s = waitStatus(t, b.m, "paused-early", graft.WorkflowStateCompleted)
	require.Equal(t, []string{"1"}, attempts.list(), "the step must run once, as attempt 1")
	require.Len(t, s.ExecutedNodes, 1)
	require.Equal(t, 1, s.ExecutedNodes[0].Attempt)
}

func TestControlOfRunningAndPausedWorkflows(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	var laterRuns atomic.Int32
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("Wait", func(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				signal(started, struct{}{})
				<-ctx.Done()
				return nil, ctx.Err()
			}),
			fnNode("Later", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				laterRuns.Add(1)
				return nil, nil
			}),
			fnNode("Kick", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: next("Wait")}, nil
			}),
		)
	})
	ctx := context.Background()
	startWF(t, b.m, "ctl", nil, "Kick")
	recv(t, started, "Wait to start")
	require.NoError(t, b.m.ResumeWorkflow(ctx, "ctl"), "resuming a running workflow is a no-op")
	s, err := b.m.GetWorkflowStatus("ctl")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateRunning, s.Status)

	require.NoError(t, b.m.PauseWorkflow(ctx, "ctl"))
	waitStatus(t, b.m, "ctl", graft.WorkflowStatePaused)
	require.NoError(t, b.m.StopWorkflow(ctx, "ctl"), "a paused workflow can be stopped")
	s = waitStatus(t, b.m, "ctl", graft.WorkflowStateStopped)
	require.Equal(t, []string{"Kick"}, executedNames(s))
	require.ErrorIs(t, b.m.ResumeWorkflow(ctx, "ctl"), graft.ErrInvalidTransition)
	require.ErrorIs(t, b.m.PauseWorkflow(ctx, "ctl"), graft.ErrInvalidTransition)
	require.Zero(t, laterRuns.Load())
}

// A nil GlobalState (nil interface, nil pointer or nil map) leaves the
// state unchanged.
func TestNilGlobalStateKeepsState(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m,
			fnNode("NilIface", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: next("NilPtr")}, nil
			}),
			fnNode("NilPtr", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{GlobalState: (*shapeState)(nil), NextNodes: next("NilMap")}, nil
			}),
			fnNode("NilMap", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				var m map[string]any
				return &graft.NodeResult{GlobalState: m, NextNodes: next("NilResult")}, nil
			}),
			fnNode("NilResult", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return nil, nil
			}),
		)
	})
	startWF(t, b.m, "nil-state", map[string]any{"input": "kept", "trail": []string{"x"}}, "NilIface")
	s := waitStatus(t, b.m, "nil-state", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"input":"kept","trail":["x"]}`, string(s.CurrentStateJSON))
	require.Equal(t, []string{"NilIface", "NilPtr", "NilMap", "NilResult"}, executedNames(s))
}
