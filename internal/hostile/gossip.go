package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Memberlist message types (memberlist net.go, v0.7.0): a gossip message is
// one type byte followed by msgpack-encoded structs (structs as maps keyed
// by field name). Streams and packets carry no framing of their own.
const (
	GossipPing     byte = 0
	GossipAlive    byte = 4
	GossipPushPull byte = 6
	GossipCompound byte = 7
	GossipUser     byte = 8
	GossipCompress byte = 9
	GossipEncrypt  byte = 10
	GossipHasCRC   byte = 12
)

// PushPullHeader opens a push/pull exchange (memberlist pushPullHeader).
type PushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

// PushNodeState is one node of a push/pull exchange (memberlist
// pushNodeState).
type PushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       int
	Vsn         []uint8
}

// UserMsgHeader opens a user message sent over a stream (memberlist
// userMsgHeader).
type UserMsgHeader struct {
	UserMsgLen int
}

// AliveMsg announces a node (memberlist alive).
type AliveMsg struct {
	Incarnation uint32
	Node        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Vsn         []uint8
}

// PingMsg is a probe of a node (memberlist ping, without its optional
// fields).
type PingMsg struct {
	SeqNo uint32
	Node  string
}

// CompressMsg wraps a compressed message (memberlist compress); Algo 0 is
// LZW.
type CompressMsg struct {
	Algo int
	Buf  []byte
}

// GossipMessage returns msgType followed by each value msgpack-encoded as
// memberlist encodes it. It panics if a value cannot be encoded, which for
// the structs of this package does not happen.
func GossipMessage(msgType byte, vals ...any) []byte {
	var buf bytes.Buffer
	buf.WriteByte(msgType)
	enc := codec.NewEncoder(&buf, &codec.MsgpackHandle{})
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			panic(fmt.Sprintf("hostile: encoding %T: %v", v, err))
		}
	}
	return buf.Bytes()
}

// LZWBomb returns an LZW stream (LSB, 8-bit literals, as memberlist's
// compressMsg uses) that inflates to at least n zero bytes (and less than
// n+4096). It mirrors compress/lzw's decoder: after the first literal, each
// new code is the "KwKwK" code (previous string plus its first byte), so code
// c expands to c-256 zeros; once the 12-bit table is full, the last code
// (3839 zeros) is repeated, which the decoder accepts without growing its
// table. The result is about 1/2500 of n.
func LZWBomb(n int64) []byte {
	const (
		clear    = 256
		eof      = 257
		maxWidth = 12
	)
	var (
		out      []byte
		acc      uint64
		bits     uint
		width    uint = 9
		hi            = eof
		overflow      = 1 << 9
		full     bool
	)
	put := func(code int) {
		acc |= uint64(code) << bits
		bits += width
		for bits >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			bits -= 8
		}
	}
	step := func() { // the decoder's bookkeeping after each code
		hi++
		if hi >= overflow {
			if width == maxWidth {
				hi--
				full = true
			} else {
				width++
				overflow <<= 1
			}
		}
	}
	var produced int64
	if n > 0 {
		put(0)
		produced++
		step()
	}
	for produced < n {
		code := hi // KwKwK until the table is full, then its last entry
		if full {
			code = 1<<maxWidth - 1
		}
		put(code)
		produced += int64(code - clear)
		step()
	}
	put(eof)
	if bits > 0 {
		out = append(out, byte(acc))
	}
	return out
}

// GossipJoinHeader is a valid push/pull header announcing a join with one
// node and no user state; the node itself does not follow.
func GossipJoinHeader() []byte {
	return GossipMessage(GossipPushPull, PushPullHeader{Nodes: 1, Join: true})
}

