package gossip

import (
	"bytes"
	"compress/lzw"
	"testing"

	"github.com/eleven-am/graft/internal/hostile"
	"github.com/stretchr/testify/require"
)

// fuzzLimits are small guard limits, so that fuzzing explores the limits
// rather than spending its time inflating megabytes.
var fuzzLimits = guardLimits{
	MaxPushPullNodes:     64,
	MaxPushPullUserState: 4 << 10,
	MaxStreamUserMsg:     4 << 10,
	MaxStreamInflate:     16 << 10,
	MaxPacketInflate:     4 << 10,
	MaxStateStreams:      1,
}

func guardSeeds(f *testing.F) {
	f.Add(hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{Nodes: -1}))
	f.Add(hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{Nodes: 3, UserStateLen: 100, Join: true}))
	f.Add(hostile.GossipMessage(mlUserMsg, hostile.UserMsgHeader{UserMsgLen: 1 << 30}))
	f.Add(hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: hostile.LZWBomb(1 << 20)}))
	f.Add(hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: hostile.LZWBomb(100)}))
	f.Add(append([]byte{mlCompoundMsg, 2, 0, 1, 0, 1}, mlPushPullMsg, mlUserMsg))
	f.Add(append([]byte{mlHasCRCMsg, 0, 0, 0, 0}, hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: hostile.LZWBomb(10)})...))
}

func TestGuardLimits(t *testing.T) {
	t.Parallel()
	l := gossipLimits(0)
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"push/pull within limits", hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{Nodes: 16 << 10, UserStateLen: 4 << 20}), true},
		{"push/pull Nodes=-1", hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{Nodes: -1}), false},
		{"push/pull too many nodes", hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{Nodes: 16<<10 + 1}), false},
		{"push/pull too much state", hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{UserStateLen: 4<<20 + 1}), false},
		{"user message within limits", hostile.GossipMessage(mlUserMsg, hostile.UserMsgHeader{UserMsgLen: 64 << 10}), true},
		{"user message too long", hostile.GossipMessage(mlUserMsg, hostile.UserMsgHeader{UserMsgLen: 64<<10 + 1}), false},
		{"compressed push/pull within limits", hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: compressFrame(t, hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{Nodes: 2}))}), true},
		{"compressed push/pull over the node limit", hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: compressFrame(t, hostile.GossipMessage(mlPushPullMsg, hostile.PushPullHeader{Nodes: 1 << 20}))}), false},
		{"compressed frame over 8 MiB", hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: hostile.LZWBomb(8<<20 + 1)}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkStreamFrame(tc.b[0], bytes.NewReader(tc.b[1:]), l)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
	// UDP: 64 KiB decompressed at most; compound parts are checked.
	require.NoError(t, checkPacket(hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: hostile.LZWBomb(60 << 10)}), l, 0))
	require.Error(t, checkPacket(hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: hostile.LZWBomb(64<<10 + 1)}), l, 0))
	bomb := hostile.GossipMessage(mlCompressMsg, hostile.CompressMsg{Buf: hostile.LZWBomb(1 << 20)})
	compound := append([]byte{mlCompoundMsg, 1, byte(len(bomb) >> 8), byte(len(bomb))}, bomb...)
	require.Error(t, checkPacket(compound, l, 0))
	require.Error(t, checkPacket(nil, l, 0))
}

func compressFrame(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lzw.NewWriter(&buf, lzw.LSB, 8)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// FuzzGuardPacket checks UDP packets as a peer may send them.
func FuzzGuardPacket(f *testing.F) {
	guardSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		requireAllocBound(t, len(b), 4*fuzzLimits.MaxPacketInflate, func() { _ = checkPacket(b, fuzzLimits, 0) })
	})
}

// FuzzGuardStream checks the first frame of TCP streams as a peer may send
// it.
func FuzzGuardStream(f *testing.F) {
	guardSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		requireAllocBound(t, len(b), 4*fuzzLimits.MaxStreamInflate, func() {
			_ = checkStreamFrame(b[0], bytes.NewReader(b[1:]), fuzzLimits)
		})
	})
}
