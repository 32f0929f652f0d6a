// Package opclient calls the operator methods of a Graft member's RPC
// (internal/operator) for the graft command: it dials the member, with the
// operator's TLS certificate when one is given, calls a method, decodes
// the answer, and turns failures into errors an operator can act on
// ("cannot reach member at ADDR: ...", "workflow X not found", "member at
// ADDR refused the call: ...").
package opclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
)

// Bounds of a Client.
const (
	// MaxAnswerBytes bounds one answer: a member's answers are within its
	// member RPC message limit (at least 4 MiB, four times its largest
	// workflow state).
	MaxAnswerBytes = 64 << 20
	// DefaultTimeout bounds a call when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
)

// Options say which member a Client calls, and how.
type Options struct {
	// Addr is the member's RPC address, host:port. Required.
	Addr string
	// CAFile, CertFile and KeyFile turn on TLS: the cluster CA's PEM file
	// (the member's certificate must chain to it and name a member), and
	// the operator's PEM certificate and key (URI SAN
	// graft-operator://NAME). All three or none.
	CAFile, CertFile, KeyFile string
	// Timeout bounds each call; zero means DefaultTimeout.
	Timeout time.Duration
}

// Client calls one member's operator methods. Safe for concurrent use.
type Client struct {
	addr    string
	tls     bool
	timeout time.Duration
	rpc     *rpc.Client

	mu      sync.Mutex
	connErr error // the last dial, handshake or first-read failure
}

// New returns a client of the member at o.Addr; it dials on the first
// call. Bad options (a missing file, a certificate that does not load)
// are errors naming what is wrong.
func New(o Options) (*Client, error) {
	if o.Addr == "" {
		return nil, errors.New("no member address: give --addr host:port (or GRAFT_ADDR)")
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("member address %q is not host:port: %v", o.Addr, err)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("timeout %s is negative", o.Timeout)
	}
	c := &Client{addr: o.Addr, timeout: o.Timeout}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	var tc *tls.Config
	if o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" {
		var err error
		if tc, err = clientTLS(o); err != nil {
			return nil, err
		}
		c.tls = true
	}
	cl, err := rpc.NewClient(c.dialer(tc), rpc.Config{MaxMessageBytes: MaxAnswerBytes, MaxInflightBytes: MaxAnswerBytes, CallTimeout: c.timeout})
	if err != nil {
		return nil, err
	}
	c.rpc = cl
	return c, nil
}

// clientTLS returns the TLS configuration of an operator: it presents the
// operator's certificate and accepts a server whose certificate chains to
// the CA and names a member (members are named by their certificates, not
// by host names).
func clientTLS(o Options) (*tls.Config, error) {
	if o.CAFile == "" || o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("TLS needs --ca, --cert and --key (an operator certificate, URI SAN graft-operator://NAME, from the cluster's CA); some are missing")
	}
	caPEM, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
	}
	pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate %s and key %s: %w", o.CertFile, o.KeyFile, err)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2"},
		Certificates:       []tls.Certificate{pair},
		InsecureSkipVerify: true, // verified below, against the CA
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyMember(raw, pool)
		},
	}, nil
}

// verifyMember checks that a server's chain leads to the CA in pool and
// that its certificate names a member.
func verifyMember(raw [][]byte, pool *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("the member sent no certificate")
	}
	chain := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("the member's certificate does not parse: %w", err)
		}
		chain[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("the member's certificate is not from the cluster CA: %w", err)
	}
	if certs.NodeID(chain[0]) == "" {
		return errors.New("the server's certificate names no member")
	}
	return nil
}

// dialer dials the member over TCP and, with tc, TLS, recording failures
// so that errors say what happened rather than what gRPC made of it.
func (c *Client) dialer(tc *tls.Config) func(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			c.setConnErr(err)
			return nil, err
		}
		if tc != nil {
			tconn := tls.Client(conn, tc)
			if err := tconn.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				c.setConnErr(fmt.Errorf("TLS handshake: %w", err))
				return nil, err
			}
			conn = tconn
		}
		return &watchedConn{Conn: conn, c: c}, nil
	}
}

func (c *Client) setConnErr(err error) {
	c.mu.Lock()
	c.connErr = err
	c.mu.Unlock()
}

func (c *Client) lastConnErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connErr
}

// watchedConn records the failure of a connection's first read: with TLS
// 1.3 a member refusing the operator's certificate says so then.
type watchedConn struct {
	net.Conn
	c    *Client
	once sync.Once
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.once.Do(func() {
		if err != nil && n == 0 && !errors.Is(err, net.ErrClosed) { // not the client's own close
			w.c.setConnErr(err)
		}
	})
	return n, err
}

// Close closes the client's connection. Safe to call more than once.
func (c *Client) Close() error { return c.rpc.Close() }

// Addr is the member's address.
func (c *Client) Addr() string { return c.addr }

// call calls method with req encoded as JSON and decodes the answer into
// out (nil: ignored). id names the workflow the call is about, if any.
func (c *Client) call(ctx context.Context, method, id string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding the %s request: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ans, err := c.rpc.Call(ctx, c.addr, method, body)
	if err != nil {
		return c.failure(err, id)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(ans, out); err != nil {
		return fmt.Errorf("member at %s sent an answer to %s that does not decode: %w", c.addr, method, err)
	}
	return nil
}

// RefusedError is a call the member refused: the caller is not admitted
// to the operator methods.
type RefusedError struct {
	Addr, Reason string
}

// Error says who refused and why.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("member at %s refused the call: %s", e.Addr, e.Reason)
}

// UnreachableError is a call that did not reach the member.
type UnreachableError struct {
	Addr string
	Err  error
}

// Error says which member and why.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach member at %s: %v", e.Addr, e.Err)
}

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// NotFoundError is a workflow the cluster does not know.
type NotFoundError struct{ ID string }

// Error names the workflow.
func (e *NotFoundError) Error() string { return fmt.Sprintf("workflow %s not found", e.ID) }

// kindNotFound is the error kind a member answers an unknown workflow
// with (internal/wire).
const kindNotFound = "workflow-not-found"

// failure maps a failed call about workflow id (if any) to an error for
// the operator.
func (c *Client) failure(err error, id string) error {
	var re *rpc.RemoteError
	if errors.As(err, &re) {
		switch {
		case re.Kind == operator.KindRefused:
			return &RefusedError{Addr: c.addr, Reason: re.Message}
		case re.Kind == kindNotFound && id != "":
			return &NotFoundError{ID: id}
		}
		return fmt.Errorf("member at %s: %s", c.addr, re.Message)
	}
	if !errors.Is(err, rpc.ErrUnreachable) {
		return fmt.Errorf("calling member at %s: %w", c.addr, err)
	}
	cause := c.lastConnErr()
	switch {
	case cause == nil:
		cause = err
	case c.tls:
		cause = fmt.Errorf("%w (the member must run TLS and trust the CA of --cert, and --cert must name an operator, URI SAN graft-operator://NAME, or a member)", cause)
	default:
		cause = fmt.Errorf("%w (if the member runs TLS, give --ca, --cert and --key)", cause)
	}
	return &UnreachableError{Addr: c.addr, Err: cause}
}
