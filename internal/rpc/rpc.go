// Package rpc is the member-to-member RPC of a Graft cluster: named calls
// carrying an opaque payload, served on the member's gRPC port. It owns the
// transport only; what the calls mean is up to the Handler (the Manager).
// Listeners and dialers are injectable, so the chaos harness can run it over
// its fault-injecting network.
//
// A call is one gRPC stream: the request travels as messages of at most 64
// KiB, the first announcing the request's length, and the answer likewise.
// The server checks the announced length against Config.MaxMessageBytes and
// reserves it under Config.MaxInflightBytes before it reads the rest, so a
// burst of large calls is refused (or waits) instead of being allocated;
// Config documents every limit.
package rpc

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

const (
	serviceName = "graft.v1.Member"
	callMethod  = "/" + serviceName + "/Call"
	// chunkBytes is the most payload bytes one gRPC message of a call
	// carries; the first message also carries the length prefix.
	chunkBytes = 64 << 10
	// maxFrameBytes is the gRPC message size limit, both ways.
	maxFrameBytes = chunkBytes + binary.MaxVarintLen64
	// streamWindow is the server's HTTP/2 flow-control window of one call:
	// the most bytes the transport buffers for it before it is read.
	streamWindow = 256 << 10
	// connWindow is the server's connection-level window.
	connWindow = 1 << 20
	// maxHeaderBytes bounds the headers of one call a server accepts, and
	// the headers and trailers of an answer a client accepts.
	maxHeaderBytes = 64 << 10
	// maxConnectionIdle closes connections without calls for this long;
	// clients reconnect on their next call.
	maxConnectionIdle = 5 * time.Minute
)

// Handler serves calls. It must be safe for concurrent use. An error it
// returns reaches the caller as a *RemoteError with the same text (clipped
// to 16 KiB) and, if it is or wraps a *CodedError, that error's Code, Kind
// and Details; otherwise CodeUnknown.
// ctx carries the caller's deadline, or Config.CallTimeout if it sent none.
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
	CodeUnavailable             // try again (elsewhere): not ready, not leader, closed, busy
	CodeTimeout                 // the operation did not finish in time; it may still happen
	CodeConflict                // the target's state does not allow the operation
	CodeTooLarge                // the request or its answer is over Config.MaxMessageBytes
	CodeStorageFull             // the member's disk is too full to take the write
)

// CodedError is an error a Handler returns to choose what the caller sees
// besides the text: a Code, and optionally a Kind and Details.
type CodedError struct {
	// Code is the error's class.
	Code Code
	// Kind names exactly what went wrong, so the caller can rebuild the
	// error (the root package maps its sentinel errors to kinds): 1 to 64
	// bytes of lowercase letters, digits, '-' and '.', starting with a
	// letter. Empty means none; an invalid Kind is dropped.
	Kind string
	// Details are values the caller needs to rebuild the error (a
	// panicking step's value and stack). Keys are 1 to 64 bytes of
	// lowercase letters, digits, '-' and '_', starting with a letter, and
	// not "kind"; other keys are dropped. At most 16 entries and 8 KiB of
	// keys and values travel, in key order: the value that crosses 8 KiB
	// is clipped and the entries after it dropped.
	Details map[string]string
	// Err is the error; its text is the text the caller sees.
	Err error
}

// Error returns the wrapped error's text.
func (e *CodedError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *CodedError) Unwrap() error { return e.Err }

// RemoteError is an error returned by the remote Handler, or a refusal of
// the remote Server (CodeUnavailable when it is busy, CodeTooLarge,
// CodeInvalid for a malformed call). Its fields are those the Handler's
// *CodedError chose, within the bounds CodedError documents.
type RemoteError struct {
	// Code is the error's class.
	Code Code
	// Kind is the error's kind, or "" for none.
	Kind string
	// Details are the error's details; nil for none.
	Details map[string]string
	// Message is the error's text.
	Message string
}

// Error returns the remote error's text.
func (e *RemoteError) Error() string { return e.Message }

