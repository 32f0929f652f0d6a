// Package rpc is the member-to-member RPC of a Graft cluster: one unary gRPC
// method that carries a named call and an opaque payload, served on the
// member's gRPC port. It owns the transport only; what the calls mean is up
// to the Handler (the Manager). Listeners and dialers are injectable, so the
// chaos harness can run it over its fault-injecting network.
package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

const (
	serviceName = "graft.v1.Member"
	callMethod  = "/" + serviceName + "/Call"
	// MaxMessageBytes bounds one request or response.
	MaxMessageBytes = 16 << 20
)

// Handler serves calls. It must be safe for concurrent use. An error it
// returns reaches the caller as a *RemoteError with the same Code and text.
type Handler interface {
	Handle(ctx context.Context, method string, payload []byte) ([]byte, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, method string, payload []byte) ([]byte, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, method string, payload []byte) ([]byte, error) {
	return f(ctx, method, payload)
}

// Code classifies a remote error so the caller can map it back to its own
// sentinel errors.
type Code uint32

// Codes carried across the wire.
const (
	CodeUnknown     Code = iota // anything else
	CodeNotFound                // the target does not exist
	CodeExists                  // the target already exists
	CodeInvalid                 // the request was refused as invalid
	CodeUnavailable             // try again (elsewhere): not ready, not leader, closed
	CodeTimeout                 // the operation did not finish in time; it may still happen
	CodeConflict                // the target's state does not allow the operation
)

// CodedError is an error a Handler returns to choose the Code the caller sees.
type CodedError struct {
	Code Code
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// RemoteError is an error returned by the remote Handler.
type RemoteError struct {
	Code    Code
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// ErrUnreachable wraps transport failures: the call did not reach a handler
// (or its answer was lost).
var ErrUnreachable = errors.New("graft: member unreachable")

// Server serves a Handler over gRPC.
type Server struct {
	h    Handler
	log  *slog.Logger
	grpc *grpc.Server
	wg   sync.WaitGroup
	once sync.Once
}

// NewServer returns a server for h; Serve starts it.
func NewServer(h Handler, log *slog.Logger) *Server {
	s := &Server{h: h, log: log}
	s.grpc = grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Second, Timeout: 2 * time.Second}),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
	)
	s.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Call", Handler: s.handleCall}},
		Metadata:    "graft/rpc",
	}, s)
	return s
}

// Serve serves on l until Stop, on a goroutine the server owns.
func (s *Server) Serve(l net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Warn("member rpc server stopped", "error", err)
		}
	}()
}

// Stop stops serving, waiting up to timeout for calls in progress. Safe to
// call more than once.
func (s *Server) Stop(timeout time.Duration) {
	s.once.Do(func() {
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			s.grpc.Stop()
			<-done
		}
	})
	s.wg.Wait()
}

func (s *Server) handleCall(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	method, payload, err := splitRequest(in)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	out, err := s.h.Handle(ctx, method, payload)
	if err != nil {
		code := CodeUnknown
		var ce *CodedError
		if errors.As(err, &ce) {
			code = ce.Code
		}
		// The graft code travels in the message prefix, so no protobuf
		// details are needed: "graft-code=N;" + text.
		return nil, status.Error(codes.Aborted, fmt.Sprintf("graft-code=%d;%s", code, err.Error()))
	}
	return &out, nil
}

// Client calls other members. It keeps one connection per address. Safe for
// concurrent use.
type Client struct {
	dial func(ctx context.Context, addr string) (net.Conn, error)
	mu   sync.Mutex
	conn map[string]*grpc.ClientConn
	done bool
}

// NewClient returns a client; dial nil means TCP.
func NewClient(dial func(ctx context.Context, addr string) (net.Conn, error)) *Client {
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	return &Client{dial: dial, conn: map[string]*grpc.ClientConn{}}
}

// Call invokes method on the member at addr. Transport failures wrap
// ErrUnreachable; handler failures are *RemoteError.
func (c *Client) Call(ctx context.Context, addr, method string, payload []byte) ([]byte, error) {
	cc, err := c.connection(addr)
	if err != nil {
		return nil, err
	}
	req := joinRequest(method, payload)
	var out []byte
	err = cc.Invoke(ctx, callMethod, &req, &out, grpc.ForceCodec(rawCodec{}))
	if err == nil {
		return out, nil
	}
	st, ok := status.FromError(err)
	if ok && st.Code() == codes.Aborted {
		var code Code
		var msg string
		if n, _ := fmt.Sscanf(st.Message(), "graft-code=%d;", &code); n == 1 {
			if i := strings.IndexByte(st.Message(), ';'); i >= 0 {
				msg = st.Message()[i+1:]
			}
			return nil, &RemoteError{Code: code, Message: msg}
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: calling %s on %s: %w", ErrUnreachable, method, addr, ctx.Err())
	}
	return nil, fmt.Errorf("%w: calling %s on %s: %v", ErrUnreachable, method, addr, err)
}

func (c *Client) connection(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return nil, fmt.Errorf("%w: client closed", ErrUnreachable)
	}
	if cc := c.conn[addr]; cc != nil {
		return cc, nil
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(c.dial),
		// Pings find a connection broken by a partition within seconds,
		// so calls fail over instead of hanging on a dead transport.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second}}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	c.conn[addr] = cc
	return cc, nil
}

// Close closes every connection. Safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	var errs []error
	for a, cc := range c.conn {
		errs = append(errs, cc.Close())
		delete(c.conn, a)
	}
	return errors.Join(errs...)
}

// joinRequest frames method and payload: uvarint method length, method, payload.
func joinRequest(method string, payload []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(method)+len(payload)+2), uint64(len(method)))
	b = append(b, method...)
	return append(b, payload...)
}

func splitRequest(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, errors.New("malformed request frame")
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// rawCodec passes []byte messages through unchanged.
type rawCodec struct{}

func (rawCodec) Name() string { return "graft-raw" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case []byte:
		return m, nil
	}
	return nil, fmt.Errorf("rpc: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rpc: cannot unmarshal into %T", v)
	}
	*p = append([]byte(nil), data...)
	return nil
}
