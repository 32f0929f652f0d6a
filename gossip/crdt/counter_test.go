package crdt

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func genGCounter() *rapid.Generator[GCounter] {
	return rapid.Custom(func(t *rapid.T) GCounter {
		var c GCounter
		for _, m := range testMembers {
			if rapid.Bool().Draw(t, m) {
				c.Add(m, rapid.Uint64Range(0, 5).Draw(t, m+" n"))
			}
		}
		return c
	})
}

func genPNCounter() *rapid.Generator[PNCounter] {
	return rapid.Custom(func(t *rapid.T) PNCounter {
		var c PNCounter
		for range rapid.IntRange(0, 6).Draw(t, "ops") {
			c.Add(rapid.SampledFrom(testMembers).Draw(t, "member"), rapid.Int64Range(-5, 5).Draw(t, "delta"))
		}
		return c
	})
}

func gMerged(a, b GCounter) *GCounter {
	out := a.Clone()
	out.Merge(&b)
	return &out
}

// pnEntries is the canonical content of c.
func pnEntries(c *PNCounter) [2]map[string]uint64 {
	return [2]map[string]uint64{c.p.Entries(), c.n.Entries()}
}

func pnMerged(a, b PNCounter) *PNCounter {
	out := a.Clone()
	out.Merge(&b)
	return &out
}

// TestGCounterLaws: merge is commutative, associative and idempotent, and
// never lowers an entry or the value.
func TestGCounterLaws(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genGCounter().Draw(t, "a"), genGCounter().Draw(t, "b"), genGCounter().Draw(t, "c")
		require.Equal(t, gMerged(a, b).Entries(), gMerged(b, a).Entries(), "commutative")
		require.Equal(t, gMerged(*gMerged(a, b), c).Entries(), gMerged(a, *gMerged(b, c)).Entries(), "associative")
		require.Equal(t, a.Entries(), gMerged(a, a).Entries(), "idempotent")
		ab := gMerged(a, b)
		for _, m := range testMembers {
			require.GreaterOrEqual(t, ab.Get(m), a.Get(m), "entry %s", m)
		}
		require.GreaterOrEqual(t, ab.Value(), a.Value())
	})
}

// TestPNCounterLaws: the same laws, and the value of a merge of replicas
// that each saw a disjoint set of members' operations is the sum.
func TestPNCounterLaws(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genPNCounter().Draw(t, "a"), genPNCounter().Draw(t, "b"), genPNCounter().Draw(t, "c")
		require.Equal(t, pnEntries(pnMerged(a, b)), pnEntries(pnMerged(b, a)), "commutative")
		require.Equal(t, pnEntries(pnMerged(*pnMerged(a, b), c)), pnEntries(pnMerged(a, *pnMerged(b, c))), "associative")
		require.Equal(t, pnEntries(&a), pnEntries(pnMerged(a, a)), "idempotent")

		var x, y PNCounter
		var want int64
		for i := range rapid.IntRange(0, 10).Draw(t, "ops") {
			d := rapid.Int64Range(-5, 5).Draw(t, "delta")
			want += d
			if i%2 == 0 {
				x.Add("x", d)
			} else {
				y.Add("y", d)
			}
		}
		require.Equal(t, want, pnMerged(x, y).Value())
	})
}

func TestCounterSaturates(t *testing.T) {
	t.Parallel()
	var g GCounter
	g.Add("a", math.MaxUint64-1)
	g.Add("a", 5)
	require.Equal(t, uint64(math.MaxUint64), g.Get("a"))
	g.Add("b", 1)
	require.Equal(t, uint64(math.MaxUint64), g.Value())

	var p PNCounter
	p.Add("a", math.MinInt64)
	require.Equal(t, int64(math.MinInt64), p.Value())
	p.Add("a", math.MaxInt64)
	require.Equal(t, int64(-1), p.Value())
}

func TestCounterString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "workflows_started", WorkflowsStarted.String())
	require.Equal(t, "step_errors", StepErrors.String())
	require.Equal(t, "Counter(9)", Counter(9).String())
}