// Is reports whether a CodeTooLarge error matches ErrTooLarge.
func (e *RemoteError) Is(target error) bool { return target == ErrTooLarge && e.Code == CodeTooLarge }

// ErrUnreachable wraps transport failures: the call did not reach a handler
// (or its answer was lost).
var ErrUnreachable = errors.New("graft: member unreachable")

// ErrTooLarge reports a request or answer over Config.MaxMessageBytes.
// Retrying the same call cannot succeed.
var ErrTooLarge = errors.New("graft: rpc message too large")

// Server serves a Handler over gRPC with the limits of its Config.
type Server struct {
	h      Handler
	cfg    Config
	log    *slog.Logger
	grpc   *grpc.Server
	budget *semaphore.Weighted // request bytes, MaxInflightBytes
	calls  atomic.Int64        // admitted calls in progress
	wg     sync.WaitGroup
	once   sync.Once
}

// NewServer returns a server for h with the limits of cfg (zero fields
// mean their defaults); Serve starts it. It fails if cfg does not
// Validate. log nil means slog.Default().
func NewServer(h Handler, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rpc server config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	s := &Server{h: h, cfg: cfg, log: log, budget: semaphore.NewWeighted(cfg.MaxInflightBytes)}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodec(rawCodec{}),
		grpc.InTapHandle(s.admit),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxCallsPerPeer)),
		grpc.ConnectionTimeout(cfg.HandshakeTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Second, Timeout: 2 * time.Second, MaxConnectionIdle: maxConnectionIdle}),
		grpc.MaxRecvMsgSize(maxFrameBytes),
		grpc.MaxSendMsgSize(maxFrameBytes),
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		grpc.MaxHeaderListSize(maxHeaderBytes),
	}
	if cfg.ServerTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.ServerTLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	s.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Streams:     []grpc.StreamDesc{{StreamName: "Call", Handler: s.handleCall, ServerStreams: true, ClientStreams: true}},
		Metadata:    "graft/rpc",
	}, s)
	return s, nil
}

// Serve serves on l until Stop, on a goroutine the server owns.
// Connections over Config.MaxConnections are closed as they are accepted.
func (s *Server) Serve(l net.Listener) {
	l = newLimitListener(l, s.cfg.MaxConnections, s.log)
	s.wg.Go(func() {
		if err := s.grpc.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Warn("member rpc server stopped", "error", err)
		}
	})
}

