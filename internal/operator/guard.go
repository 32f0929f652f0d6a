package operator

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/rpc"
)

// maxRefused bounds the callers a Guard remembers to log once; past it,
// refusals are no longer logged.
const maxRefused = 1024

// Access says who may call the operator methods of a member.
type Access struct {
	// TLS: the member RPC runs with mutual TLS, so callers are known by
	// their certificates (the handshake verified the chain to the cluster
	// CA, the validity period and the revocation list).
	TLS bool
	// Strict: the cluster's policy is strict. An operator's certificate
	// must then name an operator in Operators, and a member's a node in
	// AllowedNodes.
	Strict bool
	// Operators are the operator names admitted under the strict policy.
	Operators []string
	// AllowedNodes are the node IDs admitted under the strict policy.
	AllowedNodes []string
	// Networks admit callers without TLS from these prefixes, besides
	// loopback and the cluster's members. Ignored with TLS.
	Networks []netip.Prefix
}

// Caller is what a member knows of the caller of an operator method.
type Caller struct {
	// Certs is the certificate chain the caller presented, leaf first;
	// nil without TLS.
	Certs []*x509.Certificate
	// Addr is the caller's address; nil if unknown.
	Addr net.Addr
}

// Guard decides who may call the operator methods:
//
//   - with TLS, a caller whose certificate names an operator
//     (graft-operator://NAME; under the strict policy NAME must be in
//     Access.Operators) or a member (graft://NODE-ID; under the strict
//     policy NODE-ID must be in Access.AllowedNodes);
//   - without TLS, a caller from a loopback address, from one of
//     Access.Networks, or from an address a member of the cluster
//     advertises.
//
// Everyone else is refused with an error of kind KindRefused naming why,
// and logged once per caller. It is safe for concurrent use.
type Guard struct {
	self     string
	access   Access
	isMember func(ip netip.Addr) bool
	log      *slog.Logger

	mu      sync.Mutex
	refused map[string]bool
}

// NewGuard returns the guard of member self. isMember reports whether a
// member of the cluster advertises ip (nil: none does); log receives the
// refusals (nil means slog.Default()).
func NewGuard(self string, a Access, isMember func(ip netip.Addr) bool, log *slog.Logger) *Guard {
	if isMember == nil {
		isMember = func(netip.Addr) bool { return false }
	}
	if log == nil {
		log = slog.Default()
	}
	return &Guard{self: self, access: a, isMember: isMember, log: log, refused: map[string]bool{}}
}

// Check admits or refuses a caller. It returns nil, or a *rpc.CodedError
// of kind KindRefused.
func (g *Guard) Check(c Caller) error {
	if g.access.TLS {
		return g.checkCert(c.Certs)
	}
	ip, ok := callerIP(c.Addr)
	switch {
	case !ok:
		return g.refuse("address "+fmt.Sprint(c.Addr), "member %s refuses an operator call from %q: not an IP address", g.self, fmt.Sprint(c.Addr))
	case ip.IsLoopback():
		return nil
	case slices.ContainsFunc(g.access.Networks, func(p netip.Prefix) bool { return p.Contains(ip) }):
		return nil
	case g.isMember(ip):
		return nil
	}
	return g.refuse(ip.String(), "member %s refuses an operator call from %s: not loopback, not in Operators.Networks and not a member of this cluster", g.self, ip)
}

// checkCert admits a caller by its certificate.
func (g *Guard) checkCert(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return g.refuse("no certificate", "member %s refuses an operator call without a client certificate", g.self)
	}
	leaf := chain[0]
	if name := certs.OperatorName(leaf); name != "" {
		if g.access.Strict && !slices.Contains(g.access.Operators, name) {
			return g.refuse("operator "+strconv.Quote(name), "member %s refuses operator %q: not listed in Operators.Names (policy strict)", g.self, name)
		}
		return nil
	}
	if id := certs.NodeID(leaf); id != "" {
		if g.access.Strict && !slices.Contains(g.access.AllowedNodes, id) {
			return g.refuse("node "+strconv.Quote(id), "member %s refuses an operator call from node %q: not listed in Cluster.AllowedNodes (policy strict)", g.self, id)
		}
		return nil
	}
	return g.refuse("unnamed certificate", "member %s refuses an operator call: the certificate names no operator (URI SAN %s://NAME) and no member", g.self, certs.OperatorScheme)
}

// refuse logs a refused caller once and returns the refusal.
func (g *Guard) refuse(who, format string, args ...any) error {
	g.mu.Lock()
	first := !g.refused[who] && len(g.refused) < maxRefused
	if first {
		g.refused[who] = true
	}
	g.mu.Unlock()
	err := fmt.Errorf(format, args...)
	if first {
		g.log.Warn("refused an operator call", "caller", who, "reason", err)
	}
	return &rpc.CodedError{Code: rpc.CodeInvalid, Kind: KindRefused, Err: err}
}

// callerIP returns the IP of a caller's address, unmapped from IPv6.
func callerIP(addr net.Addr) (netip.Addr, bool) {
	if addr == nil {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap(), true
	}
	if ip, err := netip.ParseAddr(addr.String()); err == nil {
		return ip.Unmap(), true
	}
	return netip.Addr{}, false
}
