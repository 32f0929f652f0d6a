package member

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/backoff"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/rebalance"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
	"github.com/hashicorp/memberlist"
)

// Gossip tags every member publishes.
const (
	tagRaft    = "raft"    // Raft address (Config.BindAddr)
	tagRPC     = "rpc"     // member RPC address (host:grpcPort)
	tagShards  = "shards"  // shard count of its data directory
	tagNodes   = "nodes"   // comma-separated node types it registered
	tagCluster = "cluster" // its cluster's ID, once it is part of a running cluster
	tagSeed    = "seed"    // the cluster ID it proposes should it found one
	tagRules   = "found"   // fingerprint of its founding rules (formation.Rules)
)

// layout is a cluster member's record of its replicas, kept in
// DataDir/cluster.json so a restarted member starts the same replicas with
// the same IDs. It is replaced (never modified in place) as rebalancing adds
// and drops replicas here.
type layout struct {
	// ClusterID identifies the cluster, created at its bootstrap: members
	// of clusters with other IDs are never admitted.
	ClusterID string `json:"cluster_id"`
	// Members are the node IDs the cluster bootstrapped with, sorted (the
	// bootstrap replica IDs are their index plus one); empty for a member
	// that joined later. Informational.
	Members []string `json:"members"`
	// Shards and RF are the shard count and replication factor.
	Shards int `json:"shards"`
	RF     int `json:"rf"`
	// Replicas maps each shard this member hosts to its replica ID.
	Replicas map[uint64]uint64 `json:"replicas"`
}

// cluster is what a clustered member runs besides its shards and executor:
// gossip membership, the member RPC, and the bootstrap layout.
type cluster struct {
	m       *Member
	gossip  *gossip.Node
	server  *rpc.Server
	client  *rpc.Client
	rpcCfg  rpc.Config
	rpcAddr string
	layout  *layout
	// shardCount is this member's shard count, published as a tag.
	shardCount uint64
	// seed is the cluster ID this member proposes should it found one.
	seed string

	// hostMu serialises starting and dropping this member's replicas.
	hostMu sync.Mutex
	// tagsMu serialises computing and publishing this member's tags, so
	// the last tags published are the last computed.
	tagsMu sync.Mutex

	// timing is the rebalancing loop's clock and intervals; rebal applies
	// the rebalancing decisions and keeps the leader's bookkeeping.
	timing RebalanceTiming
	rebal  *rebalance.Reconciler

	mu          sync.Mutex
	clusterID   string            // this member's cluster, once it joined or founded one
	foreign     map[string]string // members of other clusters -> their cluster ID
	refused     map[string]bool   // caller IPs refused by checkCaller (logged once)
	coordinator string
	booted      bool                 // tagCluster is published
	cached      *view                // last computed view, for routing
	placed      []string             // members of the last placement, to log changes
	leaderless  map[uint64]time.Time // when hosted shards were first seen without a leader
	leaderRPC   map[uint64]string    // RPC address of the member leading each hosted shard, when another

	// outbox holds lifecycle events for the members that started their
	// workflows; full means dropped (events are best effort).
	outbox chan wire.ForwardedEvent

	wg      sync.WaitGroup
	stop    chan struct{}
	stopCtx context.Context // cancelled with stop
	cancel  context.CancelFunc
}

