package ring

import "slices"

// Move is the change of one shard's replica set between two placements.
type Move struct {
	// Shard is the shard whose replica set changes.
	Shard uint64
	// Add lists the members that gain a replica of Shard, sorted.
	Add []string
	// Remove lists the members that lose their replica of Shard, sorted.
	Remove []string
}

// Diff lists, in shard order, the replicas to add and to remove to go from
// placement p to placement next. Shards whose replica sets are equal (as
// sets: a change of preferred leader alone is not a move) are absent. A nil
// placement has no shards, so Diff(nil, next) adds every replica. Shards
// present in only one placement are added or removed entirely.
func Diff(p, next *Placement) []Move {
	n := max(p.shards(), next.shards())
	var moves []Move
	for s := range n {
		shard := uint64(s + 1)
		from, to := p.Replicas(shard), next.Replicas(shard)
		add := setMinus(to, from)
		remove := setMinus(from, to)
		if len(add) == 0 && len(remove) == 0 {
			continue
		}
		moves = append(moves, Move{Shard: shard, Add: add, Remove: remove})
	}
	return moves
}

// shards is ShardCount, or 0 for a nil placement.
func (p *Placement) shards() int {
	if p == nil {
		return 0
	}
	return p.shardCount
}

// setMinus returns the members of a not in b, sorted; nil if none.
func setMinus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
