package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/executor"
)

// Shared state and config types.

type testState struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type testConfig struct {
	Threshold float64 `json:"threshold"`
}

const (
	goodState  = `{"name":"alice","count":2}`
	otherState = `{"name":"bob","count":3}`
	goodConfig = `{"threshold":1.5}`
)

// register registers node in a fresh registry and returns its adapter.
func register(t *testing.T, node any) *executor.Node {
	t.Helper()
	r := executor.NewRegistry()
	require.NoError(t, r.Register(node))
	names := r.Names()
	require.Len(t, names, 1)
	n, ok := r.Get(names[0])
	require.True(t, ok)
	return n
}

// echoResult returns state as the new GlobalState and schedules "next" with
// config as its config.
func echoResult(state, config any) *executor.NodeResult {
	return &executor.NodeResult{
		GlobalState: state,
		NextNodes:   []executor.NextNode{{NodeName: "next", Config: config}},
	}
}

// startable reports whether state and config decoded to goodState and
// goodConfig, so CanStart's answer proves both were decoded.
func startable(state, config any, withConfig bool) bool {
	var s testState
	if b, err := json.Marshal(state); err != nil || json.Unmarshal(b, &s) != nil {
		return false
	}
	if s != (testState{Name: "alice", Count: 2}) {
		return false
	}
	if !withConfig {
		return true
	}
	var c testConfig
	if b, err := json.Marshal(config); err != nil || json.Unmarshal(b, &c) != nil {
		return false
	}
	return c.Threshold == 1.5
}

// Generic nodes covering every Execute and CanStart shape for any S and C.

type ctxNode[S, C any] struct {
	name string
}

func (n *ctxNode[S, C]) GetName() string { return n.name }

func (n *ctxNode[S, C]) Execute(ctx context.Context, state S, config C) (*executor.NodeResult, error) {
	if ctx == nil {
		return nil, errors.New("nil context")
	}
	return echoResult(state, config), nil
}

type ctxCanNode[S, C any] struct{ ctxNode[S, C] }

func (n *ctxCanNode[S, C]) CanStart(ctx context.Context, state S, config C) bool {
	return ctx != nil && startable(state, config, true)
}

type twoNode[S, C any] struct {
	name string
}

func (n *twoNode[S, C]) GetName() string { return n.name }

func (n *twoNode[S, C]) Execute(state S, config C) (*executor.NodeResult, error) {
	return echoResult(state, config), nil
}

type twoCanNode[S, C any] struct{ twoNode[S, C] }

func (n *twoCanNode[S, C]) CanStart(state S, config C) bool {
	return startable(state, config, true)
}

type oneNode[S any] struct {
	name string
}

func (n *oneNode[S]) GetName() string { return n.name }

func (n *oneNode[S]) Execute(state S) (*executor.NodeResult, error) {
	return &executor.NodeResult{GlobalState: state}, nil
}

type oneCanNode[S any] struct{ oneNode[S] }

func (n *oneCanNode[S]) CanStart(state S) bool {
	return startable(state, nil, false)
}

// Nodes whose Execute and CanStart use different shapes and types.

type mixedShapes struct{}

func (mixedShapes) GetName() string { return "mixed-shapes" }

func (mixedShapes) Execute(ctx context.Context, state *testState, config map[string]any) (*executor.NodeResult, error) {
	return echoResult(state, config), nil
}

func (mixedShapes) CanStart(state map[string]any) bool {
	return state["name"] == "alice"
}

type shapeCase struct {
	name        string
	node        any
	withConfig  bool // Execute takes a config parameter
	hasCanStart bool
}

func shapes[S, C any](kinds string) []shapeCase {
	return []shapeCase{
		{name: kinds + "/ctx", node: &ctxNode[S, C]{name: "n"}, withConfig: true},
		{name: kinds + "/ctx+canstart", node: &ctxCanNode[S, C]{ctxNode[S, C]{name: "n"}}, withConfig: true, hasCanStart: true},
		{name: kinds + "/two", node: &twoNode[S, C]{name: "n"}, withConfig: true},
		{name: kinds + "/two+canstart", node: &twoCanNode[S, C]{twoNode[S, C]{name: "n"}}, withConfig: true, hasCanStart: true},
		{name: kinds + "/one", node: &oneNode[S]{name: "n"}},
		{name: kinds + "/one+canstart", node: &oneCanNode[S]{oneNode[S]{name: "n"}}, hasCanStart: true},
	}
}

