package graft

import (
	"maps"
	"slices"
	"time"

	"github.com/eleven-am/graft/internal/cluster"
)

// ReplicaState is one replica's state hash and the applied index it
// reflects; replicas of a shard at the same applied index must have equal
// hashes.
type ReplicaState struct {
	Hash, Applied uint64
	// Replica is the replica's ID; Members the voting replica IDs of its
	// shard as it has applied them.
	Replica uint64
	Members []uint64
}

// ReplicaStates returns the state of every replica m runs, or nil when its
// storage is not open.
func ReplicaStates(m *Manager) map[uint64]ReplicaState {
	h, err := m.member.Storage()
	if err != nil {
		return nil
	}
	out := map[uint64]ReplicaState{}
	for s := uint64(1); s <= m.member.ShardCount(); s++ {
		rid, ok := h.ReplicaID(s)
		if !ok {
			continue
		}
		hash, applied, err := h.StateHash(s)
		if err != nil {
			continue
		}
		mem, _ := h.AppliedMembership(s)
		out[s] = ReplicaState{Hash: hash, Applied: applied, Replica: rid, Members: slices.Sorted(maps.Keys(mem))}
	}
	return out
}

// LeadsShard reports whether m's replica of shard s leads it.
func LeadsShard(m *Manager, s uint64) bool {
	h, err := m.member.Storage()
	return err == nil && h.IsLeader(s)
}

// SetRebalanceIntervals makes the member of cfg reconcile the shards it leads
// every interval and ask about a replica that has seen no leader for
// orphanAfter (defaults: 1s and 5s), so tests of rebalancing wait less.
func SetRebalanceIntervals(cfg *Config, interval, orphanAfter time.Duration) {
	t := cluster.DefaultRebalanceTiming()
	t.Interval, t.OrphanAfter = interval, orphanAfter
	cfg.rebalance = &t
}
