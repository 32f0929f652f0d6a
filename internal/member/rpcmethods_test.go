package member

import (
	"maps"
	"slices"
	"testing"

	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/stretchr/testify/require"
)

// Every method has a decoder, a handler and fuzz seeds; the methods that
// need a hosted shard decode to a wire.ShardCall; admission is the only method
// strangers may call, and the operator methods are those of
// internal/operator (their own guard decides who calls them).
func TestRPCMethodTable(t *testing.T) {
	t.Parallel()
	seeded := map[string]bool{}
	for name, s := range rpcSeeds(t) {
		method := string(s[0])
		seeded[method] = true
		spec, ok := rpcMethods[method]
		require.True(t, ok, "seed %s: unknown method %q", name, method)
		req, err := spec.decode(s[1])
		require.NoError(t, err, name)
		if spec.needs == needShard {
			require.IsType(t, wire.ShardCall{}, req, name)
		}
	}
	for _, method := range slices.Sorted(maps.Keys(rpcMethods)) {
		spec := rpcMethods[method]
		require.NotNil(t, spec.decode, method)
		require.NotNil(t, spec.serve, method)
		require.True(t, seeded[method], "no fuzz seed for method %q (rpcSeeds)", method)
		require.Equal(t, operator.IsMethod(method), spec.operator, method)
		require.Equal(t, method != wire.MethodAdmit && !spec.operator, spec.guarded, method)
	}
}

// A member that has not started its cluster refuses every guarded or
// unknown method before decoding it, and admission after decoding it, as
// unavailable (the caller tries again or elsewhere).
func TestHandleRPCBeforeTheClusterStarted(t *testing.T) {
	t.Parallel()
	m := &Member{state: stateRunning}
	m.cfg.NodeID = "n1"
	seeds := rpcSeeds(t)
	for _, method := range append(slices.Sorted(maps.Keys(rpcMethods)), "nope") {
		payload := []byte("not even JSON")
		if method == wire.MethodAdmit {
			payload = seeds["admit"][1]
		}
		_, err := m.handleRPC(t.Context(), method, payload)
		var ce *rpc.CodedError
		require.ErrorAs(t, err, &ce, method)
		require.Equal(t, rpc.CodeUnavailable, ce.Code, method)
		switch {
		case method == wire.MethodAdmit:
			require.ErrorContains(t, err, "cannot answer admission yet")
		case operator.IsMethod(method):
			require.ErrorContains(t, err, "has not started yet", method)
		default:
			require.ErrorContains(t, err, "has not started its cluster yet", method)
		}
	}
	_, err := m.handleRPC(t.Context(), wire.MethodAdmit, []byte("{}"))
	require.ErrorContains(t, err, "no node ID", "admission decodes its request first")
}
