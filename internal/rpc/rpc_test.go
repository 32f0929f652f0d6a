package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type bundle struct {
	addr   string
	client *Client
}

func setup(t *testing.T, h Handler) *bundle {
	t.Helper()
	return setupWith(t, h, Config{})
}

// setupWith serves h with cfg on loopback, with a client of the same cfg.
func setupWith(t *testing.T, h Handler, cfg Config) *bundle {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, err := NewServer(h, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s.Serve(l)
	c, err := NewClient(nil, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		s.Stop(time.Second)
	})
	return &bundle{addr: l.Addr().String(), client: c}
}

func echo(_ context.Context, method string, payload []byte) ([]byte, error) {
	switch method {
	case "echo":
		return append([]byte("echo:"), payload...), nil
	case "missing":
		return nil, &CodedError{Code: CodeNotFound, Err: fmt.Errorf("workflow %q not found", payload)}
	case "plain":
		return nil, errors.New("plain failure")
	case "empty":
		return nil, nil
	}
	return nil, &CodedError{Code: CodeInvalid, Err: fmt.Errorf("unknown method %q", method)}
}

func TestCallRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, HandlerFunc(echo))
	ctx := context.Background()
	out, err := b.client.Call(ctx, b.addr, "echo", []byte("hi"))
	require.NoError(t, err)
	require.Equal(t, "echo:hi", string(out))

	out, err = b.client.Call(ctx, b.addr, "empty", nil)
	require.NoError(t, err)
	require.Empty(t, out)

	big := []byte(strings.Repeat("x", 3<<20)) // many chunks each way
	out, err = b.client.Call(ctx, b.addr, "echo", big)
	require.NoError(t, err)
	require.Len(t, out, len(big)+5)
}

func TestHandlerErrorsKeepTheirCode(t *testing.T) {
	t.Parallel()
	b := setup(t, HandlerFunc(echo))
	ctx := context.Background()
	_, err := b.client.Call(ctx, b.addr, "missing", []byte("wf-1"))
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, CodeNotFound, re.Code)
	require.Equal(t, `workflow "wf-1" not found`, re.Message)

	_, err = b.client.Call(ctx, b.addr, "plain", nil)
	require.ErrorAs(t, err, &re)
	require.Equal(t, CodeUnknown, re.Code)
	require.Equal(t, "plain failure", re.Message)
	require.NotErrorIs(t, err, ErrUnreachable)
}

func TestUnreachableMember(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c, err := NewClient(nil, Config{})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Call(ctx, addr, "echo", nil)
	require.ErrorIs(t, err, ErrUnreachable)
	require.NoError(t, c.Close())
	_, err = c.Call(context.Background(), addr, "echo", nil)
	require.ErrorIs(t, err, ErrUnreachable, "a closed client refuses calls")
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	b := setup(t, HandlerFunc(echo))
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			out, err := b.client.Call(context.Background(), b.addr, "echo", []byte(fmt.Sprint(i)))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("echo:%d", i), string(out))
		})
	}
	wg.Wait()
}

func TestStopWaitsForCallsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, err := NewServer(HandlerFunc(func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		close(entered)
		<-release
		return []byte("late"), nil
	}), Config{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s.Serve(l)
	c, err := NewClient(nil, Config{})
	require.NoError(t, err)
	defer c.Close()
	res := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), l.Addr().String(), "slow", nil)
		res <- err
	}()
	<-entered
	stopped := make(chan struct{})
	go func() {
		s.Stop(5 * time.Second)
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a call was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-res)
	<-stopped
	s.Stop(time.Second)
}

func TestFraming(t *testing.T) {
	t.Parallel()
	m, p, err := splitRequest(joinRequest("status", []byte{1, 2, 3}))
	require.NoError(t, err)
	require.Equal(t, "status", m)
	require.Equal(t, []byte{1, 2, 3}, p)
	_, _, err = splitRequest([]byte{0x05, 'a'})
	require.Error(t, err)
	_, _, err = splitRequest(nil)
	require.Error(t, err)
}