// Stop stops serving, waiting up to timeout for calls in progress. Safe to
// call more than once.
func (s *Server) Stop(timeout time.Duration) {
	s.once.Do(func() {
		done := make(chan struct{})
		s.wg.Go(func() {
			s.grpc.GracefulStop()
			close(done)
		})
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

// admit runs as each call's headers arrive, before anything of its request
// is read (gRPC's tap, on the connection's reader: it must not block). It
// refuses calls over MaxConcurrentCalls, and gives a call without a
// deadline CallTimeout; the call's slot is released when it ends.
func (s *Server) admit(ctx context.Context, _ *tap.Info) (context.Context, error) {
	if n := s.calls.Add(1); n > int64(s.cfg.MaxConcurrentCalls) {
		s.calls.Add(-1)
		return ctx, refusal(CodeUnavailable, "member busy: %d calls in progress, the most it serves at once", s.cfg.MaxConcurrentCalls)
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.CallTimeout)
	}
	context.AfterFunc(ctx, func() {
		cancel()
		s.calls.Add(-1)
	})
	return ctx, nil
}

func (s *Server) handleCall(_ any, ss grpc.ServerStream) error {
	ctx := ss.Context()
	in, release, err := s.receive(ctx, ss)
	if err != nil {
		return err
	}
	defer release()
	method, payload, err := splitRequest(in)
	if err != nil {
		return refusal(CodeInvalid, "%v", err)
	}
	out, err := s.h.Handle(ctx, method, payload)
	if err != nil {
		var ce *CodedError
		if errors.As(err, &ce) {
			return encodeStatus(ce.Code, ce.Kind, ce.Details, err.Error()).Err()
		}
		return encodeStatus(CodeUnknown, "", nil, err.Error()).Err()
	}
	if len(out) > s.cfg.MaxMessageBytes {
		return refusal(CodeTooLarge, "the answer to %s is %d bytes, over the limit of %d", method, len(out), s.cfg.MaxMessageBytes)
	}
	return sendFramed(ss, out)
}

// receive reads a request: its first message announces its length, which
// is checked against MaxMessageBytes and reserved under MaxInflightBytes
// before the rest is read. release returns the reservation.
func (s *Server) receive(ctx context.Context, ss grpc.ServerStream) (in []byte, release func(), err error) {
	var first []byte
	if err := ss.RecvMsg(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, refusal(CodeInvalid, "empty request")
		}
		return nil, nil, err
	}
	total, k := binary.Uvarint(first)
	switch {
	case k <= 0:
		return nil, nil, refusal(CodeInvalid, "malformed request frame")
	case total > uint64(s.cfg.MaxMessageBytes):
		return nil, nil, refusal(CodeTooLarge, "a request of %d bytes is over the limit of %d", total, s.cfg.MaxMessageBytes)
	case uint64(len(first)-k) > total:
		return nil, nil, refusal(CodeInvalid, "request longer than announced")
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.BudgetWait)
	err = s.budget.Acquire(wctx, int64(total))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, nil, refusal(CodeUnavailable, "member busy: requests in progress hold its %d bytes for requests", s.cfg.MaxInflightBytes)
	}
	release = func() { s.budget.Release(int64(total)) }
	in = make([]byte, 0, total)
	in = append(in, first[k:]...)
	for uint64(len(in)) < total {
		var chunk []byte
		if err := ss.RecvMsg(&chunk); err != nil {
			release()
			if errors.Is(err, io.EOF) {
				return nil, nil, refusal(CodeInvalid, "request ended after %d of %d bytes", len(in), total)
			}
			return nil, nil, err
		}
		if uint64(len(in)+len(chunk)) > total {
			release()
			return nil, nil, refusal(CodeInvalid, "request longer than announced")
		}
		in = append(in, chunk...)
	}
	return in, release, nil
}

// frameStream is the half of a gRPC stream sendFramed writes to.
type frameStream interface{ SendMsg(m any) error }

// sendFramed sends b as messages of at most chunkBytes, the first
// prefixed with len(b).
func sendFramed(st frameStream, b []byte) error {
	n := min(len(b), chunkBytes)
	first := binary.AppendUvarint(make([]byte, 0, n+binary.MaxVarintLen64), uint64(len(b)))
	first = append(first, b[:n]...)
	if err := st.SendMsg(&first); err != nil {
		return err
	}
	for b = b[n:]; len(b) > 0; b = b[n:] {
		n = min(len(b), chunkBytes)
		chunk := b[:n:n]
		if err := st.SendMsg(&chunk); err != nil {
			return err
		}
	}
	return nil
}

// Client calls other members. It keeps one connection per address. Safe for
// concurrent use.
type Client struct {
	dial func(ctx context.Context, addr string) (net.Conn, error)
	cfg  Config
	mu   sync.Mutex
	conn map[string]*grpc.ClientConn
	done bool
}

// NewClient returns a client with the limits of cfg (zero fields mean their
// defaults); dial nil means TCP. It fails if cfg does not Validate. A
// Client and the Servers it calls should use the same MaxMessageBytes.
func NewClient(dial func(ctx context.Context, addr string) (net.Conn, error), cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rpc client config: %w", err)
	}
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	return &Client{dial: dial, cfg: cfg.withDefaults(), conn: map[string]*grpc.ClientConn{}}, nil
}

