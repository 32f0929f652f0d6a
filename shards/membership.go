package shards

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cockroachdb/pebble"
	"github.com/lni/dragonboat/v4"
)

// Membership is a shard's Raft membership as committed in its log.
type Membership struct {
	// ConfigChangeID orders membership changes: a change proposed with a
	// stale ID is rejected, so two members cannot change it concurrently.
	ConfigChangeID uint64
	// Replicas maps each voting replica ID to its Raft target: its
	// member's NodeHost ID, or its Raft address in a shard whose replica
	// was added before NodeHost ID targets.
	Replicas map[uint64]string
	// Removed holds the IDs of replicas removed from the shard; they can
	// never come back.
	Removed map[uint64]struct{}
}

// NextReplicaID returns a replica ID never used in the shard: one above
// every current and removed ID.
func (m *Membership) NextReplicaID() uint64 {
	var top uint64
	for id := range m.Replicas {
		top = max(top, id)
	}
	for id := range m.Removed {
		top = max(top, id)
	}
	return top + 1
}

// ReplicaIDs returns the voting replica IDs, sorted.
func (m *Membership) ReplicaIDs() []uint64 {
	return slices.Sorted(maps.Keys(m.Replicas))
}

// Membership reads shardID's membership through Raft (linearizable), so it
// reflects every membership change committed before the call.
func (h *Host) Membership(ctx context.Context, shardID uint64) (*Membership, error) {
	if _, err := h.enter(shardID); err != nil {
		return nil, err
	}
	defer h.ops.Done()
	ctx, cancel := h.bound(ctx)
	defer cancel()
	mem, err := h.nh.SyncGetShardMembership(ctx, shardID)
	if err != nil {
		return nil, translate(err)
	}
	out := &Membership{
		ConfigChangeID: mem.ConfigChangeID,
		Replicas:       make(map[uint64]string, len(mem.Nodes)),
		Removed:        make(map[uint64]struct{}, len(mem.Removed)),
	}
	for id, target := range mem.Nodes {
		out.Replicas[id] = target
		h.reg.Add(shardID, id, target)
	}
	for id := range mem.Removed {
		out.Removed[id] = struct{}{}
	}
	// Non-voting replicas and witnesses are never created by this package,
	// but their IDs are used all the same.
	for id := range mem.NonVotings {
		out.Removed[id] = struct{}{}
	}
	for id := range mem.Witnesses {
		out.Removed[id] = struct{}{}
	}
	return out, nil
}

// AddReplica adds replicaID on the member whose NodeHost ID is target to
// shardID as a voting member (a target that is not a NodeHost ID is
// refused with Dragonboat's ErrInvalidAddress).
// configChangeID must be the ConfigChangeID of the Membership the decision
// was based on, or the change is rejected (ErrNotReady). The new replica
// catches up once its member starts it with StartShard(join=true). Call it
// on a member hosting the shard, ideally its leader.
func (h *Host) AddReplica(ctx context.Context, shardID, replicaID uint64, target string, configChangeID uint64) error {
	if _, err := h.enter(shardID); err != nil {
		return err
	}
	defer h.ops.Done()
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.nh.SyncRequestAddReplica(ctx, shardID, replicaID, target, configChangeID); err != nil {
		return membershipError(err)
	}
	h.reg.Add(shardID, replicaID, target)
	h.log.Info("replica added", attrShard, shardID, attrReplica, replicaID, "target", target)
	return nil
}

// RemoveReplica removes replicaID from shardID; configChangeID as for
// AddReplica. The removed replica stops by itself once it learns of its
// removal; its member then calls DropShard to delete its data.
func (h *Host) RemoveReplica(ctx context.Context, shardID, replicaID, configChangeID uint64) error {
	if _, err := h.enter(shardID); err != nil {
		return err
	}
	defer h.ops.Done()
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.nh.SyncRequestDeleteReplica(ctx, shardID, replicaID, configChangeID); err != nil {
		return membershipError(err)
	}
	h.log.Info("replica removed", attrShard, shardID, attrReplica, replicaID)
	return nil
}

// TransferLeader asks shardID's leadership to move to replicaID. It returns
// at once; the transfer may silently not happen, so callers check and ask
// again.
func (h *Host) TransferLeader(shardID, replicaID uint64) error {
	if _, err := h.enter(shardID); err != nil {
		return err
	}
	defer h.ops.Done()
	return translate(h.nh.RequestLeaderTransfer(shardID, replicaID))
}

