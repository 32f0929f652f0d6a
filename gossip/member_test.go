package gossip

import (
	"bytes"
	"net"
	"testing"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/serf/serf"
	"github.com/stretchr/testify/require"
)

// serfDecodeTags is Serf's decoding of a peer's tags (memberlist node
// meta), copied from serf v0.11.0 (serf.go, Serf.decodeTags, unexported):
// Serf runs it on every alive message and push/pull, and Graft receives
// its result in Member.Tags. The magic byte is serf's tagMagicByte.
func serfDecodeTags(buf []byte) map[string]string {
	tags := make(map[string]string)
	if len(buf) == 0 || buf[0] != 255 {
		tags["role"] = string(buf)
		return tags
	}
	dec := codec.NewDecoder(bytes.NewReader(buf[1:]), &codec.MsgpackHandle{})
	_ = dec.Decode(&tags)
	return tags
}

func encodeTags(t testing.TB, tags map[string]string) []byte {
	var buf bytes.Buffer
	buf.WriteByte(255)
	require.NoError(t, codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(tags))
	return buf.Bytes()
}

func TestSerfDecodeTagsMatchesSerf(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "tags1"))
	tags := map[string]string{"role": "worker", "graft.rpc": "127.0.0.1:9000"}
	require.NoError(t, n.SetTags(tags))
	s, err := n.serf()
	require.NoError(t, err)
	require.Equal(t, tags, serfDecodeTags(s.Memberlist().LocalNode().Meta))
	require.Equal(t, tags, serfDecodeTags(encodeTags(t, tags)))
}

// serfMsgpackInitLen is what go-msgpack (default MaxInitLen) may allocate up
// front for one string or container whose length prefix lies: 256 KiB.
// Serf's tag decoding uses that default, so 7 bytes of tags can cost a
// transient 256 KiB allocation (never more: memberlist drops node meta over
// 512 bytes, and decoding stops at the first truncated value).
const serfMsgpackInitLen = 256 << 10

// FuzzTags decodes peer tags the way Serf does, then converts the member as
// Graft does; the tag bytes come from any peer that can gossip.
func FuzzTags(f *testing.F) {
	f.Add(encodeTags(f, map[string]string{"role": "worker"}))
	f.Add([]byte("legacy-role"))
	f.Add([]byte{255, 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{255, 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Member
		requireAllocBound(t, len(b), serfMsgpackInitLen, func() {
			m = memberFromSerf(serf.Member{Name: "peer", Addr: net.IPv4(127, 0, 0, 1), Tags: serfDecodeTags(b)})
		})
		for _, v := range m.Tags {
			require.LessOrEqual(t, len(v), len(b))
		}
	})
}