// Call invokes method on the member at addr. A ctx without a deadline gets
// Config.CallTimeout. A request over Config.MaxMessageBytes is refused
// before anything is sent (ErrTooLarge). Transport failures wrap
// ErrUnreachable; handler failures and refusals of the remote server are
// *RemoteError.
func (c *Client) Call(ctx context.Context, addr, method string, payload []byte) ([]byte, error) {
	if n := requestLen(method, payload); n > c.cfg.MaxMessageBytes {
		return nil, fmt.Errorf("%w: calling %s on %s: the request is %d bytes, over the limit of %d", ErrTooLarge, method, addr, n, c.cfg.MaxMessageBytes)
	}
	req := joinRequest(method, payload)
	cc, err := c.connection(addr)
	if err != nil {
		return nil, err
	}
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
	}
	defer cancel() // ends the stream, whatever happened
	cs, err := cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "Call", ServerStreams: true, ClientStreams: true}, callMethod, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return nil, c.failure(ctx, addr, method, err)
	}
	// io.EOF from SendMsg means the server ended the call early: RecvMsg
	// returns its status.
	switch err := sendFramed(cs, req); {
	case err == nil:
		_ = cs.CloseSend() // never fails for a client stream
	case !errors.Is(err, io.EOF):
		return nil, c.failure(ctx, addr, method, err)
	}
	out, err := c.receive(cs)
	if err != nil {
		return nil, c.failure(ctx, addr, method, err)
	}
	return out, nil
}

// receive reads an answer, refusing one announced over MaxMessageBytes,
// and then the call's status.
func (c *Client) receive(cs grpc.ClientStream) ([]byte, error) {
	var first []byte
	if err := cs.RecvMsg(&first); err != nil {
		return nil, err
	}
	total, k := binary.Uvarint(first)
	switch {
	case k <= 0:
		return nil, errors.New("malformed answer frame")
	case total > uint64(c.cfg.MaxMessageBytes):
		return nil, fmt.Errorf("%w: an answer of %d bytes is over the limit of %d", ErrTooLarge, total, c.cfg.MaxMessageBytes)
	case uint64(len(first)-k) > total:
		return nil, errors.New("answer longer than announced")
	}
	out := make([]byte, 0, total)
	out = append(out, first[k:]...)
	for uint64(len(out)) < total {
		var chunk []byte
		if err := cs.RecvMsg(&chunk); err != nil {
			return nil, err
		}
		if uint64(len(out)+len(chunk)) > total {
			return nil, errors.New("answer longer than announced")
		}
		out = append(out, chunk...)
	}
	var extra []byte
	if err := cs.RecvMsg(&extra); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, errors.New("answer longer than announced")
		}
		return nil, err
	}
	return out, nil
}

// failure maps a call's error: refusals and handler errors (a status
// carrying a graft error, see DecodeStatus) become *RemoteError,
// ErrTooLarge stays, the rest wraps ErrUnreachable.
func (c *Client) failure(ctx context.Context, addr, method string, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("calling %s on %s: %w", method, addr, err)
	}
	st, ok := status.FromError(err)
	if re, graft := DecodeStatus(st); graft {
		return re
	}
	if ok && st.Code() == codes.ResourceExhausted {
		return fmt.Errorf("%w: calling %s on %s: %v", ErrTooLarge, method, addr, st.Message())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: calling %s on %s: %w", ErrUnreachable, method, addr, ctx.Err())
	}
	return fmt.Errorf("%w: calling %s on %s: %v", ErrUnreachable, method, addr, err)
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
	creds := insecure.NewCredentials()
	if c.cfg.ClientTLS != nil {
		creds = credentials.NewTLS(c.cfg.ClientTLS)
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(c.dial),
		// Pings find a connection broken by a partition within seconds,
		// so calls fail over instead of hanging on a dead transport.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: c.cfg.HandshakeTimeout, Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second}}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxFrameBytes), grpc.MaxCallSendMsgSize(maxFrameBytes)),
		// Bounds the headers and trailers of an answer, and so the error
		// status a peer can make DecodeStatus read.
		grpc.WithMaxHeaderListSize(maxHeaderBytes),
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

// requestLen is len(joinRequest(method, payload)).
func requestLen(method string, payload []byte) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(len(method))) + len(method) + len(payload)
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

// PeerCertificates returns the certificates the caller of a handler
// presented (ServerTLS), leaf first, or nil without TLS.
func PeerCertificates(ctx context.Context) []*x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return info.State.PeerCertificates
}
