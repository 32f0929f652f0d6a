package harness

import (
	"cmp"
	"slices"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/ring"
)

// MemberState is what a live member reports about itself after the faults:
// its gossip view and its replicas.
type MemberState struct {
	// Name is the member's node ID.
	Name string `json:"name"`
	// Peers are the other members its gossip sees alive.
	Peers []string `json:"peers"`
	// Replicas are its replicas by shard (graft.Manager.ReplicaStates).
	Replicas map[uint64]graft.ReplicaState `json:"replicas"`
}

// ClusterState is a snapshot of every live member, taken after the faults
// were healed and the crashed members restarted.
type ClusterState struct {
	// Shards is the cluster's shard count; ReplicationFactor the members'
	// configured replication factor.
	Shards            int `json:"shards"`
	ReplicationFactor int `json:"replication_factor"`
	// Members are the members up, sorted by name.
	Members []MemberState `json:"members"`
}

// replicaOn is one replica of a shard and the member holding it.
type replicaOn struct {
	member string
	graft.ReplicaState
}

// byShard groups the replicas by shard.
func (c ClusterState) byShard() map[uint64][]replicaOn {
	m := map[uint64][]replicaOn{}
	for _, ms := range c.Members {
		for s, r := range ms.Replicas {
			m[s] = append(m[s], replicaOn{ms.Name, r})
		}
	}
	return m
}

// top returns the replica that has applied the most, the one whose view of
// the shard's membership is the latest.
func top(rs []replicaOn) replicaOn {
	return slices.MaxFunc(rs, func(a, b replicaOn) int {
		return cmp.Or(cmp.Compare(a.Applied, b.Applied), cmp.Compare(b.member, a.member))
	})
}

// CheckReplicas checks that the replicas of each shard agree: every replica
// the shard's membership names (as its most advanced replica has applied
// it) is at that replica's applied index with an equal state hash. A
// difference at the same applied index is divergence; a replica behind is
// a violation too (the runner retries until the bound, so a replica still
// catching up only fails if it never does). Replicas the membership no
// longer names (a member that was cut off keeps them until it hears) are
// ignored. Checked counts the shards.
func CheckReplicas(c ClusterState) CheckResult {
	r := CheckResult{Name: CheckerReplicasAgree}
	shards := c.byShard()
	for _, s := range sortedShards(shards) {
		r.Checked++
		rs := shards[s]
		t := top(rs)
		for _, a := range rs {
			switch {
			case !slices.Contains(t.Members, a.Replica):
			case a.Applied == t.Applied && a.Hash != t.Hash:
				r.violate("shard %d: replicas on %s and %s differ at applied index %d: %x vs %x",
					s, a.member, t.member, a.Applied, a.Hash, t.Hash)
			case a.Applied != t.Applied:
				r.violate("shard %d: replica on %s at applied index %d, %s at %d", s, a.member, a.Applied, t.member, t.Applied)
			}
		}
	}
	return r.done()
}

// CheckReplicationFactor checks that every shard 1..Shards has exactly
// min(ReplicationFactor, live members) voting replicas in its membership,
// each running on a distinct live member. Checked counts the shards.
func CheckReplicationFactor(c ClusterState) CheckResult {
	r := CheckResult{Name: CheckerReplicationFactor}
	want := min(c.ReplicationFactor, len(c.Members))
	shards := c.byShard()
	for s := uint64(1); s <= uint64(c.Shards); s++ {
		r.Checked++
		rs := shards[s]
		if len(rs) == 0 {
			r.violate("shard %d: no live member holds a replica", s)
			continue
		}
		t := top(rs)
		if len(t.Members) != want {
			r.violate("shard %d: %d voting replicas %v, want %d", s, len(t.Members), t.Members, want)
		}
		holders := map[string]bool{}
		for _, id := range t.Members {
			i := slices.IndexFunc(rs, func(a replicaOn) bool { return a.Replica == id })
			if i < 0 {
				r.violate("shard %d: replica %d is on no live member", s, id)
				continue
			}
			if holders[rs[i].member] {
				r.violate("shard %d: member %s holds two of its replicas", s, rs[i].member)
			}
			holders[rs[i].member] = true
		}
	}
	return r.done()
}

// CheckViews checks that the gossip views agree: every live member sees
// exactly the other live members. Checked counts the members.
func CheckViews(c ClusterState) CheckResult {
	r := CheckResult{Name: CheckerGossipViews}
	var all []string
	for _, m := range c.Members {
		all = append(all, m.Name)
	}
	slices.Sort(all)
	for _, m := range c.Members {
		r.Checked++
		view := append(slices.Clone(m.Peers), m.Name)
		slices.Sort(view)
		view = slices.Compact(view)
		if !slices.Equal(view, all) {
			r.violate("%s sees %v, the live members are %v", m.Name, view, all)
		}
	}
	return r.done()
}

// CheckBalance checks that shard leadership is balanced. Balanced means:
// every shard has exactly one leader among the live members, and each
// member leads as many shards as Graft's placement (ring.Place over the
// live members, default weights and load) makes it the preferred leader
// of; with equal weights that is ⌊shards/members⌋ or ⌈shards/members⌉
// whenever the replica sets allow it (see package ring). Checked counts the
// shards.
func CheckBalance(c ClusterState) CheckResult {
	r := CheckResult{Name: CheckerLeadership}
	leaders := map[uint64][]string{}
	led := map[string]int{}
	var members []ring.Member
	for _, m := range c.Members {
		members = append(members, ring.Member{ID: m.Name})
		for s, rep := range m.Replicas {
			if rep.Leader {
				leaders[s] = append(leaders[s], m.Name)
				led[m.Name]++
			}
		}
	}
	for s := uint64(1); s <= uint64(c.Shards); s++ {
		r.Checked++
		if n := len(leaders[s]); n != 1 {
			slices.Sort(leaders[s])
			r.violate("shard %d: %d leaders %v", s, n, leaders[s])
		}
	}
	if len(members) == 0 {
		return r.done()
	}
	p, err := ring.Place(ring.Config{ShardCount: c.Shards, ReplicationFactor: c.ReplicationFactor}, members)
	if err != nil {
		r.violate("computing the placement: %v", err)
		return r.done()
	}
	for _, m := range c.Members {
		if want := len(p.LeadersOf(m.Name)); led[m.Name] != want {
			r.violate("%s leads %d shards, its share is %d", m.Name, led[m.Name], want)
		}
	}
	return r.done()
}

func sortedShards(m map[uint64][]replicaOn) []uint64 {
	out := make([]uint64, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// convergence runs the four cluster checks on one snapshot.
func convergence(c ClusterState) []CheckResult {
	return []CheckResult{CheckReplicas(c), CheckReplicationFactor(c), CheckViews(c), CheckBalance(c)}
}

// allPassed reports whether every result passed.
func allPassed(rs []CheckResult) bool {
	return !slices.ContainsFunc(rs, func(r CheckResult) bool { return !r.Passed })
}
