package member

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/shards"
)

// maxLoggedRefusals bounds how many refused peers are remembered for
// logging once each; past it refusals are no longer logged.
const maxLoggedRefusals = 1024

// peerAuth is a member's TLS identity and the check it applies to peers:
// under the strict policy a peer's certificate must name a node ID in
// Cluster.AllowedNodes; under the others any certificate from the cluster
// CA is a member. Each refused peer is logged once with the reason.
type peerAuth struct {
	src     *certs.Source
	m       *Member
	mu      sync.Mutex
	refused map[string]bool // "node ID: reason" logged
}

// loadTLS reads the member's certificates, if TLS is configured, and
// checks that the certificate names this member.
func (m *Member) loadTLS() (*peerAuth, error) {
	t := m.cfg.TLS
	if !t.enabled() {
		return nil, nil
	}
	src, err := certs.Load(certs.Files{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile}, t.RevokedSerials, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS: %w", errs.ErrInvalidConfig, err)
	}
	if id := src.ID(); id != m.cfg.NodeID {
		return nil, fmt.Errorf("%w: TLS.CertFile %s names node %q, but NodeID is %q (the URI SAN %s://NODE-ID or the common name must be the node ID)",
			errs.ErrInvalidConfig, t.CertFile, id, m.cfg.NodeID, certs.URIScheme)
	}
	a := &peerAuth{src: src, m: m, refused: map[string]bool{}}
	src.OnRefuse(a.logRefusal)
	return a, nil
}

// check is the certs.Check of every link between members: the policy's
// word on a peer whose certificate chains to the cluster CA. An operator's
// certificate is never a member's.
func (a *peerAuth) check(id string, cert *x509.Certificate) error {
	if id == "" {
		return fmt.Errorf("the certificate names operator %q, not a member", certs.OperatorName(cert))
	}
	cfg := a.m.cfg.Cluster
	if cfg.Policy == gossip.Strict && !slices.Contains(cfg.AllowedNodes, id) {
		return fmt.Errorf("node %q is not in Cluster.AllowedNodes (policy strict)", id)
	}
	return nil
}

// rpcCheck is the certs.Check of the member RPC's listener: members as
// check admits them, and operators, whom the operator guard admits or
// refuses call by call (a member method refuses them: they name no member).
func (a *peerAuth) rpcCheck(id string, cert *x509.Certificate) error {
	if id == "" {
		return nil
	}
	return a.check(id, cert)
}

// logRefusal logs a refused peer once per peer and reason.
func (a *peerAuth) logRefusal(peer string, err error) {
	key := peer + ": " + err.Error()
	a.mu.Lock()
	first := !a.refused[key] && len(a.refused) < maxLoggedRefusals
	if first {
		a.refused[key] = true
	}
	a.mu.Unlock()
	if first {
		a.m.log.Warn("refused a peer's TLS connection", "peer", peer, "reason", err)
	}
}

// raft returns the TLS settings of the Raft transport, or nil without TLS.
// bind checks that a peer speaks only for itself.
func (a *peerAuth) raft(bind func(peer, source string) error) *shards.TLS {
	if a == nil {
		return nil
	}
	return &shards.TLS{
		Server: a.src.ServerConfig(a.check),
		Client: a.src.ClientConfig(a.check),
		PeerID: certs.PeerID,
		Bind:   bind,
	}
}

// bindRaftPeer accepts Raft traffic from peer (the node ID its certificate
// names) only for a batch source that names that member (its NodeHost ID
// or the Raft address it advertises): an authenticated member cannot speak
// for another.
func (m *Member) bindRaftPeer(peer, source string) error {
	if peer == m.cfg.NodeID && (source == m.cfg.BindAddr || source == shards.NodeHostIDOf(peer) || source == m.nodeHostID()) {
		return nil
	}
	return m.net().BindRaftPeer(peer, source)
}

// nodeHostID returns the NodeHost ID of the member's Raft layer, or ""
// before it is open.
func (m *Member) nodeHostID() string {
	m.mu.Lock()
	h := m.host
	m.mu.Unlock()
	if h == nil {
		return ""
	}
	return h.NodeHostID()
}

// callerID returns the node ID the caller of a member RPC handler
// presented in its certificate, and whether TLS is on.
func (m *Member) callerID(ctx context.Context) (string, bool) {
	if m.auth == nil {
		return "", false
	}
	chain := rpc.PeerCertificates(ctx)
	if len(chain) == 0 {
		return "", true
	}
	return certs.NodeID(chain[0]), true
}
