package cluster

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
)

// Events: lifecycle events forwarded to the member that started a
// workflow, membership events from gossip, and the coordinator.

// SendEvent queues a lifecycle change for the member that started the
// workflow, if that is another member.
func (c *Cluster) SendEvent(ch *wf.Change) {
	if ch.View.Starter == "" || ch.View.Starter == c.cfg.NodeID {
		return
	}
	select {
	case c.outbox <- wire.ForwardedEvent{From: c.cfg.NodeID, Kind: ch.Kind, View: ch.View}:
	default:
		c.log.Warn("event for the starting member dropped: outbox full", logkeys.Workflow, ch.View.ID)
	}
}

// forwardEvents delivers queued lifecycle events to the members that
// started the workflows (best effort: an unreachable member misses them).
// Events waiting together go to each member in one call.
func (c *Cluster) forwardEvents() {
	for {
		var first wire.ForwardedEvent
		select {
		case <-c.stop:
			return
		case first = <-c.outbox:
		}
		batches := map[string][]wire.ForwardedEvent{first.View.Starter: {first}}
	drain:
		for n := 1; n < wire.MaxEventBatch; n++ {
			select {
			case fe := <-c.outbox:
				batches[fe.View.Starter] = append(batches[fe.View.Starter], fe)
			default:
				break drain
			}
		}
		addrs := map[string]string{}
		for _, p := range c.members() {
			addrs[p.ID] = p.Tags[tagRPC]
		}
		for starter, evs := range batches {
			addr := addrs[starter]
			if addr == "" {
				continue
			}
			calls, dropped := wire.EncodeEventBatches(evs, c.rpcCfg.MaxMessageBytes-len(wire.MethodEvent)-binary.MaxVarintLen64)
			if dropped > 0 {
				c.log.Warn("events for the starting member dropped: each is over the member RPC message limit", "events", dropped, "to", starter)
			}
			for _, b := range calls {
				ctx, cancel := context.WithTimeout(c.stopCtx, 2*time.Second)
				if _, err := c.client.Call(ctx, addr, wire.MethodEvent, b); err != nil {
					c.log.Debug("forwarding workflow events failed", "bytes", len(b), "to", starter, "error", err)
				}
				cancel()
			}
		}
	}
}

// watchMembership turns gossip membership changes into events and tracks
// the coordinator.
func (c *Cluster) watchMembership() {
	c.updateCoordinator()
	for {
		select {
		case <-c.stop:
			return
		case ev, ok := <-c.gossip.Events():
			if !ok {
				return
			}
			meta := make(map[string]interface{}, len(ev.Member.Tags))
			for k, v := range ev.Member.Tags {
				meta[k] = v
			}
			addr := cmpOr(ev.Member.Tags[tagRaft], ev.Member.Address())
			switch ev.Kind {
			case gossip.EventJoin:
				c.bus.Publish(&events.NodeJoinedEvent{NodeID: ev.Member.ID, Address: addr, JoinedAt: ev.At, Metadata: meta})
			case gossip.EventLeave, gossip.EventFailed:
				meta["reason"] = ev.Kind.String()
				c.bus.Publish(&events.NodeLeftEvent{NodeID: ev.Member.ID, Address: addr, LeftAt: ev.At, Metadata: meta})
			}
			if gone := c.cfg.OnMemberGone; gone != nil && (ev.Kind == gossip.EventLeave || ev.Kind == gossip.EventReap) && ev.Member.ID != c.cfg.NodeID {
				gone(ev.Member.ID)
			}
			c.updateCoordinator()
		}
	}
}

// updateCoordinator publishes LeaderChangedEvent when the coordinator (the
// alive member with the lowest node ID: advisory, never used for safety)
// changes.
func (c *Cluster) updateCoordinator() {
	var co gossip.Member
	if ms := c.members(); len(ms) > 0 {
		co = ms[0]
	}
	id := co.ID
	c.mu.Lock()
	prev := c.coordinator
	c.coordinator = id
	c.mu.Unlock()
	if id != prev {
		c.bus.Publish(&events.LeaderChangedEvent{NewLeaderID: id, NewLeaderAddr: cmpOr(co.Tags[tagRaft], co.Address()),
			PreviousID: prev, ChangedAt: time.Now(), Metadata: map[string]interface{}{}})
	}
}
