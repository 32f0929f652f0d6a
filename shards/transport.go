package shards

// Graft's TCP Raft transport. The connection protocol (magic number, frame
// header, poison/ack closing of snapshot connections, TCP keepalive settings
// and the per-write deadlines of the sending side) derives from Dragonboat's
// internal/transport/tcp.go (Copyright 2017-2019 Lei Ni and other
// contributors, Apache License 2.0), so members running either transport
// interoperate. The receiving side is new: bounded frames (see frame.go), read
// deadlines on every read including the first frame of a connection, a bound
// on concurrent inbound connections, one goroutine per connection that ends
// when the connection does or the transport closes, and no panics.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// Transport timeouts and bounds.
const (
	// maxInboundConns bounds the inbound Raft connections served at once;
	// further ones are closed on accept. A peer uses a few message
	// connections (Dragonboat's StreamConnections) plus one per snapshot in
	// flight, so 512 serves clusters of well over a hundred peers.
	maxInboundConns = 512
	// firstFrameTimeout is how long a new connection may stay silent: a
	// Dragonboat sender dials only when it has something to send.
	firstFrameTimeout = 5 * time.Second
	// idleTimeout is how long a connection may stay silent between frames.
	// Dragonboat's sender closes its connections after one idle minute.
	idleTimeout = 2 * time.Minute
	// headerTimeout bounds reading a header once its magic number arrived,
	// as in Dragonboat.
	headerTimeout = 2 * time.Second
	// ioTimeout bounds each read or write of up to readStep payload bytes,
	// as in Dragonboat.
	ioTimeout = 5 * time.Second
	// dialTimeout bounds connecting to a peer, as in Dragonboat.
	dialTimeout = 5 * time.Second
	// keepAlivePeriod is the TCP keepalive period, as in Dragonboat.
	keepAlivePeriod = 10 * time.Second
	// acceptBackoff is the pause after a failed Accept.
	acceptBackoff = 20 * time.Millisecond
	// reusableBuf is the largest payload buffer a connection keeps between
	// frames; a larger one is dropped after use.
	reusableBuf = maxChunkFrame
)

// tcpFactory is the config.TransportFactory of Graft's TCP transport.
type tcpFactory struct {
	log    *slog.Logger
	limits frameLimits
	stats  *transportStats
	// tls, when set, secures every connection: serverConn and clientConn
	// run the handshakes, and batches are bound to the peer's identity.
	tls *TLS
	// sources binds, without TLS, a batch's SourceAddress to the IP the
	// connection comes from.
	sources sourceIPs
	// resolve, if set, returns the Raft address of the member whose
	// NodeHost ID is its argument (the Host's node registry).
	resolve func(nodeHostID string) (string, bool)
}

var _ config.TransportFactory = (*tcpFactory)(nil)

// Create returns the transport of one NodeHost.
func (f *tcpFactory) Create(cfg config.NodeHostConfig, h raftio.MessageHandler, ch raftio.ChunkHandler) raftio.ITransport {
	return &tcpTransport{
		f:       f,
		addr:    cfg.GetListenAddress(),
		handler: h,
		chunks:  ch,
		conns:   make(map[net.Conn]struct{}),
		done:    make(chan struct{}),
	}
}

// Validate reports whether addr is host:port with a non-empty host and a
// port in 1-65535.
func (f *tcpFactory) Validate(addr string) bool { return validAddress(addr) }

// validAddress reports whether addr is host:port with a non-empty host and
// a port in 1-65535.
func validAddress(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p > 0
}

// tcpTransport implements raftio.ITransport over TCP. All methods are safe
// for concurrent use.
type tcpTransport struct {
	f       *tcpFactory
	addr    string
	handler raftio.MessageHandler
	chunks  raftio.ChunkHandler

	mu       sync.Mutex // guards ln, conns, closed and wg.Add
	ln       net.Listener
	conns    map[net.Conn]struct{} // inbound connections being served
	closed   bool
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once
}

var _ raftio.ITransport = (*tcpTransport)(nil)

// Name returns the transport's name.
func (t *tcpTransport) Name() string { return "graft-tcp-transport" }

// Start listens on the NodeHost's listen address and serves inbound
// connections until Close.
func (t *tcpTransport) Start() error {
	ln, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("graft: shards: raft transport listening on %s: %w", t.addr, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.Join(ErrClosed, ln.Close())
	}
	t.ln = ln
	t.wg.Go(func() {
		t.acceptLoop(ln)
	})
	return nil
}

// Close stops listening, closes every inbound connection and waits for
// their goroutines. It is idempotent. Outbound connections belong to
// Dragonboat, which closes them.
func (t *tcpTransport) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		close(t.done)
		if t.ln != nil {
			if err := t.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				t.closeErr = err
			}
		}
		for c := range t.conns {
			_ = c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return t.closeErr
}

func (t *tcpTransport) acceptLoop(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.f.log.Warn("raft transport accept failed", "err", err)
			select {
			case <-t.done:
				return
			case <-time.After(acceptBackoff):
			}
			continue
		}
		t.track(conn)
	}
}

