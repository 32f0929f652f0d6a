package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/backoff"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/formation"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/ring"
)

// electSettle is how long a member elected founder (formation.Elect) keeps
// deciding the same before it bootstraps, so that a member that appeared at
// the same moment with a lower node ID is seen first.
const electSettle = time.Second

// newSeed returns a random cluster ID, proposed in case this member founds
// a cluster.
func newSeed() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// bootstrap makes this member part of a cluster: it joins a booted cluster
// gossip shows, or, when its founding rules are met (formation.Decide),
// places the shards on the founders deterministically (every founder
// computes the same placement from the same sorted list), records the layout
// and starts this member's replicas with their initial members. A member that
// joins records an empty layout; the shards' leaders add replicas on it as
// the placement asks (see reconcile).
func (c *Cluster) bootstrap(ctx context.Context, shardCount uint64) (*layout, error) {
	c.local.Joining()
	rules := c.cfg.Founding
	began := time.Now()
	var (
		refused   error
		reason    string
		logged    time.Time
		electedAt time.Time // when this member first found itself the elected founder
	)
	for {
		refused = nil
		// Every member seen, even one that has left since (it may have
		// refused this one first and stopped), must have the same count.
		for _, p := range c.gossip.AllMembers() {
			if n := p.Tags[tagShards]; c.ours(p) && n != "" && n != strconv.FormatUint(shardCount, 10) {
				return nil, fmt.Errorf("%w: member %s has %s shards and this data directory %d; every member of a cluster needs the same Cluster.ShardCount",
					errs.ErrInvalidConfig, p.ID, n, shardCount)
			}
		}
		alive := map[string]gossip.Member{}
		var seen []formation.Peer
		for _, p := range c.members() {
			if p.Tags[tagRaft] == "" {
				continue
			}
			alive[p.ID] = p
			seen = append(seen, formation.Peer{ID: p.ID, Cluster: p.Tags[tagCluster], Seed: p.Tags[tagSeed], Rules: p.Tags[tagRules]})
		}
		d := formation.Decide(formation.Input{
			Self:   formation.Peer{ID: c.cfg.NodeID, Seed: c.seed, Rules: rules.Fingerprint()},
			Rules:  rules,
			Seen:   seen,
			Waited: time.Since(began) >= c.cfg.BootstrapWait,
		})
		if d.Action != formation.Bootstrap {
			electedAt = time.Time{}
		}
		reason = d.Reason
		switch d.Action {
		case formation.Fail:
			return nil, fmt.Errorf("bootstrap: %s", d.Reason)
		case formation.Join:
			var booted []gossip.Member
			for _, p := range alive {
				if p.ID != c.cfg.NodeID && p.Tags[tagCluster] == d.Cluster {
					booted = append(booted, p)
				}
			}
			// A running cluster: join it once one of its members admits us.
			if refused = c.admittedBy(ctx, booted, false); refused == nil {
				if len(d.Others) > 0 {
					c.log.Error("gossip shows members of several clusters; joining the one with the most members",
						"cluster_id", d.Cluster, "other_cluster_ids", d.Others)
				}
				lay := &layout{ClusterID: d.Cluster, Shards: int(shardCount), RF: c.cfg.ReplicationFactor, Replicas: map[uint64]uint64{}}
				if err := c.adopt(lay); err != nil {
					return nil, err
				}
				c.log.Info("joining a running cluster", "cluster_id", d.Cluster, "members", len(booted))
				return lay, nil
			}
			reason = "waiting to be admitted"
		case formation.Bootstrap:
			if rules.Mode == formation.Elect {
				if electedAt.IsZero() {
					electedAt = time.Now()
				}
				if time.Since(electedAt) < electSettle {
					reason = "elected founder; settling"
					break
				}
			}
			founders := make([]gossip.Member, 0, len(d.Founders))
			for _, id := range d.Founders {
				founders = append(founders, alive[id])
			}
			// Bootstrap only with members that all see this one: a member
			// that learned of the others without being admitted (the policy
			// refused it) must not start shards that claim their replicas.
			if refused = c.admittedBy(ctx, founders, true); refused == nil {
				return c.found(d.Cluster, founders, shardCount)
			}
			reason = "waiting to be admitted by the founding members"
		}
		if refused != nil && time.Since(logged) > 5*time.Second {
			logged = time.Now()
			c.log.Warn("not admitted to the cluster yet; check Cluster.Policy, Cluster.Key and Cluster.AllowedNodes on every member", "error", refused)
		} else if refused == nil && time.Since(logged) > 5*time.Second && time.Since(began) > time.Second {
			logged = time.Now()
			c.log.Info("forming a cluster", "state", reason, "members_seen", len(seen), "founding", rules.Fingerprint())
		}
		if err := backoff.Sleep(ctx, 50*time.Millisecond); err != nil {
			if refused != nil {
				return nil, fmt.Errorf("%w: %w (%w)", errs.ErrNotAdmitted, refused, err)
			}
			return nil, fmt.Errorf("%w: forming a cluster: %s: %w", errs.ErrTimeout, reason, err)
		}
	}
}