type stringMap map[string]float64

func TestNodeAcceptedShapes(t *testing.T) {
	t.Parallel()

	cases := slices.Concat(
		shapes[testState, testConfig]("struct,struct"),
		shapes[*testState, *testConfig]("ptr,ptr"),
		shapes[map[string]any, map[string]any]("map,map"),
		shapes[any, any]("any,any"),
		shapes[interface{}, stringMap]("any,namedmap"),
		shapes[testState, map[string]any]("struct,map"),
		shapes[*testState, any]("ptr,any"),
		shapes[map[string]any, testConfig]("map,struct"),
		shapes[any, *testConfig]("any,ptr"),
		shapes[map[string]any, *testConfig]("map,ptr"),
		[]shapeCase{{name: "mixed shapes", node: mixedShapes{}, withConfig: true, hasCanStart: true}},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := register(t, tc.node)
			require.Equal(t, tc.hasCanStart, n.HasCanStart())
			ctx := t.Context()

			ok, err := n.CanStart(ctx, json.RawMessage(goodState), json.RawMessage(goodConfig))
			require.NoError(t, err)
			require.True(t, ok)

			ok, err = n.CanStart(ctx, json.RawMessage(otherState), json.RawMessage(goodConfig))
			require.NoError(t, err)
			require.Equal(t, !tc.hasCanStart, ok, "CanStart must see the decoded state")

			out, err := n.Execute(ctx, json.RawMessage(goodState), json.RawMessage(goodConfig))
			require.NoError(t, err)
			require.JSONEq(t, goodState, string(out.State))
			if tc.withConfig {
				require.Len(t, out.Next, 1)
				require.Equal(t, "next", out.Next[0].Node)
				require.JSONEq(t, goodConfig, string(out.Next[0].Config))
			} else {
				require.Empty(t, out.Next)
			}
		})
	}
}

// probeNode records the values its parameters decoded to.
type probeNode[S, C any] struct {
	state  S
	config C
	calls  int
}

func (n *probeNode[S, C]) GetName() string { return "probe" }

func (n *probeNode[S, C]) Execute(state S, config C) (*executor.NodeResult, error) {
	n.state, n.config = state, config
	n.calls++
	return nil, nil
}

func TestNodeDecodesNullToZeroValue(t *testing.T) {
	t.Parallel()

	for _, input := range []string{"", "null", " null\n"} {
		t.Run(fmt.Sprintf("input %q", input), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			raw := json.RawMessage(input)

			structs := &probeNode[testState, testConfig]{}
			_, err := register(t, structs).Execute(ctx, raw, raw)
			require.NoError(t, err)
			require.Equal(t, 1, structs.calls)
			require.Equal(t, testState{}, structs.state)
			require.Equal(t, testConfig{}, structs.config)

			ptrs := &probeNode[*testState, *testConfig]{}
			_, err = register(t, ptrs).Execute(ctx, raw, raw)
			require.NoError(t, err)
			require.Equal(t, &testState{}, ptrs.state)
			require.Equal(t, &testConfig{}, ptrs.config)

			maps := &probeNode[map[string]any, stringMap]{}
			_, err = register(t, maps).Execute(ctx, raw, raw)
			require.NoError(t, err)
			require.NotNil(t, maps.state)
			require.Empty(t, maps.state)
			require.NotNil(t, maps.config)
			require.Empty(t, maps.config)

			anys := &probeNode[any, interface{}]{state: "sentinel", config: "sentinel"}
			_, err = register(t, anys).Execute(ctx, raw, raw)
			require.NoError(t, err)
			require.Equal(t, 1, anys.calls)
			require.Nil(t, anys.state)
			require.Nil(t, anys.config)
		})
	}
}

func TestNodeDecodesObjectIntoInterface(t *testing.T) {
	t.Parallel()

	n := &probeNode[any, any]{}
	_, err := register(t, n).Execute(t.Context(), json.RawMessage(goodState), json.RawMessage(goodConfig))
	require.NoError(t, err)
	require.Equal(t, map[string]interface{}{"name": "alice", "count": float64(2)}, n.state)
	require.Equal(t, map[string]interface{}{"threshold": 1.5}, n.config)
}

