package cluster

import (
	"fmt"
	"maps"
	"slices"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/shards"
)

// Raft targets: the names shard memberships give replicas. A member's
// replicas are named by its NodeHost ID (shards.Host.NodeHostID), which it
// publishes in gossip (tagNodeHost) and which, for a data directory
// created by this version, is shards.NodeHostIDOf(its node ID); replicas
// added before NodeHost ID targets are named by its Raft address. The
// Raft layer resolves a NodeHost ID to the member's current Raft address
// through RaftAddress.

// targetOf returns the target a replica added on member p is given: the
// NodeHost ID it publishes, or, for a member of an earlier version that
// publishes none, its Raft address (which Dragonboat refuses as a target,
// so no replica is added there).
func targetOf(p gossip.Member) string {
	if id := p.Tags[tagNodeHost]; shards.IsNodeHostID(id) {
		return id
	}
	return p.Tags[tagRaft]
}

// aliasesOf returns the targets other than targetOf(p) that may name p's
// replicas: the NodeHost ID derived from its node ID and its Raft address.
func aliasesOf(p gossip.Member) []string {
	main := targetOf(p)
	var out []string
	for _, t := range []string{shards.NodeHostIDOf(p.ID), p.Tags[tagRaft]} {
		if t != "" && t != main && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// targetIndex maps every target of members to its member's ID. A target
// several members claim goes to the one alive (a member replaced at the
// same address, or renamed on the same data directory, by the new one);
// claimed by several alive members, it names none, so that no member can
// take another's Raft traffic by publishing its NodeHost ID. The NodeHost
// ID derived from a node ID always names that node, whatever others
// publish.
func targetIndex(members map[string]gossip.Member) map[string]string {
	out := map[string]string{}
	contested := map[string]bool{}
	alive := func(id string) bool { return members[id].Status == gossip.StatusAlive }
	for _, id := range slices.Sorted(maps.Keys(members)) {
		p := members[id]
		for _, t := range []string{p.Tags[tagNodeHost], p.Tags[tagRaft]} {
			prev, taken := out[t]
			switch {
			case t == "" || prev == id:
			case !taken, !alive(prev) && alive(id):
				out[t] = id
			case alive(prev) && alive(id):
				contested[t] = true
			}
		}
	}
	for t := range contested {
		delete(out, t)
	}
	for id := range members {
		out[shards.NodeHostIDOf(id)] = id
	}
	return out
}

// memberByTarget returns the ID of the member of this cluster that target
// names, or "": from the routing view (at most ViewTTL old), or, before
// this member has one (it has not joined yet), from gossip's list.
func (c *Cluster) memberByTarget(target string) string {
	p, _ := c.lookupTarget(target)
	return p.ID
}

// lookupTarget returns the member target names, as memberByTarget.
func (c *Cluster) lookupTarget(target string) (gossip.Member, bool) {
	if v, err := c.recentView(); err == nil {
		p, ok := v.members[v.byTarget[target]]
		return p, ok
	}
	known := map[string]gossip.Member{}
	for _, p := range c.known() {
		known[p.ID] = p
	}
	p, ok := known[targetIndex(known)[target]]
	return p, ok
}

// RaftAddress returns the Raft address of the member whose NodeHost ID is
// nodeHostID: the shards.Directory of this member's Raft layer.
func (c *Cluster) RaftAddress(nodeHostID string) (string, bool) {
	p, ok := c.lookupTarget(nodeHostID)
	return p.Tags[tagRaft], ok && p.Tags[tagRaft] != ""
}

// MemberByTarget returns the ID of the member of this cluster that Raft
// target (a NodeHost ID or Raft address) names, or "".
func (c *Cluster) MemberByTarget(target string) string { return c.memberByTarget(target) }

// isOwnTarget reports whether target names this member.
func (c *Cluster) isOwnTarget(target string) bool {
	return target == c.cfg.BindAddr || target == shards.NodeHostIDOf(c.cfg.NodeID) ||
		c.host != nil && target == c.host.NodeHostID()
}

// BindRaftPeer accepts Raft traffic from peer only for a source that names
// that member: its NodeHost ID or its Raft address as gossip shows them.
func (c *Cluster) BindRaftPeer(peer, source string) error {
	if !c.isPeer(func(p gossip.Member) bool { return p.ID == peer }) {
		return fmt.Errorf("%q is not a member of this cluster (yet)", peer)
	}
	switch id := c.memberByTarget(source); id {
	case peer:
		return nil
	case "":
		return fmt.Errorf("%q is neither member %q's NodeHost ID nor its Raft address", source, peer)
	default:
		return fmt.Errorf("%q names member %q, not %q", source, id, peer)
	}
}