// track starts serving conn unless the transport is closed or serving
// maxInboundConns connections already.
func (t *tcpTransport) track(conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = conn.Close()
		return
	}
	if len(t.conns) >= maxInboundConns {
		_ = conn.Close()
		t.f.stats.refusedConns.Add(1)
		t.f.stats.note(t.f.log, remoteAddr(conn), "too many inbound connections")
		return
	}
	t.conns[conn] = struct{}{}
	t.wg.Go(func() {
		defer t.untrack(conn)
		t.serve(conn)
	})
}

func (t *tcpTransport) untrack(conn net.Conn) {
	_ = conn.Close()
	t.mu.Lock()
	delete(t.conns, conn)
	t.mu.Unlock()
}

// remoteAddr names conn's peer for logging: its IP without the port, so
// that refusals are logged once per peer host, not once per connection.
func remoteAddr(c net.Conn) string {
	a := c.RemoteAddr()
	if a == nil {
		return "unknown"
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// serverConn runs the server side of the TLS handshake on an accepted
// connection (bounded by firstFrameTimeout) and returns the connection and
// the peer's node ID; without TLS it returns conn unchanged and "".
func (f *tcpFactory) serverConn(conn net.Conn) (net.Conn, string, error) {
	if f.tls == nil {
		return conn, "", nil
	}
	tc := tls.Server(conn, f.tls.Server)
	ctx, cancel := context.WithTimeout(context.Background(), firstFrameTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, "", fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, f.tls.PeerID(tc.ConnectionState()), nil
}

// serve reads frames from conn until it fails, the peer closes it or the
// transport closes (which closes conn).
func (t *tcpTransport) serve(conn net.Conn) {
	peer := remoteAddr(conn)
	conn, id, err := t.f.serverConn(conn)
	if err != nil {
		t.frameError(peer, err)
		return
	}
	var buf []byte
	wait := firstFrameTimeout
	for {
		if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return
		}
		wait = idleTimeout
		if err := readMagic(conn); err != nil {
			if errors.Is(err, errPoison) {
				// The sender closes a snapshot connection: acknowledge.
				_ = conn.SetWriteDeadline(time.Now().Add(ioTimeout))
				_, _ = conn.Write(framePoison[:])
				return
			}
			t.frameError(peer, err)
			return
		}
		if err := conn.SetReadDeadline(time.Now().Add(headerTimeout)); err != nil {
			return
		}
		h, err := t.f.limits.readHeader(conn)
		if err != nil {
			t.frameError(peer, err)
			return
		}
		payload, err := readPayload(conn, h, buf, func() error {
			return conn.SetReadDeadline(time.Now().Add(ioTimeout))
		})
		if err != nil {
			t.frameError(peer, err)
			return
		}
		if !t.deliver(peer, id, h.method, payload) {
			return
		}
		if cap(payload) <= reusableBuf {
			buf = payload[:0]
		} else {
			buf = nil
		}
	}
}

// deliver decodes one payload and hands it to Dragonboat; false ends the
// connection.
func (t *tcpTransport) deliver(peer, id string, method uint16, payload []byte) bool {
	if method == methodSnapshot {
		chunk, err := decodeChunk(payload)
		if err != nil {
			t.frameError(peer, err)
			return false
		}
		return t.chunks(chunk)
	}
	batch, err := t.f.limits.decodeBatch(payload)
	if err != nil {
		t.frameError(peer, err)
		return false
	}
	if t.f.tls != nil && t.f.tls.Bind != nil {
		if err := t.f.tls.Bind(id, batch.SourceAddress); err != nil {
			t.frameError(peer, fmt.Errorf("peer %q sent a batch from %q: %w", id, batch.SourceAddress, err))
			return false
		}
	} else if err := t.f.checkSource(peer, batch.SourceAddress); err != nil {
		t.frameError(peer, err)
		return false
	}
	t.handler(batch)
	return true
}

// checkSource returns nil if the batch source src names the host peer (an
// IP) connects from: src is a NodeHost ID whose member's Raft address is
// on that host, or such a Raft address.
func (f *tcpFactory) checkSource(peer, src string) error {
	if IsNodeHostID(src) {
		addr, ok := "", false
		if f.resolve != nil {
			addr, ok = f.resolve(src)
		}
		if !ok {
			return fmt.Errorf("%w: %s is no known member's NodeHost ID", errSourceMismatch, src)
		}
		src = addr
	}
	return f.sources.check(peer, src)
}

// frameError counts and logs (once per peer and reason) a connection ended
// by a bad or missing frame. Timeouts and closed connections are the
// normal end of a connection and are not logged.
func (t *tcpTransport) frameError(peer string, err error) {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return
	}
	select {
	case <-t.done: // the transport closed the connection
		return
	default:
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.ErrUnexpectedEOF
	}
	t.f.stats.badFrames.Add(1)
	t.f.stats.note(t.f.log, peer, reasonOf(err))
}

// reasonOf names err's kind for rate-limited logging.
func reasonOf(err error) string {
	for _, k := range []error{errBadMagic, errBadHeader, errBadMethod, errEmptyFrame, errFrameTooBig,
		errBadChecksum, errBatchTooBig, errMalformed, errChunkTooBig, errDecodePanics, errSourceMismatch, io.ErrUnexpectedEOF} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "connection error"
}

// GetConnection dials target for sending message batches.
func (t *tcpTransport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	conn, err := t.dial(ctx, target)
	if err != nil {
		return nil, err
	}
	return &tcpConn{conn: conn}, nil
}

// GetSnapshotConnection dials target for sending snapshot chunks.
func (t *tcpTransport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	conn, err := t.dial(ctx, target)
	if err != nil {
		return nil, err
	}
	return &tcpSnapshotConn{conn: conn}, nil
}

func (t *tcpTransport) dial(ctx context.Context, target string) (net.Conn, error) {
	select {
	case <-t.done:
		return nil, ErrClosed
	default:
	}
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlivePeriod}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	return t.f.clientConn(conn, target)
}