func TestNodeDecodesFreshValuesEachCall(t *testing.T) {
	t.Parallel()

	p := &probeNode[*testState, map[string]any]{}
	n := register(t, p)
	ctx := t.Context()

	_, err := n.Execute(ctx, json.RawMessage(goodState), json.RawMessage(goodConfig))
	require.NoError(t, err)
	firstState, firstConfig := p.state, p.config
	firstState.Name = "mutated"
	firstConfig["extra"] = true

	_, err = n.Execute(ctx, json.RawMessage(goodState), json.RawMessage(goodConfig))
	require.NoError(t, err)
	require.NotSame(t, firstState, p.state)
	require.Equal(t, &testState{Name: "alice", Count: 2}, p.state)
	require.Equal(t, map[string]any{"threshold": 1.5}, p.config)
}

// Embeddable building blocks for refused nodes.

type named struct{ name string }

func (n named) GetName() string { return n.name }

type okExecute struct{}

func (okExecute) Execute(state testState) (*executor.NodeResult, error) { return nil, nil }

type noGetName struct{ okExecute }

type noExecute struct{ named }

type getNameInt struct{ okExecute }

func (getNameInt) GetName() int { return 1 }

type getNameArgs struct{ okExecute }

func (getNameArgs) GetName(prefix string) string { return prefix }

type getNamePanics struct{ okExecute }

func (getNamePanics) GetName() string { panic("no name") }

type ptrReceiver struct{}

func (*ptrReceiver) GetName() string { return "ptr-receiver" }

func (*ptrReceiver) Execute(state testState) (*executor.NodeResult, error) { return nil, nil }

type ptrCanStart struct{ named }

func (ptrCanStart) Execute(state testState) (*executor.NodeResult, error) { return nil, nil }

func (*ptrCanStart) CanStart(state testState) bool { return true }

type execNoParams struct{ named }

func (execNoParams) Execute() (*executor.NodeResult, error) { return nil, nil }

type execFourParams struct{ named }

func (execFourParams) Execute(ctx context.Context, s testState, c testConfig, extra int) (*executor.NodeResult, error) {
	return nil, nil
}

type execFirstNotContext struct{ named }

func (execFirstNotContext) Execute(id string, s testState, c testConfig) (*executor.NodeResult, error) {
	return nil, nil
}

type execCtxOnly struct{ named }

func (execCtxOnly) Execute(ctx context.Context) (*executor.NodeResult, error) { return nil, nil }

type execCtxState struct{ named }

func (execCtxState) Execute(ctx context.Context, s testState) (*executor.NodeResult, error) {
	return nil, nil
}

type stateString struct{ named }

func (stateString) Execute(s string) (*executor.NodeResult, error) { return nil, nil }

type stateInt struct{ named }

func (stateInt) Execute(s int, c testConfig) (*executor.NodeResult, error) { return nil, nil }

type stateSlice struct{ named }

func (stateSlice) Execute(ctx context.Context, s []string, c testConfig) (*executor.NodeResult, error) {
	return nil, nil
}

type stateChan struct{ named }

func (stateChan) Execute(s chan int) (*executor.NodeResult, error) { return nil, nil }

type stateFunc struct{ named }

func (stateFunc) Execute(s func()) (*executor.NodeResult, error) { return nil, nil }

type statePtrInt struct{ named }

func (statePtrInt) Execute(s *int) (*executor.NodeResult, error) { return nil, nil }

type stateIntKeys struct{ named }

func (stateIntKeys) Execute(s map[int]string) (*executor.NodeResult, error) { return nil, nil }

type stateNonEmptyInterface struct{ named }

func (stateNonEmptyInterface) Execute(s fmt.Stringer) (*executor.NodeResult, error) { return nil, nil }

type configInt struct{ named }

func (configInt) Execute(ctx context.Context, s testState, c int) (*executor.NodeResult, error) {
	return nil, nil
}

type configSlice struct{ named }

func (configSlice) Execute(s testState, c []byte) (*executor.NodeResult, error) { return nil, nil }

type execOneReturn struct{ named }

func (execOneReturn) Execute(s testState) error { return nil }

type execNoReturn struct{ named }

func (execNoReturn) Execute(s testState) {}

type execResultValue struct{ named }

func (execResultValue) Execute(s testState) (executor.NodeResult, error) {
	return executor.NodeResult{}, nil
}

