package member

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/statesync"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
)

// startCluster opens the member's cluster (the member RPC and gossip),
// publishes it, and starts it: it bootstraps (or reloads) the shard layout
// and starts this member's replicas.
func (m *Member) startCluster(ctx context.Context, grpcPort int, shardCount uint64) error {
	cc := m.cfg.Cluster
	c, err := cluster.Open(cluster.Config{
		NodeID: m.cfg.NodeID, BindAddr: m.cfg.BindAddr, DataDir: m.cfg.DataDir, Incarnation: m.incarnate, Logger: m.log, Bus: m.bus,
		Policy: cc.Policy, Key: cc.Key, AllowedNodes: cc.AllowedNodes, BootstrapWait: cc.BootstrapWait,
		FailureGrace: cc.FailureGrace, ReplicationFactor: cc.ReplicationFactor, GossipPort: cc.GossipPort,
		ShardCount: shardCount, Founding: m.cfg.Founding, Discovery: m.cfg.Discovery,
		Memberlist: m.cfg.Expert.Memberlist, Network: m.cfg.Expert.Network, RPC: m.rpcConfig(), Timing: m.rebalanceTiming(),
		Handler: rpc.HandlerFunc(m.handleRPC), OnUserEvent: m.onUserEvent, OnQuery: m.onQuery,
		OnMemberGone: m.memberGone,
	}, m.host, (*local)(m), grpcPort)
	if err != nil {
		return err
	}
	// The cluster's listener, RPC server and gossip node are in place
	// before it is published to the API (m.cluster): from then on they
	// are only read.
	m.mu.Lock()
	m.cluster = c
	m.mu.Unlock()
	return c.Start(ctx)
}

// local is the member as its cluster uses it (cluster.Local).
type local Member

var _ cluster.Local = (*local)(nil)

// Storage returns the member's shards while they are open.
func (l *local) Storage() (*shards.Host, error) { return (*Member)(l).storage() }

// Running returns the member's shards while it runs.
func (l *local) Running() (*shards.Host, error) { return (*Member)(l).running() }

// AwaitLeader waits until shard s has a leader.
func (l *local) AwaitLeader(ctx context.Context, s uint64) error {
	return (*Member)(l).awaitLeader(ctx, s)
}

// SyncLeader tells the engine whether this member leads shard s.
func (l *local) SyncLeader(s uint64) { (*Member)(l).syncLeader(s) }

// LetGo makes the engine let go of shard s.
func (l *local) LetGo(s uint64) error { return (*Member)(l).letGo(s) }

// Forget drops the member's logic of shard s.
func (l *local) Forget(s uint64) {
	l.mu.Lock()
	delete(l.logics, s)
	l.mu.Unlock()
	l.leaderMu.Lock()
	delete(l.leaders, s) // a replica added later starts from its own events
	l.leaderMu.Unlock()
}

// CallerID returns the node ID a caller's certificate names.
func (l *local) CallerID(ctx context.Context) (string, bool) { return (*Member)(l).callerID(ctx) }

// Joining sets the member's readiness to joining.
func (l *local) Joining() { (*Member)(l).setReadiness(phaseJoining) }

// rpcConfig is the member RPC's limits. The largest legitimate messages
// carry one workflow's state (at most Engine.MaxStateBytes) in JSON with its
// history, metadata or step config: a message may be four times the state
// limit, and at least rpc.DefaultMaxMessageBytes; a server holds at most
// sixteen such requests at once (rpc.Config.MaxInflightBytes). The other
// limits are the package's defaults.
func (m *Member) rpcConfig() rpc.Config {
	msg := max(rpc.DefaultMaxMessageBytes, 4*m.cfg.Engine.MaxStateBytes)
	cfg := rpc.Config{MaxMessageBytes: msg, MaxInflightBytes: max(rpc.DefaultMaxInflightBytes, 16*int64(msg))}
	if a := m.auth; a != nil {
		cfg.ServerTLS, cfg.ClientTLS = a.src.ServerConfig(a.rpcCheck), a.src.ClientConfig(a.check)
	}
	return cfg
}

// Gossip returns the member's gossip node, nil on a lone member or before
// Start.
func (m *Member) Gossip() *gossip.Node { return m.net().Gossip() }

// replicaOf returns this member's replica ID in shard s and whether it hosts s.
func (m *Member) replicaOf(s uint64) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.netLocked().ReplicaOf(s)
}

// hosts reports whether this member holds a replica of shard s.
func (m *Member) hosts(s uint64) bool {
	_, ok := m.replicaOf(s)
	return ok
}