// GossipStreamProbes returns hostile first messages for a memberlist TCP
// stream: push/pull headers announcing negative or huge node counts and user
// state, a compressed message inflating to 1 GiB, msgpack lengths of 4 GiB,
// truncations, nodes with bad fields, and 4 KiB of random bytes. Each is
// sent on its own connection.
func GossipStreamProbes(rng *rand.Rand) []Probe {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	bomb := LZWBomb(1 << 30)
	join := GossipJoinHeader()
	msg := GossipMessage
	return []Probe{
		{"push/pull header Nodes=-1", msg(GossipPushPull, PushPullHeader{Nodes: -1})},
		{"push/pull header Nodes=MinInt", msg(GossipPushPull, PushPullHeader{Nodes: -1 << 63})},
		{"push/pull header Nodes=1<<20 (memberlist's own limit; 112 MiB)", msg(GossipPushPull, PushPullHeader{Nodes: 1 << 20})},
		{"push/pull header Nodes=16385", msg(GossipPushPull, PushPullHeader{Nodes: 16<<10 + 1})},
		{"push/pull header UserStateLen=20 MiB (memberlist's own limit)", msg(GossipPushPull, PushPullHeader{UserStateLen: 20 << 20})},
		{"push/pull header UserStateLen=-1", msg(GossipPushPull, PushPullHeader{UserStateLen: -1})},
		{"push/pull header UserStateLen=1<<40", msg(GossipPushPull, PushPullHeader{UserStateLen: 1 << 40})},
		{"compressed push/pull inflating to 1 GiB", msg(GossipCompress, CompressMsg{Algo: 0, Buf: bomb})},
		{"compressed message, unknown algorithm", msg(GossipCompress, CompressMsg{Algo: 7, Buf: bomb[:1024]})},
		{"compressed message inflating to nothing", msg(GossipCompress, CompressMsg{Buf: LZWBomb(0)})},
		{"user message UserMsgLen=-1", msg(GossipUser, UserMsgHeader{UserMsgLen: -1})},
		{"user message UserMsgLen=20 MiB (memberlist's own limit)", msg(GossipUser, UserMsgHeader{UserMsgLen: 20 << 20})},
		{"compressed ping inflating to 1 MiB of zeros", msg(GossipCompress, CompressMsg{Buf: LZWBomb(1 << 20)})},
		{"user message UserMsgLen=1<<40", msg(GossipUser, UserMsgHeader{UserMsgLen: 1 << 40})},
		{"encrypted frame of 4 GiB on a member without a key", append([]byte{GossipEncrypt}, u32(0xffffffff)...)},
		{"msgpack bin32 length 4 GiB in a compressed frame", append([]byte{GossipCompress, 0x82, 0xa4, 'A', 'l', 'g', 'o', 0x00, 0xa3, 'B', 'u', 'f', 0xc6}, u32(0xffffffff)...)},
		{"msgpack map32 length 4 GiB as push/pull header", append([]byte{GossipPushPull, 0xdf}, u32(0xffffffff)...)},
		{"msgpack array32 length 4 GiB as node state", append(append([]byte(nil), join...), append([]byte{0xdd}, u32(0xffffffff)...)...)},
		{"truncated push/pull header", join[:len(join)/2]},
		{"push/pull header without its node", join},
		{"truncated compressed frame", msg(GossipCompress, CompressMsg{Buf: bomb})[:5000]},
		{"message type only", []byte{GossipPushPull}},
		{"unknown message type", []byte{200, 1, 2, 3}},
		{"join with a node of bad fields (short Vsn, 1-byte address, unknown state)", msg(GossipPushPull,
			PushPullHeader{Nodes: 1, Join: true},
			PushNodeState{Name: "", Addr: []byte{1}, Port: 0, Meta: RandomBytes(rng, 600), State: 99, Vsn: []uint8{1}})},
		{"join with a node of bad fields (Vsn of 6 zero versions)", msg(GossipPushPull,
			PushPullHeader{Nodes: 1, Join: true},
			PushNodeState{Name: "ghost", Addr: net.IPv4(127, 0, 0, 1).To4(), Port: 1, State: 0, Vsn: make([]uint8, 6)})},
		{"ping for another node", msg(GossipPing, PingMsg{SeqNo: 1, Node: "someone-else"})},
		{"random bytes", RandomBytes(rng, 4096)},
	}
}

// GossipPacketProbes returns hostile memberlist UDP packets: a compressed
// packet inflating to 143 MiB (the most a datagram can carry), alive and
// compound messages with bad fields, a bad checksum, an empty packet, and 200
// packets of random bytes.
func GossipPacketProbes(rng *rand.Rand) []Probe {
	udpBomb := LZWBomb(60000 * 2500) // fits one datagram
	msg := GossipMessage
	probes := []Probe{
		{"compressed packet inflating to 143 MiB", msg(GossipCompress, CompressMsg{Buf: udpBomb})},
		{"compressed packet, truncated", msg(GossipCompress, CompressMsg{Buf: udpBomb})[:100]},
		{"alive with bad fields", msg(GossipAlive, AliveMsg{Node: "x", Addr: []byte{1}, Meta: RandomBytes(rng, 600), Vsn: []uint8{1, 2}})},
		{"alive with no fields", msg(GossipAlive, struct{}{})},
		{"compound with 255 parts of huge lengths", append([]byte{GossipCompound, 255}, bytes.Repeat([]byte{0xff, 0xff}, 255)...)},
		{"CRC frame with a bad checksum", []byte{GossipHasCRC, 1, 2, 3, 4, GossipPing}},
		{"user message of junk", append([]byte{GossipUser}, RandomBytes(rng, 1000)...)},
		{"message type only", []byte{GossipAlive}},
		{"empty packet", nil},
	}
	return append(probes, RandomProbes(rng, "random bytes", 200, 1400, nil)...)
}