type execSecondString struct{ named }

func (execSecondString) Execute(s testState) (*executor.NodeResult, string) { return nil, "" }

type execVariadic struct{ named }

func (execVariadic) Execute(s testState, c ...testConfig) (*executor.NodeResult, error) {
	return nil, nil
}

type canStartInt struct {
	named
	okExecute
}

func (canStartInt) CanStart(s testState) int { return 0 }

type canStartWithError struct {
	named
	okExecute
}

func (canStartWithError) CanStart(s testState) (bool, error) { return true, nil }

type canStartNoParams struct {
	named
	okExecute
}

func (canStartNoParams) CanStart() bool { return true }

type canStartBadState struct {
	named
	okExecute
}

func (canStartBadState) CanStart(s []int) bool { return true }

type canStartFirstNotContext struct {
	named
	okExecute
}

func (canStartFirstNotContext) CanStart(x int, s testState, c testConfig) bool { return true }

func TestRegisterRefusesInvalidNodes(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		node any
		want []string // substrings of the error text
	}{
		{"nil node", nil, []string{"graft: node <nil>: node is nil"}},
		{"typed nil pointer", (*ptrReceiver)(nil), []string{"*executor_test.ptrReceiver", "nil pointer"}},
		{"missing GetName", noGetName{}, []string{"of type executor_test.noGetName", "missing GetName method"}},
		{"GetName returns int", getNameInt{}, []string{"executor_test.getNameInt", "GetName must be func() string, got func() int"}},
		{"GetName takes args", getNameArgs{}, []string{"executor_test.getNameArgs", "GetName must be func() string, got func(string) string"}},
		{"GetName panics", getNamePanics{}, []string{"executor_test.getNamePanics", "GetName panicked: no name"}},
		{"empty name", noExecute{named{""}}, []string{"executor_test.noExecute", "GetName returned an empty name"}},
		{"missing Execute", noExecute{named{"no-exec"}}, []string{`"no-exec"`, "missing Execute method"}},
		{"pointer receiver registered as value", ptrReceiver{}, []string{"executor_test.ptrReceiver", "missing GetName method", "pointer receiver; register a *executor_test.ptrReceiver"}},
		{"pointer CanStart registered as value", ptrCanStart{named{"ptr-canstart"}}, []string{`"ptr-canstart"`, "CanStart is not in the method set", "pointer receiver"}},
		{"Execute without params", execNoParams{named{"exec-0"}}, []string{`"exec-0"`, "Execute: must take (ctx, state, config), (state, config) or (state), got 0 parameters"}},
		{"Execute with four params", execFourParams{named{"exec-4"}}, []string{`"exec-4"`, "Execute: must take", "got 4 parameters"}},
		{"Execute first param not context", execFirstNotContext{named{"exec-noctx"}}, []string{`"exec-noctx"`, "Execute: first parameter must be context.Context, got string"}},
		{"Execute context only", execCtxOnly{named{"exec-ctx"}}, []string{`"exec-ctx"`, "Execute: context.Context must be followed by state and config parameters"}},
		{"Execute context and state", execCtxState{named{"exec-ctx-state"}}, []string{`"exec-ctx-state"`, "Execute: context.Context must be followed by state and config parameters"}},
		{"state string", stateString{named{"st-string"}}, []string{`"st-string"`, "Execute: state parameter must be a struct, pointer to struct, map with string keys or interface{}, got string"}},
		{"state int", stateInt{named{"st-int"}}, []string{`"st-int"`, "Execute: state parameter must be", "got int"}},
		{"state slice", stateSlice{named{"st-slice"}}, []string{`"st-slice"`, "Execute: state parameter must be", "got []string"}},
		{"state chan", stateChan{named{"st-chan"}}, []string{`"st-chan"`, "Execute: state parameter must be", "got chan int"}},
		{"state func", stateFunc{named{"st-func"}}, []string{`"st-func"`, "Execute: state parameter must be", "got func()"}},
		{"state pointer to int", statePtrInt{named{"st-ptrint"}}, []string{`"st-ptrint"`, "Execute: state parameter must be", "got *int"}},
		{"state map with int keys", stateIntKeys{named{"st-intkeys"}}, []string{`"st-intkeys"`, "Execute: state parameter must be", "got map[int]string"}},
		{"state non-empty interface", stateNonEmptyInterface{named{"st-iface"}}, []string{`"st-iface"`, "Execute: state parameter must be", "got fmt.Stringer"}},
		{"config int", configInt{named{"cfg-int"}}, []string{`"cfg-int"`, "Execute: config parameter must be", "got int"}},
		{"config slice", configSlice{named{"cfg-slice"}}, []string{`"cfg-slice"`, "Execute: config parameter must be", "got []uint8"}},
		{"Execute returns only error", execOneReturn{named{"ret-1"}}, []string{`"ret-1"`, "Execute: must return (*NodeResult, error), got 1 return values"}},
		{"Execute returns nothing", execNoReturn{named{"ret-0"}}, []string{`"ret-0"`, "Execute: must return (*NodeResult, error), got 0 return values"}},
		{"Execute returns NodeResult value", execResultValue{named{"ret-value"}}, []string{`"ret-value"`, "Execute: first return value must be *NodeResult, got executor.NodeResult"}},
		{"Execute second return string", execSecondString{named{"ProcessData"}}, []string{`graft: node "ProcessData": Execute: second return value must be error, got string`}},
		{"Execute variadic", execVariadic{named{"variadic"}}, []string{`"variadic"`, "Execute: must not be variadic"}},
		{"CanStart returns int", canStartInt{named: named{"cs-int"}}, []string{`"cs-int"`, "CanStart: must return bool, got func(executor_test.testState) int"}},
		{"CanStart returns bool and error", canStartWithError{named: named{"cs-err"}}, []string{`"cs-err"`, "CanStart: must return bool, got func(executor_test.testState) (bool, error)"}},
		{"CanStart without params", canStartNoParams{named: named{"cs-0"}}, []string{`"cs-0"`, "CanStart: must take", "got 0 parameters"}},
		{"CanStart bad state", canStartBadState{named: named{"cs-state"}}, []string{`"cs-state"`, "CanStart: state parameter must be", "got []int"}},
		{"CanStart first param not context", canStartFirstNotContext{named: named{"cs-noctx"}}, []string{`"cs-noctx"`, "CanStart: first parameter must be context.Context, got int"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := executor.NewRegistry()
			err := r.Register(tc.node)
			require.ErrorIs(t, err, executor.ErrInvalidNode)
			require.NotErrorIs(t, err, executor.ErrDuplicateNode)
			require.True(t, strings.HasPrefix(err.Error(), "graft: node "), err.Error())
			for _, want := range tc.want {
				require.ErrorContains(t, err, want)
			}
			require.Empty(t, r.Names())
		})
	}
}

