package ring

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShardForIsStableAndInRange(t *testing.T) {
	t.Parallel()
	counts := map[uint64]int{}
	for i := range 16000 {
		id := fmt.Sprintf("wf-%d", i)
		s := ShardFor(id, 16)
		require.Equal(t, s, ShardFor(id, 16), "same ID, same shard")
		require.GreaterOrEqual(t, s, uint64(1))
		require.LessOrEqual(t, s, uint64(16))
		counts[s]++
	}
	require.Len(t, counts, 16)
	for s, n := range counts {
		require.InDelta(t, 1000, n, 150, "shard %d holds %d of 16000 IDs", s, n)
	}
	require.Equal(t, uint64(1), ShardFor("anything", 1))
}
