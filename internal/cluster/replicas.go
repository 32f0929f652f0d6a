package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
)

// This member's replicas: the three RPC services rebalancing uses (a
// shard's leader asks a member to start or confirm a replica, tells it a
// replica was removed, asks it for a shard's membership), the checks that
// a request matches the shard's committed membership, and the layout
// writes that record which replicas this member holds.

// hosted returns the shards this member holds a replica of, sorted.
func (c *Cluster) hosted() []uint64 {
	lay := c.currentLayout()
	if lay == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(lay.Replicas))
}

// currentLayout returns the member's layout (never modified in place).
func (c *Cluster) currentLayout() *layout {
	return c.layout.Load()
}

// setReplica records (rid != 0) or forgets (rid == 0) this member's replica
// of shard s in a new layout, saved to disk before it is used.
func (c *Cluster) setReplica(s, rid uint64) error {
	next := *c.layout.Load()
	next.Replicas = maps.Clone(next.Replicas)
	if rid == 0 {
		delete(next.Replicas, s)
	} else {
		next.Replicas[s] = rid
	}
	if err := saveLayout(c.cfg.DataDir, &next); err != nil {
		return err
	}
	c.layout.Store(&next)
	return nil
}

// drop deletes this member's replica rid of shard s, which was removed from
// the shard: the executor lets go of it, the layout forgets it and its log
// and state are deleted. It does nothing if the member no longer runs rid
// for s: the callers learn that rid was removed over an RPC or two, and
// meanwhile the shard's leader may have added this member anew (ServeReplica
// replaces the old replica with the new one), which must not be deleted
// for its predecessor's removal.
func (c *Cluster) drop(ctx context.Context, s, rid uint64, why string) {
	c.hostMu.Lock()
	defer c.hostMu.Unlock()
	h, err := c.local.Storage()
	if err != nil {
		return
	}
	if cur, ok := h.ReplicaID(s); !ok || cur != rid {
		c.log.Debug("not dropping a replica that was replaced meanwhile", logkeys.Shard, s, "replica", rid, "now", cur, "reason", why)
		return
	}
	c.dropLocked(ctx, s, why)
}

func (c *Cluster) dropLocked(ctx context.Context, s uint64, why string) {
	h, err := c.local.Storage()
	if err != nil {
		return
	}
	rid, ok := h.ReplicaID(s)
	if !ok {
		return
	}
	if err := c.local.LetGo(s); err != nil {
		c.log.Warn("letting go of a shard", logkeys.Shard, s, "error", err)
	}
	if err := c.setReplica(s, 0); err != nil {
		c.log.Error("dropping a removed replica", logkeys.Shard, s, "error", err)
		return
	}
	if err := h.DropShard(ctx, s); err != nil {
		c.log.Error("deleting a removed replica's data", logkeys.Shard, s, "replica", rid, "error", err)
	}
	c.local.Forget(s)
	c.mu.Lock()
	delete(c.leaderless, s)
	c.mu.Unlock()
	c.log.Info("replica dropped", logkeys.Shard, s, "replica", rid, "reason", why)
	c.bus.Publish(&events.ShardMovedEvent{ShardID: s, ReplicaID: rid, NodeID: c.cfg.NodeID, Move: events.ReplicaDropped,
		Reason: why, ChangedAt: c.timing.Now()})
}

