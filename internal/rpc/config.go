package rpc

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// Default limits of the member RPC (see Config).
//
// DefaultMaxMessageBytes is sized from the engine's state limit: the largest
// legitimate messages carry one workflow's state (Engine.MaxStateBytes,
// default 1 MiB) in JSON together with its history, metadata or step
// config (a step run on another member and its answer, a status read, a
// workflow start, a terminal lifecycle event). Four times the state limit
// leaves room for that. The root package passes max(4 MiB, 4 ×
// MaxStateBytes).
const (
	DefaultMaxMessageBytes    = 4 << 20
	DefaultMaxInflightBytes   = 64 << 20
	DefaultMaxConcurrentCalls = 128
	DefaultMaxCallsPerPeer    = 32
	DefaultMaxConnections     = 256
	DefaultCallTimeout        = 30 * time.Second
	DefaultHandshakeTimeout   = 5 * time.Second
	DefaultBudgetWait         = time.Second
)

// Config holds the limits of a Server and a Client. Every field's zero value
// means its default; NewServer and NewClient fill defaults into a copy and
// call Validate.
//
// With the defaults, request bytes a Server holds at once are bounded by
// MaxInflightBytes (64 MiB) plus, for each admitted call, one gRPC message
// of at most 64 KiB being read and one flow-control window of 256 KiB
// buffered by the transport (128 calls: 40 MiB), whatever the callers send.
type Config struct {
	// MaxMessageBytes bounds one request (method name and payload) and one
	// answer, in bytes. A Client refuses to send a larger request
	// (ErrTooLarge); a Server refuses a request announcing more bytes
	// before reading it, and an answer over it (CodeTooLarge). Default
	// DefaultMaxMessageBytes (4 MiB); zero means the default.
	MaxMessageBytes int
	// MaxInflightBytes bounds the request bytes a Server holds at once,
	// from reading a request until its handler returns. A request waits up
	// to BudgetWait for room, then is refused with CodeUnavailable
	// (retryable). Default DefaultMaxInflightBytes (64 MiB); zero means the
	// default. It must be at least MaxMessageBytes.
	MaxInflightBytes int64
	// MaxConcurrentCalls bounds the calls a Server admits at once, over
	// every connection. A call over it is refused at once, before its
	// request is read, with CodeUnavailable (retryable). Default
	// DefaultMaxConcurrentCalls (128); zero means the default.
	MaxConcurrentCalls int
	// MaxCallsPerPeer bounds the calls in flight on one connection (HTTP/2
	// MaxConcurrentStreams). A Client keeps one connection per address, so
	// this is a per-peer limit; its calls over it wait for a free slot,
	// until their deadline. Default DefaultMaxCallsPerPeer (32); zero means
	// the default. It must not exceed MaxConcurrentCalls.
	MaxCallsPerPeer int
	// MaxConnections bounds the connections a Server keeps open; one
	// accepted over it is closed at once. Default DefaultMaxConnections
	// (256); zero means the default.
	MaxConnections int
	// CallTimeout is the deadline of a call whose context has none: a
	// Client applies it to every call, and a Server to a handler whose
	// caller sent no deadline. Default DefaultCallTimeout (30s); zero means
	// the default.
	CallTimeout time.Duration
	// HandshakeTimeout bounds a new connection's setup (up to and including
	// the HTTP/2 handshake); a connection that has not completed it is
	// closed. Default DefaultHandshakeTimeout (5s); zero means the default.
	HandshakeTimeout time.Duration
	// ServerTLS, if set, makes a Server require TLS with this configuration
	// (which should require and verify client certificates); a handler
	// finds the peer's certificates with PeerCertificates. ClientTLS, if
	// set, makes a Client dial with TLS. Nil means plaintext.
	ServerTLS, ClientTLS *tls.Config
	// BudgetWait is how long a request waits for room under
	// MaxInflightBytes before it is refused. Default DefaultBudgetWait
	// (1s); zero means the default.
	BudgetWait time.Duration
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, DefaultMaxMessageBytes)
	c.MaxInflightBytes = cmp.Or(c.MaxInflightBytes, DefaultMaxInflightBytes)
	c.MaxConcurrentCalls = cmp.Or(c.MaxConcurrentCalls, DefaultMaxConcurrentCalls)
	c.MaxCallsPerPeer = cmp.Or(c.MaxCallsPerPeer, DefaultMaxCallsPerPeer)
	c.MaxConnections = cmp.Or(c.MaxConnections, DefaultMaxConnections)
	c.CallTimeout = cmp.Or(c.CallTimeout, DefaultCallTimeout)
	c.HandshakeTimeout = cmp.Or(c.HandshakeTimeout, DefaultHandshakeTimeout)
	c.BudgetWait = cmp.Or(c.BudgetWait, DefaultBudgetWait)
	return c
}

// Validate reports every field of c that is out of range, after defaults
// are applied (so zero fields pass).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxMessageBytes < 0 || c.MaxInflightBytes < 0 || c.MaxConcurrentCalls < 0 || c.MaxCallsPerPeer < 0 || c.MaxConnections < 0 {
		add("MaxMessageBytes (%d), MaxInflightBytes (%d), MaxConcurrentCalls (%d), MaxCallsPerPeer (%d) and MaxConnections (%d) must not be negative",
			c.MaxMessageBytes, c.MaxInflightBytes, c.MaxConcurrentCalls, c.MaxCallsPerPeer, c.MaxConnections)
	}
	if c.CallTimeout < 0 || c.HandshakeTimeout < 0 || c.BudgetWait < 0 {
		add("CallTimeout (%s), HandshakeTimeout (%s) and BudgetWait (%s) must not be negative", c.CallTimeout, c.HandshakeTimeout, c.BudgetWait)
	}
	if c.MaxInflightBytes < int64(c.MaxMessageBytes) {
		add("MaxInflightBytes (%d) must be equal or greater than MaxMessageBytes (%d)", c.MaxInflightBytes, c.MaxMessageBytes)
	}
	if c.MaxCallsPerPeer > c.MaxConcurrentCalls {
		add("MaxCallsPerPeer (%d) must not exceed MaxConcurrentCalls (%d)", c.MaxCallsPerPeer, c.MaxConcurrentCalls)
	}
	if c.MaxCallsPerPeer > 1<<20 {
		add("MaxCallsPerPeer (%d) must not exceed %d", c.MaxCallsPerPeer, 1<<20)
	}
	return errors.Join(errs...)
}
