package shards

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/lni/dragonboat/v4/raftio"
)

// errUnknownTarget is returned by Resolve for a replica without an address.
var errUnknownTarget = errors.New("graft: shards: raft target address unknown")

// nodeRegistry is Graft's record of where each shard replica lives:
// (shard, replica) -> Raft address, plus which replica of each shard this
// member runs. It implements raftio.INodeRegistry and never panics: an
// invalid or conflicting address is refused, counted and logged.
//
// Addresses reach Dragonboat's own registry from four places (see
// dragonboat nodehost.go startShard, node.go applyConfigChange and
// RestoreRemotes, internal/transport handleRequest): the initial members of a
// new shard, committed membership changes, membership carried by snapshots,
// and the SourceAddress of every inbound message batch, which is how a
// replica added by rebalancing learns its peers (it starts with no members).
// This registry is fed from the places it can see: StartShard (initial
// members), AddReplica and Membership (committed addresses, which replace
// learned ones), and validated inbound batches (learned addresses, which
// never replace a recorded one). The inbound
// filter consults it before Dragonboat's handler runs, so a batch whose
// SourceAddress contradicts the recorded address of its sender never
// reaches Dragonboat's registry (which would panic).
//
// It is not installed as NodeHostConfig.Expert.NodeRegistryFactory: in
// Dragonboat v4 any custom registry switches the NodeHost to NodeHostID
// addressing (GetTargetValidator then accepts only UUID targets and batches
// carry the NodeHost ID as SourceAddress), while Graft addresses replicas by
// Raft address and existing data directories record addresses. Resolve and
// the partitioned connection keys follow Dragonboat's registry so it can be
// installed once Graft has a NodeHostID directory.
//
// All methods are safe for concurrent use.
type nodeRegistry struct {
	log     *slog.Logger
	stats   *transportStats
	streams uint64 // connections per remote, as Dragonboat's registry

	mu    sync.RWMutex
	addrs map[raftio.NodeInfo]entry
	local map[uint64]uint64 // shard -> replica run by this member
}

// entry is a recorded address and where it came from.
type entry struct {
	addr string
	// committed is set for addresses from Raft membership (initial
	// members, membership changes, Membership reads). Such an address
	// replaces one learned from an inbound batch; a learned address
	// never replaces anything.
	committed bool
}

var _ raftio.INodeRegistry = (*nodeRegistry)(nil)

func newNodeRegistry(log *slog.Logger, stats *transportStats) *nodeRegistry {
	return &nodeRegistry{
		log:     log,
		stats:   stats,
		streams: 1,
		addrs:   make(map[raftio.NodeInfo]entry),
		local:   make(map[uint64]uint64),
	}
}

// Close does nothing; the registry holds no resources.
func (r *nodeRegistry) Close() error { return nil }

// Add records addr for (shardID, replicaID) as committed Raft membership:
// it replaces an address learned from inbound traffic. An invalid address,
// or one contradicting a committed address, is refused and logged.
func (r *nodeRegistry) Add(shardID, replicaID uint64, addr string) {
	if ok, old := r.record(shardID, replicaID, addr, true); !ok {
		r.stats.conflicts.Add(1)
		r.stats.note(r.log, addr, "address refused by node registry",
			attrShard, shardID, attrReplica, replicaID, "recorded", old)
	}
}

// learn records addr for (shardID, replicaID), learned from an inbound
// batch, unless addr is invalid or another address is recorded; it reports
// whether addr is (now) the replica's address, and the recorded one.
func (r *nodeRegistry) learn(shardID, replicaID uint64, addr string) (ok bool, recorded string) {
	return r.record(shardID, replicaID, addr, false)
}

func (r *nodeRegistry) record(shardID, replicaID uint64, addr string, committed bool) (ok bool, recorded string) {
	if shardID == 0 || replicaID == 0 || !validAddress(addr) {
		return false, ""
	}
	key := raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID}
	r.mu.RLock()
	old, found := r.addrs[key]
	r.mu.RUnlock()
	if found && old.addr == addr && (old.committed || !committed) {
		return true, addr
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, found = r.addrs[key]
	switch {
	case !found, old.addr == addr, committed && !old.committed:
		r.addrs[key] = entry{addr: addr, committed: committed || old.committed && old.addr == addr}
		return true, addr
	}
	return false, old.addr
}

// consistent reports whether addr may be (shardID, replicaID)'s address:
// it is recorded, or nothing is.
func (r *nodeRegistry) consistent(shardID, replicaID uint64, addr string) (ok bool, recorded string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	old, found := r.addrs[raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID}]
	return !found || old.addr == addr, old.addr
}

// Remove forgets (shardID, replicaID)'s address.
func (r *nodeRegistry) Remove(shardID, replicaID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.addrs, raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID})
}

// RemoveShard forgets every address of shardID.
func (r *nodeRegistry) RemoveShard(shardID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.addrs {
		if k.ShardID == shardID {
			delete(r.addrs, k)
		}
	}
}

// Resolve returns (shardID, replicaID)'s address and the key of the
// connection used to reach it.
func (r *nodeRegistry) Resolve(shardID, replicaID uint64) (string, string, error) {
	r.mu.RLock()
	e, ok := r.addrs[raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID}]
	r.mu.RUnlock()
	if !ok {
		return "", "", errUnknownTarget
	}
	addr := e.addr
	if r.streams <= 1 {
		return addr, addr, nil
	}
	return addr, fmt.Sprintf("%s-%d", addr, shardID%r.streams), nil
}

// setLocal records that this member runs replicaID of shardID.
func (r *nodeRegistry) setLocal(shardID, replicaID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.local[shardID] = replicaID
}

// clearLocal records that this member no longer runs shardID.
func (r *nodeRegistry) clearLocal(shardID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.local, shardID)
}

// localReplica returns the replica of shardID this member runs.
func (r *nodeRegistry) localReplica(shardID uint64) (uint64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.local[shardID]
	return id, ok
}
