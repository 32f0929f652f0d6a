package gossip

import (
	"bytes"
	"compress/lzw"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// memberlist's wire format (net.go in memberlist v0.7.0): a frame is one
// message-type byte followed by msgpack-encoded structs. These values are
// part of memberlist's protocol and never change.
const (
	mlPushPullMsg = 6
	mlCompoundMsg = 7
	mlUserMsg     = 8
	mlCompressMsg = 9
	mlHasCRCMsg   = 12
	// mlLZW is memberlist's only compression algorithm (LSB, 8-bit literals).
	mlLZW = 0
	// guardMaxDepth bounds nesting (compressed compound of compressed ...).
	// memberlist itself never nests deeper than compress(compound(msg)).
	guardMaxDepth = 3
)

// guardLimits are the limits the guard applies to inbound plaintext gossip
// before memberlist decodes it. memberlist v0.7.0 has the same checks with
// fixed, much larger limits (unexported constants, not Config fields): at
// most 1,048,576 nodes per push/pull, 20 MiB of user state or user message,
// 40 MiB decompressed. Those still let a 12-byte header make memberlist
// allocate 112 MiB (it sizes its node slice from the header before reading a
// node), and a 60 KB UDP packet keep its packet goroutine decompressing
// 40 MiB while probes go unanswered. The guard's limits are sized for Graft:
// see serfConfig for the values and why.
type guardLimits struct {
	// MaxPushPullNodes bounds the Nodes field of a push/pull header.
	MaxPushPullNodes int
	// MaxPushPullUserState bounds its UserStateLen (Serf's state), in bytes.
	MaxPushPullUserState int
	// MaxStreamUserMsg bounds the length of a user message sent over TCP.
	MaxStreamUserMsg int
	// MaxStreamInflate bounds a compressed TCP frame once decompressed.
	MaxStreamInflate int
	// MaxPacketInflate bounds a compressed UDP packet once decompressed.
	MaxPacketInflate int
	// MaxStateStreams bounds the push/pull and compressed TCP streams
	// checked or being read by memberlist at once; more are closed.
	MaxStateStreams int
	// ReadTimeout bounds the time a stream may take to send what the guard
	// reads (memberlist's TCPTimeout).
	ReadTimeout time.Duration
}

// guardTransport wraps memberlist's network transport and drops inbound
// plaintext frames that exceed guardLimits before memberlist decodes them.
// Encrypted frames pass unchanged: memberlist authenticates them before
// decoding, so only holders of the cluster key can send them.
type guardTransport struct {
	*memberlist.NetTransport
	limits    guardLimits
	plaintext bool // no cluster key: packets arrive unencrypted
	logger    *slog.Logger

	packetCh   chan *memberlist.Packet
	streamCh   chan net.Conn
	stateSlots chan struct{} // MaxStateStreams tokens
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*guardTransport)(nil)

// newGuardTransport wraps nt and starts the goroutines that move checked
// packets and streams to memberlist. Shutdown stops them and nt.
func newGuardTransport(nt *memberlist.NetTransport, limits guardLimits, plaintext bool, logger *slog.Logger) *guardTransport {
	g := &guardTransport{
		NetTransport: nt,
		limits:       limits,
		plaintext:    plaintext,
		logger:       logger,
		packetCh:     make(chan *memberlist.Packet),
		streamCh:     make(chan net.Conn),
		stateSlots:   make(chan struct{}, limits.MaxStateStreams),
		stop:         make(chan struct{}),
	}
	g.wg.Go(g.pumpPackets)
	g.wg.Go(g.pumpStreams)
	return g
}

// PacketCh returns the packets that passed the checks.
func (g *guardTransport) PacketCh() <-chan *memberlist.Packet { return g.packetCh }

// StreamCh returns the streams whose first frame passed the checks.
func (g *guardTransport) StreamCh() <-chan net.Conn { return g.streamCh }

// Shutdown stops the network transport and the guard's goroutines. It is
// safe to call more than once.
func (g *guardTransport) Shutdown() error {
	var err error
	g.stopOnce.Do(func() {
		err = g.NetTransport.Shutdown()
		close(g.stop)
		g.wg.Wait()
	})
	return err
}

func (g *guardTransport) pumpPackets() {
	in := g.NetTransport.PacketCh()
	for {
		select {
		case <-g.stop:
			return
		case p := <-in:
			if g.plaintext {
				if err := checkPacket(p.Buf, g.limits, 0); err != nil {
					g.logger.Warn("gossip: dropping malformed gossip packet", "from", p.From.String(), "error", err)
					continue
				}
			}
			// NetTransport reads every packet into its own 64 KiB buffer;
			// keep only the bytes, as memberlist may queue the packet.
			if cap(p.Buf) > 4*len(p.Buf) {
				p.Buf = bytes.Clone(p.Buf)
			}
			select {
			case g.packetCh <- p:
			case <-g.stop:
				return
			}
		}
	}
}

func (g *guardTransport) pumpStreams() {
	in := g.NetTransport.StreamCh()
	for {
		select {
		case <-g.stop:
			return
		case conn := <-in:
			g.wg.Go(func() { g.checkStream(conn) })
		}
	}
}

// checkStream reads the start of conn's first frame, checks it and hands
// memberlist a connection that replays what was read.
func (g *guardTransport) checkStream(conn net.Conn) {
	out, err := g.guardStream(conn)
	if err != nil {
		// A peer that hangs up or stalls before a whole header is only
		// logged at debug level: junk connections must not flood the log.
		level := slog.LevelWarn
		var ne net.Error
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) && ne.Timeout() {
			level = slog.LevelDebug
		}
		g.logger.Log(context.Background(), level, "gossip: closing malformed gossip stream",
			"from", conn.RemoteAddr().String(), "error", err)
		_ = conn.Close()
		return
	}
	select {
	case g.streamCh <- out:
	case <-g.stop:
		_ = out.Close()
	}
}

