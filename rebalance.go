package graft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/ring"
	"github.com/eleven-am/graft/shards"
)

// Rebalancing. Every member runs reconcile once a second. For each shard it
// leads, it compares the shard's Raft membership with the placement that
// ring.Place computes from the gossip view, and makes one change at a time:
//
//  1. remove the replicas of members that are gone for good (left, or
//     failed for longer than Cluster.FailureGrace);
//  2. add a replica (a never-used replica ID) on each member the placement
//     names that has none, and ask that member to start it (join), but
//     only while every current replica is up;
//  3. once every placed replica has confirmed it is running and caught up
//     (it answered a linearizable read), remove the replicas the placement
//     no longer names, handing leadership away first when the leader itself
//     is one of them;
//  4. hand leadership to the placement's preferred leader, asking again
//     until the transfer happens.
//
// Membership changes carry the ConfigChangeID they were decided on, so a
// change based on a stale view is refused by Raft rather than applied. A
// member whose replica was removed while it was away finds out from the
// others (orphan check) and deletes it.

// RPC methods of rebalancing.
const (
	rpcReplica    = "replica"    // start (or confirm) a replica a shard's leader added here
	rpcDrop       = "drop"       // a replica here was removed from its shard: delete it
	rpcMembership = "membership" // a shard's current membership
)

const (
	// reconcileInterval is how often a member reconciles the shards it leads.
	reconcileInterval = time.Second
	// confirmTimeout bounds asking a member to start and catch up a replica.
	confirmTimeout = 3 * time.Second
	// confirmTTL is how long a confirmation holds: the leader asks again
	// after it, which finds replicas lost since.
	confirmTTL = 30 * time.Second
	// orphanAfter is how long a replica may see no leader before its member
	// asks the others whether it was removed while it was away.
	orphanAfter = 5 * time.Second
	// viewTTL is how long forwarding reuses a computed view.
	viewTTL = 250 * time.Millisecond
)

// replicaRequest names one replica of a shard.
type replicaRequest struct {
	Shard   uint64 `json:"shard"`
	Replica uint64 `json:"replica"`
	// New is set when the asking leader has just added the replica: only
	// then may the member start it. A member asked to confirm a replica it
	// does not hold, without New, has lost it (its data directory was
	// replaced, say) and answers so; the leader then replaces it.
	New bool `json:"new,omitempty"`
	// Applied asks a membership request for the membership the answering
	// member's replica has applied, without a quorum read: a replica just
	// added counts towards the quorum before it runs, so a linearizable
	// read could wait on the very replica asking.
	Applied bool `json:"applied,omitempty"`
}

// replicaKey identifies a replica in the leader's bookkeeping.
type replicaKey struct{ shard, replica uint64 }

// errReplicaLost reports a member that does not hold a replica its shard's
// membership gives it.
var errReplicaLost = errors.New("the member does not hold the replica")

// membershipReply is a shard's membership as one of its replicas sees it.
type membershipReply struct {
	Replicas map[uint64]string `json:"replicas"`
	Removed  []uint64          `json:"removed"`
}

// view is one member's picture of the cluster, for placement and routing.
type view struct {
	at      time.Time
	place   *ring.Placement
	members map[string]gossip.Member // every member of this cluster, any status
	byRaft  map[string]string        // Raft address -> member ID
}

// alive reports whether gossip sees member id alive.
func (v *view) alive(id string) bool {
	p, ok := v.members[id]
	return ok && p.Status == gossip.StatusAlive
}

// rpcAddr returns member id's RPC address, or "".
func (v *view) rpcAddr(id string) string { return v.members[id].Tags[tagRPC] }