// startCluster starts the member RPC and gossip, bootstraps (or reloads)
// the shard layout and starts this member's replicas.
func (m *Member) startCluster(ctx context.Context, grpcPort int, shardCount uint64) error {
	host, _, _ := net.SplitHostPort(m.cfg.BindAddr)
	netw := m.cfg.Expert.Network
	var dial func(context.Context, string) (net.Conn, error)
	if netw != nil {
		dial = netw.Dialer(host)
	}
	rpcCfg := m.rpcConfig()
	client, err := rpc.NewClient(dial, rpcCfg)
	if err != nil {
		return fmt.Errorf("%w: %w", errs.ErrInvalidConfig, err)
	}
	c := &cluster{m: m, client: client, rpcCfg: rpcCfg, shardCount: shardCount, stop: make(chan struct{}), outbox: make(chan wire.ForwardedEvent, 4*wire.MaxEventBatch),
		seed: newSeed(), foreign: map[string]string{}, refused: map[string]bool{},
		leaderless: map[uint64]time.Time{}, leaderRPC: map[uint64]string{}, timing: m.rebalanceTiming()}
	c.rebal = c.newReconciler(m.host)
	c.stopCtx, c.cancel = context.WithCancel(context.Background())
	// The cluster's listener, RPC server and gossip node are in place
	// before it is published to the API (m.cluster): from then on they
	// are only read.
	l, g, err := c.open(netw, host, grpcPort)
	if err != nil {
		c.cancel()
		_ = client.Close()
		return err
	}
	m.mu.Lock()
	m.cluster = c
	m.mu.Unlock()
	c.server.Serve(l)
	g.OnUserEvent(m.onUserEvent)
	g.OnQuery(m.onQuery)
	if err := g.Start(ctx); err != nil {
		return fmt.Errorf("starting gossip: %w", err)
	}
	c.wg.Go(c.watchMembership)
	c.wg.Go(c.forwardEvents)

	lay, err := loadLayout(m.cfg.DataDir)
	if err != nil {
		return err
	}
	switch {
	case lay != nil:
		// A restart: the same replicas with the same IDs. Replicas removed
		// while this member was away are found and dropped by reconcile.
		m.mu.Lock()
		c.layout = lay
		m.mu.Unlock()
		c.mu.Lock()
		c.clusterID = lay.ClusterID
		c.mu.Unlock()
		c.hostMu.Lock()
		for _, s := range c.hosted() {
			if err := m.host.StartShard(s, lay.Replicas[s], nil, false); err != nil {
				c.hostMu.Unlock()
				return fmt.Errorf("restarting shard %d: %w", s, err)
			}
		}
		c.hostMu.Unlock()
		// Best effort: the shards usually elect at once, but a replica
		// removed while this member was away never will, and requests are
		// forwarded meanwhile.
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		for _, s := range c.hosted() {
			if m.awaitLeader(wctx, s) != nil {
				break
			}
		}
		cancel()
	default:
		if lay, err = c.bootstrap(ctx, shardCount); err != nil {
			return err
		}
		for _, s := range c.hosted() {
			if err := m.awaitLeader(ctx, s); err != nil {
				return err
			}
		}
	}
	c.mu.Lock()
	c.booted = true
	c.mu.Unlock()
	if err := c.publishTags(); err != nil {
		return fmt.Errorf("publishing gossip tags: %w", err)
	}
	c.wg.Go(c.reconcileLoop)
	m.log.Info("cluster member started", "cluster_id", lay.ClusterID, "bootstrap_members", lay.Members, "shards_hosted", len(lay.Replicas), "rpc_addr", c.rpcAddr)
	return nil
}

