package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/backoff"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
)

// What routing and the member ask of the cluster: which replicas this
// member holds, which members to forward a shard's calls to, who leads a
// shard, who runs a node type, and who is alive.

// ReplicaOf returns this member's replica ID in shard s and whether it
// hosts s, from its layout.
func (c *Cluster) ReplicaOf(s uint64) (uint64, bool) {
	lay := c.layout.Load()
	if lay == nil {
		return 0, false
	}
	id, ok := lay.Replicas[s]
	return id, ok
}

// rpcTargets lists the RPC addresses of the members that should hold
// shard s (placement order, preferred leader first), then of every other
// alive member: during a move a replica may still be where the placement
// no longer puts it, and a member without one answers at once that it has
// none.
func (c *Cluster) rpcTargets(s uint64) []string {
	v, err := c.recentView()
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{c.cfg.NodeID: true}
	add := func(id string) {
		if !seen[id] && v.alive(id) && v.rpcAddr(id) != "" {
			out = append(out, v.rpcAddr(id))
		}
		seen[id] = true
	}
	for _, id := range v.place.Replicas(s) {
		add(id)
	}
	for _, id := range slices.Sorted(maps.Keys(v.members)) {
		add(id)
	}
	return out
}

// Forward sends a call about shard s to the members holding it, trying each
// until one answers.
func (c *Cluster) Forward(ctx context.Context, s uint64, method string, body []byte) ([]byte, error) {
	if c.currentLayout() == nil {
		return nil, fmt.Errorf("%w: shard %d is not hosted here", errs.ErrNotReady, s)
	}
	payload := wire.ShardPayload(s, body)
	var last error = fmt.Errorf("%w: no reachable member holds shard %d", errs.ErrNotReady, s)
	began := time.Now()
	for attempt := 0; ctx.Err() == nil && (attempt < 3 || time.Since(began) < forwardPatience); attempt++ {
		for _, addr := range c.rpcTargets(s) {
			out, err := c.client.Call(ctx, addr, method, payload)
			if err == nil {
				return out, nil
			}
			last = wire.FromRemote(err)
			if !errs.IsRetryable(last) {
				return nil, last
			}
		}
		if err := backoff.Sleep(ctx, backoff.Delay(attempt+1, 50*time.Millisecond, 250*time.Millisecond)); err != nil {
			break
		}
	}
	return nil, last
}

// forwardPatience is how long forward keeps trying members whose answers
// are retryable (no leader known: an election after a member failed, a
// shard moving), within the call's context (whose deadline, the member's
// RequestTimeout, usually ends it first). It was 2s: on a loaded machine an
// election in a cluster still placing its shards outlasted that, and a
// start failed with "does not serve shard" while the shard was moving.
const forwardPatience = 10 * time.Second

// RPCAddrOf returns the member RPC address of alive member id of this
// cluster, or "".
func (c *Cluster) RPCAddrOf(id string) string {
	for _, p := range c.members() {
		if p.ID == id {
			return p.Tags[tagRPC]
		}
	}
	return ""
}

// AlivePeers lists the other alive members of this cluster that serve the
// member RPC, sorted.
func (c *Cluster) AlivePeers() []string {
	var out []string
	for _, p := range c.members() {
		if p.ID != c.cfg.NodeID && p.Tags[tagRPC] != "" {
			out = append(out, p.ID)
		}
	}
	return out
}

// Alive reports whether gossip sees member alive.
func (c *Cluster) Alive(member string) bool {
	for _, p := range c.members() {
		if p.ID == member {
			return true
		}
	}
	return false
}

// Incarnation returns the incarnation alive member publishes (the run
// it is in), or "" when gossip lists no such member or it publishes none.
func (c *Cluster) Incarnation(member string) string {
	for _, p := range c.members() {
		if p.ID == member {
			return p.Tags[tagInc]
		}
	}
	return ""
}

// Call calls method on the member at RPC address addr.
func (c *Cluster) Call(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	return c.client.Call(ctx, addr, method, body)
}

// Gossip returns the cluster's gossip node.
func (c *Cluster) Gossip() *gossip.Node { return c.gossip }

// Describe fills in the other members, whether this one coordinates and
// the cluster ID.
func (c *Cluster) Describe() (peers []string, coordinator bool, clusterID string) {
	for _, p := range c.members() {
		if p.ID != c.cfg.NodeID {
			peers = append(peers, p.ID)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return peers, c.coordinator == c.cfg.NodeID, c.clusterID
}

// refreshLeaders records which member leads each shard hosted here, so
// that starts can go to it directly.
func (c *Cluster) refreshLeaders(h *shards.Host, v *view) {
	next := map[uint64]string{}
	for s, target := range h.LeaderTargets() {
		if id := v.byTarget[target]; id != c.cfg.NodeID && v.alive(id) {
			next[s] = v.rpcAddr(id)
		}
	}
	c.mu.Lock()
	c.leaderRPC = next
	c.mu.Unlock()
}

// LeaderOf returns the RPC address of the other member leading shard s, or
// "" if this member leads it or does not know.
func (c *Cluster) LeaderOf(s uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderRPC[s]
}

// Peer is a member of this cluster as gossip sees it.
type Peer struct {
	// ID is the member's node ID.
	ID string
	// GossipAddr, RaftAddr and RPCAddr are its gossip (host:port), Raft
	// and member RPC addresses.
	GossipAddr, RaftAddr, RPCAddr string
	// Status is its gossip status.
	Status gossip.MemberStatus
}

// Peers lists every member of this cluster in gossip's view, whatever its
// status, this one included, sorted by ID.
func (c *Cluster) Peers() []Peer {
	var out []Peer
	for _, p := range c.gossip.AllMembers() {
		if !c.ours(p) {
			continue
		}
		out = append(out, Peer{ID: p.ID, GossipAddr: p.Address(), RaftAddr: p.Tags[tagRaft], RPCAddr: p.Tags[tagRPC], Status: p.Status})
	}
	return out
}
