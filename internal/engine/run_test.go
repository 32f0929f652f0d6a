package engine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// okNode is a node that changes nothing.
type okNode struct{}

func (okNode) GetName() string { return "Ok" }

func (okNode) Execute(map[string]any) (*executor.NodeResult, error) { return nil, nil }

// deepJSON returns an object nested depth levels deep.
func deepJSON(depth int) json.RawMessage {
	return json.RawMessage(strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1))
}

// A step whose state or next-node config nests deeper than wf.MaxDepth
// fails permanently with an error naming the limit; at the limit it commits.
func TestFinishOutputRefusesDeepJSON(t *testing.T) {
	t.Parallel()
	reg := executor.NewRegistry()
	require.NoError(t, reg.Register(okNode{}))
	e, err := New(testConfig(&recordingStore{}, reg, SystemClock{}))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })

	over := wf.MaxDepth + 1
	tests := []struct {
		name string
		out  executor.Output
		want string // "" means accepted
	}{
		{"state at the limit", executor.Output{State: deepJSON(wf.MaxDepth)}, ""},
		{"config at the limit", executor.Output{Next: []executor.Next{{Node: "Ok", Config: deepJSON(wf.MaxDepth)}}}, ""},
		{"state over the limit", executor.Output{State: deepJSON(over)},
			`node "Deep": its state is nested 101 levels deep, over the limit of 100 (graft.MaxStateDepth)`},
		{"config over the limit", executor.Output{Next: []executor.Next{{Node: "Ok"}, {Node: "Ok", Config: deepJSON(over)}}},
			`node "Deep": NextNodes[1] ("Ok"): its config is nested 101 levels deep, over the limit of 100 (graft.MaxStateDepth)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &wf.Command{}
			err := e.finishOutput(c, "Deep", json.RawMessage(`{}`), &tt.out)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			require.True(t, executor.IsPermanent(err))
			var de *wf.DepthError
			require.ErrorAs(t, err, &de)
			require.Equal(t, over, de.Depth)
		})
	}
}

// The delay before retry n is RetryDelay doubled per earlier failure,
// capped at MaxRetryDelay, of which the second half is random: so delays
// never shrink from one retry to the next.
func TestBackoffDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	cfg := testConfig(&recordingStore{}, executor.NewRegistry(), SystemClock{})
	cfg.skipStartup = true
	cfg.RetryDelay, cfg.MaxRetryDelay = time.Second, 5*time.Second
	e, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	full := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for n := 1; n <= 70; n++ { // doubling 70 times would overflow without the cap
		want := full[min(n, len(full))-1]
		for range 50 {
			d := e.backoff(n)
			require.GreaterOrEqual(t, d, want/2, "retry %d", n)
			require.LessOrEqual(t, d, want, "retry %d", n)
		}
	}
}

// A step that fails is retried after a backoff that grows per failure up to
// MaxRetryDelay, at most MaxRetries times; then the workflow fails. A
// permanent error is not retried.
func TestFailedStepIsRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantRuns  int
		wantDelay []time.Duration // the full (unjittered) delay before each retry
	}{
		{name: "retried", err: errors.New("flaky"), wantRuns: 4, wantDelay: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}},
		{name: "permanent", err: executor.Permanent(errors.New("broken")), wantRuns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t) // MaxRetries 3, RetryDelay 1s, MaxRetryDelay 3s
			var attempts []int
			b.register(t, &fnNode{name: "Flaky", exec: func(ctx context.Context) (*executor.NodeResult, error) {
				wc, _ := executor.GetWorkflowContext(ctx)
				attempts = append(attempts, wc.Attempt)
				return nil, tt.err
			}})
			b.lead(t)
			b.start(t, "w", wf.NewTask{Node: "Flaky"})

			for run := 1; ; run++ {
				require.Equal(t, 1, b.dispatch(), "run %d was not claimed", run)
				require.Equal(t, 1, b.work())
				fails := b.store.commands(wf.OpFail)
				require.Len(t, fails, run)
				last := fails[run-1]
				if run > len(tt.wantDelay) {
					require.False(t, last.Retry, "run %d: retried past MaxRetries", run)
					break
				}
				require.True(t, last.Retry, "run %d was not retried", run)
				delay := time.Duration(last.RetryAt - last.Now)
				full := tt.wantDelay[run-1]
				require.GreaterOrEqual(t, delay, full/2, "run %d", run)
				require.LessOrEqual(t, delay, full, "run %d", run)

				b.advance(delay - time.Nanosecond)
				require.Zero(t, b.dispatch(), "run %d: retried before its backoff", run)
				b.advance(time.Nanosecond)
			}
			require.Len(t, attempts, tt.wantRuns)
			for i, a := range attempts {
				require.Equal(t, i+1, a, "WorkflowContext.Attempt")
			}
			v := b.store.status(t, "w").View
			require.Equal(t, wf.StatusFailed, v.Status)
			require.Contains(t, v.LastError, tt.err.Error())
		})
	}
}