// open listens for the member RPC and creates the RPC server and the
// gossip node (not started yet), filling in c's fields for them.
func (c *cluster) open(netw Network, host string, grpcPort int) (net.Listener, *gossip.Node, error) {
	m := c.m
	var l net.Listener
	var err error
	if netw != nil {
		l = netw.Listen(host)
	} else if l, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(grpcPort))); err != nil {
		return nil, nil, fmt.Errorf("listening for member RPC on port %d: %w", grpcPort, err)
	}
	c.rpcAddr = l.Addr().String()
	if c.server, err = rpc.NewServer(rpc.HandlerFunc(m.handleRPC), c.rpcCfg, m.log.With(logkeys.Component, "rpc")); err != nil {
		_ = l.Close()
		return nil, nil, fmt.Errorf("%w: %w", errs.ErrInvalidConfig, err)
	}

	ip := "0.0.0.0" // with Expert.Network, the transport decides the address
	var transport memberlist.NodeAwareTransport
	if netw != nil {
		transport = netw.MemberlistTransport(host)
	} else if ip, err = resolveIP(host); err != nil {
		_ = l.Close()
		return nil, nil, fmt.Errorf("%w: BindAddr host %q: %v", errs.ErrInvalidConfig, host, err)
	}
	g, err := gossip.New(gossip.Config{
		NodeID: m.cfg.NodeID, BindAddr: ip, BindPort: m.cfg.Cluster.GossipPort,
		Tags: c.tags(),
		Key:  m.cfg.Cluster.Key, Policy: m.cfg.Cluster.Policy, AllowedNodes: m.cfg.Cluster.AllowedNodes,
		Discovery: m.cfg.Discovery, SnapshotPath: filepath.Join(m.cfg.DataDir, "serf.snapshot"),
		KeyringFile:      filepath.Join(m.cfg.DataDir, "serf.keyring"),
		Admit:            c.admit,
		MemberlistConfig: m.cfg.Expert.Memberlist,
		Transport:        transport,
		Logger:           m.log.With(logkeys.Component, "gossip"),
	})
	if err != nil {
		_ = l.Close()
		return nil, nil, fmt.Errorf("%w: gossip: %w", errs.ErrInvalidConfig, err)
	}
	c.gossip = g
	return l, g, nil
}

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
		cfg.ServerTLS, cfg.ClientTLS = a.src.ServerConfig(a.check), a.src.ClientConfig(a.check)
	}
	return cfg
}

// tags are the gossip tags this member publishes.
func (c *cluster) tags() map[string]string {
	t := map[string]string{
		tagRaft: c.m.cfg.BindAddr, tagRPC: c.rpcAddr, tagShards: strconv.FormatUint(c.shardCount, 10),
		tagNodes: strings.Join(c.m.registry.Names(), ","),
		tagSeed:  c.seed, tagRules: c.m.cfg.Founding.Fingerprint(),
	}
	c.mu.Lock()
	if c.booted {
		t[tagCluster] = c.clusterID
	}
	c.mu.Unlock()
	return t
}

// publishTags gossips this member's current tags.
func (c *cluster) publishTags() error {
	c.tagsMu.Lock()
	defer c.tagsMu.Unlock()
	return c.gossip.SetTags(c.tags())
}

func loadLayout(dir string) (*layout, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading cluster layout: %w", err)
	}
	l, err := parseLayout(b)
	if err != nil {
		return nil, fmt.Errorf("cluster layout %s is corrupt: %w", filepath.Join(dir, "cluster.json"), err)
	}
	return l, nil
}

// maxLayoutShards is the most shards a layout may record: the largest
// Cluster.ShardCount.
const maxLayoutShards = 4096

// parseLayout decodes and checks a layout file: a cluster ID, a shard count
// between 1 and maxLayoutShards, a replication factor of at least 1, member
// IDs that are not empty, and replicas only of shards 1 to Shards, with
// replica IDs that are not zero.
func parseLayout(b []byte) (*layout, error) {
	var l layout
	if err := wire.StrictJSON(b, &l); err != nil {
		return nil, err
	}
	switch {
	case l.ClusterID == "":
		return nil, errors.New("no cluster_id")
	case l.Shards < 1 || l.Shards > maxLayoutShards:
		return nil, fmt.Errorf("shards is %d, want 1 to %d", l.Shards, maxLayoutShards)
	case l.RF < 1:
		return nil, fmt.Errorf("rf is %d, want at least 1", l.RF)
	}
	for i, id := range l.Members {
		if id == "" {
			return nil, fmt.Errorf("members[%d] is empty", i)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(l.Replicas)) {
		if s < 1 || s > uint64(l.Shards) {
			return nil, fmt.Errorf("replicas names shard %d, outside 1 to %d", s, l.Shards)
		}
		if l.Replicas[s] == 0 {
			return nil, fmt.Errorf("replicas gives shard %d replica ID 0", s)
		}
	}
	if l.Replicas == nil {
		l.Replicas = map[uint64]uint64{}
	}
	return &l, nil
}

func saveLayout(dir string, l *layout) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, "cluster.json"), b); err != nil {
		return fmt.Errorf("recording cluster layout: %w", err)
	}
	return nil
}

