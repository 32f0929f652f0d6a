package member

import (
	"context"
	"strings"
	"testing"

	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// A member refuses a received command whose params nest deeper than
// wf.MaxDepth, before decoding it or running the handler.
func TestReceivedCommandDepthLimit(t *testing.T) {
	t.Parallel()
	m := New(testConfig(t), nil)
	ran := 0
	m.RegisterCommand("c", func(context.Context, string, any) error {
		ran++
		return nil
	})
	payload := func(depth int) []byte {
		return []byte(`{"command":"c","params":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`)
	}
	require.NoError(t, m.runCommand(context.Background(), "n2", payload(wf.MaxDepth)))
	require.Equal(t, 1, ran)

	depth := wf.MaxDepth + 1
	err := m.runCommand(context.Background(), "n2", payload(depth))
	require.ErrorIs(t, err, errs.ErrInvalidCommand)
	var de *wf.DepthError
	require.ErrorAs(t, err, &de)
	require.Equal(t, wf.DepthError{Depth: depth, Limit: wf.MaxDepth}, *de)
	require.ErrorContains(t, err, `received from "n2": graft: invalid command: params are nested`)
	// Deeper still is also over MaxCommandBytes: refused by size first.
	require.ErrorIs(t, m.runCommand(context.Background(), "n2", payload(20000)), errs.ErrInvalidCommand)
	require.Equal(t, 1, ran, "the handler ran for a refused command")
}