// ServeReplica starts the replica a shard's leader has just added on this
// member (join), replacing an older replica of the same shard that was
// removed, and answers once it has caught up. Asked about a replica it does
// not hold, without New, it answers CodeNotFound.
func (c *Cluster) ServeReplica(ctx context.Context, req wire.ReplicaRequest) error {
	h, err := c.local.Storage()
	if err != nil {
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: err}
	}
	if req.Shard == 0 || req.Shard > c.shardCount || req.Replica == 0 {
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("no replica %d of shard %d", req.Replica, req.Shard)}
	}
	if cur, ok := h.ReplicaID(req.Shard); ok && req.New && cur < req.Replica {
		// Replacing a replica on the word of the caller alone would let
		// anyone delete replicas: the one held here goes only if the
		// shard's committed membership lists it as removed.
		if err := c.confirmRemoved(ctx, h, req.Shard, cur); err != nil {
			return err
		}
	}
	if cur, ok := h.ReplicaID(req.Shard); req.New && (!ok || cur < req.Replica) {
		// Starting a replica on the word of the caller alone would let
		// anyone make this member run stray replicas: it starts only
		// one the shard's committed membership names at this member.
		if err := c.confirmAdded(ctx, req.Shard, req.Replica); err != nil {
			return err
		}
	}
	c.hostMu.Lock()
	cur, ok := h.ReplicaID(req.Shard)
	if !ok && !req.New && c.currentLayout().Replicas[req.Shard] == req.Replica {
		// Recorded but not started yet: this member is restarting.
		c.hostMu.Unlock()
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s is still starting replica %d of shard %d",
			c.cfg.NodeID, req.Replica, req.Shard)}
	}
	switch {
	case ok && cur == req.Replica:
	case !req.New, ok && cur > req.Replica:
		c.hostMu.Unlock()
		return &rpc.CodedError{Code: rpc.CodeNotFound, Err: fmt.Errorf("member %s does not hold replica %d of shard %d",
			c.cfg.NodeID, req.Replica, req.Shard)}
	case ok:
		// The leader added this member anew, so the old replica is no
		// longer part of the shard.
		c.dropLocked(ctx, req.Shard, fmt.Sprintf("superseded by replica %d", req.Replica))
		ok = false
	}
	if !ok {
		if err := c.setReplica(req.Shard, req.Replica); err != nil {
			c.hostMu.Unlock()
			return err
		}
		if err := h.StartShard(req.Shard, req.Replica, nil, true); err != nil {
			_ = c.setReplica(req.Shard, 0)
			c.hostMu.Unlock()
			return fmt.Errorf("joining shard %d as replica %d: %w", req.Shard, req.Replica, err)
		}
		c.log.Info("joined shard", logkeys.Shard, req.Shard, "replica", req.Replica)
		c.bus.Publish(&events.ShardMovedEvent{ShardID: req.Shard, ReplicaID: req.Replica, NodeID: c.cfg.NodeID,
			Move: events.ReplicaJoined, Reason: "added by the shard's leader", ChangedAt: c.timing.Now()})
	}
	c.hostMu.Unlock()
	if _, err := h.Read(ctx, req.Shard, wf.EncodeQuery(wf.Query{Op: wf.QueryCounters})); err != nil {
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("replica %d of shard %d has not caught up: %w", req.Replica, req.Shard, err)}
	}
	return nil
}

// ServeDrop deletes a replica its shard's leader removed, once the shard
// confirms it: a drop request alone proves nothing (anyone who reaches the
// RPC port could send one), so the replica is deleted only when the
// shard's committed membership lists it as removed.
func (c *Cluster) ServeDrop(ctx context.Context, req wire.ReplicaRequest) error {
	h, err := c.local.Storage()
	if err != nil {
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: err}
	}
	rid, ok := h.ReplicaID(req.Shard)
	if !ok || rid != req.Replica {
		return nil // not held here: nothing to do
	}
	if err := c.confirmRemoved(ctx, h, req.Shard, rid); err != nil {
		return err
	}
	c.drop(ctx, req.Shard, rid, "removed by the shard's leader")
	return nil
}

// confirmAdded returns nil if shard s's membership names replica rid at
// this member (by its NodeHost ID or Raft address), as applied by some other member's replica
// (an applied membership change was committed), and otherwise the error
// to answer a request to start it with.
func (c *Cluster) confirmAdded(ctx context.Context, s, rid uint64) error {
	v, err := c.recentView()
	if err != nil {
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: err}
	}
	body, _ := json.Marshal(wire.ReplicaRequest{Shard: s, Applied: true})
	failed := []error{fmt.Errorf("member %s cannot confirm that shard %d added replica %d here", c.cfg.NodeID, s, rid)}
	answered := false
	for _, id := range slices.Sorted(maps.Keys(v.members)) {
		if id == c.cfg.NodeID || !v.alive(id) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		out, err := c.client.Call(cctx, v.rpcAddr(id), wire.MethodMembership, body)
		cancel()
		var rep wire.MembershipReply
		if err == nil {
			err = json.Unmarshal(out, &rep)
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", id, wire.FromRemote(err)))
			continue
		}
		answered = true
		if target, listed := rep.Replicas[rid]; listed && c.isOwnTarget(target) {
			return nil
		}
	}
	if answered {
		c.log.Warn("refused to start a replica its shard does not name at this member", logkeys.Shard, s, "replica", rid)
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("shard %d does not name replica %d at member %s: not started",
			s, rid, c.cfg.NodeID)}
	}
	return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: errors.Join(failed...)}
}

