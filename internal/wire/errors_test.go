package wire

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/shards"
	"github.com/stretchr/testify/require"
)

// serveErrors serves the member RPC on loopback with a handler that fails
// method m with failures[m] as handleRPC returns errors (ToRemote), and returns
// a function calling it.
func serveErrors(t *testing.T, failures map[string]error) func(method string) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, err := rpc.NewServer(rpc.HandlerFunc(func(_ context.Context, method string, _ []byte) ([]byte, error) {
		return nil, ToRemote(failures[method])
	}), rpc.Config{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s.Serve(l)
	c, err := rpc.NewClient(nil, rpc.Config{})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		s.Stop(time.Second)
	})
	return func(method string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Call(ctx, l.Addr().String(), method, nil)
		require.Error(t, err)
		return err
	}
}

// The errors a member's handlers return reach the caller as errors of the
// same kind: errors.Is finds the same sentinels, IsRetryable agrees, and
// the text is the remote text.
func TestErrorsKeepTheirKindAcrossTheMemberRPC(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		err       error
		is        []error
		retryable bool
		text      string
	}{
		{"workflow not found", fmt.Errorf("%w: %q", errs.ErrWorkflowNotFound, "wf-1"), []error{errs.ErrWorkflowNotFound}, false, ""},
		{"wrapped not found", fmt.Errorf("reading workflow %q: %w", "wf-1", fmt.Errorf("%w: %q", errs.ErrWorkflowNotFound, "wf-1")), []error{errs.ErrWorkflowNotFound}, false, ""},
		{"workflow exists", fmt.Errorf("%w: %q", errs.ErrWorkflowExists, "wf-1"), []error{errs.ErrWorkflowExists}, false, ""},
		{"invalid transition", fmt.Errorf("%w: cannot pause", errs.ErrInvalidTransition), []error{errs.ErrInvalidTransition}, false, ""},
		{"storage full", &rpc.CodedError{Code: rpc.CodeStorageFull, Err: fmt.Errorf("%w: 1 byte free", errs.ErrStorageFull)}, []error{errs.ErrStorageFull}, false, ""},
		{"shard not found", ShardError(fmt.Errorf("%w: 3 (replica dropped from this member)", shards.ErrShardNotFound)),
			[]error{errs.ErrNotReady, shards.ErrShardNotFound}, true, ""},
		{"shard timeout", ShardError(fmt.Errorf("%w: deadline", shards.ErrTimeout)), []error{errs.ErrTimeout}, true, ""},
		{"member closed", errs.Translate(shards.ErrClosed), []error{errs.ErrNotReady}, true, ""},
		{"not ready", fmt.Errorf("%w: storage is not open", errs.ErrNotReady), []error{errs.ErrNotReady}, true, ""},
		{"node not found", fmt.Errorf("unregistering: %w", executor.ErrNodeNotFound), []error{executor.ErrNodeNotFound}, false, ""},
		// Errors of no kind keep the mapping by code they always had.
		{"refusal", &rpc.CodedError{Code: rpc.CodeUnavailable, Err: errors.New("member n2 does not serve shard 2")}, []error{errs.ErrNotReady}, true,
			"graft: not ready: member n2 does not serve shard 2"},
		{"plain", errors.New("boom"), nil, false, ""},
	}
	byName := map[string]error{}
	for _, tc := range cases {
		byName[tc.name] = tc.err
	}
	call := serveErrors(t, byName)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := FromRemote(call(tc.name))
			for _, target := range tc.is {
				require.ErrorIs(t, err, target)
			}
			for _, other := range []error{errs.ErrWorkflowNotFound, errs.ErrWorkflowExists, errs.ErrStorageFull, errs.ErrTimeout, errs.ErrNotReady, errs.ErrInvalidTransition, executor.ErrNodeNotFound} {
				if !slices.Contains(tc.is, other) {
					require.NotErrorIs(t, err, other)
				}
			}
			require.Equal(t, tc.retryable, errs.IsRetryable(err))
			require.Equal(t, cmp.Or(tc.text, tc.err.Error()), err.Error())
		})
	}
}

