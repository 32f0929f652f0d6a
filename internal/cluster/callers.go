package cluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/rpc"
	"google.golang.org/grpc/peer"
)

// Who may call the member RPC. Every method but admission (asked by
// members that are not in the cluster yet) changes or reveals workflow
// state, so it is served only to members of this cluster: the caller's
// address must be one a member of this cluster advertises (its gossip,
// Raft or RPC address), and destructive requests are checked against the
// shard's committed state besides (see ServeDrop). Without TLS this is
// all a member can check; with it, the caller's certificate names it.
// (The operator methods have their own guard, internal/operator, which
// admits the members IsMemberAddr finds besides operators.)

// CheckCaller refuses a call from anyone but a member of this cluster (or
// of one not in any cluster yet: a joiner): with TLS, the member its
// certificate names; without, a member advertising the caller's address.
func (c *Cluster) CheckCaller(ctx context.Context) error {
	if id, tls := c.local.CallerID(ctx); tls {
		// The handshake verified the certificate (and, under the strict
		// policy, that it names an allowed node): the caller is who it
		// names, and must be a member of this cluster.
		if id != "" && c.isPeer(func(mem gossip.Member) bool { return mem.ID == id }) {
			return nil
		}
		c.refuseCaller("node " + strconv.Quote(id))
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("member %s refuses a call from node %q: not a member of this cluster", c.cfg.NodeID, id)}
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("member %s refuses a call without a peer address", c.cfg.NodeID)}
	}
	ip := hostIP(p.Addr.String())
	if ip == nil {
		return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("member %s refuses a call from %q", c.cfg.NodeID, p.Addr)}
	}
	if c.advertises(ip) {
		return nil
	}
	c.refuseCaller(ip.String())
	return &rpc.CodedError{Code: rpc.CodeInvalid, Err: fmt.Errorf("member %s refuses a call from %s: not a member of this cluster", c.cfg.NodeID, ip)}
}

// IsMemberAddr reports whether a member of this cluster advertises ip (as
// its gossip, Raft or RPC address).
func (c *Cluster) IsMemberAddr(ip netip.Addr) bool {
	return c.advertises(net.IP(ip.Unmap().AsSlice()))
}

// advertises reports whether a member of this cluster advertises ip.
func (c *Cluster) advertises(ip net.IP) bool {
	return c.isPeer(func(mem gossip.Member) bool {
		for _, addr := range []string{mem.Address(), mem.Tags[tagRaft], mem.Tags[tagRPC]} {
			if a := hostIP(addr); a != nil && a.Equal(ip) {
				return true
			}
		}
		return false
	})
}

// maxRefusedCallers bounds the addresses refuseCaller remembers; past it,
// refusals are no longer logged.
const maxRefusedCallers = 1024

// refuseCaller logs a refused caller's address once.
func (c *Cluster) refuseCaller(ip string) {
	c.mu.Lock()
	first := !c.refused[ip] && len(c.refused) < maxRefusedCallers
	if first {
		c.refused[ip] = true
	}
	c.mu.Unlock()
	if first {
		c.log.Warn("refused a member RPC call from an address that is no member of this cluster", "addr", ip)
	}
}

// hostIP returns the IP of a host:port or host, resolving nothing: names
// that are not IP addresses give nil (members advertise IPs in gossip).
func hostIP(addr string) net.IP {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	return net.ParseIP(host)
}

// isPeer reports whether match accepts a member of this cluster that
// gossip lists alive or failed. It looks in the routing view first (kept
// for viewTTL, so a call or Raft batch costs no copy of the member list)
// and, on a miss, in gossip's current list (a member that just joined).
func (c *Cluster) isPeer(match func(gossip.Member) bool) bool {
	if v, err := c.recentView(); err == nil {
		for _, p := range v.members {
			if (p.Status == gossip.StatusAlive || p.Status == gossip.StatusFailed) && match(p) {
				return true
			}
		}
	}
	return slices.ContainsFunc(c.known(), match)
}

// known returns the members of this cluster (or of none yet) that gossip
// lists alive or failed: a member this one still believes failed (a
// partition that just healed) may already call again. Members that left
// are out until they rejoin.
func (c *Cluster) known() []gossip.Member {
	return slices.DeleteFunc(c.gossip.AllMembers(), func(p gossip.Member) bool {
		return (p.Status != gossip.StatusAlive && p.Status != gossip.StatusFailed) || !c.ours(p)
	})
}
