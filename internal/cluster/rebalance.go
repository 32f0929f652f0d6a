package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/rebalance"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
)

// The rebalancing loop. Every member runs reconcile once a second. For each
// shard it leads, rebalance.Plan compares the shard's Raft membership with
// the placement ring.Place computes from the gossip view and decides one
// change at a time, which a rebalance.Reconciler applies (see the rules in
// internal/rebalance's package documentation): remove the replicas of
// members gone for good, add replicas on placed members, confirm the placed
// replicas caught up, remove the unplaced ones, balance leadership.
//
// Membership changes carry the ConfigChangeID they were decided on, so a
// change based on a stale view is refused by Raft rather than applied. A
// member whose replica was removed while it was away finds out from the
// others (orphan check) and deletes it. The services the loop calls on
// other members are in replicas.go.

// RebalanceTiming is the rebalancing loop's clock and intervals.
type RebalanceTiming struct {
	// Now is the clock of every rebalancing decision.
	Now func() time.Time
	// Interval is how often a member reconciles the shards it leads.
	Interval time.Duration
	// ConfirmTimeout bounds asking a member to start and catch up a replica.
	ConfirmTimeout time.Duration
	// ConfirmTTL is how long a confirmation holds: the leader asks again
	// after it, which finds replicas lost since.
	ConfirmTTL time.Duration
	// OrphanAfter is how long a replica may see no leader before its
	// member asks the others whether it was removed while it was away.
	OrphanAfter time.Duration
	// ViewTTL is how long forwarding reuses a computed view.
	ViewTTL time.Duration
}

// DefaultRebalanceTiming is the timing members run with.
func DefaultRebalanceTiming() RebalanceTiming {
	return RebalanceTiming{
		Now:            time.Now,
		Interval:       time.Second,
		ConfirmTimeout: 3 * time.Second,
		ConfirmTTL:     rebalance.DefaultConfirmTTL,
		OrphanAfter:    5 * time.Second,
		ViewTTL:        250 * time.Millisecond,
	}
}

// newReconciler returns the reconciler of the shards this member leads on
// host.
func (c *Cluster) newReconciler(host *shards.Host) *rebalance.Reconciler {
	return rebalance.NewReconciler(rebalance.Config{
		Self: c.cfg.NodeID, Shards: hostShards{host}, FailureGrace: c.cfg.FailureGrace,
		ConfirmTTL: c.timing.ConfirmTTL, Now: c.timing.Now, Logger: c.log, Events: c.bus,
	})
}

// reconcileLoop runs reconcile every timing.Interval until the cluster
// stops.
func (c *Cluster) reconcileLoop() {
	t := time.NewTicker(c.timing.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*c.timing.Interval)
		stop := context.AfterFunc(c.stopCtx, cancel)
		c.reconcile(ctx)
		stop()
		cancel()
	}
}

// reconcile brings each shard this member leads one step closer to the
// placement, deletes replicas removed from their shards and keeps the
// executor's idea of leadership in step with Raft's.
func (c *Cluster) reconcile(ctx context.Context) {
	h, err := c.local.Running()
	if err != nil {
		return
	}
	v, err := c.view()
	if err != nil {
		c.log.Debug("rebalancing skipped", "error", err)
		return
	}
	c.refreshLeaders(h, v)
	for _, s := range c.hosted() {
		if ctx.Err() != nil {
			return
		}
		if rid, ok := h.ReplicaID(s); ok && h.Removed(s) {
			c.drop(ctx, s, rid, "removed from the shard")
			continue
		}
		c.local.SyncLeader(s)
		if !h.IsLeader(s) {
			c.checkOrphan(ctx, h, v, s)
			continue
		}
		c.mu.Lock()
		delete(c.leaderless, s)
		c.mu.Unlock()
		err := c.rebal.Reconcile(ctx, s, v.place.Replicas(s), v.seen, peers{c, v})
		if err != nil && ctx.Err() == nil {
			c.log.Debug("rebalancing step failed; retrying", logkeys.Shard, s, "error", err)
		}
	}
}

