package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// rawConn is a plain gRPC connection to addr that enforces none of this
// package's limits, to play a misbehaving peer.
func rawConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// rawCall sends a call announcing announced bytes and then sends body (at
// most announced bytes of it) until the server stops it; it returns the
// call's outcome as Client.Call would.
func rawCall(ctx context.Context, cc *grpc.ClientConn, announced uint64, body []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream however the call went, as Client.Call does
	cs, err := cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "Call", ServerStreams: true, ClientStreams: true}, callMethod, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return nil, err
	}
	n := min(len(body), chunkBytes)
	first := binary.AppendUvarint(nil, announced)
	first = append(first, body[:n]...)
	err = cs.SendMsg(&first)
	for body = body[n:]; err == nil && len(body) > 0; body = body[n:] {
		n = min(len(body), chunkBytes)
		chunk := body[:n:n]
		err = cs.SendMsg(&chunk)
	}
	if err == nil {
		_ = cs.CloseSend()
	}
	c := &Client{cfg: Config{}.withDefaults()}
	out, err := c.receive(cs)
	if err != nil {
		return nil, c.failure(ctx, "raw", "raw", err)
	}
	return out, nil
}

// allocatedDuring returns the bytes allocated (by every goroutine) while
// fn ran.
func allocatedDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// settledHeap returns the live heap after a collection.
func settledHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// connectionSlack is how far over its baseline the goroutine count may
// settle: a connection that is closed and redialled during a run (a
// keepalive timeout on a loaded machine, say) brings its reader, writer and
// keepalive goroutines back on both sides. A leak per call would put the
// count over it by dozens.
const connectionSlack = 8

// requireGoroutinesBack waits, up to a deadline, for the goroutine count to
// fall back to within connectionSlack of baseline; on failure it prints the
// goroutines grouped by stack.
func requireGoroutinesBack(t *testing.T, baseline int) {
	t.Helper()
	if !assertEventually(func() bool { return runtime.NumGoroutine() <= baseline+connectionSlack }, 20*time.Second) {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("goroutines did not fall back to %d (+%d): %d\n%s", baseline, connectionSlack, runtime.NumGoroutine(), b.String())
	}
}

// assertEventually polls cond until it holds or d passes.
func assertEventually(cond func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// The finding: 48 concurrent 15 MiB calls took a member's RSS to 2.2 GB.
// Now each is refused from its first message, as a call announcing 15 MiB
// or as one 15 MiB gRPC message, without the server allocating it.
func TestLargeCallsAreRefusedWithoutAllocating(t *testing.T) {
	var handled atomic.Int64
	b := setup(t, HandlerFunc(func(context.Context, string, []byte) ([]byte, error) {
		handled.Add(1)
		return nil, nil
	}))
	cc := rawConn(t, b.addr)
	big := bytes.Repeat([]byte{'x'}, 15<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := b.client.Call(ctx, b.addr, "warm-up", nil)
	require.NoError(t, err)
	req := joinRequest("warm-up", nil)
	_, err = rawCall(ctx, cc, uint64(len(req)), req)
	require.NoError(t, err)
	handled.Store(0)
	baseline := runtime.NumGoroutine()
	const calls = 48

	for _, tc := range []struct {
		name string
		call func() error
		want func(t *testing.T, err error)
	}{
		{"announced", func() error {
			_, err := rawCall(ctx, cc, uint64(len(big)), big)
			return err
		}, func(t *testing.T, err error) {
			var re *RemoteError
			require.ErrorAs(t, err, &re)
			require.Equal(t, CodeTooLarge, re.Code, "%v", err)
			require.ErrorIs(t, err, ErrTooLarge)
		}},
		{"one grpc message", func() error {
			var out []byte
			return cc.Invoke(ctx, callMethod, &big, &out, grpc.ForceCodec(rawCodec{}))
		}, func(t *testing.T, err error) {
			require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		}},
		{"client", func() error {
			_, err := b.client.Call(ctx, b.addr, "echo", big)
			return err
		}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, ErrTooLarge)
			require.NotErrorIs(t, err, ErrUnreachable)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heap := settledHeap()
			errs := make([]error, calls)
			alloc := allocatedDuring(func() {
				var wg sync.WaitGroup
				for i := range calls {
					wg.Go(func() { errs[i] = tc.call() })
				}
				wg.Wait()
			})
			for _, err := range errs {
				tc.want(t, err)
			}
			after := settledHeap()
			t.Logf("%d calls of %d MiB: %.1f MiB allocated by client and server together; live heap %.1f -> %.1f MiB",
				calls, len(big)>>20, float64(alloc)/(1<<20), float64(heap)/(1<<20), float64(after)/(1<<20))
			// Allocating the calls would take 720 MiB.
			require.Less(t, alloc, uint64(64<<20))
			requireGoroutinesBack(t, baseline)
		})
	}
	require.Zero(t, handled.Load(), "no refused call reaches the handler")
}

