package gossip

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUserEnvelope(t *testing.T) {
	t.Parallel()
	from, payload, err := decodeUserEnvelope(encodeUserEnvelope("node-1", []byte("hello")))
	require.NoError(t, err)
	require.Equal(t, "node-1", from)
	require.Equal(t, []byte("hello"), payload)

	for _, bad := range [][]byte{nil, {9}, {userEnvelopeVersion}, {userEnvelopeVersion, 50, 'a'}} {
		_, _, err := decodeUserEnvelope(bad)
		require.Error(t, err)
	}
}

func TestBroadcast(t *testing.T) {
	t.Parallel()
	ids := []string{"b1", "b2", "b3"}
	nodes := startCluster(t, ids, nil)
	logs := make([]*userLog, len(nodes))
	for i, n := range nodes {
		logs[i] = &userLog{}
		n.OnUserEvent(logs[i].handler)
	}

	require.NoError(t, nodes[1].Broadcast("deploy", []byte("v2")))
	// Largest accepted event: name + payload == MaxUserEventSize.
	big := bytes.Repeat([]byte("x"), MaxUserEventSize-len("big"))
	require.NoError(t, nodes[2].Broadcast("big", big))

	for i := range nodes {
		require.Eventually(t, func() bool {
			return logs[i].has("deploy|v2|b2") && logs[i].has("big|"+string(big)+"|b3")
		}, waitFor, 10*time.Millisecond, "member %s missed a user event", ids[i])
	}

	// One byte more is refused before anything is sent (the check does not
	// even need a started node).
	err := nodes[0].Broadcast("big", append(big, 'x'))
	require.ErrorIs(t, err, ErrPayloadTooLarge)
	var tooLarge *PayloadTooLargeError
	require.ErrorAs(t, err, &tooLarge)
	require.Equal(t, MaxUserEventSize+1, tooLarge.Size)
	require.ErrorContains(t, err, "exceeds the limit of 512 bytes")
	unstarted, err := New(Config{NodeID: "x"})
	require.NoError(t, err)
	require.ErrorIs(t, unstarted.Broadcast("big", append(big, 'x')), ErrPayloadTooLarge)
	require.ErrorIs(t, unstarted.Broadcast("ok", nil), ErrNotStarted)
	require.NoError(t, unstarted.Stop())
	require.Error(t, nodes[0].Broadcast("", nil))
}

// FuzzUserEnvelope decodes user event payloads as a peer may send them.
func FuzzUserEnvelope(f *testing.F) {
	f.Add(encodeUserEnvelope("node-1", []byte("hello")))
	f.Add([]byte{userEnvelopeVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			from    string
			payload []byte
			err     error
		)
		requireAllocBound(t, len(b), 0, func() { from, payload, err = decodeUserEnvelope(b) })
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(from)+len(payload), len(b))
		from2, payload2, err := decodeUserEnvelope(encodeUserEnvelope(from, payload))
		require.NoError(t, err)
		require.Equal(t, from, from2)
		require.Equal(t, payload, payload2)
	})
}
