package rpc

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/eleven-am/graft/chaos"
	"github.com/stretchr/testify/require"
)

// The member RPC runs over the chaos network: a partition makes calls fail
// as unreachable and healing restores them.
func TestCallsOverChaosNetwork(t *testing.T) {
	t.Parallel()
	net := chaos.NewNetwork(1)
	defer net.Close()
	s, err := NewServer(HandlerFunc(echo), Config{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s.Serve(net.Listen("n2"))
	defer s.Stop(time.Second)
	c, err := NewClient(net.Dialer("n1"), Config{})
	require.NoError(t, err)
	defer c.Close()

	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		out, err := c.Call(ctx, "n2:7947", "echo", []byte("x"))
		if err == nil {
			require.Equal(t, "echo:x", string(out))
		}
		return err
	}
	require.NoError(t, call())
	net.Partition([]string{"n1"}, []string{"n2"})
	require.ErrorIs(t, call(), ErrUnreachable)
	net.Heal()
	deadline := time.Now().Add(10 * time.Second)
	for err := call(); err != nil; err = call() {
		require.True(t, time.Now().Before(deadline), "calls still fail after heal: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
}
