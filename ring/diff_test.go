package ring

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	cfg := Config{ShardCount: 16}
	three := mustPlace(t, cfg, members(3))
	four := mustPlace(t, cfg, members(4))
	tests := []struct {
		name  string
		from  *Placement
		to    *Placement
		check func(t *testing.T, moves []Move)
	}{
		{"same placement", three, three, func(t *testing.T, moves []Move) {
			require.Empty(t, moves)
		}},
		{"equal placements", three, mustPlace(t, cfg, members(3)), func(t *testing.T, moves []Move) {
			require.Empty(t, moves)
		}},
		{"both nil", nil, nil, func(t *testing.T, moves []Move) {
			require.Empty(t, moves)
		}},
		{"from nil adds everything", nil, three, func(t *testing.T, moves []Move) {
			require.Len(t, moves, 16)
			for i, m := range moves {
				require.Equal(t, uint64(i+1), m.Shard)
				require.Equal(t, []string{"n1", "n2", "n3"}, m.Add)
				require.Empty(t, m.Remove)
			}
		}},
		{"to nil removes everything", three, nil, func(t *testing.T, moves []Move) {
			require.Len(t, moves, 16)
			for _, m := range moves {
				require.Empty(t, m.Add)
				require.Equal(t, []string{"n1", "n2", "n3"}, m.Remove)
			}
		}},
		{"join", three, four, func(t *testing.T, moves []Move) {
			require.NotEmpty(t, moves)
			for _, m := range moves {
				// With 3 members every shard is on all of them, so a
				// 4th member can only replace one.
				require.Equal(t, []string{"n4"}, m.Add, "shard %d", m.Shard)
				require.Len(t, m.Remove, 1)
				require.NotEqual(t, "n4", m.Remove[0])
				require.Contains(t, four.Replicas(m.Shard), "n4")
			}
			for s := uint64(1); s <= 16; s++ {
				_, moved := findMove(moves, s)
				require.Equal(t, moved, slices.Contains(four.Replicas(s), "n4"), "shard %d", s)
			}
		}},
		{"leave reverses join", four, three, func(t *testing.T, moves []Move) {
			back := Diff(three, four)
			require.Len(t, moves, len(back))
			for i, m := range moves {
				require.Equal(t, back[i].Shard, m.Shard)
				require.Equal(t, back[i].Add, m.Remove)
				require.Equal(t, back[i].Remove, m.Add)
			}
		}},
		{"shard count grows", mustPlace(t, Config{ShardCount: 2}, members(1)), mustPlace(t, Config{ShardCount: 3}, members(1)), func(t *testing.T, moves []Move) {
			require.Equal(t, []Move{{Shard: 3, Add: []string{"n1"}}}, moves)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, Diff(tt.from, tt.to))
		})
	}
}

func TestDiffIgnoresLeaderOnlyChanges(t *testing.T) {
	t.Parallel()
	a := &Placement{shardCount: 1, replicas: [][]string{{"n1", "n2", "n3"}}}
	b := &Placement{shardCount: 1, replicas: [][]string{{"n3", "n1", "n2"}}}
	require.Empty(t, Diff(a, b))
	c := &Placement{shardCount: 1, replicas: [][]string{{"n4", "n1", "n3"}}}
	require.Equal(t, []Move{{Shard: 1, Add: []string{"n4"}, Remove: []string{"n2"}}}, Diff(a, c))
}

func findMove(moves []Move, shard uint64) (Move, bool) {
	for _, m := range moves {
		if m.Shard == shard {
			return m, true
		}
	}
	return Move{}, false
}