type nestedState struct {
	Inner struct {
		Value int `json:"value"`
	} `json:"inner"`
}

type decodeNode struct{}

func (decodeNode) GetName() string { return "decoder" }

func (decodeNode) Execute(ctx context.Context, s nestedState, c *testConfig) (*executor.NodeResult, error) {
	return nil, nil
}

func (decodeNode) CanStart(s *testState) bool { return true }

func TestNodeDecodeErrors(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name      string
		canStart  bool
		state     string
		config    string
		wantParam string
		wantField string
		wantText  string
	}{
		{name: "nested state field", state: `{"inner":{"value":"x"}}`, wantParam: "state", wantField: "inner.value",
			wantText: `graft: node "decoder": decoding state field "inner.value": json: cannot unmarshal`},
		{name: "config field", state: `{}`, config: `{"threshold":"high"}`, wantParam: "config", wantField: "threshold",
			wantText: `graft: node "decoder": decoding config field "threshold"`},
		{name: "state not an object", state: `[1,2]`, wantParam: "state",
			wantText: `graft: node "decoder": decoding state: json: cannot unmarshal array`},
		{name: "malformed state", state: `{"inner":`, wantParam: "state",
			wantText: `graft: node "decoder": decoding state: unexpected end of JSON input`},
		{name: "malformed config", state: `{}`, config: `{`, wantParam: "config",
			wantText: `graft: node "decoder": decoding config:`},
		{name: "CanStart state field", canStart: true, state: `{"count":"x"}`, wantParam: "state", wantField: "count",
			wantText: `graft: node "decoder": decoding state field "count"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := register(t, decodeNode{})
			var err error
			if tc.canStart {
				var ok bool
				ok, err = n.CanStart(t.Context(), json.RawMessage(tc.state), json.RawMessage(tc.config))
				require.False(t, ok)
			} else {
				var out *executor.Output
				out, err = n.Execute(t.Context(), json.RawMessage(tc.state), json.RawMessage(tc.config))
				require.Nil(t, out)
			}
			require.Error(t, err)
			require.True(t, executor.IsPermanent(err))
			de, ok := errors.AsType[*executor.DecodeError](err)
			require.True(t, ok)
			require.Equal(t, "decoder", de.Node)
			require.Equal(t, tc.wantParam, de.Param)
			require.Equal(t, tc.wantField, de.Field)
			require.NotNil(t, de.Err)
			require.ErrorContains(t, err, tc.wantText)
		})
	}
}

type panicNode struct {
	value any
}

func (*panicNode) GetName() string { return "panicky" }

func (n *panicNode) Execute(s map[string]any) (*executor.NodeResult, error) {
	if n.value == "index" {
		var xs []int
		_ = xs[len(s)+1]
	}
	panic(n.value)
}

func (n *panicNode) CanStart(s map[string]any) bool { panic(n.value) }

func TestNodePanicsAreRecovered(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name      string
		value     any
		canStart  bool
		wantText  string
		wantValue func(t *testing.T, v any)
	}{
		{name: "string", value: "boom", wantText: `graft: node "panicky": panic: boom`,
			wantValue: func(t *testing.T, v any) { require.Equal(t, "boom", v) }},
		{name: "error", value: errors.New("bad"), wantText: `graft: node "panicky": panic: bad`,
			wantValue: func(t *testing.T, v any) { require.EqualError(t, v.(error), "bad") }},
		{name: "runtime error", value: "index", wantText: "index out of range",
			wantValue: func(t *testing.T, v any) { require.Implements(t, (*error)(nil), v) }},
		{name: "nil", value: nil, wantText: `graft: node "panicky": panic:`,
			wantValue: func(t *testing.T, v any) { require.NotNil(t, v) }},
		{name: "CanStart", value: "no start", canStart: true, wantText: `graft: node "panicky": panic: no start`,
			wantValue: func(t *testing.T, v any) { require.Equal(t, "no start", v) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := register(t, &panicNode{value: tc.value})
			var err error
			method := "Execute"
			if tc.canStart {
				method = "CanStart"
				var ok bool
				ok, err = n.CanStart(t.Context(), nil, nil)
				require.False(t, ok)
			} else {
				var out *executor.Output
				out, err = n.Execute(t.Context(), nil, nil)
				require.Nil(t, out)
			}
			pe, ok := errors.AsType[*executor.PanicError](err)
			require.True(t, ok)
			require.Equal(t, "panicky", pe.Node)
			tc.wantValue(t, pe.Value)
			require.Contains(t, string(pe.Stack), "executor_test.(*panicNode)."+method)
			require.ErrorContains(t, err, tc.wantText)
			require.False(t, executor.IsPermanent(err), "panics are retryable")
		})
	}
}

type benchState struct {
	OrderID string   `json:"order_id"`
	Items   []string `json:"items"`
	Total   float64  `json:"total"`
	Paid    bool     `json:"paid"`
}

type benchConfig struct {
	Gateway string `json:"gateway"`
	Retries int    `json:"retries"`
}

type benchNode struct{}

func (benchNode) GetName() string { return "charge" }

func (benchNode) Execute(ctx context.Context, s *benchState, c *benchConfig) (*executor.NodeResult, error) {
	s.Paid = c.Gateway != ""
	return &executor.NodeResult{
		GlobalState: s,
		NextNodes:   []executor.NextNode{{NodeName: "ship", Config: map[string]string{"carrier": "ups"}, Priority: 1}},
	}, nil
}

func BenchmarkNodeExecute(b *testing.B) {
	r := executor.NewRegistry()
	require.NoError(b, r.Register(benchNode{}))
	n, _ := r.Get("charge")
	state := json.RawMessage(`{"order_id":"o-123","items":["a","b","c"],"total":42.5,"paid":false}`)
	config := json.RawMessage(`{"gateway":"stripe","retries":3}`)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		out, err := n.Execute(ctx, state, config)
		if err != nil || len(out.Next) != 1 {
			b.Fatal(err)
		}
	}
}