// view computes the placement over the members that may hold replicas:
// those alive, and those failed for less than FailureGrace (a short flap
// moves nothing). Members that left gracefully are out at once.
func (c *cluster) view() (*view, error) {
	lay := c.currentLayout()
	if lay == nil {
		return nil, fmt.Errorf("%w: this member has not joined the cluster yet", ErrNotReady)
	}
	now := time.Now()
	v := &view{at: now, members: map[string]gossip.Member{}, byRaft: map[string]string{}}
	var eligible []ring.Member
	shardsTag := strconv.FormatUint(c.shardCount, 10)
	c.mu.Lock()
	for _, p := range c.gossip.AllMembers() {
		if p.Tags[tagRaft] == "" || p.Tags[tagShards] != shardsTag || !c.oursLocked(p) {
			continue // not a member of this cluster's Raft layer
		}
		v.members[p.ID] = p
		v.byRaft[p.Tags[tagRaft]] = p.ID
		switch p.Status {
		case gossip.StatusAlive:
			if _, back := c.absent[p.ID]; back {
				// A member that was gone may have come back without its
				// data: confirm every replica again.
				clear(c.caughtUp)
				delete(c.absent, p.ID)
			}
			eligible = append(eligible, ring.Member{ID: p.ID})
		case gossip.StatusFailed:
			if now.Sub(c.absentSinceLocked(p.ID, now)) < c.m.cfg.Cluster.FailureGrace {
				eligible = append(eligible, ring.Member{ID: p.ID})
			}
		}
	}
	c.mu.Unlock()
	if len(eligible) == 0 {
		return nil, fmt.Errorf("%w: gossip lists no member yet", ErrNotReady)
	}
	place, err := ring.Place(ring.Config{ShardCount: lay.Shards, ReplicationFactor: lay.RF}, eligible)
	if err != nil {
		return nil, fmt.Errorf("placing shards: %w", err)
	}
	v.place = place
	ids := place.Members()
	c.mu.Lock()
	c.cached = v
	changed := !slices.Equal(ids, c.placed)
	c.placed = ids
	c.mu.Unlock()
	if changed {
		c.m.log.Info("placing shards on members", "members", ids)
	}
	return v, nil
}

// recentView returns a view at most viewTTL old, for routing.
func (c *cluster) recentView() (*view, error) {
	c.mu.Lock()
	v := c.cached
	c.mu.Unlock()
	if v != nil && time.Since(v.at) < viewTTL {
		return v, nil
	}
	return c.view()
}

// absentSinceLocked returns when this member first saw key missing,
// starting the clock now if it had not. c.mu is held.
func (c *cluster) absentSinceLocked(key string, now time.Time) time.Time {
	since, ok := c.absent[key]
	if !ok {
		c.absent[key] = now
		since = now
	}
	return since
}

// goneForGood reports whether the owner of a replica at raftAddr, member id
// ("" when no gossip member has that address), is gone for good: it left,
// or it has been failed or unknown for longer than FailureGrace.
func (c *cluster) goneForGood(v *view, id, raftAddr string) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == "" {
		return now.Sub(c.absentSinceLocked("raft:"+raftAddr, now)) >= c.m.cfg.Cluster.FailureGrace
	}
	switch v.members[id].Status {
	case gossip.StatusAlive:
		return false
	case gossip.StatusFailed:
		return now.Sub(c.absentSinceLocked(id, now)) >= c.m.cfg.Cluster.FailureGrace
	}
	return true // leaving or left
}

// reconcileLoop runs reconcile every reconcileInterval until the cluster stops.
func (c *cluster) reconcileLoop() {
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*reconcileInterval)
		stop := context.AfterFunc(c.stopCtx, cancel)
		c.reconcile(ctx)
		stop()
		cancel()
	}
}

// reconcile brings each shard this member leads one step closer to the
// placement, deletes replicas removed from their shards and keeps the
// executor's idea of leadership in step with Raft's.
func (c *cluster) reconcile(ctx context.Context) {
	h, err := c.m.running()
	if err != nil {
		return
	}
	v, err := c.view()
	if err != nil {
		c.m.log.Debug("rebalancing skipped", "error", err)
		return
	}
	c.refreshLeaders(h, v)
	for _, s := range c.hosted() {
		if ctx.Err() != nil {
			return
		}
		if h.Removed(s) {
			c.drop(ctx, s, "removed from the shard")
			continue
		}
		c.m.syncLeader(s)
		if !h.IsLeader(s) {
			c.checkOrphan(ctx, h, v, s)
			continue
		}
		c.mu.Lock()
		delete(c.leaderless, s)
		c.mu.Unlock()
		if err := c.reconcileShard(ctx, h, v, s); err != nil && ctx.Err() == nil {
			c.m.log.Debug("rebalancing step failed; retrying", logkeys.Shard, s, "error", err)
		}
	}
}