func (g *guardTransport) guardStream(conn net.Conn) (net.Conn, error) {
	if err := conn.SetReadDeadline(time.Now().Add(g.limits.ReadTimeout)); err != nil {
		return nil, err
	}
	var seen bytes.Buffer
	// Nothing the guard reads is larger than a compressed frame; LZW at
	// worst grows its input by half.
	r := io.TeeReader(io.LimitReader(conn, int64(2*g.limits.MaxStreamInflate)), &seen)
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return nil, err
	}
	replay := func(release func()) net.Conn {
		return &replayConn{Conn: conn, r: io.MultiReader(&seen, conn), release: release}
	}
	switch first[0] {
	case mlPushPullMsg, mlCompressMsg:
	case mlUserMsg:
		if err := checkStreamFrame(first[0], r, g.limits); err != nil {
			return nil, err
		}
		return replay(nil), nil
	default:
		// Pings, encrypted and labelled frames, unknown types: memberlist
		// handles them without allocating by the frame's word.
		return replay(nil), nil
	}
	select {
	case g.stateSlots <- struct{}{}:
	default:
		return nil, fmt.Errorf("more than %d push/pull streams at once", g.limits.MaxStateStreams)
	}
	release := func() { <-g.stateSlots }
	if err := checkStreamFrame(first[0], r, g.limits); err != nil {
		release()
		return nil, err
	}
	return replay(release), nil
}

// checkStreamFrame checks a stream frame of type msgType whose body r
// returns.
func checkStreamFrame(msgType byte, r io.Reader, l guardLimits) error {
	dec := codec.NewDecoder(r, guardMsgpack())
	switch msgType {
	case mlPushPullMsg:
		var h struct {
			Nodes        int
			UserStateLen int
			Join         bool
		}
		if err := dec.Decode(&h); err != nil {
			return fmt.Errorf("push/pull header: %w", err)
		}
		if h.Nodes < 0 || h.Nodes > l.MaxPushPullNodes {
			return fmt.Errorf("push/pull of %d nodes (at most %d)", h.Nodes, l.MaxPushPullNodes)
		}
		if h.UserStateLen < 0 || h.UserStateLen > l.MaxPushPullUserState {
			return fmt.Errorf("push/pull user state of %d bytes (at most %d)", h.UserStateLen, l.MaxPushPullUserState)
		}
	case mlUserMsg:
		var h struct{ UserMsgLen int }
		if err := dec.Decode(&h); err != nil {
			return fmt.Errorf("user message header: %w", err)
		}
		if h.UserMsgLen < 0 || h.UserMsgLen > l.MaxStreamUserMsg {
			return fmt.Errorf("user message of %d bytes (at most %d)", h.UserMsgLen, l.MaxStreamUserMsg)
		}
	case mlCompressMsg:
		plain, err := decodeCompressed(dec, l.MaxStreamInflate)
		if err != nil {
			return err
		}
		switch plain[0] {
		case mlPushPullMsg, mlUserMsg:
			return checkStreamFrame(plain[0], bytes.NewReader(plain[1:]), l)
		case mlCompressMsg:
			return errors.New("nested compressed frame")
		}
	}
	return nil
}