// A burst of thousands of small calls over many connections: calls over
// MaxConcurrentCalls are refused as retryable, the rest served; afterwards
// the live heap and the goroutines are back near where they started.
func TestBurstOfSmallCallsStaysBounded(t *testing.T) {
	cfg := Config{MaxConcurrentCalls: 64, MaxCallsPerPeer: 32}
	b := setupWith(t, HandlerFunc(echo), cfg)
	const conns, perConn, callers = 8, 500, 32
	clients := make([]*Client, conns)
	for i := range clients {
		c, err := NewClient(nil, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, c.Close()) })
		_, err = c.Call(context.Background(), b.addr, "echo", nil)
		require.NoError(t, err)
		clients[i] = c
	}
	heap := settledHeap()
	baseline := runtime.NumGoroutine()

	var served, refused atomic.Int64
	var other sync.Map
	var wg sync.WaitGroup
	for _, c := range clients {
		for range callers {
			wg.Go(func() {
				for i := range perConn / callers {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					out, err := c.Call(ctx, b.addr, "echo", []byte(fmt.Sprint(i)))
					cancel()
					var re *RemoteError
					switch {
					case err == nil && string(out) == fmt.Sprintf("echo:%d", i):
						served.Add(1)
					case errors.As(err, &re) && re.Code == CodeUnavailable:
						refused.Add(1)
					default:
						other.Store(fmt.Sprint(err), true)
					}
				}
			})
		}
	}
	wg.Wait()
	other.Range(func(k, _ any) bool {
		t.Errorf("unexpected outcome: %v", k)
		return true
	})
	requireGoroutinesBack(t, baseline)
	after := settledHeap()
	t.Logf("%d calls: %d served, %d refused as busy; live heap %.1f -> %.1f MiB; goroutines %d -> %d",
		served.Load()+refused.Load(), served.Load(), refused.Load(), float64(heap)/(1<<20), float64(after)/(1<<20), baseline, runtime.NumGoroutine())
	require.Positive(t, served.Load())
	require.Less(t, int64(after)-int64(heap), int64(16<<20), "live heap grew by more than 16 MiB")
}

// Calls over MaxConcurrentCalls are refused at once with CodeUnavailable,
// which callers retry.
func TestServerWideLimitRefusesRetryable(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}, 2), make(chan struct{})
	b := setupWith(t, HandlerFunc(func(ctx context.Context, method string, _ []byte) ([]byte, error) {
		if method == "hold" {
			entered <- struct{}{}
			<-release
		}
		return []byte("ok"), nil
	}), Config{MaxConcurrentCalls: 2, MaxCallsPerPeer: 2})
	other, err := NewClient(nil, Config{})
	require.NoError(t, err)
	defer other.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, err := b.client.Call(context.Background(), b.addr, "hold", nil)
			require.NoError(t, err)
		})
	}
	<-entered
	<-entered
	_, err = other.Call(context.Background(), b.addr, "quick", nil)
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, CodeUnavailable, re.Code)
	require.Contains(t, re.Message, "busy")
	close(release)
	wg.Wait()
	require.Eventually(t, func() bool {
		_, err := other.Call(context.Background(), b.addr, "quick", nil)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "slots are released when calls end")
}

// A peer's calls over MaxCallsPerPeer wait for a slot on its connection:
// none is refused and no more than the limit run at once.
func TestPerPeerLimitQueuesCalls(t *testing.T) {
	t.Parallel()
	var inside, most atomic.Int64
	gate := make(chan struct{})
	b := setupWith(t, HandlerFunc(func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		n := inside.Add(1)
		defer inside.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-gate
		return []byte("ok"), nil
	}), Config{MaxCallsPerPeer: 2})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := b.client.Call(context.Background(), b.addr, "x", nil)
			require.NoError(t, err)
		})
	}
	require.Eventually(t, func() bool { return inside.Load() == 2 }, 10*time.Second, time.Millisecond)
	close(gate)
	wg.Wait()
	require.Equal(t, int64(2), most.Load())
}

// Request bytes in progress are bounded by MaxInflightBytes: a request that
// finds no room within BudgetWait is refused as retryable.
func TestInflightBytesAreBounded(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	b := setupWith(t, HandlerFunc(func(ctx context.Context, method string, _ []byte) ([]byte, error) {
		if method == "hold" {
			close(entered)
			<-release
		}
		return nil, nil
	}), Config{MaxMessageBytes: 1 << 20, MaxInflightBytes: 1 << 20, BudgetWait: 50 * time.Millisecond})
	payload := make([]byte, 1<<20-16)
	res := make(chan error, 1)
	go func() {
		_, err := b.client.Call(context.Background(), b.addr, "hold", payload)
		res <- err
	}()
	<-entered
	_, err := b.client.Call(context.Background(), b.addr, "more", payload)
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, CodeUnavailable, re.Code)
	close(release)
	require.NoError(t, <-res)
	_, err = b.client.Call(context.Background(), b.addr, "more", payload)
	require.NoError(t, err, "the bytes are returned when the call ends")
}

