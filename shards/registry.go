package shards

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
)

// errUnknownTarget is returned by Resolve for a replica without a target,
// or whose target names no member with a known Raft address.
var errUnknownTarget = errors.New("graft: shards: raft target unknown")

// Directory tells a Host where the other members' NodeHosts listen.
// Implementations must be safe for concurrent use and return promptly:
// the Host asks it when sending and receiving Raft messages (answers are
// cached for directoryTTL).
type Directory interface {
	// RaftAddress returns the current Raft address (host:port) of the
	// member whose NodeHost ID is nodeHostID, and whether it knows one.
	RaftAddress(nodeHostID string) (string, bool)
}

// Registry bounds and timing.
const (
	// directoryTTL is how long an answer of the Directory is reused.
	directoryTTL = time.Second
	// maxCachedTargets bounds the cached Directory answers; past it the
	// cache is cleared.
	maxCachedTargets = 4096
)

// Registry refusal reasons, logged once per shard replica and reason.
const (
	reasonInvalidTarget   = "invalid raft target (neither a NodeHost ID nor host:port)"
	reasonConflictTarget  = "raft target names another member than the recorded one"
	reasonUnknownSourceID = "source is no known member's NodeHost ID"
)

// nodeRegistry is Graft's Dragonboat node registry (installed as
// NodeHostConfig.Expert.NodeRegistryFactory): it records each shard
// replica's target, (shard, replica) -> NodeHost ID (or Raft address, in
// shards created before NodeHost ID targets), resolves a target to the
// member's current Raft address, and records which replica of each shard
// this member runs. It never panics, unlike Dragonboat's own registry
// (internal/registry.Registry.Add panics on an invalid target or one
// contradicting the recorded target).
//
// Dragonboat calls Add from four places: the initial members of a new
// shard (nodehost.go startShard), committed membership changes and
// membership carried by snapshots (node.go applyConfigChange,
// RestoreRemotes), and, for every message of every inbound batch, with the
// batch's SourceAddress (internal/transport handleRequest), which is how a
// replica added by rebalancing learns its peers (it starts with no
// members). The inbound filter runs before the last and records the source
// with learn (or drops the batch), so Dragonboat's Add from handleRequest
// only ever repeats what is recorded; every other Add is committed
// membership.
//
// The rule for a target that differs from the recorded one:
//   - an invalid target (neither a canonical NodeHost ID nor host:port) is
//     refused;
//   - a committed target replaces a learned one (a learned target is a
//     sender's claim, the committed one is the shard's word);
//   - a target naming the same member as the recorded one (both resolve to
//     the same Raft address: a shard created before NodeHost ID targets
//     names the replica by address, its batches carry the NodeHost ID) is
//     accepted and the recorded one kept;
//   - anything else is refused and the recorded target kept.
//
// Each refusal is counted in TransportStats.AddressConflicts and logged
// once per shard replica and reason.
//
// All methods are safe for concurrent use.
type nodeRegistry struct {
	log      *slog.Logger
	stats    *transportStats
	dir      Directory // nil: only this Host's own ID resolves
	selfAddr string    // this Host's Raft address

	mu      sync.RWMutex
	self    string // this Host's NodeHost ID, set by Create
	streams uint64 // connections per remote, as Dragonboat's registry
	targets map[raftio.NodeInfo]entry
	local   map[uint64]uint64 // shard -> replica run by this member

	cacheMu sync.Mutex
	cache   map[string]cachedAddr // NodeHost ID -> Directory answer
}

// entry is a recorded target and where it came from.
type entry struct {
	target string
	// committed is set for targets from Raft membership (initial members,
	// membership changes, snapshots, Membership reads). Such a target
	// replaces one learned from an inbound batch; a learned target never
	// replaces anything.
	committed bool
}

// cachedAddr is one Directory answer.
type cachedAddr struct {
	addr  string
	known bool
	at    time.Time
}

var _ raftio.INodeRegistry = (*nodeRegistry)(nil)