// reconcileShard makes at most one membership change to shard s, which this
// member leads (see the steps at the top of this file).
func (c *cluster) reconcileShard(ctx context.Context, h *shards.Host, v *view, s uint64) error {
	me := c.m.cfg.NodeID
	mem, err := h.Membership(ctx, s)
	if err != nil {
		return err
	}
	owner := map[uint64]string{} // replica ID -> member ID ("" unknown)
	have := map[string]uint64{}  // member ID -> replica ID
	for rid, addr := range mem.Replicas {
		id := v.byRaft[addr]
		owner[rid] = id
		if id != "" {
			have[id] = rid
		}
	}
	target := v.place.Replicas(s)

	// 1. Replicas of members gone for good.
	for _, rid := range mem.ReplicaIDs() {
		id := owner[rid]
		if id == me || slices.Contains(target, id) || len(mem.Replicas) == 1 {
			continue
		}
		if !c.goneForGood(v, id, mem.Replicas[rid]) {
			continue
		}
		if err := h.RemoveReplica(ctx, s, rid, mem.ConfigChangeID); err != nil {
			return fmt.Errorf("removing replica %d of departed member %q: %w", rid, id, err)
		}
		c.m.log.Info("replica of a departed member removed", logkeys.Shard, s, "replica", rid, "member", id)
		c.forget(s, rid)
		return nil
	}

	// 2. Replicas for placed members that have none, but only while every
	// current replica is up: a new replica raises the quorum before it has
	// caught up, so adding one next to a down replica could leave the shard
	// without a majority. (A down replica is removed first once it has
	// been gone for FailureGrace, or comes back.)
	for rid := range mem.Replicas {
		if id := owner[rid]; id != me && !v.alive(id) {
			return nil
		}
	}
	for _, id := range target {
		if _, ok := have[id]; ok || !v.alive(id) {
			continue
		}
		rid := mem.NextReplicaID()
		if err := h.AddReplica(ctx, s, rid, v.members[id].Tags[tagRaft], mem.ConfigChangeID); err != nil {
			return fmt.Errorf("adding replica %d on %q: %w", rid, id, err)
		}
		c.m.log.Info("replica added", logkeys.Shard, s, "replica", rid, "member", id)
		c.mu.Lock()
		c.added[replicaKey{s, rid}] = true
		c.mu.Unlock()
		if err := c.confirm(ctx, v, id, s, rid); err != nil {
			c.m.log.Debug("new replica not confirmed yet", logkeys.Shard, s, "replica", rid, "member", id, "error", err)
		}
		return nil
	}

	// 3. Placed replicas running and caught up; then remove the others.
	pending := false
	for _, id := range target {
		rid, ok := have[id]
		if id == me || ok && c.confirmed(s, rid) {
			continue
		}
		if !ok || !v.alive(id) {
			pending = true
			continue
		}
		err := c.confirm(ctx, v, id, s, rid)
		if errors.Is(err, errReplicaLost) {
			if err := h.RemoveReplica(ctx, s, rid, mem.ConfigChangeID); err != nil {
				return fmt.Errorf("removing replica %d that %q lost: %w", rid, id, err)
			}
			c.m.log.Warn("replica lost by its member removed; a new one will replace it", logkeys.Shard, s, "replica", rid, "member", id)
			c.forget(s, rid)
			return nil
		}
		if err != nil {
			c.m.log.Debug("replica not confirmed yet", logkeys.Shard, s, "replica", rid, "member", id, "error", err)
			pending = true
		}
	}
	var extra []string
	for id := range have {
		if !slices.Contains(target, id) {
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		if pending {
			return nil
		}
		id := extra[0]
		if id == me {
			to := v.place.PreferredLeader(s)
			c.m.log.Info("handing leadership away before leaving the shard", logkeys.Shard, s, "to", to)
			return h.TransferLeader(s, have[to])
		}
		rid := have[id]
		if err := h.RemoveReplica(ctx, s, rid, mem.ConfigChangeID); err != nil {
			return fmt.Errorf("removing replica %d on %q: %w", rid, id, err)
		}
		c.m.log.Info("replica moved off", logkeys.Shard, s, "replica", rid, "member", id)
		c.forget(s, rid)
		c.tellDrop(ctx, v, id, s, rid)
		return nil
	}

	// 4. Leadership on the preferred leader.
	if pref := v.place.PreferredLeader(s); pref != me && v.alive(pref) {
		if rid, ok := have[pref]; ok && c.confirmed(s, rid) {
			return h.TransferLeader(s, rid)
		}
	}
	return nil
}

// confirm asks member id to confirm that its replica rid of shard s runs
// and has caught up, starting it first if this leader has just added it.
// It returns errReplicaLost if the member does not hold the replica.
func (c *cluster) confirm(ctx context.Context, v *view, id string, s, rid uint64) error {
	addr := v.rpcAddr(id)
	if addr == "" {
		return fmt.Errorf("member %q has no RPC address", id)
	}
	key := replicaKey{s, rid}
	c.mu.Lock()
	isNew := c.added[key]
	c.mu.Unlock()
	body, _ := json.Marshal(replicaRequest{Shard: s, Replica: rid, New: isNew})
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	if _, err := c.client.Call(ctx, addr, rpcReplica, body); err != nil {
		var re *rpc.RemoteError
		if errors.As(err, &re) && re.Code == rpc.CodeNotFound {
			return fmt.Errorf("%w: %s", errReplicaLost, re.Message)
		}
		return fromRemote(err)
	}
	c.mu.Lock()
	c.caughtUp[key] = time.Now()
	delete(c.added, key)
	c.mu.Unlock()
	return nil
}

// confirmed reports whether replica rid of shard s confirmed it caught up
// within confirmTTL.
func (c *cluster) confirmed(s, rid uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.caughtUp[replicaKey{s, rid}]
	return ok && time.Since(at) < confirmTTL
}

// forget drops what this member knows of a removed replica.
func (c *cluster) forget(s, rid uint64) {
	c.mu.Lock()
	delete(c.caughtUp, replicaKey{s, rid})
	delete(c.added, replicaKey{s, rid})
	c.mu.Unlock()
}

// tellDrop tells member id that its replica rid of shard s was removed
// (best effort: a member that misses it finds out by itself).
func (c *cluster) tellDrop(ctx context.Context, v *view, id string, s, rid uint64) {
	addr := v.rpcAddr(id)
	if addr == "" || !v.alive(id) {
		return
	}
	body, _ := json.Marshal(replicaRequest{Shard: s, Replica: rid})
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := c.client.Call(ctx, addr, rpcDrop, body); err != nil {
		c.m.log.Debug("telling a member its replica was removed failed", logkeys.Shard, s, "member", id, "error", err)
	}
}

// checkOrphan handles a replica that has seen no leader for orphanAfter: it
// may have been removed from its shard while this member was away, in
// which case no leader will ever contact it. It asks the alive members for
// the shard's membership and drops the replica if it was removed.
func (c *cluster) checkOrphan(ctx context.Context, h *shards.Host, v *view, s uint64) {
	now := time.Now()
	c.mu.Lock()
	if _, ok := h.LeaderID(s); ok {
		delete(c.leaderless, s)
		c.mu.Unlock()
		return
	}
	since, ok := c.leaderless[s]
	if !ok {
		c.leaderless[s] = now
	}
	due := ok && now.Sub(since) >= orphanAfter
	if due {
		c.leaderless[s] = now // ask again only after another orphanAfter
	}
	c.mu.Unlock()
	rid, hosted := h.ReplicaID(s)
	if !due || !hosted {
		return
	}
	if rep, err := c.askMembership(ctx, v, s); err == nil && slices.Contains(rep.Removed, rid) {
		c.drop(ctx, s, "removed from the shard while away")
	}
}

// hosted returns the shards this member holds a replica of, sorted.
func (c *cluster) hosted() []uint64 {
	lay := c.currentLayout()
	if lay == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(lay.Replicas))
}