// serveExec runs a step for another member (the shard's leader) that does
// not have its node type. A step's error is the call's error, of its kind
// (see wire.StepFailure).
func (m *Member) serveExec(ctx context.Context, req wire.ExecRequest) ([]byte, error) {
	node, ok := m.registry.Get(req.Node)
	if !ok {
		return nil, wire.StepFailure(fmt.Errorf("node %q is not registered on member %q", req.Node, m.cfg.NodeID))
	}
	wc := req.Context
	wc.MemberID = m.cfg.NodeID
	out, err := node.Execute(executor.WithWorkflowContext(ctx, &wc), req.State, req.Config)
	if err != nil {
		return nil, wire.StepFailure(err)
	}
	return json.Marshal(wire.ExecReply{Output: out})
}

// remote runs steps on the members that registered their node types.
type remote struct{ m *Member }

// remoteLoad counts the steps this member is running on each other member:
// their published load lags by up to the publish interval, so picking by
// it alone would send every step of a burst to the same member.
type remoteLoad struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (l *remoteLoad) get(id string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[id]
}

func (l *remoteLoad) add(id string, d int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]uint64{}
	}
	l.n[id] = uint64(int(l.n[id]) + d)
	if l.n[id] == 0 {
		delete(l.n, id)
	}
}

var _ engine.Remote = remote{}

// Has reports whether another alive member registered node.
func (r remote) Has(node string) bool { return r.pick(node) != "" }

// pick returns the least-loaded alive member (not this one) that
// registered node, from the cluster state, or "".
func (r remote) pick(node string) string {
	s := r.m.syncer()
	if s == nil {
		return ""
	}
	v := s.View()
	if v.Present() < 2 {
		return "" // only this member
	}
	alive := map[string]bool{}
	for _, id := range r.m.net().AlivePeers() {
		alive[id] = true
	}
	id, _ := v.Pick(node, r.m.cfg.NodeID, func(id string) bool { return alive[id] }, r.m.remoteLoad.get)
	return id
}

// Run executes node on a member that registered it.
func (r remote) Run(ctx context.Context, node string, wc *executor.WorkflowContext, state, config json.RawMessage) (*executor.Output, error) {
	id := r.pick(node)
	addr := ""
	if id != "" {
		addr = r.m.net().RPCAddrOf(id)
	}
	if addr == "" {
		return nil, fmt.Errorf("no alive member has node %q", node)
	}
	r.m.remoteLoad.add(id, 1)
	defer r.m.remoteLoad.add(id, -1)
	b, err := json.Marshal(wire.ExecRequest{Node: node, Context: *wc, State: state, Config: config})
	if err != nil {
		return nil, executor.Permanent(err)
	}
	n := r.m.net()
	if _, ok := ctx.Deadline(); !ok {
		// Without Engine.StepTimeout, a remote step may run as long as its
		// claim holds (the lease, after which another member re-runs it
		// anyway); the member RPC would otherwise cut it at its default
		// call timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.m.cfg.Engine.LeaseDuration)
		defer cancel()
	}
	out, err := n.Call(ctx, addr, wire.MethodExec, b)
	if stepErr, ok := wire.RemoteStepError(err); ok {
		return nil, stepErr
	}
	if err != nil {
		return nil, fmt.Errorf("running node %q remotely: %w", node, wire.FromRemote(err))
	}
	var rep wire.ExecReply
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("decoding remote step outcome: %w", err)
	}
	return rep.Output, nil
}

// onQuery runs a dev command sent with QueryCommand and answers with its
// outcome.
func (m *Member) onQuery(name string, payload []byte, from string) ([]byte, error) {
	if name != commandEvent {
		return nil, fmt.Errorf("unknown query %q", name)
	}
	if m.net().IsForeign(from) {
		return nil, fmt.Errorf("member %q belongs to another cluster", from)
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout)
	defer cancel()
	return nil, m.runCommand(ctx, from, payload)
}

// onUserEvent runs a dev command broadcast by another member, or passes
// a cluster state delta to the Syncer.
func (m *Member) onUserEvent(name string, payload []byte, from string) {
	if name == statesync.EventName {
		m.onStateEvent(name, payload, from)
		return
	}
	if name != commandEvent || from == m.cfg.NodeID {
		return // the sender ran its own handler already
	}
	if m.net().IsForeign(from) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout)
	defer cancel()
	if err := m.runCommand(ctx, from, payload); err != nil {
		m.log.Warn("dev command failed", "from", from, "error", err)
	}
}

// rebalanceTiming returns the rebalancing timing this member runs with.
func (m *Member) rebalanceTiming() cluster.RebalanceTiming {
	if m.cfg.Rebalance != nil {
		return *m.cfg.Rebalance
	}
	return cluster.DefaultRebalanceTiming()
}