// Every call has a deadline: the client's, or CallTimeout on either side.
func TestEveryCallHasADeadline(t *testing.T) {
	t.Parallel()
	b := setupWith(t, HandlerFunc(func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return nil, errors.New("no deadline")
		}
		return []byte(time.Until(d).Round(time.Second).String()), nil
	}), Config{CallTimeout: 7 * time.Second})
	out, err := b.client.Call(context.Background(), b.addr, "x", nil)
	require.NoError(t, err)
	require.Contains(t, []string{"7s", "6s"}, string(out), "the client's default deadline")

	// A caller that sends no deadline gets the server's.
	req := joinRequest("x", nil)
	out, err = rawCall(context.Background(), rawConn(t, b.addr), uint64(len(req)), req)
	require.NoError(t, err)
	require.Contains(t, []string{"7s", "6s"}, string(out), "the server's default deadline")
}

// Answers over MaxMessageBytes are refused by the server, and malformed
// calls are refused as invalid; none takes the server down.
func TestOversizedAnswersAndMalformedCalls(t *testing.T) {
	t.Parallel()
	b := setupWith(t, HandlerFunc(func(_ context.Context, method string, payload []byte) ([]byte, error) {
		return bytes.Repeat([]byte{'y'}, 1<<20+1), nil
	}), Config{MaxMessageBytes: 1 << 20})
	_, err := b.client.Call(context.Background(), b.addr, "big", nil)
	require.ErrorIs(t, err, ErrTooLarge)

	cc := rawConn(t, b.addr)
	ctx := context.Background()
	var re *RemoteError
	for name, call := range map[string]func() error{
		"shorter than announced": func() error { _, err := rawCall(ctx, cc, 100, []byte("abc")); return err },
		"longer than announced":  func() error { _, err := rawCall(ctx, cc, 2, []byte("abc")); return err },
		"bad method frame":       func() error { _, err := rawCall(ctx, cc, 2, []byte{0x7f, 'a'}); return err },
	} {
		require.ErrorAs(t, call(), &re, name)
		require.Equal(t, CodeInvalid, re.Code, name)
	}
}

// Connections over MaxConnections are closed as they are accepted, and a
// connection that does not complete its handshake in HandshakeTimeout is
// closed.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	readsEOF := func(t *testing.T, c net.Conn) {
		t.Helper()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
		_, err := io.Copy(io.Discard, c)
		require.NoError(t, err, "the server closed the connection")
	}
	t.Run("max connections", func(t *testing.T) {
		t.Parallel()
		b := setupWith(t, HandlerFunc(echo), Config{MaxConnections: 1, HandshakeTimeout: time.Hour})
		junk, err := net.Dial("tcp", b.addr)
		require.NoError(t, err)
		over, err := net.Dial("tcp", b.addr)
		require.NoError(t, err)
		defer over.Close()
		readsEOF(t, over)
		require.NoError(t, junk.Close())
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := b.client.Call(ctx, b.addr, "echo", nil)
			return err == nil
		}, 20*time.Second, 10*time.Millisecond, "the slot is free once the junk connection closed")
	})
	t.Run("handshake timeout", func(t *testing.T) {
		t.Parallel()
		b := setupWith(t, HandlerFunc(echo), Config{HandshakeTimeout: 100 * time.Millisecond})
		junk, err := net.Dial("tcp", b.addr)
		require.NoError(t, err)
		defer junk.Close()
		readsEOF(t, junk)
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Config{}.Validate())
	err := Config{MaxMessageBytes: 8 << 20, MaxInflightBytes: 1 << 20, MaxCallsPerPeer: 300, CallTimeout: -1}.Validate()
	require.Error(t, err)
	for _, want := range []string{"MaxInflightBytes (1048576) must be equal or greater than MaxMessageBytes (8388608)",
		"MaxCallsPerPeer (300) must not exceed MaxConcurrentCalls (128)", "CallTimeout (-1ns)"} {
		require.True(t, strings.Contains(err.Error(), want), "%q lacks %q", err, want)
	}
	_, err = NewServer(HandlerFunc(echo), Config{MaxConnections: -1}, nil)
	require.Error(t, err)
	_, err = NewClient(nil, Config{MaxMessageBytes: -1})
	require.Error(t, err)
}
