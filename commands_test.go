package graft_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

type scaleParams struct {
	Service  string `json:"service"`
	Replicas int    `json:"replicas"`
}

func TestCommands(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	ctx := context.Background()

	type call struct {
		from   string
		params any
	}
	raw := make(chan call, 8)
	require.NoError(t, b.m.RegisterCommandHandler("raw", func(_ context.Context, from string, params interface{}) error {
		raw <- call{from, params}
		return nil
	}))
	typed := make(chan scaleParams, 8)
	var typedFrom string
	require.NoError(t, b.m.RegisterCommandHandler("scale", graft.WrapHandler(func(_ context.Context, from string, p scaleParams) error {
		typedFrom = from
		typed <- p
		return nil
	})))
	handlerErr := errors.New("no capacity")
	require.NoError(t, b.m.RegisterCommandHandler("fails", func(context.Context, string, interface{}) error { return handlerErr }))
	require.NoError(t, b.m.RegisterCommandHandler("panics", func(context.Context, string, interface{}) error { panic("handler panic") }))
	var ran int
	require.NoError(t, b.m.RegisterCommandHandler("counted", func(context.Context, string, interface{}) error {
		ran++
		return nil
	}))

	t.Run("local handler runs with from = NodeID", func(t *testing.T) {
		require.NoError(t, b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "raw", Params: map[string]any{"level": "debug", "n": 3}}))
		c := recv(t, raw, "raw handler")
		require.Equal(t, "n1", c.from)
		require.Equal(t, map[string]any{"level": "debug", "n": float64(3)}, c.params)
	})
	t.Run("WrapHandler decodes params", func(t *testing.T) {
		require.NoError(t, b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "scale", Params: scaleParams{Service: "api", Replicas: 3}}))
		require.Equal(t, scaleParams{Service: "api", Replicas: 3}, recv(t, typed, "typed handler"))
		require.Equal(t, "n1", typedFrom)
	})
	t.Run("WrapHandler refuses params of the wrong shape", func(t *testing.T) {
		err := b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "scale", Params: map[string]any{"replicas": "three"}})
		require.ErrorIs(t, err, graft.ErrInvalidCommand)
		require.ErrorContains(t, err, "scale")
		require.Empty(t, typed)
	})
	t.Run("unknown command", func(t *testing.T) {
		err := b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "nope"})
		require.ErrorIs(t, err, graft.ErrUnknownCommand)
		require.ErrorContains(t, err, "nope")
	})
	t.Run("payload over MaxCommandBytes is refused before running", func(t *testing.T) {
		err := b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "counted", Params: strings.Repeat("x", graft.MaxCommandBytes)})
		require.ErrorIs(t, err, graft.ErrInvalidCommand)
		require.ErrorContains(t, err, fmt.Sprint(graft.MaxCommandBytes))
		require.Zero(t, ran, "the handler ran for a refused command")
		require.NoError(t, b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "counted", Params: "small"}))
		require.Equal(t, 1, ran)
	})
	t.Run("params not encodable", func(t *testing.T) {
		err := b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "counted", Params: make(chan int)})
		require.ErrorIs(t, err, graft.ErrInvalidCommand)
		require.ErrorContains(t, err, "JSON-encodable")
		require.Equal(t, 1, ran)
	})
	t.Run("params nested deeper than MaxStateDepth are refused before running", func(t *testing.T) {
		before := ran
		err := b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "counted", Params: deepList(graft.MaxStateDepth + 1)})
		require.ErrorIs(t, err, graft.ErrInvalidCommand)
		require.ErrorContains(t, err, fmt.Sprintf("params are nested %d levels deep, over the limit of %d (graft.MaxStateDepth)",
			graft.MaxStateDepth+1, graft.MaxStateDepth))
		require.Equal(t, before, ran, "the handler ran for a refused command")
		require.NoError(t, b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "counted", Params: deepList(graft.MaxStateDepth)}))
		require.Equal(t, before+1, ran)
	})
	t.Run("empty or nil command", func(t *testing.T) {
		require.ErrorIs(t, b.m.BroadcastCommand(ctx, &graft.DevCommand{}), graft.ErrInvalidCommand)
		require.ErrorIs(t, b.m.BroadcastCommand(ctx, nil), graft.ErrInvalidCommand)
	})
	t.Run("handler error is returned", func(t *testing.T) {
		err := b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "fails"})
		require.ErrorIs(t, err, handlerErr)
		require.ErrorContains(t, err, "fails")
	})
	t.Run("handler panic is an error", func(t *testing.T) {
		err := b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "panics"})
		require.ErrorContains(t, err, "handler panic")
	})
	t.Run("registration is validated and replaces", func(t *testing.T) {
		require.ErrorIs(t, b.m.RegisterCommandHandler("", func(context.Context, string, interface{}) error { return nil }), graft.ErrInvalidCommand)
		require.ErrorIs(t, b.m.RegisterCommandHandler("x", nil), graft.ErrInvalidCommand)
		require.NoError(t, b.m.RegisterCommandHandler("fails", func(context.Context, string, interface{}) error { return nil }))
		require.NoError(t, b.m.BroadcastCommand(ctx, &graft.DevCommand{Command: "fails"}))
	})
}

// On a lone member QueryCommand runs the local handler and reports it.
func TestQueryCommandOnALoneMember(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	require.NoError(t, b.m.RegisterCommandHandler("fail", func(context.Context, string, any) error {
		return fmt.Errorf("refused")
	}))
	out, err := b.m.QueryCommand(context.Background(), &graft.DevCommand{Command: "fail"})
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.ErrorContains(t, out["n1"], "refused")
	_, err = b.m.QueryCommand(context.Background(), &graft.DevCommand{Command: "x", Params: strings.Repeat("y", graft.MaxCommandBytes)})
	require.ErrorIs(t, err, graft.ErrInvalidCommand)
	_, err = b.m.QueryCommand(context.Background(), &graft.DevCommand{Command: "fail", Params: deepList(graft.MaxStateDepth + 1)})
	require.ErrorIs(t, err, graft.ErrInvalidCommand)
	require.ErrorContains(t, err, "MaxStateDepth")
}
