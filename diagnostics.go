package graft

import (
	"maps"
	"slices"
)

// ReplicaState describes one replica a member runs, for diagnostics and for
// the chaos harness's convergence checks: replicas of a shard at the same
// applied index must have equal state hashes.
type ReplicaState struct {
	// Hash is a hash of the replica's workflow state (every key and value
	// of its state machine) at Applied.
	Hash uint64
	// Applied is the Raft log index the state reflects.
	Applied uint64
	// Replica is the replica's ID within its shard.
	Replica uint64
	// Members lists the voting replica IDs of the shard, sorted, as this
	// replica has applied them (it may lag the shard's committed
	// membership).
	Members []uint64
	// Leader reports whether this replica leads its shard, as far as this
	// member knows.
	Leader bool
}

// ReplicaStates returns the state of every replica this member runs, by
// shard ID, or nil when its storage is not open (before Start and after
// Stop). Hashing reads each shard's whole state, so this is meant for
// diagnostics and tests (the chaos harness compares replicas with it), not
// for a hot path.
func (m *Manager) ReplicaStates() map[uint64]ReplicaState {
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
		out[s] = ReplicaState{Hash: hash, Applied: applied, Replica: rid,
			Members: slices.Sorted(maps.Keys(mem)), Leader: h.IsLeader(s)}
	}
	return out
}
