package gossip

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/eleven-am/graft/internal/backoff"
	"github.com/hashicorp/serf/serf"
)

// membershipLoop joins discovered peers, retrying with exponential backoff
// (JoinRetryMin doubling up to JoinRetryMax) until this member sees another
// alive member or discovery returns no peer at all. Then, every
// RejoinInterval, it joins discovered peers and failed members that are not
// alive in its view. That heals partitions that outlasted the suspicion
// timeout (both sides then consider the other failed, and memberlist stops
// probing them) and brings back restarted members.
func (n *Node) membershipLoop(ctx context.Context, s *serf.Serf) {
	bo := backoff.Backoff{Min: n.cfg.JoinRetryMin, Max: n.cfg.JoinRetryMax}
	for !n.hasAlivePeer(s) {
		retryIn := bo.Next()
		peers, discErr := n.discover(ctx, s)
		if len(peers) == 0 && discErr == nil {
			n.logger.Info("gossip: no peers discovered; waiting to be joined")
			break
		}
		if len(peers) > 0 {
			n.joinAttempts.Add(1)
			num, err := n.join(ctx, s, peers)
			if num > 0 && n.hasAlivePeer(s) {
				n.joined.Store(true)
				n.logger.Info("gossip: joined cluster", "contacted", num, "peers", peers)
				break
			}
			n.logger.Warn("gossip: join failed, retrying", "peers", peers, "error", err, "retry_in", retryIn)
		} else {
			n.logger.Warn("gossip: discovery failed, retrying", "error", discErr, "retry_in", retryIn)
		}
		if backoff.Sleep(ctx, retryIn) != nil {
			return
		}
	}
	if n.hasAlivePeer(s) {
		n.joined.Store(true)
	}
	t := time.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.rejoin(ctx, s)
		}
	}
}

// rejoin joins every discovered peer and failed member that is not alive in
// this member's view. Peers given by host name are always tried (a cheap
// push/pull when they are already members).
func (n *Node) rejoin(ctx context.Context, s *serf.Serf) {
	peers, _ := n.discover(ctx, s)
	alive := map[string]bool{}
	var targets []string
	for _, m := range s.Members() {
		addr := joinHostPort(m.Addr.String(), int(m.Port))
		switch m.Status {
		case serf.StatusAlive:
			alive[addr] = true
		case serf.StatusFailed:
			targets = append(targets, m.Name+"/"+addr)
			alive[addr] = true // already targeted, by name
		}
	}
	for _, p := range peers {
		if !alive[p] {
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 || ctx.Err() != nil {
		return
	}
	num, err := n.join(ctx, s, targets)
	if num > 0 {
		n.joined.Store(true)
		n.logger.Debug("gossip: rejoin contacted peers", "contacted", num, "targets", targets)
	} else {
		n.logger.Debug("gossip: rejoin reached no peer", "targets", targets, "error", err)
	}
}

// join joins the peers one at a time, so that a Leave waits for at most one
// in-flight join (one memberlist TCPTimeout). It holds joinMu: a Serf join
// that completes after a leave broadcasts a newer join intent and turns the
// leave into a failure in the others' eyes, so Leave takes joinMu too.
func (n *Node) join(ctx context.Context, s *serf.Serf, peers []string) (int, error) {
	total := 0
	var errs []error
	for _, p := range peers {
		num, err := func() (int, error) {
			n.joinMu.Lock()
			defer n.joinMu.Unlock()
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			// Only the first join ignores older user events (a new or
			// restarted member must not replay past commands). Later joins
			// must not: Serf would then drop recent events it has not
			// delivered yet, and a healed partition should get the events
			// it missed.
			return s.Join([]string{p}, !n.hasAlivePeer(s))
		}()
		total += num
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		return total, nil
	}
	return 0, errors.Join(errs...)
}

// discover returns the peers from every Discoverer, deduplicated, without
// this member's own address. The error joins the discoverers' errors.
func (n *Node) discover(ctx context.Context, s *serf.Serf) ([]string, error) {
	self := map[string]bool{}
	local := s.LocalMember()
	self[joinHostPort(local.Addr.String(), int(local.Port))] = true
	if ip := net.ParseIP(n.cfg.BindAddr); ip != nil && !ip.IsUnspecified() {
		self[joinHostPort(ip.String(), int(local.Port))] = true
	}
	seen := map[string]bool{}
	var out []string
	var errs []error
	for _, d := range n.cfg.Discovery {
		peers, err := d.Peers(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		for _, p := range peers {
			p = normalizeAddr(p)
			if p == "" || seen[p] || self[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

// normalizeAddr rewrites an IP host in host:port to its canonical form so
// that it can be compared with member addresses.
func normalizeAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil {
		return net.JoinHostPort(ip.String(), port)
	}
	return addr
}

func (n *Node) hasAlivePeer(s *serf.Serf) bool {
	for _, m := range s.Members() {
		if m.Name != n.cfg.NodeID && m.Status == serf.StatusAlive {
			return true
		}
	}
	return false
}