// confirmRemoved returns nil if the committed membership of shard s lists
// this member's replica rid as removed, and otherwise the error to answer
// a request to delete it with.
func (c *Cluster) confirmRemoved(ctx context.Context, h *shards.Host, s, rid uint64) error {
	removed, err := c.replicaRemoved(ctx, h, s, rid)
	switch {
	case err != nil:
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s cannot confirm that replica %d of shard %d was removed: %w",
			c.cfg.NodeID, rid, s, err)}
	case !removed:
		c.log.Warn("refused to delete a replica that is still a member of its shard", logkeys.Shard, s, "replica", rid)
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("replica %d of shard %d on member %s is still a member of the shard: not deleted",
			rid, s, c.cfg.NodeID)}
	}
	return nil
}

// replicaRemoved reports whether the committed membership of shard s lists
// replica rid as removed. Dragonboat unloads a replica once it applied its
// own removal; otherwise the other members of the cluster are asked (the
// leader that removed the replica answers at once), and last this member's
// own replica (a linearizable read, which succeeds only while the replica
// is in contact with a leader).
func (c *Cluster) replicaRemoved(ctx context.Context, h *shards.Host, s, rid uint64) (bool, error) {
	if h.Removed(s) {
		return true, nil
	}
	v, err := c.recentView()
	if err != nil {
		return false, err
	}
	rep, askErr := c.askMembership(ctx, v, s)
	if askErr == nil {
		return slices.Contains(rep.Removed, rid), nil
	}
	lctx, cancel := context.WithTimeout(ctx, c.timing.ConfirmTimeout/3)
	mem, err := h.Membership(lctx, s)
	cancel()
	if err != nil {
		return false, errors.Join(askErr, err)
	}
	_, gone := mem.Removed[rid]
	return gone, nil
}

// askMembership asks the other alive members of the cluster, in ID order,
// for shard s's membership, and returns the first answer.
func (c *Cluster) askMembership(ctx context.Context, v *view, s uint64) (*wire.MembershipReply, error) {
	body, _ := json.Marshal(wire.ReplicaRequest{Shard: s})
	var failed []error
	for _, id := range slices.Sorted(maps.Keys(v.members)) {
		if id == c.cfg.NodeID || !v.alive(id) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		out, err := c.client.Call(cctx, v.rpcAddr(id), wire.MethodMembership, body)
		cancel()
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", id, wire.FromRemote(err)))
			continue
		}
		var rep wire.MembershipReply
		if err := json.Unmarshal(out, &rep); err != nil {
			failed = append(failed, fmt.Errorf("%s: decoding membership: %w", id, err))
			continue
		}
		return &rep, nil
	}
	if len(failed) == 0 {
		return nil, fmt.Errorf("%w: no other member to ask about shard %d", errs.ErrNotReady, s)
	}
	return nil, errors.Join(failed...)
}

// ServeMembership answers with shard s's membership: the one this
// member's replica has applied (req.Applied), or the committed one if the
// replica knows a leader. The applied membership needs no leader: a shard
// that grew from one replica to two has none until the new replica starts,
// and the new replica's member starts it only once it saw the membership
// (confirmAdded).
func (c *Cluster) ServeMembership(ctx context.Context, req wire.ReplicaRequest) ([]byte, error) {
	h, err := c.local.Storage()
	if err != nil {
		return nil, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: err}
	}
	if req.Applied {
		replicas, ok := h.AppliedMembership(req.Shard)
		if !ok {
			return nil, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s has no applied membership of shard %d", c.cfg.NodeID, req.Shard)}
		}
		return json.Marshal(wire.MembershipReply{Replicas: replicas})
	}
	if _, ok := h.LeaderID(req.Shard); !ok {
		return nil, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s knows no leader of shard %d", c.cfg.NodeID, req.Shard)}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	mem, err := h.Membership(ctx, req.Shard)
	if err != nil {
		code := rpc.CodeUnavailable
		if !shards.IsRetryable(err) && !errors.Is(err, shards.ErrShardNotFound) {
			code = rpc.CodeUnknown
		}
		return nil, &rpc.CodedError{Code: code, Err: err}
	}
	return json.Marshal(wire.MembershipReply{Replicas: mem.Replicas, Removed: slices.Sorted(maps.Keys(mem.Removed))})
}
