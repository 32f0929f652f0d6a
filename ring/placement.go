package ring

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/buraksezer/consistent"
)

// Defaults applied by Place to zero-valued Config fields.
const (
	// DefaultReplicationFactor is the default Config.ReplicationFactor.
	DefaultReplicationFactor = 3
	// DefaultLoad is the default Config.Load.
	DefaultLoad = 1.25
)

// Limits checked by Config.Validate and Place.
const (
	// MaxShardCount is the largest accepted Config.ShardCount.
	MaxShardCount = 1 << 16
	// MaxWeight is the largest accepted Member.Weight. Each unit of weight
	// is a member of the consistent ring, whose construction cost grows
	// with the square of their total.
	MaxWeight = 8
)

// virtualNodes is how many points each (weight unit of a) member gets on the
// hash ring: buraksezer/consistent's Config.ReplicationFactor. Like the
// hasher it is part of the cluster protocol and must never change.
const virtualNodes = 64

// ErrInvalidConfig is returned (wrapped, with the reason) by Place and
// Config.Validate when the configuration or the member list is refused.
var ErrInvalidConfig = errors.New("graft: ring: invalid config")

// Member is a cluster member as placement sees it.
type Member struct {
	// ID is the member's unique, stable node ID. Required.
	ID string
	// Weight is the member's relative capacity: a member of weight 2 is
	// given about twice the replicas and leaderships of a member of weight
	// 1. Zero means 1; at most MaxWeight.
	Weight int
}

// weight returns the member's effective weight.
func (m Member) weight() int { return cmp.Or(m.Weight, 1) }

// Config configures Place. Every member of a cluster must use the same
// values, or members disagree on placement.
type Config struct {
	// ShardCount is the number of shards, numbered 1..ShardCount. Fixed
	// when the cluster is created. Required; at most MaxShardCount.
	ShardCount int
	// ReplicationFactor is the number of replicas of each shard. Zero means
	// DefaultReplicationFactor (3). Capped at the number of members, so a
	// single member holds every shard.
	ReplicationFactor int
	// Load is the bounded-load factor: how far above its fair share a
	// member's load may go. It bounds the shards a member owns on the
	// consistent ring (buraksezer/consistent's Config.Load) and the
	// replicas it holds (at most ceil(Load × its weighted share of
	// ShardCount × ReplicationFactor)). Zero means DefaultLoad (1.25);
	// otherwise it must be greater than 1.
	Load float64
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.ReplicationFactor = cmp.Or(c.ReplicationFactor, DefaultReplicationFactor)
	c.Load = cmp.Or(c.Load, DefaultLoad)
	return c
}

// Validate reports whether c is acceptable to Place, treating zero fields as
// their defaults. The error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.ShardCount < 1:
		return fmt.Errorf("%w: ShardCount (%d) must be at least 1", ErrInvalidConfig, c.ShardCount)
	case c.ShardCount > MaxShardCount:
		return fmt.Errorf("%w: ShardCount (%d) must be at most %d", ErrInvalidConfig, c.ShardCount, MaxShardCount)
	case c.ReplicationFactor < 1:
		return fmt.Errorf("%w: ReplicationFactor (%d) must be at least 1", ErrInvalidConfig, c.ReplicationFactor)
	case !(c.Load > 1) || math.IsInf(c.Load, 0):
		return fmt.Errorf("%w: Load (%v) must be greater than 1", ErrInvalidConfig, c.Load)
	}
	return nil
}

// Placement maps each shard (1..ShardCount) to its ordered replica set; the
// first replica is the shard's preferred leader. A Placement is immutable and
// safe for concurrent use; accessors return copies.
type Placement struct {
	shardCount int
	rf         int
	members    []string            // sorted IDs
	replicas   [][]string          // index shard-1; [0] is the preferred leader
	shardsOf   map[string][]uint64 // sorted
	leadersOf  map[string][]uint64 // sorted
}