// currentLayout returns the member's layout (never modified in place).
func (c *cluster) currentLayout() *layout {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	return c.layout
}

// setReplica records (rid != 0) or forgets (rid == 0) this member's replica
// of shard s in a new layout, saved to disk before it is used.
func (c *cluster) setReplica(s, rid uint64) error {
	c.m.mu.Lock()
	next := *c.layout
	c.m.mu.Unlock()
	next.Replicas = maps.Clone(next.Replicas)
	if rid == 0 {
		delete(next.Replicas, s)
	} else {
		next.Replicas[s] = rid
	}
	if err := saveLayout(c.m.cfg.DataDir, &next); err != nil {
		return err
	}
	c.m.mu.Lock()
	c.layout = &next
	c.m.mu.Unlock()
	return nil
}

// drop deletes this member's replica of shard s, which was removed from the
// shard: the executor lets go of it, the layout forgets it and its log and
// state are deleted.
func (c *cluster) drop(ctx context.Context, s uint64, why string) {
	c.hostMu.Lock()
	defer c.hostMu.Unlock()
	c.dropLocked(ctx, s, why)
}

func (c *cluster) dropLocked(ctx context.Context, s uint64, why string) {
	h, err := c.m.storage()
	if err != nil {
		return
	}
	rid, ok := h.ReplicaID(s)
	if !ok {
		return
	}
	if err := c.m.setLeader(s, false); err != nil {
		c.m.log.Warn("letting go of a shard", logkeys.Shard, s, "error", err)
	}
	if err := c.setReplica(s, 0); err != nil {
		c.m.log.Error("dropping a removed replica", logkeys.Shard, s, "error", err)
		return
	}
	if err := h.DropShard(ctx, s); err != nil {
		c.m.log.Error("deleting a removed replica's data", logkeys.Shard, s, "replica", rid, "error", err)
	}
	c.m.mu.Lock()
	delete(c.m.logics, s)
	c.m.mu.Unlock()
	c.mu.Lock()
	delete(c.leaderless, s)
	c.mu.Unlock()
	c.m.log.Info("replica dropped", logkeys.Shard, s, "replica", rid, "reason", why)
}