func newNodeRegistry(log *slog.Logger, stats *transportStats, dir Directory, selfAddr string) *nodeRegistry {
	return &nodeRegistry{
		log:      log,
		stats:    stats,
		dir:      dir,
		selfAddr: selfAddr,
		streams:  1,
		targets:  make(map[raftio.NodeInfo]entry),
		local:    make(map[uint64]uint64),
		cache:    make(map[string]cachedAddr),
	}
}

// registryFactory hands Dragonboat the Host's nodeRegistry.
type registryFactory struct{ reg *nodeRegistry }

var _ config.NodeRegistryFactory = registryFactory{}

// Create records the NodeHost's ID and stream count and returns the
// registry. Dragonboat's target validator is not used: the registry
// accepts the Raft address targets of older shards too.
func (f registryFactory) Create(nhid string, streams uint64, _ config.TargetValidator) (raftio.INodeRegistry, error) {
	f.reg.mu.Lock()
	defer f.reg.mu.Unlock()
	f.reg.self = nhid
	f.reg.streams = max(streams, 1)
	return f.reg, nil
}

// Close does nothing; the registry holds no resources.
func (r *nodeRegistry) Close() error { return nil }

// Add records target for (shardID, replicaID) as committed Raft
// membership; see nodeRegistry for what happens to one differing from the
// recorded target.
func (r *nodeRegistry) Add(shardID, replicaID uint64, target string) {
	if ok, old, reason := r.record(shardID, replicaID, target, true); !ok {
		r.refused(shardID, replicaID, reason, "target", target, "recorded", old)
	}
}

// refused counts and logs (once per shard replica and reason) a refused
// target.
func (r *nodeRegistry) refused(shardID, replicaID uint64, reason string, args ...any) {
	r.stats.conflicts.Add(1)
	r.stats.noteOnce(r.log, "raft target refused by the node registry (logged once per shard replica and reason)",
		fmt.Sprintf("shard %d replica %d", shardID, replicaID), reason,
		append([]any{attrShard, shardID, attrReplica, replicaID, "reason", reason}, args...)...)
}

// learn records src for (shardID, replicaID), learned from an inbound
// batch, unless it is invalid or another member's target is recorded; it
// reports whether src names the replica's member, the recorded target and
// why not.
func (r *nodeRegistry) learn(shardID, replicaID uint64, src string) (ok bool, recorded, reason string) {
	return r.record(shardID, replicaID, src, false)
}

func (r *nodeRegistry) record(shardID, replicaID uint64, target string, committed bool) (ok bool, recorded, reason string) {
	if shardID == 0 || replicaID == 0 || !validTarget(target) {
		cur, _ := r.target(shardID, replicaID)
		return false, cur, reasonInvalidTarget
	}
	key := raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID}
	r.mu.RLock()
	old, found := r.targets[key]
	r.mu.RUnlock()
	if found && old.target == target && (old.committed || !committed) {
		return true, target, ""
	}
	// Resolving may ask the Directory: never under r.mu.
	alias := found && old.target != target && r.sameMember(old.target, target)
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, still := r.targets[key]
	if still != found || cur != old {
		// Changed meanwhile: decide again on the current entry.
		alias = still && cur.target != target && r.sameMemberLocked(cur.target, target)
	}
	switch {
	case !still:
		r.targets[key] = entry{target: target, committed: committed}
		return true, target, ""
	case cur.target == target:
		cur.committed = cur.committed || committed
		r.targets[key] = cur
		return true, target, ""
	case committed && !cur.committed:
		r.targets[key] = entry{target: target, committed: true}
		return true, target, ""
	case alias:
		cur.committed = cur.committed || committed
		r.targets[key] = cur
		return true, cur.target, ""
	}
	return false, cur.target, reasonConflictTarget
}

// sameMemberLocked is sameMember for a caller holding r.mu: it resolves
// only from the cache and this Host's own ID, never asking the Directory.
func (r *nodeRegistry) sameMemberLocked(a, b string) bool {
	ra, oka := r.cachedAddress(a, r.self)
	rb, okb := r.cachedAddress(b, r.self)
	return oka && okb && ra == rb
}

