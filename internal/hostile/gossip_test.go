package hostile

import (
	"bytes"
	"compress/lzw"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLZWBombInflatesAsComputed(t *testing.T) {
	t.Parallel()
	const n = 8 << 20
	bomb := LZWBomb(n)
	got, err := io.Copy(io.Discard, lzw.NewReader(bytes.NewReader(bomb), lzw.LSB, 8))
	require.NoError(t, err)
	require.GreaterOrEqual(t, got, int64(n))
	require.Less(t, got, int64(n)+4096)
	t.Logf("%d bytes inflate to %d (ratio %d)", len(bomb), got, got/int64(len(bomb)))
}

func TestGossipProbesAreDeterministic(t *testing.T) {
	t.Parallel()
	a := GossipStreamProbes(rand.New(rand.NewPCG(1, 2)))
	b := GossipStreamProbes(rand.New(rand.NewPCG(1, 2)))
	require.Equal(t, a, b)
	require.Equal(t, []byte{GossipPushPull, 0x83}, a[0].Bytes[:2], "a push/pull header is a map of three fields")
	packets := GossipPacketProbes(rand.New(rand.NewPCG(1, 2)))
	for _, p := range packets {
		require.LessOrEqual(t, len(p.Bytes), 65507, "%s fits a datagram", p.Name)
	}
}
