package shards

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Without TLS a Raft peer is known only by the source it claims in each
// batch (SourceAddress: its NodeHost ID, which the node registry maps to
// its Raft address, or its Raft address), and Raft trusts its peers: a
// forged batch with a false commit index stops a follower. TCP cannot be
// spoofed past its handshake, so a batch is accepted only when its source
// names the host the connection comes from: only a process on a member's
// host can speak for that member. (With TLS the peer's certificate decides
// instead; see TLS.Bind.)

// errSourceMismatch is a batch claiming a source on another host.
var errSourceMismatch = errors.New("batch source address is not on the connection's host")

// sourceCacheTTL is how long a resolved host name is trusted.
const sourceCacheTTL = 30 * time.Second

// sourceIPs checks batches' source addresses against connections' IPs,
// resolving host names through a small cache. The zero value is ready.
type sourceIPs struct {
	mu    sync.Mutex
	cache map[string]resolved
}

// resolved is a host name's addresses at a time.
type resolved struct {
	ips []net.IP
	at  time.Time
}

// maxCachedHosts bounds the cache; past it, it is cleared.
const maxCachedHosts = 1024

// check returns nil if source's host is peerIP (an IP, or a name that
// resolves to it), or if source is no host:port at all (the inbound filter
// drops such batches).
func (s *sourceIPs) check(peerIP, source string) error {
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		return nil // malformed: the inbound filter drops the batch
	}
	peer := net.ParseIP(peerIP)
	if peer == nil {
		return nil // not an IP connection (nothing to check against)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.Equal(peer) || (ip.IsLoopback() && peer.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("%w: %s from %s", errSourceMismatch, source, peerIP)
	}
	ips, err := s.lookup(host)
	if err != nil {
		return fmt.Errorf("%w: resolving %q: %v", errSourceMismatch, host, err)
	}
	if slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.Equal(peer) || (ip.IsLoopback() && peer.IsLoopback()) }) {
		return nil
	}
	return fmt.Errorf("%w: %s from %s", errSourceMismatch, source, peerIP)
}

// lookup resolves host, from the cache when fresh.
func (s *sourceIPs) lookup(host string) ([]net.IP, error) {
	now := time.Now()
	s.mu.Lock()
	r, ok := s.cache[host]
	s.mu.Unlock()
	if ok && now.Sub(r.at) < sourceCacheTTL {
		return r.ips, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	s.mu.Lock()
	if s.cache == nil || len(s.cache) >= maxCachedHosts {
		s.cache = map[string]resolved{}
	}
	s.cache[host] = resolved{ips: ips, at: now}
	s.mu.Unlock()
	return ips, nil
}
