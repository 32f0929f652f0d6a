package hostile

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRaftFrameLayout(t *testing.T) {
	t.Parallel()
	payload := []byte("payload")
	f := RaftFrame(payload)
	require.Len(t, f, 2+RaftHeaderSize+len(payload))
	require.Equal(t, []byte{0xAE, 0x7D}, f[:2])
	h := f[2 : 2+RaftHeaderSize]
	require.Equal(t, RaftMethodBatch, binary.BigEndian.Uint16(h[0:]))
	require.Equal(t, uint64(len(payload)), binary.BigEndian.Uint64(h[2:]))
	require.Equal(t, crc32.ChecksumIEEE(payload), binary.BigEndian.Uint32(h[14:]))
	zeroed := append([]byte(nil), h...)
	copy(zeroed[10:14], []byte{0, 0, 0, 0})
	require.Equal(t, crc32.ChecksumIEEE(zeroed), binary.BigEndian.Uint32(h[10:]))
	require.Equal(t, payload, f[2+RaftHeaderSize:])
}

func TestRaftProbesAreSmall(t *testing.T) {
	t.Parallel()
	for _, p := range RaftProbes(rand.New(rand.NewPCG(1, 2)), "127.0.0.1:9") {
		require.Less(t, len(p.Bytes), 100, p.Name)
	}
}

func TestTruncations(t *testing.T) {
	t.Parallel()
	p := Probe{Name: "p", Bytes: []byte("0123456789")}
	all := Truncations(p, 100)
	require.Len(t, all, 9)
	require.Equal(t, []byte("0"), all[0].Bytes)
	require.Equal(t, []byte("012345678"), all[8].Bytes)
	some := Truncations(p, 3)
	require.Len(t, some, 3)
	require.Nil(t, Truncations(Probe{Bytes: []byte("x")}, 5))
}
