package gossip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQuery(t *testing.T) {
	t.Parallel()
	ids := []string{"q1", "q2", "q3"}
	nodes := startCluster(t, ids, nil)
	for i, n := range nodes {
		id := ids[i]
		if id == "q3" {
			n.OnQuery(func(string, []byte, string) ([]byte, error) { return nil, errors.New("not today") })
			continue
		}
		n.OnQuery(func(name string, payload []byte, from string) ([]byte, error) {
			return []byte(id + ":" + name + ":" + string(payload) + ":" + from), nil
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	got, err := nodes[0].Query(ctx, "ping", []byte("hi"))
	require.NoError(t, err)
	elapsed := time.Since(start)
	t.Logf("3 replies collected in %s", elapsed)
	require.Less(t, elapsed, 5*time.Second, "Query must return once every member replied")
	require.Len(t, got, 3)
	require.Equal(t, "q1:ping:hi:q1", string(got["q1"].Payload))
	require.NoError(t, got["q1"].Err)
	require.Equal(t, "q2:ping:hi:q1", string(got["q2"].Payload))
	var remote *RemoteError
	require.ErrorAs(t, got["q3"].Err, &remote)
	require.Equal(t, "q3", remote.Node)
	require.Equal(t, "not today", remote.Msg)

	// A member without a handler replies ErrNoQueryHandler's text.
	nodes[1].OnQuery(nil)
	got, err = nodes[0].Query(ctx, "ping", nil)
	require.NoError(t, err)
	require.ErrorContains(t, got["q2"].Err, ErrNoQueryHandler.Error())

	// Oversize and reserved names are refused before sending.
	_, err = nodes[0].Query(ctx, "big", make([]byte, MaxQuerySize))
	require.ErrorIs(t, err, ErrPayloadTooLarge)
	_, err = nodes[0].Query(ctx, "_serf_ping", nil)
	require.ErrorContains(t, err, "reserved prefix")

	// A short deadline returns what arrived, without error.
	nodes[2].OnQuery(func(_ string, _ []byte, _ string) ([]byte, error) {
		<-ctx.Done() // never replies within the short deadline
		return nil, nil
	})
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	got, err = nodes[0].Query(short, "slow", nil)
	require.NoError(t, err)
	require.NotContains(t, got, "q3")
	require.Contains(t, got, "q1")
	cancel() // releases q3's handler so Stop does not wait on it
}

// FuzzDecodeQueryReply decodes query replies as a peer may send them.
func FuzzDecodeQueryReply(f *testing.F) {
	f.Add([]byte{queryReplyOK, 'o', 'k'})
	f.Add([]byte{queryReplyErr, 'n', 'o'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r QueryResponse
		requireAllocBound(t, len(b), 0, func() { r = decodeQueryReply("peer", b) })
		require.Equal(t, "peer", r.From)
		require.True(t, (r.Err == nil) != (r.Payload == nil), "a reply is a payload or an error: %+v", r)
		if r.Err != nil {
			var remote *RemoteError
			require.ErrorAs(t, r.Err, &remote)
			require.LessOrEqual(t, len(remote.Msg), max(len(b), len("malformed reply")))
		}
	})
}