func resolveIP(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("cannot resolve: %v", err)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return ips[0].String(), nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Gossip returns the member's gossip node, nil on a lone member or before
// Start.
func (m *Member) Gossip() *gossip.Node { return m.net().gossipNode() }

// replicaOf returns this member's replica ID in shard s and whether it hosts s.
func (m *Member) replicaOf(s uint64) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.netLocked().replicaOfLocked(s)
}

// replicaOfLocked returns this member's replica ID in shard s and whether
// it hosts s, from its layout (guarded by the member's lock, held).
func (c *cluster) replicaOfLocked(s uint64) (uint64, bool) {
	if c.layout == nil {
		return 0, false
	}
	id, ok := c.layout.Replicas[s]
	return id, ok
}

// hosts reports whether this member holds a replica of shard s.
func (m *Member) hosts(s uint64) bool {
	_, ok := m.replicaOf(s)
	return ok
}

// rpcTargets lists the RPC addresses of the members that should hold
// shard s (placement order, preferred leader first), then of every other
// alive member: during a move a replica may still be where the placement
// no longer puts it, and a member without one answers at once that it has
// none.
func (c *cluster) rpcTargets(s uint64) []string {
	v, err := c.recentView()
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{c.m.cfg.NodeID: true}
	add := func(id string) {
		if !seen[id] && v.alive(id) && v.rpcAddr(id) != "" {
			out = append(out, v.rpcAddr(id))
		}
		seen[id] = true
	}
	for _, id := range v.place.Replicas(s) {
		add(id)
	}
	for _, id := range slices.Sorted(maps.Keys(v.members)) {
		add(id)
	}
	return out
}

// forward sends a call about shard s to the members holding it, trying each
// until one answers.
func (c *cluster) forward(ctx context.Context, s uint64, method string, body []byte) ([]byte, error) {
	if c.currentLayout() == nil {
		return nil, fmt.Errorf("%w: shard %d is not hosted here", errs.ErrNotReady, s)
	}
	payload := wire.ShardPayload(s, body)
	var last error = fmt.Errorf("%w: no reachable member holds shard %d", errs.ErrNotReady, s)
	began := time.Now()
	for attempt := 0; ctx.Err() == nil && (attempt < 3 || time.Since(began) < forwardPatience); attempt++ {
		for _, addr := range c.rpcTargets(s) {
			out, err := c.client.Call(ctx, addr, method, payload)
			if err == nil {
				return out, nil
			}
			last = wire.FromRemote(err)
			if !errs.IsRetryable(last) {
				return nil, last
			}
		}
		if err := backoff.Sleep(ctx, backoff.Delay(attempt+1, 50*time.Millisecond, 250*time.Millisecond)); err != nil {
			break
		}
	}
	return nil, last
}

// forwardPatience is how long forward keeps trying members whose answers
// are retryable (no leader known: an election after a member failed, a
// shard moving), within the call's context.
const forwardPatience = 2 * time.Second

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

// remoteStepTimeout bounds a step run on another member when the engine
// sets no step timeout: the executor's default claim lease, after which
// another member re-runs the step anyway.
const remoteStepTimeout = 5 * time.Minute

// remote runs steps on the members that registered their node types.
type remote struct{ m *Member }

var _ engine.Remote = remote{}

// Has reports whether another alive member registered node.
func (r remote) Has(node string) bool { return r.member(node) != "" }

// member returns the RPC address of an alive member (not this one) that
// registered node, or "".
func (r remote) member(node string) string { return r.m.net().nodeMember(node) }

// nodeMember returns the RPC address of an alive member (not this one)
// that registered node, or "".
func (c *cluster) nodeMember(node string) string {
	for _, p := range c.members() {
		if p.ID != c.m.cfg.NodeID && slices.Contains(strings.Split(p.Tags[tagNodes], ","), node) {
			return p.Tags[tagRPC]
		}
	}
	return ""
}