// Place computes the placement of cfg.ShardCount shards on members. It is a
// pure function: every member computes the same Placement from the same
// configuration and the same set of members, whatever their order.
//
// How (the package documentation has the details): each weight unit of
// each member joins a buraksezer/consistent ring with fixed hashing and one
// partition per shard, so the library's bounded loads spread the shards'
// partition owners. A shard's candidates are the library's GetClosestN
// order for its partition (the owner, then the following members); its
// replicas are the first ReplicationFactor candidates still under their
// replica bound, ceil(Load × weighted share of ShardCount ×
// ReplicationFactor), shards taken in order. Finally each shard's leader
// is chosen among its replicas so that every member leads its weighted
// share of the shards, rounded down or up, when the replica sets allow it,
// changing as few shards' first replica as it can; the leader is moved to
// the front of the set.
//
// Place returns an error wrapping ErrInvalidConfig if cfg is invalid, or if
// members is empty, has an empty or duplicate ID, or a weight outside
// 0..MaxWeight.
func Place(cfg Config, members []Member) (p *Placement, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sorted, err := sortMembers(members)
	if err != nil {
		return nil, err
	}
	// The library panics on inputs Validate excludes; never let a bug in
	// that reasoning take a member down.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("graft: ring: placement failed: %v", r)
		}
	}()
	rf := min(cfg.ReplicationFactor, len(sorted))
	candidates, err := ringCandidates(cfg.ShardCount, cfg.Load, sorted)
	if err != nil {
		return nil, err
	}
	replicas := boundReplicas(candidates, sorted, rf, cfg.Load)
	balanceLeaders(replicas, sorted)
	return newPlacement(cfg.ShardCount, rf, sorted, replicas), nil
}

// sortMembers validates members and returns a copy sorted by ID.
func sortMembers(members []Member) ([]Member, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: no members", ErrInvalidConfig)
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	for i, m := range sorted {
		switch {
		case m.ID == "":
			return nil, fmt.Errorf("%w: member with an empty ID", ErrInvalidConfig)
		case i > 0 && sorted[i-1].ID == m.ID:
			return nil, fmt.Errorf("%w: duplicate member ID %q", ErrInvalidConfig, m.ID)
		case m.Weight < 0 || m.Weight > MaxWeight:
			return nil, fmt.Errorf("%w: member %q: Weight (%d) must be in 0..%d", ErrInvalidConfig, m.ID, m.Weight, MaxWeight)
		}
	}
	return sorted, nil
}

// ringMember is one weight unit of a member on the consistent ring.
type ringMember struct {
	name   string // ID NUL unit NUL: unambiguous, see ringName
	member int    // index into the sorted members
}

// String implements consistent.Member.
func (m ringMember) String() string { return m.name }

// ringName is the ring name of a member's weight unit. The library derives
// virtual-node keys as name+decimal index, so the name ends in a non-digit
// to keep "n1"+"12" and "n11"+"2" apart; parsing from the right recovers the
// ID and unit, so distinct (ID, unit) pairs give distinct names.
func ringName(id string, unit int) string {
	return id + "\x00" + strconv.Itoa(unit) + "\x00"
}

// ringCandidates returns, for each shard, every member (as indexes into
// members) in the consistent ring's preference order for that shard.
//
// The ring has PartitionCount = shardCount × k partitions, with k the
// smallest integer making that at least the number of ring members (the
// library needs a partition per member); shard s is partition (s-1)×k. With
// at least as many shards as ring members, k = 1: one partition per shard,
// so the bounded load applies to shards exactly.
func ringCandidates(shardCount int, load float64, members []Member) ([][]int, error) {
	var units []consistent.Member
	seen := map[uint64]string{}
	var byHash []hashedUnit // every ring member by the hash of its name
	for i, m := range members {
		for u := range m.weight() {
			rm := ringMember{name: ringName(m.ID, u), member: i}
			// Candidates follow the hash of the members' names: a
			// collision would make their order ambiguous.
			h := hasher{}.Sum64([]byte(rm.name))
			if other, ok := seen[h]; ok {
				return nil, fmt.Errorf("%w: member names %q and %q collide on the ring", ErrInvalidConfig, other, rm.name)
			}
			seen[h] = rm.name
			units = append(units, rm)
			byHash = append(byHash, hashedUnit{h, rm})
		}
	}
	slices.SortFunc(byHash, func(a, b hashedUnit) int { return cmp.Compare(a.hash, b.hash) })
	pos := make(map[string]int, len(byHash)) // ring member name -> index in byHash
	for j, u := range byHash {
		pos[u.unit.name] = j
	}
	k := (len(units) + shardCount - 1) / shardCount
	c := consistent.New(units, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    shardCount * k,
		ReplicationFactor: virtualNodes,
		Load:              load,
	})
	out := make([][]int, shardCount)
	taken := make([]bool, len(members))
	for s := range shardCount {
		// The library's GetClosestNForPartition order, computed once for
		// all shards instead of hashing and sorting every name per shard:
		// the partition's owner, then every other ring member in the order
		// of the hashes of their names, from the owner's on, wrapping.
		owner := c.GetPartitionOwner(s * k).(ringMember)
		start := pos[owner.name]
		cands := make([]int, 0, len(members))
		clear(taken)
		for j := range byHash {
			i := byHash[(start+j)%len(byHash)].unit.member
			if !taken[i] {
				taken[i] = true
				cands = append(cands, i)
			}
		}
		out[s] = cands
	}
	return out, nil
}

