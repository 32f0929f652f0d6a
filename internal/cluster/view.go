package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/rebalance"
	"github.com/eleven-am/graft/ring"
)

// view is one member's picture of the cluster, for placement and routing.
type view struct {
	at       time.Time
	place    *ring.Placement
	members  map[string]gossip.Member    // every member of this cluster, any status
	byTarget map[string]string           // Raft target (NodeHost ID or Raft address) -> member ID
	seen     map[string]rebalance.Member // members as rebalancing sees them, by ID
}

// alive reports whether gossip sees member id alive.
func (v *view) alive(id string) bool {
	p, ok := v.members[id]
	return ok && p.Status == gossip.StatusAlive
}

// rpcAddr returns member id's RPC address, or "".
func (v *view) rpcAddr(id string) string { return v.members[id].Tags[tagRPC] }

// view computes the placement over the members that may hold replicas
// (rebalance.Eligible: those alive, and those failed for less than
// FailureGrace, so a short flap moves nothing; members that left are out at
// once).
func (c *Cluster) view() (*view, error) {
	lay := c.currentLayout()
	if lay == nil {
		return nil, fmt.Errorf("%w: this member has not joined the cluster yet", errs.ErrNotReady)
	}
	v := &view{at: c.timing.Now(), members: map[string]gossip.Member{}}
	var seen []rebalance.Member
	shardsTag := strconv.FormatUint(c.shardCount, 10)
	c.mu.Lock()
	for _, p := range c.gossip.AllMembers() {
		if p.Tags[tagRaft] == "" || p.Tags[tagShards] != shardsTag || !c.oursLocked(p) {
			continue // not a member of this cluster's Raft layer
		}
		v.members[p.ID] = p
		seen = append(seen, rebalance.Member{ID: p.ID, Target: targetOf(p), Aliases: aliasesOf(p), Status: rebalanceStatus(p.Status)})
	}
	c.mu.Unlock()
	v.byTarget = targetIndex(v.members)
	v.seen = c.rebal.Observe(seen)
	var eligible []ring.Member
	for _, id := range c.rebal.Eligible(v.seen) {
		eligible = append(eligible, ring.Member{ID: id})
	}
	if len(eligible) == 0 {
		return nil, fmt.Errorf("%w: gossip lists no member yet", errs.ErrNotReady)
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
		c.log.Info("placing shards on members", "members", ids)
	}
	return v, nil
}

// rebalanceStatus maps a gossip status to the one rebalancing decides on:
// leaving, left and unknown members are gone for good at once.
func rebalanceStatus(s gossip.MemberStatus) rebalance.Status {
	switch s {
	case gossip.StatusAlive:
		return rebalance.Alive
	case gossip.StatusFailed:
		return rebalance.Failed
	}
	return rebalance.Left
}

// recentView returns a view at most viewTTL old, for routing.
func (c *Cluster) recentView() (*view, error) {
	c.mu.Lock()
	v := c.cached
	c.mu.Unlock()
	if v != nil && c.timing.Now().Sub(v.at) < c.timing.ViewTTL {
		return v, nil
	}
	return c.view()
}