// alive reports whether gossip sees member alive.
func (c *cluster) alive(member string) bool {
	for _, p := range c.members() {
		if p.ID == member {
			return true
		}
	}
	return false
}

// call calls method on the member at RPC address addr.
func (c *cluster) call(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	return c.client.Call(ctx, addr, method, body)
}

// gossipNode returns the cluster's gossip node.
func (c *cluster) gossipNode() *gossip.Node { return c.gossip }

// describe fills in the other members, whether this one coordinates and
// the cluster ID.
func (c *cluster) describe(info *Info) {
	for _, p := range c.members() {
		if p.ID != c.m.cfg.NodeID {
			info.Peers = append(info.Peers, p.ID)
		}
	}
	c.mu.Lock()
	info.IsLeader = c.coordinator == c.m.cfg.NodeID
	info.ClusterID = c.clusterID
	c.mu.Unlock()
}

// Run executes node on a member that registered it.
func (r remote) Run(ctx context.Context, node string, wc *executor.WorkflowContext, state, config json.RawMessage) (*executor.Output, error) {
	addr := r.member(node)
	if addr == "" {
		return nil, fmt.Errorf("no alive member has node %q", node)
	}
	b, err := json.Marshal(wire.ExecRequest{Node: node, Context: *wc, State: state, Config: config})
	if err != nil {
		return nil, executor.Permanent(err)
	}
	n := r.m.net()
	if _, ok := ctx.Deadline(); !ok {
		// Without Engine.StepTimeout, a remote step may run as long as its
		// claim holds; the member RPC would otherwise cut it at its default
		// call timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, remoteStepTimeout)
		defer cancel()
	}
	out, err := n.call(ctx, addr, wire.MethodExec, b)
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

// sendEvent queues a lifecycle change for the member that started the
// workflow, if that is another member.
func (c *cluster) sendEvent(ch *wf.Change) {
	if ch.View.Starter == "" || ch.View.Starter == c.m.cfg.NodeID {
		return
	}
	select {
	case c.outbox <- wire.ForwardedEvent{From: c.m.cfg.NodeID, Kind: ch.Kind, View: ch.View}:
	default:
		c.m.log.Warn("event for the starting member dropped: outbox full", logkeys.Workflow, ch.View.ID)
	}
}

// forwardEvents delivers queued lifecycle events to the members that
// started the workflows (best effort: an unreachable member misses them).
// Events waiting together go to each member in one call.
func (c *cluster) forwardEvents() {
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
				c.m.log.Warn("events for the starting member dropped: each is over the member RPC message limit", "events", dropped, "to", starter)
			}
			for _, b := range calls {
				ctx, cancel := context.WithTimeout(c.stopCtx, 2*time.Second)
				if _, err := c.client.Call(ctx, addr, wire.MethodEvent, b); err != nil {
					c.m.log.Debug("forwarding workflow events failed", "bytes", len(b), "to", starter, "error", err)
				}
				cancel()
			}
		}
	}
}

// watchMembership turns gossip membership changes into events and tracks
// the coordinator.
func (c *cluster) watchMembership() {
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
				c.m.bus.Publish(&events.NodeJoinedEvent{NodeID: ev.Member.ID, Address: addr, JoinedAt: ev.At, Metadata: meta})
			case gossip.EventLeave, gossip.EventFailed:
				meta["reason"] = ev.Kind.String()
				c.m.bus.Publish(&events.NodeLeftEvent{NodeID: ev.Member.ID, Address: addr, LeftAt: ev.At, Metadata: meta})
			}
			c.updateCoordinator()
		}
	}
}

// updateCoordinator publishes LeaderChangedEvent when the coordinator (the
// alive member with the lowest node ID: advisory, never used for safety)
// changes.
func (c *cluster) updateCoordinator() {
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
		c.m.bus.Publish(&events.LeaderChangedEvent{NewLeaderID: id, NewLeaderAddr: cmpOr(co.Tags[tagRaft], co.Address()),
			PreviousID: prev, ChangedAt: time.Now(), Metadata: map[string]interface{}{}})
	}
}