// hashedUnit is a ring member with the hash of its name.
type hashedUnit struct {
	hash uint64
	unit ringMember
}

// share returns ceil(x × w / total), a member's bounded share of x.
func share(x float64, w, total int) int {
	return int(math.Ceil(x * float64(w) / float64(total)))
}

// boundReplicas picks each shard's rf replicas from its candidates, in
// candidate order, skipping members already holding their bound of
// ceil(load × shards × rf × weight / total weight) replicas; shards are
// taken in order. If fewer than rf candidates are under their bound (only
// possible near the end with few members), the first remaining candidates
// are taken regardless, so every shard gets rf distinct replicas.
func boundReplicas(candidates [][]int, members []Member, rf int, load float64) [][]int {
	total := 0
	for _, m := range members {
		total += m.weight()
	}
	slots := load * float64(len(candidates)*rf)
	bound := make([]int, len(members))
	for i, m := range members {
		bound[i] = share(slots, m.weight(), total)
	}
	count := make([]int, len(members))
	out := make([][]int, len(candidates))
	for s, cands := range candidates {
		set := make([]int, 0, rf)
		for _, i := range cands {
			if len(set) == rf {
				break
			}
			if count[i] < bound[i] {
				set = append(set, i)
			}
		}
		for _, i := range cands {
			if len(set) == rf {
				break
			}
			if !slices.Contains(set, i) {
				set = append(set, i)
			}
		}
		for _, i := range set {
			count[i]++
		}
		out[s] = set
	}
	return out
}

// balanceLeaders chooses each shard's leader among its replicas and moves it
// to the front of the shard's replica set, so that every member leads its
// weighted share of the shards, rounded down or up, whenever the replica
// sets allow it (with equal weights: max − min ≤ 1).
//
// Each shard starts led by its first replica, which is the consistent
// ring's partition owner unless that member was over its replica bound.
// Then, members in order, while a member leads more than ceil(its share),
// one leadership is passed along the shortest chain of shards (each led by
// one member of the chain and replicated by the next; breadth-first, shards
// in order) to a member leading less than that; and while a member leads
// fewer than floor(its share), one is pulled to it the same way from a
// member leading more than that. Shortest chains keep the leaders that
// change, and so leader transfers, few.
func balanceLeaders(replicas [][]int, members []Member) {
	total := 0
	for _, m := range members {
		total += m.weight()
	}
	n := float64(len(replicas))
	hi := make([]int, len(members))
	lo := make([]int, len(members))
	for i, m := range members {
		hi[i] = share(n, m.weight(), total)
		lo[i] = int(math.Floor(n * float64(m.weight()) / float64(total)))
	}
	b := leaderBalancer{replicas: replicas, leads: make([]int, len(members)), holds: make([][]int, len(members))}
	for s, set := range replicas {
		b.leads[set[0]]++
		for _, i := range set {
			b.holds[i] = append(b.holds[i], s)
		}
	}
	for x := range members {
		for b.leads[x] > hi[x] && b.shift(x, false, func(y int) bool { return b.leads[y] < hi[y] }) {
		}
	}
	for u := range members {
		for b.leads[u] < lo[u] && b.shift(u, true, func(v int) bool { return b.leads[v] > lo[v] }) {
		}
	}
}