// AppliedMembership returns the voting replicas (ID -> Raft target) of
// shardID as this member's replica has applied them, without asking a
// quorum: it may lag the shard's committed membership, but it never names a
// replica whose addition was not committed. ok is false if the shard does
// not run here or has not applied a membership yet.
func (h *Host) AppliedMembership(shardID uint64) (replicas map[uint64]string, ok bool) {
	if _, err := h.enter(shardID); err != nil {
		return nil, false
	}
	defer h.ops.Done()
	info := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	if info == nil {
		return nil, false
	}
	for _, si := range info.ShardInfoList {
		if si.ShardID == shardID && !si.Pending {
			return maps.Clone(si.Replicas), true
		}
	}
	return nil, false
}

// ReplicaID returns this member's replica ID in shardID and whether the
// shard is started here.
func (h *Host) ReplicaID(shardID uint64) (uint64, bool) {
	s, err := h.shard(shardID)
	if err != nil {
		return 0, false
	}
	return s.replicaID, true
}

// ReplicaTarget returns the Raft target (NodeHost ID, or Raft address in
// older shards) of replica replicaID of shardID as this member last
// learned it (from a membership read or from Raft), and whether it knows
// one.
func (h *Host) ReplicaTarget(shardID, replicaID uint64) (string, bool) {
	return h.reg.target(shardID, replicaID)
}

// Removed reports whether shardID was started here but its replica is no
// longer running: Dragonboat stops a replica by itself when it applies the
// replica's own removal. The caller then calls DropShard.
func (h *Host) Removed(shardID uint64) bool {
	if _, err := h.enter(shardID); err != nil {
		return false
	}
	defer h.ops.Done()
	_, err := h.nh.GetNodeUser(shardID)
	return errors.Is(err, dragonboat.ErrShardNotFound)
}

// DropShard stops this member's replica of shardID and deletes its Raft log,
// snapshots and state. Call it only once the replica has been removed from
// the shard's membership (RemoveReplica): dropping a voting replica would
// corrupt the shard. Calls waiting on the shard fail with ErrShardNotFound.
// Dropping a shard that is not started is a no-op.
func (h *Host) DropShard(ctx context.Context, shardID uint64) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	s, ok := h.shards[shardID]
	if !ok {
		h.mu.Unlock()
		return nil
	}
	delete(h.shards, shardID)
	h.reg.clearLocal(shardID)
	close(s.stop)
	h.ops.Add(1)
	h.mu.Unlock()
	defer h.ops.Done()

	if err := h.nh.StopReplica(shardID, s.replicaID); err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
		return fmt.Errorf("graft: shards: stopping shard %d replica %d: %w", shardID, s.replicaID, translate(err))
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.nh.SyncRemoveData(ctx, shardID, s.replicaID); err != nil {
		return fmt.Errorf("graft: shards: removing shard %d replica %d data: %w", shardID, s.replicaID, translate(err))
	}
	if err := h.wipeState(shardID); err != nil {
		return err
	}
	h.log.Info("shard dropped", attrShard, shardID, attrReplica, s.replicaID)
	return nil
}

// wipeState deletes every key of shardID from the state database, durably.
func (h *Host) wipeState(shardID uint64) error {
	start, end := shardRange(shardID)
	if err := h.db.DeleteRange(start, end, pebble.Sync); err != nil {
		return fmt.Errorf("graft: shards: deleting shard %d state: %w", shardID, err)
	}
	return nil
}

// bound gives ctx the default request timeout when it has none and cancels
// it when the Host closes.
func (h *Host) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, defaultRequestTimeout)
	}
	stop := context.AfterFunc(h.stopCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// membershipError classifies a failed membership change: a rejected one
// (stale ConfigChangeID, or another change in progress) may be retried with
// a fresh Membership.
func membershipError(err error) error {
	if errors.Is(err, dragonboat.ErrRejected) {
		return fmt.Errorf("%w: membership change rejected: %v", ErrNotReady, err)
	}
	return translate(err)
}

// LeaderTargets returns, for each shard started here whose leader this
// member knows, the leader's Raft target (NodeHost ID, or Raft address in
// older shards).
func (h *Host) LeaderTargets() map[uint64]string {
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return nil
	}
	h.ops.Add(1)
	h.mu.RUnlock()
	defer h.ops.Done()
	info := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	out := make(map[uint64]string, len(info.ShardInfoList))
	for _, si := range info.ShardInfoList {
		if target, ok := si.Replicas[si.LeaderID]; ok && si.LeaderID != 0 {
			out[si.ShardID] = target
		}
	}
	return out
}
