package graft

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// A member refuses a received command whose params nest deeper than
// MaxStateDepth, before decoding it or running the handler.
func TestReceivedCommandDepthLimit(t *testing.T) {
	t.Parallel()
	m := New("n1", "127.0.0.1:7946", t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ran := 0
	require.NoError(t, m.RegisterCommandHandler("c", func(context.Context, string, any) error {
		ran++
		return nil
	}))
	payload := func(depth int) []byte {
		return []byte(`{"command":"c","params":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`)
	}
	require.NoError(t, m.runCommand(context.Background(), "n2", payload(MaxStateDepth)))
	require.Equal(t, 1, ran)

	depth := MaxStateDepth + 1
	err := m.runCommand(context.Background(), "n2", payload(depth))
	require.ErrorIs(t, err, ErrInvalidCommand)
	var de *wf.DepthError
	require.ErrorAs(t, err, &de)
	require.Equal(t, wf.DepthError{Depth: depth, Limit: MaxStateDepth}, *de)
	require.ErrorContains(t, err, `received from "n2": graft: invalid command: params are nested`)
	// Deeper still is also over MaxCommandBytes: refused by size first.
	require.ErrorIs(t, m.runCommand(context.Background(), "n2", payload(20000)), ErrInvalidCommand)
	require.Equal(t, 1, ran, "the handler ran for a refused command")
}
