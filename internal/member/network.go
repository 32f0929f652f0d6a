package member

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/shards"
)

// network is how a member reaches the others. A lone member, and a
// clustered one before its cluster started or after it stopped, has lone;
// a clustered member has its *cluster.Cluster from the moment its gossip
// node and RPC server exist (startCluster) until teardown. The member asks
// it instead of testing whether it has a cluster. Implementations are safe
// for concurrent use.
type network interface {
	// ReplicaOf returns this member's replica ID in shard s and whether it
	// hosts s.
	ReplicaOf(s uint64) (uint64, bool)
	// Forward sends a call about shard s to the members holding it.
	Forward(ctx context.Context, s uint64, method string, body []byte) ([]byte, error)
	// LeaderOf returns the RPC address of the other member leading shard
	// s, or "" if none is known.
	LeaderOf(s uint64) string
	// Call calls method on the member at RPC address addr.
	Call(ctx context.Context, addr, method string, body []byte) ([]byte, error)
	// RPCAddrOf returns the member RPC address of alive member id, or "".
	RPCAddrOf(id string) string
	// AlivePeers lists the other alive members.
	AlivePeers() []string
	// Peers lists every member gossip knows of, any status, this one
	// included; nil without gossip.
	Peers() []cluster.Peer
	// Alive reports whether gossip sees member alive.
	Alive(member string) bool
	// Incarnation returns the incarnation alive member publishes, "" if
	// unknown.
	Incarnation(member string) string
	// MemberByTarget returns the ID of the member a Raft target (NodeHost
	// ID or Raft address) names, or "".
	MemberByTarget(target string) string
	// RaftAddress returns the Raft address of the member whose NodeHost
	// ID is nodeHostID, and whether it is known.
	RaftAddress(nodeHostID string) (string, bool)
	// Describe returns the other members' IDs, whether this member
	// coordinates the cluster, and the cluster's ID.
	Describe() (peers []string, coordinator bool, clusterID string)
	// SendEvent queues a lifecycle change for the member that started the
	// workflow.
	SendEvent(ch *wf.Change)
	// IsForeign reports whether member id belongs to another cluster.
	IsForeign(id string) bool
	// Gossip returns the gossip node, nil without one.
	Gossip() *gossip.Node
	// CheckCaller refuses a member RPC call from anyone but a member of
	// this cluster.
	CheckCaller(ctx context.Context) error
	// IsMemberAddr reports whether a member of this cluster advertises
	// ip.
	IsMemberAddr(ip netip.Addr) bool
	// BindRaftPeer accepts Raft traffic from peer only for a source that
	// names it: its NodeHost ID or Raft address.
	BindRaftPeer(peer, source string) error
	// Close stops gossip and the RPC, handing off the leadership of the
	// shards this member leads on h first.
	Close(h *shards.Host) error
}

var (
	_ network = lone{}
	_ network = (*cluster.Cluster)(nil)
)

// lone is the network of a member without a cluster: it holds a replica of
// every shard (replica 1), it coordinates, every member it hears of is
// alive, and it takes no calls from others.
type lone struct{ id string }

func (lone) ReplicaOf(uint64) (uint64, bool) { return 1, true }

func (lone) Forward(_ context.Context, s uint64, _ string, _ []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: shard %d is not hosted here", errs.ErrNotReady, s)
}

func (lone) LeaderOf(uint64) string { return "" }

func (lone) Call(context.Context, string, string, []byte) ([]byte, error) { return nil, errs.ErrClosed }

func (lone) RPCAddrOf(string) string { return "" }

func (lone) AlivePeers() []string { return nil }

func (lone) Peers() []cluster.Peer { return nil }

func (lone) Alive(string) bool { return true }

// Incarnation is unknown: a lone member knows no other.
func (lone) Incarnation(string) string { return "" }

func (lone) MemberByTarget(string) string { return "" }

func (lone) RaftAddress(string) (string, bool) { return "", false }

func (lone) Describe() ([]string, bool, string) { return nil, true, "" }

func (lone) SendEvent(*wf.Change) {}

func (lone) IsForeign(string) bool { return false }

func (lone) Gossip() *gossip.Node { return nil }

func (l lone) CheckCaller(context.Context) error {
	return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s has not started its cluster yet", l.id)}
}

func (lone) IsMemberAddr(netip.Addr) bool { return false }

func (l lone) BindRaftPeer(peer, _ string) error {
	return fmt.Errorf("member %s has no cluster: it takes no Raft traffic from %q", l.id, peer)
}

func (lone) Close(*shards.Host) error { return nil }

// net returns the member's network: its cluster once started, otherwise
// lone.
func (m *Member) net() network {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.netLocked()
}

// netLocked is net with m.mu held.
func (m *Member) netLocked() network {
	switch {
	case m.cluster != nil:
		return m.cluster
	case m.alone != nil:
		return m.alone
	}
	return lone{m.cfg.NodeID} // a Member built without New (tests)
}