// hostShards is the local Raft host as rebalancing uses it.
type hostShards struct{ h *shards.Host }

var _ rebalance.Shards = hostShards{}

// Membership reads shard's committed membership.
func (hs hostShards) Membership(ctx context.Context, shard uint64) (rebalance.Membership, error) {
	mem, err := hs.h.Membership(ctx, shard)
	if err != nil {
		return rebalance.Membership{}, err
	}
	return rebalance.Membership{ConfigChangeID: mem.ConfigChangeID, Replicas: mem.Replicas, Removed: mem.Removed}, nil
}

// AddReplica adds a replica to shard.
func (hs hostShards) AddReplica(ctx context.Context, shard, replica uint64, target string, configChangeID uint64) error {
	return hs.h.AddReplica(ctx, shard, replica, target, configChangeID)
}

// RemoveReplica removes a replica from shard.
func (hs hostShards) RemoveReplica(ctx context.Context, shard, replica, configChangeID uint64) error {
	return hs.h.RemoveReplica(ctx, shard, replica, configChangeID)
}

// TransferLeader asks shard's leadership to move to replica.
func (hs hostShards) TransferLeader(shard, replica uint64) error {
	return hs.h.TransferLeader(shard, replica)
}

// peers reaches the members of view v over the member RPC, for one pass.
type peers struct {
	c *Cluster
	v *view
}

var _ rebalance.Peers = peers{}

// Confirm asks member id to confirm that its replica rid of shard s runs
// and has caught up, starting it first if isNew. It returns an error
// wrapping rebalance.ErrNotHeld if the member does not hold the replica.
func (p peers) Confirm(ctx context.Context, id string, s, rid uint64, isNew bool) error {
	addr := p.v.rpcAddr(id)
	if addr == "" {
		return fmt.Errorf("member %q has no RPC address", id)
	}
	body, _ := json.Marshal(wire.ReplicaRequest{Shard: s, Replica: rid, New: isNew})
	ctx, cancel := context.WithTimeout(ctx, p.c.timing.ConfirmTimeout)
	defer cancel()
	if _, err := p.c.client.Call(ctx, addr, wire.MethodReplica, body); err != nil {
		var re *rpc.RemoteError
		if errors.As(err, &re) && re.Code == rpc.CodeNotFound {
			return fmt.Errorf("%w: %s", rebalance.ErrNotHeld, re.Message)
		}
		return wire.FromRemote(err)
	}
	return nil
}

// TellRemoved tells member id that its replica rid of shard s was removed
// (best effort: a member that misses it finds out by itself).
func (p peers) TellRemoved(ctx context.Context, id string, s, rid uint64) {
	addr := p.v.rpcAddr(id)
	if addr == "" || !p.v.alive(id) {
		return
	}
	body, _ := json.Marshal(wire.ReplicaRequest{Shard: s, Replica: rid})
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := p.c.client.Call(ctx, addr, wire.MethodDrop, body); err != nil {
		p.c.log.Debug("telling a member its replica was removed failed", logkeys.Shard, s, "member", id, "error", err)
	}
}

// checkOrphan handles a replica that has seen no leader for orphanAfter: it
// may have been removed from its shard while this member was away, in
// which case no leader will ever contact it. It asks the alive members for
// the shard's membership and drops the replica if it was removed.
func (c *Cluster) checkOrphan(ctx context.Context, h *shards.Host, v *view, s uint64) {
	now := c.timing.Now()
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
	due := ok && now.Sub(since) >= c.timing.OrphanAfter
	if due {
		c.leaderless[s] = now // ask again only after another orphanAfter
	}
	c.mu.Unlock()
	rid, hosted := h.ReplicaID(s)
	if !due || !hosted {
		return
	}
	if rep, err := c.askMembership(ctx, v, s); err == nil && slices.Contains(rep.Removed, rid) {
		c.drop(ctx, s, rid, "removed from the shard while away")
	}
}
