package rebalance

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPlanReachesPlacement applies Plan's actions to simulated shards from
// random starts (members alive, left or failed past their grace; replicas
// on any of them, on addresses no member has, or lost by their members;
// any leader; any confirmations; members that do not always answer) and
// checks that each reaches its placement, led by the preferred leader, in
// a bounded number of passes, and that no step breaks an invariant: the
// leader never removes its own replica, never the last one, never reuses
// a replica ID, and every change carries the current ConfigChangeID.
func TestPlanReachesPlacement(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3000) {
		rng := rand.New(rand.NewPCG(seed, 1))
		s := randomShard(rng)
		start := s.describeMembership()
		require.NoError(t, converge(s, rng), "seed %d, start %s, placed %v, members %v", seed, start, s.in.Placed, describeMembers(&s.in))
	}
}

// randomShard returns a shard of 1 to 7 members with a random start.
func randomShard(rng *rand.Rand) *sim {
	n := 1 + rng.IntN(7)
	var alive []string
	s := newSim("")
	s.in.Now = epoch.Add(time.Hour)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		m := Member{ID: id, Target: raftAddr(id), Status: Alive}
		switch rng.IntN(6) {
		case 0:
			m.Status = Left
		case 1:
			m.Status, m.FailedSince = Failed, epoch // long past its grace
		}
		if i == 0 {
			m.Status = Alive // the leader
		}
		if m.Status == Alive {
			alive = append(alive, id)
		}
		s.in.Members[id] = m
	}
	// The leader holds a replica; the others hold one at random, and some
	// replicas are at addresses no member has.
	s.in.Self = alive[rng.IntN(len(alive))]
	mem := &s.in.Membership
	mem.ConfigChangeID = rng.Uint64N(10)
	next := uint64(1 + rng.IntN(3))
	for i := uint64(1); i < next; i++ {
		mem.Removed[i] = struct{}{}
	}
	add := func(addr string) {
		mem.Replicas[next] = addr
		if rng.IntN(3) == 0 {
			s.in.Confirmed[next] = s.in.Now.Add(-time.Duration(rng.IntN(60)) * time.Second)
		}
		if rng.IntN(8) == 0 && addr != raftAddr(s.in.Self) {
			s.lost[next] = true
		}
		next += uint64(1 + rng.IntN(2))
	}
	for _, id := range slices.Sorted(maps.Keys(s.in.Members)) {
		if id == s.in.Self || rng.IntN(2) == 0 {
			add(raftAddr(id))
		}
	}
	for range rng.IntN(2) {
		addr := fmt.Sprintf("10.0.0.%d:7000", rng.IntN(250))
		s.in.UnknownSince[addr] = epoch
		add(addr)
	}
	// The placement: up to 3 alive members, in random order.
	placed := slices.Clone(alive)
	rng.Shuffle(len(placed), func(i, j int) { placed[i], placed[j] = placed[j], placed[i] })
	s.in.Placed = placed[:min(3, len(placed))]
	return s
}

// converge runs passes until Plan returns nothing with every member
// answering, checking the invariants on each step, and reports whether
// the shard then matches its placement.
func converge(s *sim, rng *rand.Rand) error {
	mem := &s.in.Membership
	for pass := range 100 {
		s.in.Now = s.in.Now.Add(time.Second)
		clear(s.in.Answers) // answers hold for one pass
		// A member may not answer this pass; from pass 20 on all answer.
		clear(s.silent)
		for rid := range mem.Replicas {
			if pass < 20 && rng.IntN(4) == 0 {
				s.silent[rid] = true
			}
		}
		for range 50 {
			a := s.plan()
			if err := checkAction(s, a); err != nil {
				return fmt.Errorf("pass %d: %w", pass, err)
			}
			if a.Kind == Nothing {
				if len(s.silent) == 0 {
					if !s.converged() {
						return fmt.Errorf("pass %d: stuck (%s) at %s", pass, a, s.describeMembership())
					}
					return nil
				}
				break
			}
			if err := s.apply(a); err != nil {
				return fmt.Errorf("pass %d: %w", pass, err)
			}
			if a.Kind != Confirm {
				break // a change ends the pass
			}
		}
	}
	return fmt.Errorf("not placed after 100 passes: %s", s.describeMembership())
}

// checkAction checks a against the invariants of a membership change.
func checkAction(s *sim, a Action) error {
	mem := s.in.Membership
	switch a.Kind {
	case Add:
		if _, used := mem.Removed[a.Replica]; used || mem.Replicas[a.Replica] != "" {
			return fmt.Errorf("%s reuses a replica ID", a)
		}
		if !slices.Contains(s.in.Placed, a.Member) {
			return fmt.Errorf("%s adds on a member not placed", a)
		}
	case RemoveDeparted, RemoveLost, RemoveUnplaced:
		if a.HandOffTo == 0 && (a.Member == s.in.Self || len(mem.Replicas) == 1) {
			return fmt.Errorf("%s removes the leader's or the last replica", a)
		}
	}
	if a.Kind != Nothing && a.Kind != Confirm && a.Kind != TransferLeader && a.ConfigChangeID != mem.ConfigChangeID {
		return fmt.Errorf("%s carries a stale config", a)
	}
	return nil
}
