package executor_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/executor"
)

// fixedNode returns a preset result and error.
type fixedNode struct {
	res *executor.NodeResult
	err error
}

func (*fixedNode) GetName() string { return "fixed" }

func (n *fixedNode) Execute(state map[string]any) (*executor.NodeResult, error) {
	return n.res, n.err
}

func ptr[T any](v T) *T { return &v }

func TestExecuteEncodesResult(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name      string
		res       *executor.NodeResult
		wantState string // "" means nil
		wantNext  []executor.Next
	}{
		{name: "nil result", res: nil},
		{name: "empty result", res: &executor.NodeResult{}},
		{name: "struct state", res: &executor.NodeResult{GlobalState: testState{Name: "a", Count: 1}}, wantState: `{"name":"a","count":1}`},
		{name: "pointer state", res: &executor.NodeResult{GlobalState: &testState{Name: "b"}}, wantState: `{"name":"b","count":0}`},
		{name: "map state", res: &executor.NodeResult{GlobalState: map[string]int{"z": 1, "a": 2}}, wantState: `{"a":2,"z":1}`},
		{name: "empty map state", res: &executor.NodeResult{GlobalState: map[string]any{}}, wantState: `{}`},
		{name: "nil pointer state is unchanged", res: &executor.NodeResult{GlobalState: (*testState)(nil)}},
		{name: "nil map state is unchanged", res: &executor.NodeResult{GlobalState: map[string]any(nil)}},
		{
			name: "next nodes",
			res: &executor.NodeResult{NextNodes: []executor.NextNode{
				{NodeName: "urgent", Config: testConfig{Threshold: 2}, Priority: 10},
				{NodeName: "later", Config: map[string]any{"k": "v"}, Priority: -1, Delay: ptr(5 * time.Minute)},
				{NodeName: "once", IdempotencyKey: ptr("email-42")},
				{NodeName: "empty-key", IdempotencyKey: ptr("")},
				{NodeName: "negative-delay", Delay: ptr(-time.Second), Config: (*testConfig)(nil)},
				{NodeName: "zero-delay", Delay: ptr(time.Duration(0)), Config: "plain"},
			}},
			wantNext: []executor.Next{
				{Node: "urgent", Config: json.RawMessage(`{"threshold":2}`), Priority: 10},
				{Node: "later", Config: json.RawMessage(`{"k":"v"}`), Priority: -1, Delay: 5 * time.Minute},
				{Node: "once", IdempotencyKey: "email-42", HasKey: true},
				{Node: "empty-key", HasKey: true},
				{Node: "negative-delay"},
				{Node: "zero-delay", Config: json.RawMessage(`"plain"`)},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := register(t, &fixedNode{res: tc.res})
			out, err := n.Execute(t.Context(), json.RawMessage(`{}`), nil)
			require.NoError(t, err)
			require.NotNil(t, out)
			if tc.wantState == "" {
				require.Nil(t, out.State)
			} else {
				require.JSONEq(t, tc.wantState, string(out.State))
			}
			require.Equal(t, tc.wantNext, out.Next)
		})
	}
}

type chanState struct {
	C chan int `json:"c"`
}

func TestExecuteRejectsInvalidResult(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		res  *executor.NodeResult
		want []string
	}{
		{name: "string state", res: &executor.NodeResult{GlobalState: "done"},
			want: []string{`graft: node "fixed": GlobalState must encode to a JSON object, got string (string)`}},
		{name: "slice state", res: &executor.NodeResult{GlobalState: []int{1, 2}},
			want: []string{`graft: node "fixed": GlobalState must encode to a JSON object, got array ([]int)`}},
		{name: "number state", res: &executor.NodeResult{GlobalState: 42},
			want: []string{`graft: node "fixed": GlobalState must encode to a JSON object, got number (int)`}},
		{name: "bool state", res: &executor.NodeResult{GlobalState: true},
			want: []string{`GlobalState must encode to a JSON object, got boolean (bool)`}},
		{name: "raw JSON array state", res: &executor.NodeResult{GlobalState: json.RawMessage(`[1]`)},
			want: []string{`GlobalState must encode to a JSON object, got array`}},
		{name: "channel state", res: &executor.NodeResult{GlobalState: make(chan int)},
			want: []string{`graft: node "fixed": encoding GlobalState: json: unsupported type: chan int`}},
		{name: "channel field in state", res: &executor.NodeResult{GlobalState: chanState{C: make(chan int)}},
			want: []string{`graft: node "fixed": encoding GlobalState:`, "chan int"}},
		{name: "NaN in state", res: &executor.NodeResult{GlobalState: map[string]float64{"x": math.NaN()}},
			want: []string{`graft: node "fixed": encoding GlobalState: json: unsupported value: NaN`}},
		{name: "empty next node name", res: &executor.NodeResult{NextNodes: []executor.NextNode{{NodeName: "a"}, {}}},
			want: []string{`graft: node "fixed": NextNodes[1]: empty NodeName`}},
		{name: "channel config", res: &executor.NodeResult{NextNodes: []executor.NextNode{{NodeName: "ship", Config: make(chan int)}}},
			want: []string{`graft: node "fixed": NextNodes[0] ("ship"): encoding Config: json: unsupported type: chan int`}},
		{name: "func config", res: &executor.NodeResult{NextNodes: []executor.NextNode{{NodeName: "a"}, {NodeName: "notify", Config: func() {}}}},
			want: []string{`graft: node "fixed": NextNodes[1] ("notify"): encoding Config: json: unsupported type: func()`}},
		{name: "NaN config", res: &executor.NodeResult{NextNodes: []executor.NextNode{{NodeName: "score", Config: math.NaN()}}},
			want: []string{`graft: node "fixed": NextNodes[0] ("score"): encoding Config: json: unsupported value: NaN`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := register(t, &fixedNode{res: tc.res})
			out, err := n.Execute(t.Context(), nil, nil)
			require.Nil(t, out)
			require.ErrorIs(t, err, executor.ErrInvalidResult)
			require.True(t, executor.IsPermanent(err), "invalid results are not retryable")
			for _, want := range tc.want {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

type codedError struct{ code int }

func (e *codedError) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestExecuteReturnsNodeErrorUnchanged(t *testing.T) {
	t.Parallel()

	plain := errors.New("upstream unavailable")
	coded := &codedError{code: 7}
	cases := []struct {
		name          string
		err           error
		res           *executor.NodeResult
		wantPermanent bool
	}{
		{name: "plain", err: plain},
		{name: "with result", err: plain, res: &executor.NodeResult{GlobalState: map[string]any{"a": 1}}},
		{name: "permanent", err: executor.Permanent(coded), wantPermanent: true},
		{name: "wrapped permanent", err: fmt.Errorf("charging: %w", executor.Permanent(coded)), wantPermanent: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := register(t, &fixedNode{res: tc.res, err: tc.err})
			out, err := n.Execute(t.Context(), nil, nil)
			require.Nil(t, out)
			require.Equal(t, tc.err, err)
			require.Equal(t, tc.wantPermanent, executor.IsPermanent(err))
		})
	}
}