// found bootstraps cluster id with founders: places the shards on them,
// records the layout and starts this member's replicas.
func (c *Cluster) found(id string, founders []gossip.Member, shardCount uint64) (*layout, error) {
	lay := &layout{ClusterID: id, Shards: int(shardCount), RF: c.cfg.ReplicationFactor, Replicas: map[uint64]uint64{}}
	members := make([]ring.Member, len(founders))
	targets := map[string]string{}
	for i, p := range founders {
		lay.Members = append(lay.Members, p.ID)
		members[i] = ring.Member{ID: p.ID}
		targets[p.ID] = targetOf(p)
	}
	place, err := ring.Place(ring.Config{ShardCount: lay.Shards, ReplicationFactor: lay.RF}, members)
	if err != nil {
		return nil, fmt.Errorf("placing shards: %w", err)
	}
	replicaID := func(id string) uint64 { return uint64(slices.Index(lay.Members, id) + 1) }
	for _, s := range place.ShardsOf(c.cfg.NodeID) {
		lay.Replicas[s] = replicaID(c.cfg.NodeID)
	}
	if err := c.adopt(lay); err != nil {
		return nil, err
	}
	for _, s := range place.ShardsOf(c.cfg.NodeID) {
		initial := map[uint64]string{}
		for _, r := range place.Replicas(s) {
			initial[replicaID(r)] = targets[r]
		}
		if err := c.host.StartShard(s, lay.Replicas[s], initial, false); err != nil {
			return nil, fmt.Errorf("starting shard %d: %w", s, err)
		}
	}
	c.log.Info("cluster bootstrapped", "cluster_id", id, "members", lay.Members, "shards", lay.Shards, "rf", lay.RF)
	return lay, nil
}

// adopt records lay as this member's layout and its cluster ID as this
// member's.
func (c *Cluster) adopt(lay *layout) error {
	if err := saveLayout(c.cfg.DataDir, lay); err != nil {
		return err
	}
	c.layout.Store(lay)
	c.mu.Lock()
	c.clusterID = lay.ClusterID
	c.mu.Unlock()
	return nil
}

// admit is gossip's admission check (gossip.Config.Admit): a member of
// another cluster (one bootstrapped apart, with another cluster ID) is
// refused, logged and published once. Members not in a cluster yet, and
// every member while this one is not, are admitted. It runs under
// memberlist's locks: it must not call into gossip.
func (c *Cluster) admit(p gossip.Member) error {
	theirs := p.Tags[tagCluster]
	c.mu.Lock()
	ours := c.clusterID
	if theirs == "" || ours == "" || theirs == ours {
		delete(c.foreign, p.ID)
		c.mu.Unlock()
		return nil
	}
	first := c.foreign[p.ID] != theirs
	c.foreign[p.ID] = theirs
	c.mu.Unlock()
	if first {
		c.log.Error("refusing a member of another cluster: clusters bootstrapped apart never merge",
			"cluster_id", ours, "foreign_cluster_id", theirs, "foreign_node", p.ID, "addr", p.Address())
		c.bus.Publish(&events.ForeignClusterEvent{ClusterID: ours, ForeignClusterID: theirs, NodeID: p.ID, Address: p.Address(), SeenAt: time.Now()})
	}
	return fmt.Errorf("it belongs to cluster %s, this member to cluster %s", theirs, ours)
}

// ours reports whether p belongs to this member's cluster, or to none yet:
// members of another cluster that gossip still lists (it listed them before
// their cluster ID was known) are ignored everywhere.
func (c *Cluster) ours(p gossip.Member) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.oursLocked(p)
}

// oursLocked is ours with c.mu held.
func (c *Cluster) oursLocked(p gossip.Member) bool {
	if _, foreign := c.foreign[p.ID]; foreign {
		return false
	}
	theirs := p.Tags[tagCluster]
	return theirs == "" || c.clusterID == "" || theirs == c.clusterID
}

// IsForeign reports whether gossip refused member id as a member of
// another cluster.
func (c *Cluster) IsForeign(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.foreign[id]
	return ok
}

// members returns the alive members of this member's cluster (and those in
// none yet), itself included, sorted by node ID.
func (c *Cluster) members() []gossip.Member {
	return slices.DeleteFunc(c.gossip.Members(), func(p gossip.Member) bool { return !c.ours(p) })
}

// admittedBy asks members whether they admitted this one (see ServeAdmit):
// every one of them when all is set, otherwise at least one. Members that
// are this one count as admitting it.
func (c *Cluster) admittedBy(ctx context.Context, members []gossip.Member, all bool) error {
	var failed []error
	body, _ := json.Marshal(wire.AdmitRequest{ID: c.cfg.NodeID})
	for _, p := range members {
		if p.ID == c.cfg.NodeID {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.client.Call(cctx, p.Tags[tagRPC], wire.MethodAdmit, body)
		cancel()
		if err == nil && !all {
			return nil
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", p.ID, wire.FromRemote(err)))
		}
	}
	if len(failed) == 0 && !all && len(members) > 0 {
		return errors.New("no member to ask")
	}
	return errors.Join(failed...)
}

// ServeAdmit answers whether this member's gossip admitted the asking
// member: it lists it alive, in this cluster, only if the cluster policy let
// it in.
func (c *Cluster) ServeAdmit(req wire.AdmitRequest) error {
	for _, p := range c.members() {
		if p.ID == req.ID {
			return nil
		}
	}
	return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s has not admitted %q (cluster policy, another cluster, or gossip has not reached it yet)", c.cfg.NodeID, req.ID)}
}