// clientConn runs the client side of the TLS handshake on a dialled
// connection (bounded by dialTimeout); without TLS it returns conn
// unchanged.
func (f *tcpFactory) clientConn(conn net.Conn, target string) (net.Conn, error) {
	if f.tls == nil {
		return conn, nil
	}
	tc := tls.Client(conn, f.tls.Client)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", target, err)
	}
	return tc, nil
}

// deadlineWriter sets a write deadline before each write of at most
// readStep bytes, as Dragonboat's writeMessage does.
type deadlineWriter struct{ c net.Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		step := min(len(p)-n, readStep)
		if err := w.c.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
			return n, err
		}
		m, err := w.c.Write(p[n : n+step])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// tcpConn sends message batches. Dragonboat uses one from one goroutine.
type tcpConn struct {
	conn net.Conn
	buf  []byte
}

var _ raftio.IConnection = (*tcpConn)(nil)

// Close closes the connection.
func (c *tcpConn) Close() { _ = c.conn.Close() }

// SendMessageBatch writes batch as one frame.
func (c *tcpConn) SendMessageBatch(batch pb.MessageBatch) error {
	sz := batch.SizeUpperLimit()
	if cap(c.buf) < sz {
		c.buf = make([]byte, sz)
	}
	payload := pb.MustMarshalTo(&batch, c.buf[:sz])
	err := writeFrame(deadlineWriter{c.conn}, methodRaft, payload)
	if cap(c.buf) > reusableBuf {
		c.buf = nil
	}
	return err
}

// tcpSnapshotConn sends snapshot chunks. Dragonboat uses one from one
// goroutine.
type tcpSnapshotConn struct{ conn net.Conn }

var _ raftio.ISnapshotConnection = (*tcpSnapshotConn)(nil)

// Close sends the poison pair, waits briefly for its acknowledgement so the
// receiver has consumed every chunk, and closes the connection.
func (c *tcpSnapshotConn) Close() {
	defer c.conn.Close()
	if err := c.conn.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		return
	}
	if _, err := c.conn.Write(framePoison[:]); err != nil {
		return
	}
	var ack [2]byte
	if err := c.conn.SetReadDeadline(time.Now().Add(keepAlivePeriod)); err != nil {
		return
	}
	_, _ = io.ReadFull(c.conn, ack[:])
}

// SendChunk writes chunk as one frame.
func (c *tcpSnapshotConn) SendChunk(chunk pb.Chunk) error {
	buf := make([]byte, chunk.Size())
	payload := pb.MustMarshalTo(&chunk, buf)
	return writeFrame(deadlineWriter{c.conn}, methodSnapshot, payload)
}

// transportStats counts inbound traffic refused before Dragonboat saw it and
// remembers which (peer, reason) pairs were logged.
type transportStats struct {
	refusedConns    atomic.Uint64
	badFrames       atomic.Uint64
	droppedBatches  atomic.Uint64
	droppedMessages atomic.Uint64
	droppedChunks   atomic.Uint64
	conflicts       atomic.Uint64

	mu     sync.Mutex
	logged map[[2]string]struct{}
}

// maxLoggedReasons bounds the (peer, reason) pairs remembered for
// rate-limited logging; beyond it new pairs are counted but not logged.
const maxLoggedReasons = 4096

// note logs reason for peer the first time the pair is seen.
func (s *transportStats) note(log *slog.Logger, peer, reason string, args ...any) {
	s.noteOnce(log, "raft inbound traffic refused (logged once per peer and reason)", peer, reason,
		append([]any{"peer", peer, "reason", reason}, args...)...)
}

// noteOnce logs msg with args the first time the pair (key, reason) is
// seen.
func (s *transportStats) noteOnce(log *slog.Logger, msg, key, reason string, args ...any) {
	k := [2]string{key, reason}
	s.mu.Lock()
	_, seen := s.logged[k]
	full := len(s.logged) >= maxLoggedReasons
	if !seen && !full {
		if s.logged == nil {
			s.logged = make(map[[2]string]struct{})
		}
		s.logged[k] = struct{}{}
	}
	s.mu.Unlock()
	if seen || full {
		return
	}
	log.Warn(msg, args...)
}
