package chaos_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/chaos"
)

// echoServer accepts on l and echoes every connection until l closes; the
// returned function closes l and waits for all of its goroutines.
func echoServer(t *testing.T, l net.Listener) (stop func()) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

func roundTrip(c net.Conn, msg string) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func TestRPCRoundTrip(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	var posted atomic.Int64
	n.SetHooks(chaos.Hooks{PostSend: func(from, to string, size int) { posted.Add(int64(size)) }})

	l := n.Listen("srv")
	stop := echoServer(t, l)
	defer stop()
	require.Equal(t, n.IP("srv").String(), l.Addr().(chaos.Addr).IP.String())

	dial := n.Dialer("cli")
	ctx := context.Background()
	// By name (any port) and by fake IP.
	for _, addr := range []string{"srv:9000", l.Addr().String()} {
		c, err := dial(ctx, addr)
		require.NoError(t, err, addr)
		got, err := roundTrip(c, "ping")
		require.NoError(t, err)
		require.Equal(t, "ping", got)
		require.Equal(t, "srv", c.RemoteAddr().(chaos.Addr).Name)
		require.NoError(t, c.Close())
	}
	eventually(t, 5*time.Second, func() error { // 2 x (4 bytes out + 4 echoed)
		if got := posted.Load(); got != 16 {
			return errorf("PostSend saw %d bytes, want 16", got)
		}
		return nil
	})

	_, err := dial(ctx, "nobody:1")
	require.ErrorContains(t, err, "connection refused")
}

func TestRPCPartition(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	stop := echoServer(t, n.Listen("srv"))
	defer stop()
	dial := n.Dialer("cli")
	ctx := context.Background()

	c, err := dial(ctx, "srv:1")
	require.NoError(t, err)
	defer c.Close()

	n.Partition([]string{"cli"}, []string{"srv"})
	_, err = dial(ctx, "srv:1")
	require.ErrorIs(t, err, chaos.ErrUnreachable)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "dial error is a timeout: %v", err)

	_, err = c.Write([]byte("x"))
	require.ErrorIs(t, err, chaos.ErrUnreachable)
	require.True(t, errors.As(err, &ne) && ne.Timeout())

	n.Heal()
	got, err := roundTrip(c, "again")
	require.NoError(t, err, "the connection survives the cut")
	require.Equal(t, "again", got)
	c2, err := dial(ctx, "srv:1")
	require.NoError(t, err)
	require.NoError(t, c2.Close())
}

// The server's replies are cut too: a one-way cut srv -> cli fails the echo.
func TestRPCOneWayCut(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	l := n.Listen("srv")
	dial := n.Dialer("cli")

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := dial(context.Background(), "srv:1")
	require.NoError(t, err)
	defer c.Close()
	s := <-accepted
	require.NotNil(t, s)
	defer s.Close()

	n.Drop("srv", "cli", 1)
	_, err = s.Write([]byte("reply"))
	require.ErrorIs(t, err, chaos.ErrUnreachable)
}

func TestRPCDelayAndContext(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	stop := echoServer(t, n.Listen("srv"))
	defer stop()
	dial := n.Dialer("cli")

	n.Delay("cli", "srv", 30*time.Millisecond)
	start := time.Now()
	c, err := dial(context.Background(), "srv:1")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	require.NoError(t, c.Close())

	n.Delay("cli", "srv", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = dial(ctx, "srv:1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRPCListenerLifecycle(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	l := n.Listen("srv")
	require.Panics(t, func() { n.Listen("srv") })
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	_, err := n.Dialer("cli")(context.Background(), "srv:1")
	require.ErrorContains(t, err, "connection refused")
	l2 := n.Listen("srv") // a restarted member listens again
	require.NoError(t, l2.Close())
}

// Closing the Network closes every connection, unblocking readers.
func TestRPCNetworkCloseClosesConns(t *testing.T) {
	t.Parallel()
	n := chaos.NewNetwork(1)
	stop := echoServer(t, n.Listen("srv"))
	defer stop()
	c, err := n.Dialer("cli")(context.Background(), "srv:1")
	require.NoError(t, err)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	require.NoError(t, n.Close())
	require.Error(t, <-readErr)
}