// serveReplica starts the replica a shard's leader has just added on this
// member (join), replacing an older replica of the same shard that was
// removed, and answers once it has caught up. Asked about a replica it does
// not hold, without New, it answers CodeNotFound.
func (c *cluster) serveReplica(ctx context.Context, req replicaRequest) error {
	h, err := c.m.storage()
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
			c.m.cfg.NodeID, req.Replica, req.Shard)}
	}
	switch {
	case ok && cur == req.Replica:
	case !req.New, ok && cur > req.Replica:
		c.hostMu.Unlock()
		return &rpc.CodedError{Code: rpc.CodeNotFound, Err: fmt.Errorf("member %s does not hold replica %d of shard %d",
			c.m.cfg.NodeID, req.Replica, req.Shard)}
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
		c.m.log.Info("joined shard", logkeys.Shard, req.Shard, "replica", req.Replica)
	}
	c.hostMu.Unlock()
	if _, err := h.Read(ctx, req.Shard, wf.EncodeQuery(wf.Query{Op: wf.QueryCounters})); err != nil {
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("replica %d of shard %d has not caught up: %w", req.Replica, req.Shard, err)}
	}
	return nil
}

// serveDrop deletes a replica its shard's leader removed, once the shard
// confirms it: a drop request alone proves nothing (anyone who reaches the
// RPC port could send one), so the replica is deleted only when the
// shard's committed membership lists it as removed.
func (c *cluster) serveDrop(ctx context.Context, req replicaRequest) error {
	h, err := c.m.storage()
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
	c.drop(ctx, req.Shard, "removed by the shard's leader")
	return nil
}

