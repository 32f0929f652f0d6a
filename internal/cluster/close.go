package cluster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/shards"
)

// Leaving: hand shard leadership to other replicas, then stop gossip and
// the member RPC.

// handOffTimeout bounds how long Stop waits for the shards this member
// leads to elect the replicas it hands leadership to.
const handOffTimeout = 2 * time.Second

// Close stops the cluster's gossip and RPC; the caller has stopped the
// engine and closes storage (h, if open) afterwards. Between leaving gossip
// and closing, leadership of the shards this member leads is handed to
// other replicas, so the others need not wait out an election timeout.
func (c *Cluster) Close(h *shards.Host) error {
	close(c.stop)
	c.cancel()
	var failed []error
	if c.gossip != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = c.gossip.Leave(ctx)
		cancel()
		if h != nil {
			c.handOff(h)
		}
		failed = append(failed, c.gossip.Stop())
	}
	if c.server != nil {
		c.server.Stop(2 * time.Second)
	}
	failed = append(failed, c.client.Close())
	c.wg.Wait()
	return errors.Join(failed...)
}

// handOff asks each shard this member leads to transfer leadership to a
// replica on a member gossip lists alive, and waits up to handOffTimeout
// until none of them is led here. Leaving gossip first keeps the others
// from handing leadership back: a member that left is out of every
// placement.
func (c *Cluster) handOff(h *shards.Host) {
	alive := map[string]bool{} // Raft target -> alive
	for _, p := range c.members() {
		for _, t := range append([]string{targetOf(p)}, aliasesOf(p)...) {
			alive[t] = alive[t] || p.Status == gossip.StatusAlive
		}
	}
	var led []uint64
	for _, s := range c.hosted() {
		if !h.IsLeader(s) {
			continue
		}
		own, _ := h.ReplicaID(s)
		replicas, _ := h.AppliedMembership(s)
		for _, rid := range slices.Sorted(maps.Keys(replicas)) {
			if rid != own && alive[replicas[rid]] {
				if err := h.TransferLeader(s, rid); err == nil {
					led = append(led, s)
				}
				break
			}
		}
	}
	if len(led) == 0 {
		return
	}
	deadline := time.Now().Add(handOffTimeout)
	for time.Now().Before(deadline) {
		led = slices.DeleteFunc(led, func(s uint64) bool { return !h.IsLeader(s) })
		if len(led) == 0 {
			c.log.Debug("shard leadership handed off")
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.log.Info("shard leadership not handed off before stopping", "shards", led)
}