// handOffTimeout bounds how long Stop waits for the shards this member
// leads to elect the replicas it hands leadership to.
const handOffTimeout = 2 * time.Second

// close stops the cluster's gossip and RPC; the caller has stopped the
// engine and closes storage (h, if open) afterwards. Between leaving gossip
// and closing, leadership of the shards this member leads is handed to
// other replicas, so the others need not wait out an election timeout.
func (c *cluster) close(h *shards.Host) error {
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
func (c *cluster) handOff(h *shards.Host) {
	alive := map[string]bool{} // Raft address -> alive
	for _, p := range c.members() {
		alive[p.Tags[tagRaft]] = p.Status == gossip.StatusAlive
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
			c.m.log.Debug("shard leadership handed off")
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.m.log.Info("shard leadership not handed off before stopping", "shards", led)
}

// onQuery runs a dev command sent with QueryCommand and answers with its
// outcome.
func (m *Member) onQuery(name string, payload []byte, from string) ([]byte, error) {
	if name != commandEvent {
		return nil, fmt.Errorf("unknown query %q", name)
	}
	if m.net().isForeign(from) {
		return nil, fmt.Errorf("member %q belongs to another cluster", from)
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout)
	defer cancel()
	return nil, m.runCommand(ctx, from, payload)
}

// onUserEvent runs a dev command broadcast by another member.
func (m *Member) onUserEvent(name string, payload []byte, from string) {
	if name != commandEvent || from == m.cfg.NodeID {
		return // the sender ran its own handler already
	}
	if m.net().isForeign(from) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout)
	defer cancel()
	if err := m.runCommand(ctx, from, payload); err != nil {
		m.log.Warn("dev command failed", "from", from, "error", err)
	}
}

// refreshLeaders records which member leads each shard hosted here, so
// that starts can go to it directly.
func (c *cluster) refreshLeaders(h *shards.Host, v *view) {
	next := map[uint64]string{}
	for s, raft := range h.LeaderAddresses() {
		if id := v.byRaft[raft]; id != c.m.cfg.NodeID && v.alive(id) {
			next[s] = v.rpcAddr(id)
		}
	}
	c.mu.Lock()
	c.leaderRPC = next
	c.mu.Unlock()
}

// leaderOf returns the RPC address of the other member leading shard s, or
// "" if this member leads it or does not know.
func (c *cluster) leaderOf(s uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderRPC[s]
}

// applyHere proposes a command forwarded by another member through this
// member's replica of shard s. A workflow start reaching the shard's leader
// claims its first steps for this member in the same command, as a start
// made here would, saving a round of Raft before they run; those claims are
// this member's to run, so the answer leaves them out.
func (m *Member) applyHere(ctx context.Context, h *shards.Host, s uint64, raw []byte) ([]byte, error) {
	m.mu.Lock()
	e := m.engine
	m.mu.Unlock()
	if e == nil || !h.IsLeader(s) {
		return h.Propose(ctx, s, raw)
	}
	cmd, err := wf.DecodeCommand(raw)
	if err != nil || cmd.Op != wf.OpStart {
		return h.Propose(ctx, s, raw)
	}
	// Whatever the sender claimed is replaced by this member's claims.
	cmd.Member, cmd.Incarnation, cmd.LeaseUntil = "", "", 0
	for i := range cmd.Tasks {
		cmd.Tasks[i].Claim = false
	}
	e.ClaimFields(s, &cmd)
	if raw, err = wf.EncodeCommand(&cmd); err != nil {
		return nil, err
	}
	out, err := h.Propose(ctx, s, raw)
	if err != nil {
		return nil, err
	}
	res, err := wf.DecodeResult(out)
	if err != nil || len(res.Claimed) == 0 {
		return out, err
	}
	e.Adopt(s, &cmd, &res)
	res.Claimed = nil
	return wf.EncodeResult(res)
}