// leaderBalancer holds balanceLeaders' working state.
type leaderBalancer struct {
	replicas [][]int // per shard, leader first
	leads    []int   // per member, shards led
	holds    [][]int // per member, shards replicated, in order
}

// shift moves one leadership away from start (pull false) or to start (pull
// true) along the shortest chain of shards ending at a member for which end
// holds, and reports whether it found one. Giving, each member of the chain
// hands a shard it leads to the next member, a replica of that shard;
// pulling, each takes a shard it replicates from that shard's leader, the
// next member.
func (b *leaderBalancer) shift(start int, pull bool, end func(int) bool) bool {
	type hop struct{ shard, prev int }
	via := map[int]hop{start: {shard: -1, prev: -1}}
	queue := []int{start}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, s := range b.holds[x] {
			set := b.replicas[s]
			if (set[0] == x) == pull {
				continue
			}
			next := set[:1] // pulling: the leader
			if !pull {
				next = set[1:] // giving: the other replicas
			}
			for _, y := range next {
				if _, seen := via[y]; seen {
					continue
				}
				via[y] = hop{shard: s, prev: x}
				if !end(y) {
					queue = append(queue, y)
					continue
				}
				for z := y; z != start; z = via[z].prev {
					leader := z
					if pull {
						leader = via[z].prev
					}
					set := b.replicas[via[z].shard]
					promote(set, slices.Index(set, leader))
				}
				if pull {
					b.leads[start]++
					b.leads[y]--
				} else {
					b.leads[start]--
					b.leads[y]++
				}
				return true
			}
		}
	}
	return false
}

// promote moves set[j] to the front, keeping the others' order.
func promote(set []int, j int) {
	if j == 0 {
		return
	}
	leader := set[j]
	copy(set[1:j+1], set[:j])
	set[0] = leader
}

// newPlacement builds the Placement's indexes.
func newPlacement(shardCount, rf int, members []Member, sets [][]int) *Placement {
	p := &Placement{
		shardCount: shardCount,
		rf:         rf,
		members:    make([]string, len(members)),
		replicas:   make([][]string, len(sets)),
		shardsOf:   map[string][]uint64{},
		leadersOf:  map[string][]uint64{},
	}
	for i, m := range members {
		p.members[i] = m.ID
	}
	for s, set := range sets {
		shard := uint64(s + 1)
		ids := make([]string, len(set))
		for j, i := range set {
			ids[j] = members[i].ID
			p.shardsOf[ids[j]] = append(p.shardsOf[ids[j]], shard)
		}
		p.leadersOf[ids[0]] = append(p.leadersOf[ids[0]], shard)
		p.replicas[s] = ids
	}
	return p
}

// ShardCount returns the number of shards placed.
func (p *Placement) ShardCount() int { return p.shardCount }

// ReplicationFactor returns the size of every replica set: the configured
// factor capped at the number of members.
func (p *Placement) ReplicationFactor() int { return p.rf }

// Members returns the IDs of the members placed on, sorted.
func (p *Placement) Members() []string { return slices.Clone(p.members) }

// Replicas returns the shard's replica set, preferred leader first, or nil
// if shard is not in 1..ShardCount.
func (p *Placement) Replicas(shard uint64) []string {
	if shard < 1 || shard > uint64(p.shards()) {
		return nil
	}
	return slices.Clone(p.replicas[shard-1])
}

// PreferredLeader returns the member that should lead the shard (the first
// of its replicas), or "" if shard is not in 1..ShardCount.
func (p *Placement) PreferredLeader(shard uint64) string {
	if shard < 1 || shard > uint64(p.shards()) {
		return ""
	}
	return p.replicas[shard-1][0]
}

// ShardsOf returns the shards member holds a replica of, sorted; nil if none.
func (p *Placement) ShardsOf(member string) []uint64 {
	return slices.Clone(p.shardsOf[member])
}

// LeadersOf returns the shards member should lead, sorted; nil if none.
func (p *Placement) LeadersOf(member string) []uint64 {
	return slices.Clone(p.leadersOf[member])
}