// confirmAdded returns nil if shard s's membership names replica rid at
// this member's Raft address, as applied by some other member's replica
// (an applied membership change was committed), and otherwise the error
// to answer a request to start it with.
func (c *cluster) confirmAdded(ctx context.Context, s, rid uint64) error {
	v, err := c.recentView()
	if err != nil {
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: err}
	}
	body, _ := json.Marshal(replicaRequest{Shard: s, Applied: true})
	errs := []error{fmt.Errorf("member %s cannot confirm that shard %d added replica %d here", c.m.cfg.NodeID, s, rid)}
	answered := false
	for _, id := range slices.Sorted(maps.Keys(v.members)) {
		if id == c.m.cfg.NodeID || !v.alive(id) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		out, err := c.client.Call(cctx, v.rpcAddr(id), rpcMembership, body)
		cancel()
		var rep membershipReply
		if err == nil {
			err = json.Unmarshal(out, &rep)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, fromRemote(err)))
			continue
		}
		answered = true
		if addr, listed := rep.Replicas[rid]; listed && addr == c.m.cfg.BindAddr {
			return nil
		}
	}
	if answered {
		c.m.log.Warn("refused to start a replica its shard does not name at this member", logkeys.Shard, s, "replica", rid)
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("shard %d does not name replica %d at member %s: not started",
			s, rid, c.m.cfg.NodeID)}
	}
	return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: errors.Join(errs...)}
}

// confirmRemoved returns nil if the committed membership of shard s lists
// this member's replica rid as removed, and otherwise the error to answer
// a request to delete it with.
func (c *cluster) confirmRemoved(ctx context.Context, h *shards.Host, s, rid uint64) error {
	removed, err := c.replicaRemoved(ctx, h, s, rid)
	switch {
	case err != nil:
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s cannot confirm that replica %d of shard %d was removed: %w",
			c.m.cfg.NodeID, rid, s, err)}
	case !removed:
		c.m.log.Warn("refused to delete a replica that is still a member of its shard", logkeys.Shard, s, "replica", rid)
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("replica %d of shard %d on member %s is still a member of the shard: not deleted",
			rid, s, c.m.cfg.NodeID)}
	}
	return nil
}

// replicaRemoved reports whether the committed membership of shard s lists
// replica rid as removed. Dragonboat unloads a replica once it applied its
// own removal; otherwise the other members of the cluster are asked (the
// leader that removed the replica answers at once), and last this member's
// own replica (a linearizable read, which succeeds only while the replica
// is in contact with a leader).
func (c *cluster) replicaRemoved(ctx context.Context, h *shards.Host, s, rid uint64) (bool, error) {
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
	lctx, cancel := context.WithTimeout(ctx, confirmTimeout/3)
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
func (c *cluster) askMembership(ctx context.Context, v *view, s uint64) (*membershipReply, error) {
	body, _ := json.Marshal(replicaRequest{Shard: s})
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(v.members)) {
		if id == c.m.cfg.NodeID || !v.alive(id) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		out, err := c.client.Call(cctx, v.rpcAddr(id), rpcMembership, body)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, fromRemote(err)))
			continue
		}
		var rep membershipReply
		if err := json.Unmarshal(out, &rep); err != nil {
			errs = append(errs, fmt.Errorf("%s: decoding membership: %w", id, err))
			continue
		}
		return &rep, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: no other member to ask about shard %d", ErrNotReady, s)
	}
	return nil, errors.Join(errs...)
}

// serveMembership answers with shard s's membership, if this member has a
// replica of it that knows a leader.
func (c *cluster) serveMembership(ctx context.Context, req replicaRequest) ([]byte, error) {
	h, err := c.m.storage()
	if err != nil {
		return nil, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: err}
	}
	if _, ok := h.LeaderID(req.Shard); !ok {
		return nil, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s knows no leader of shard %d", c.m.cfg.NodeID, req.Shard)}
	}
	if req.Applied {
		replicas, ok := h.AppliedMembership(req.Shard)
		if !ok {
			return nil, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s has no applied membership of shard %d", c.m.cfg.NodeID, req.Shard)}
		}
		return json.Marshal(membershipReply{Replicas: replicas})
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
	return json.Marshal(membershipReply{Replicas: mem.Replicas, Removed: slices.Sorted(maps.Keys(mem.Removed))})
}