// guardMaxInitLen caps what the guard's msgpack decoder allocates up front
// for a string, byte slice or container whose length prefix may lie;
// go-msgpack's default is up to 256 KiB. Longer values still decode,
// growing as their bytes actually arrive.
const guardMaxInitLen = 4 << 10

func guardMsgpack() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.MaxInitLen = guardMaxInitLen
	return h
}

// checkPacket checks a plaintext UDP packet (or one part of a compound
// packet) at nesting depth.
func checkPacket(buf []byte, l guardLimits, depth int) error {
	if depth > guardMaxDepth {
		return errors.New("frames nested too deep")
	}
	if len(buf) == 0 {
		return errors.New("empty frame")
	}
	switch buf[0] {
	case mlHasCRCMsg:
		if len(buf) < 5 {
			return errors.New("truncated checksum frame")
		}
		return checkPacket(buf[5:], l, depth+1)
	case mlCompressMsg:
		dec := codec.NewDecoderBytes(buf[1:], guardMsgpack())
		plain, err := decodeCompressed(dec, l.MaxPacketInflate)
		if err != nil {
			return err
		}
		return checkPacket(plain, l, depth+1)
	case mlCompoundMsg:
		parts, err := splitCompound(buf[1:])
		if err != nil {
			return err
		}
		for _, p := range parts {
			if err := checkPacket(p, l, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitCompound splits a compound frame's body the way memberlist does: a
// part count byte, one big-endian uint16 length per part, then the parts.
func splitCompound(b []byte) ([][]byte, error) {
	if len(b) < 1 {
		return nil, errors.New("truncated compound frame")
	}
	n := int(b[0])
	b = b[1:]
	if len(b) < 2*n {
		return nil, errors.New("truncated compound frame")
	}
	lengths := b[:2*n]
	b = b[2*n:]
	parts := make([][]byte, 0, n)
	for i := range n {
		l := int(binary.BigEndian.Uint16(lengths[2*i:]))
		if len(b) < l {
			return nil, errors.New("truncated compound frame part")
		}
		parts = append(parts, b[:l])
		b = b[l:]
	}
	return parts, nil
}

// decodeCompressed decodes memberlist's compress struct and inflates its
// payload, refusing more than limit bytes or an empty result.
func decodeCompressed(dec *codec.Decoder, limit int) ([]byte, error) {
	var c struct {
		Algo uint8
		Buf  []byte
	}
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("compressed frame: %w", err)
	}
	if c.Algo != mlLZW {
		return nil, fmt.Errorf("compressed frame: unknown algorithm %d", c.Algo)
	}
	plain, err := inflate(c.Buf, limit)
	if err != nil {
		return nil, err
	}
	if len(plain) == 0 {
		return nil, errors.New("compressed frame inflates to nothing")
	}
	return plain, nil
}

// inflate decompresses memberlist's LZW payload, reading at most limit+1
// bytes of output.
func inflate(b []byte, limit int) ([]byte, error) {
	zr := lzw.NewReader(bytes.NewReader(b), lzw.LSB, 8)
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("compressed frame: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("compressed frame inflates to more than %d bytes", limit)
	}
	return out, nil
}

// replayConn returns the bytes the guard read before the rest of the
// connection, and releases the guard's slot when memberlist closes it.
type replayConn struct {
	net.Conn
	r         io.Reader
	release   func()
	closeOnce sync.Once
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *replayConn) Close() error {
	c.closeOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
	return c.Conn.Close()
}