// sameMember reports whether targets a and b name the same member: both
// resolve to the same Raft address.
func (r *nodeRegistry) sameMember(a, b string) bool {
	if a == b {
		return true
	}
	ra, oka := r.address(a)
	rb, okb := r.address(b)
	return oka && okb && ra == rb
}

// consistent reports whether src may speak for (shardID, replicaID): no
// target is recorded, or the recorded one names src's member.
func (r *nodeRegistry) consistent(shardID, replicaID uint64, src string) (ok bool, recorded string) {
	r.mu.RLock()
	old, found := r.targets[raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID}]
	r.mu.RUnlock()
	return !found || r.sameMember(old.target, src), old.target
}

// address returns the Raft address target names: target itself for an
// address, this Host's address for its own ID, the Directory's answer
// (cached for directoryTTL, an unknown ID too) for another NodeHost ID.
func (r *nodeRegistry) address(target string) (string, bool) {
	r.mu.RLock()
	self := r.self
	r.mu.RUnlock()
	if addr, ok := r.cachedAddress(target, self); ok || !IsNodeHostID(target) || r.dir == nil {
		return addr, ok
	}
	r.cacheMu.Lock()
	c, cached := r.cache[target]
	r.cacheMu.Unlock()
	if cached && !c.known && time.Since(c.at) < directoryTTL {
		return "", false
	}
	addr, known := r.dir.RaftAddress(target)
	known = known && validAddress(addr)
	r.cacheMu.Lock()
	if len(r.cache) >= maxCachedTargets {
		clear(r.cache)
	}
	r.cache[target] = cachedAddr{addr: addr, known: known, at: time.Now()}
	r.cacheMu.Unlock()
	if !known {
		return "", false
	}
	return addr, true
}

// cachedAddress is address without asking the Directory: ok is false for
// a NodeHost ID other than self with no fresh cached answer.
func (r *nodeRegistry) cachedAddress(target, self string) (string, bool) {
	switch {
	case target == "":
		return "", false
	case target == self:
		return r.selfAddr, true
	}
	// The cache holds only valid IDs: a hit needs no parsing (this runs
	// for every message sent).
	r.cacheMu.Lock()
	c, ok := r.cache[target]
	r.cacheMu.Unlock()
	switch {
	case ok && c.known && time.Since(c.at) < directoryTTL:
		return c.addr, true
	case ok || IsNodeHostID(target):
		return "", false
	}
	return target, validAddress(target)
}

// Remove forgets (shardID, replicaID)'s target.
func (r *nodeRegistry) Remove(shardID, replicaID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.targets, raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID})
}

// RemoveShard forgets every target of shardID.
func (r *nodeRegistry) RemoveShard(shardID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.targets {
		if k.ShardID == shardID {
			delete(r.targets, k)
		}
	}
}

// Resolve returns the Raft address of (shardID, replicaID)'s member and
// the key of the connection used to reach it (partitioned by shard as in
// Dragonboat's registry), or errUnknownTarget.
func (r *nodeRegistry) Resolve(shardID, replicaID uint64) (string, string, error) {
	target, ok := r.target(shardID, replicaID)
	if !ok {
		return "", "", errUnknownTarget
	}
	addr, ok := r.address(target)
	if !ok {
		return "", "", fmt.Errorf("%w: %s", errUnknownTarget, target)
	}
	r.mu.RLock()
	streams := r.streams
	r.mu.RUnlock()
	if streams <= 1 {
		return addr, addr, nil
	}
	return addr, fmt.Sprintf("%s-%d", addr, shardID%streams), nil
}

// target returns (shardID, replicaID)'s recorded target.
func (r *nodeRegistry) target(shardID, replicaID uint64) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.targets[raftio.NodeInfo{ShardID: shardID, ReplicaID: replicaID}]
	return e.target, ok
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