// A step's error, run for another member, comes back with its kind:
// Permanent or not, a decode error or a panic with their fields, and the
// same text.
func TestStepErrorsKeepTheirKindAcrossTheMemberRPC(t *testing.T) {
	t.Parallel()
	decode := executor.Permanent(&executor.DecodeError{Node: "Charge", Param: "config", Field: "amount", Err: errors.New("json: cannot unmarshal string into Go value of type int")})
	panicked := &executor.PanicError{Node: "Charge", Value: fmt.Errorf("index out of range [3]"), Stack: []byte("goroutine 7 [running]:\n")}
	cases := map[string]error{
		"retryable":  errors.New("card network down"),
		"permanent":  executor.Permanent(errors.New("card declined")),
		"empty text": executor.Permanent(errors.New("")),
		"decode":     decode,
		"panic":      panicked,
		"wrapped":    fmt.Errorf("charging: %w", panicked),
		"not here":   fmt.Errorf("node %q is not registered on member %q", "Charge", "n2"),
	}
	failures := map[string]error{}
	for name, err := range cases {
		failures[name] = StepFailure(err)
	}
	call := serveErrors(t, failures)
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, ok := RemoteStepError(call(name))
			require.True(t, ok)
			require.Equal(t, want.Error(), got.Error())
			require.Equal(t, executor.IsPermanent(want), executor.IsPermanent(got))
			var wd, gd *executor.DecodeError
			require.Equal(t, errors.As(want, &wd), errors.As(got, &gd))
			if wd != nil {
				require.Equal(t, wd.Error(), gd.Error())
				require.Equal(t, [3]string{wd.Node, wd.Param, wd.Field}, [3]string{gd.Node, gd.Param, gd.Field})
			}
			var wp, gp *executor.PanicError
			require.Equal(t, errors.As(want, &wp), errors.As(got, &gp))
			if wp != nil {
				require.Equal(t, wp.Error(), gp.Error())
				require.Equal(t, wp.Node, gp.Node)
				require.Equal(t, string(wp.Stack), string(gp.Stack))
			}
		})
	}
	// Details are cut to fit the member RPC's bounds, never at the expense
	// of the step's kind or permanence.
	huge := map[string]error{
		"huge decode": executor.Permanent(&executor.DecodeError{Node: "Charge", Param: "state", Field: "n", Err: errors.New(strings.Repeat("c", 20<<10))}),
		"huge panic":  &executor.PanicError{Node: "Charge", Value: strings.Repeat("v", 20<<10), Stack: []byte(strings.Repeat("s", 20<<10))},
	}
	hugeFailures := map[string]error{}
	for name, err := range huge {
		hugeFailures[name] = StepFailure(err)
	}
	callHuge := serveErrors(t, hugeFailures)
	got, ok := RemoteStepError(callHuge("huge decode"))
	require.True(t, ok)
	require.True(t, executor.IsPermanent(got))
	var de *executor.DecodeError
	require.ErrorAs(t, got, &de)
	require.Equal(t, [3]string{"Charge", "state", "n"}, [3]string{de.Node, de.Param, de.Field})
	got, ok = RemoteStepError(callHuge("huge panic"))
	require.True(t, ok)
	require.False(t, executor.IsPermanent(got))
	var pe *executor.PanicError
	require.ErrorAs(t, got, &pe)
	require.Equal(t, "Charge", pe.Node)
	require.Equal(t, strings.Repeat("v", MaxStepDetail), pe.Value)
	require.Len(t, pe.Stack, MaxStepStack)

	// Anything else is no step's error: remote.Run reports it as the call's.
	_, ok = RemoteStepError(FromRemote(&rpc.RemoteError{Code: rpc.CodeUnavailable, Message: "busy"}))
	require.False(t, ok)
	_, ok = RemoteStepError(&rpc.RemoteError{Code: rpc.CodeNotFound, Kind: "workflow-not-found", Message: "x"})
	require.False(t, ok)
}
