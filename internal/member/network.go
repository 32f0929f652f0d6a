package member

import (
	"context"
	"fmt"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/shards"
)

// network is how a member reaches the others. A lone member, and a
// clustered one before its cluster started or after it stopped, has lone;
// a clustered member has its *cluster from the moment its gossip node and
// RPC server exist (startCluster) until teardown. The member asks it
// instead of testing whether it has a cluster.
type network interface {
	// replicaOfLocked returns this member's replica ID in shard s and
	// whether it hosts s. The member's lock is held.
	replicaOfLocked(s uint64) (uint64, bool)
	// forward sends a call about shard s to the members holding it.
	forward(ctx context.Context, s uint64, method string, body []byte) ([]byte, error)
	// leaderOf returns the RPC address of the other member leading shard
	// s, or "" if none is known.
	leaderOf(s uint64) string
	// call calls method on the member at RPC address addr.
	call(ctx context.Context, addr, method string, body []byte) ([]byte, error)
	// nodeMember returns the RPC address of another alive member that
	// registered node, or "".
	nodeMember(node string) string
	// alive reports whether gossip sees member alive.
	alive(member string) bool
	// memberAt returns the ID of the member at Raft address raftAddr, or "".
	memberAt(raftAddr string) string
	// describe fills in the cluster's part of info.
	describe(info *Info)
	// publishTags gossips this member's tags (its node types changed).
	publishTags() error
	// sendEvent queues a lifecycle change for the member that started the
	// workflow.
	sendEvent(ch *wf.Change)
	// isForeign reports whether member id belongs to another cluster.
	isForeign(id string) bool
	// gossipNode returns the gossip node, nil without one.
	gossipNode() *gossip.Node
	// checkCaller refuses a member RPC call from anyone but a member of
	// this cluster.
	checkCaller(ctx context.Context) error
	// bindRaftPeer accepts Raft traffic from peer only for its own Raft
	// address.
	bindRaftPeer(peer, source string) error
	// close stops gossip and the RPC, handing off the leadership of the
	// shards on h first.
	close(h *shards.Host) error
}

var (
	_ network = lone{}
	_ network = (*cluster)(nil)
)

// lone is the network of a member without a cluster: it holds a replica of
// every shard (replica 1), every member it hears of is alive, and it takes
// no calls from others.
type lone struct{ id string }

func (lone) replicaOfLocked(uint64) (uint64, bool) { return 1, true }

func (lone) forward(_ context.Context, s uint64, _ string, _ []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: shard %d is not hosted here", errs.ErrNotReady, s)
}

func (lone) leaderOf(uint64) string { return "" }

func (lone) call(context.Context, string, string, []byte) ([]byte, error) { return nil, errs.ErrClosed }

func (lone) nodeMember(string) string { return "" }

func (lone) alive(string) bool { return true }

func (lone) memberAt(string) string { return "" }

func (lone) describe(*Info) {}

func (lone) publishTags() error { return nil }

func (lone) sendEvent(*wf.Change) {}

func (lone) isForeign(string) bool { return false }

func (lone) gossipNode() *gossip.Node { return nil }

func (l lone) checkCaller(context.Context) error {
	return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s has not started its cluster yet", l.id)}
}

func (l lone) bindRaftPeer(peer, _ string) error {
	return fmt.Errorf("member %s has no cluster: it takes no Raft traffic from %q", l.id, peer)
}

func (lone) close(*shards.Host) error { return nil }

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
