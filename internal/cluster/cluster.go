package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/backoff"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/formation"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/rebalance"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
	"github.com/hashicorp/memberlist"
	dbconfig "github.com/lni/dragonboat/v4/config"
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

// Cluster is what a clustered member runs besides its shards and engine:
// gossip membership, the member RPC, the bootstrap layout and the
// rebalancing loop. Open creates it, Start joins or founds the cluster,
// Close stops it. Its methods are safe for concurrent use.
type Cluster struct {
	cfg     Config
	local   Local
	host    *shards.Host
	log     *slog.Logger
	bus     *events.Bus
	gossip  *gossip.Node
	server  *rpc.Server
	client  *rpc.Client
	rpcCfg  rpc.Config
	rpcAddr string
	// listener is the member RPC's, served from Start.
	listener net.Listener
	layout   atomic.Pointer[layout] // nil until the member joined or founded its cluster
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
	refused     map[string]bool   // caller IPs refused by CheckCaller (logged once)
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

// Config configures a Cluster: the member's identity and its membership
// and placement settings, resolved by graft's config.go, and what the
// member serves to the others.
type Config struct {
	// NodeID, BindAddr (the Raft address) and DataDir are the member's.
	NodeID, BindAddr, DataDir string
	// Logger receives the cluster's logs; Bus its events.
	Logger *slog.Logger
	Bus    *events.Bus
	// Policy, Key and AllowedNodes control who may join.
	Policy       gossip.Policy
	Key          []byte
	AllowedNodes []string
	// BootstrapWait, FailureGrace and ReplicationFactor are
	// graft.ClusterConfig's.
	BootstrapWait     time.Duration
	FailureGrace      time.Duration
	ReplicationFactor int
	// GossipPort is the gossip listener's port.
	GossipPort int
	// ShardCount is the member's shard count (that of its data directory).
	ShardCount uint64
	// Founding says how this member founds a new cluster; Discovery finds
	// the others.
	Founding  formation.Rules
	Discovery []gossip.Discoverer
	// Memberlist tunes the gossip layer; Network, if set, carries the
	// links instead of TCP/UDP.
	Memberlist func(*memberlist.Config)
	Network    Network
	// RPC is the member RPC's limits and TLS.
	RPC rpc.Config
	// Timing is the rebalancing loop's clock and intervals.
	Timing RebalanceTiming
	// Handler serves the member RPC; OnUserEvent and OnQuery receive the
	// dev commands gossip carries.
	Handler     rpc.Handler
	OnUserEvent func(name string, payload []byte, from string)
	OnQuery     func(name string, payload []byte, from string) ([]byte, error)
}

// Local is the member a Cluster belongs to, as the cluster uses it. Its
// methods must be safe for concurrent use.
type Local interface {
	// Storage returns the member's shards while they are open.
	Storage() (*shards.Host, error)
	// Running returns the member's shards while the member runs.
	Running() (*shards.Host, error)
	// NodeTypes lists the node types registered on the member.
	NodeTypes() []string
	// AwaitLeader waits until shard s has a leader and, if it is this
	// member, its engine has taken the shard over.
	AwaitLeader(ctx context.Context, s uint64) error
	// SyncLeader tells the member's engine whether it leads shard s now.
	SyncLeader(s uint64)
	// LetGo makes the member's engine let go of shard s, whose replica
	// here is being dropped; Forget drops the member's state of it.
	LetGo(s uint64) error
	Forget(s uint64)
	// CallerID returns the node ID a member RPC caller's certificate
	// names, and whether TLS is on.
	CallerID(ctx context.Context) (string, bool)
	// Joining tells the member it is forming or joining its cluster.
	Joining()
}

// Open creates the cluster of a member whose shards (host) are open: the
// member RPC client, the member RPC listener on grpcPort and the gossip
// node, not started. From Open on, the cluster's listener, RPC server and
// gossip node are in place and only read; Start starts them, Close stops
// them.
func Open(cfg Config, host *shards.Host, local Local, grpcPort int) (*Cluster, error) {
	hostname, _, _ := net.SplitHostPort(cfg.BindAddr)
	netw := cfg.Network
	var dial func(context.Context, string) (net.Conn, error)
	if netw != nil {
		dial = netw.Dialer(hostname)
	}
	client, err := rpc.NewClient(dial, cfg.RPC)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errs.ErrInvalidConfig, err)
	}
	c := &Cluster{cfg: cfg, local: local, host: host, log: cfg.Logger, bus: cfg.Bus,
		client: client, rpcCfg: cfg.RPC, shardCount: cfg.ShardCount, stop: make(chan struct{}), outbox: make(chan wire.ForwardedEvent, 4*wire.MaxEventBatch),
		seed: newSeed(), foreign: map[string]string{}, refused: map[string]bool{},
		leaderless: map[uint64]time.Time{}, leaderRPC: map[uint64]string{}, timing: cfg.Timing}
	c.rebal = c.newReconciler(host)
	c.stopCtx, c.cancel = context.WithCancel(context.Background())
	if err := c.open(netw, hostname, grpcPort); err != nil {
		c.cancel()
		_ = client.Close()
		return nil, err
	}
	return c, nil
}

// open listens for the member RPC and creates the RPC server and the
// gossip node (not started yet), filling in c's fields for them.
func (c *Cluster) open(netw Network, host string, grpcPort int) error {
	var l net.Listener
	var err error
	if netw != nil {
		l = netw.Listen(host)
	} else if l, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(grpcPort))); err != nil {
		return fmt.Errorf("listening for member RPC on port %d: %w", grpcPort, err)
	}
	c.rpcAddr = l.Addr().String()
	if c.server, err = rpc.NewServer(c.cfg.Handler, c.rpcCfg, c.log.With(logkeys.Component, "rpc")); err != nil {
		_ = l.Close()
		return fmt.Errorf("%w: %w", errs.ErrInvalidConfig, err)
	}

	ip := "0.0.0.0" // with Expert.Network, the transport decides the address
	var transport memberlist.NodeAwareTransport
	if netw != nil {
		transport = netw.MemberlistTransport(host)
	} else if ip, err = resolveIP(host); err != nil {
		_ = l.Close()
		return fmt.Errorf("%w: BindAddr host %q: %v", errs.ErrInvalidConfig, host, err)
	}
	g, err := gossip.New(gossip.Config{
		NodeID: c.cfg.NodeID, BindAddr: ip, BindPort: c.cfg.GossipPort,
		Tags: c.tags(),
		Key:  c.cfg.Key, Policy: c.cfg.Policy, AllowedNodes: c.cfg.AllowedNodes,
		Discovery: c.cfg.Discovery, SnapshotPath: filepath.Join(c.cfg.DataDir, "serf.snapshot"),
		KeyringFile:      filepath.Join(c.cfg.DataDir, "serf.keyring"),
		Admit:            c.admit,
		MemberlistConfig: c.cfg.Memberlist,
		Transport:        transport,
		Logger:           c.log.With(logkeys.Component, "gossip"),
	})
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("%w: gossip: %w", errs.ErrInvalidConfig, err)
	}
	c.gossip, c.listener = g, l
	return nil
}

// Start serves the member RPC, starts gossip, bootstraps (or reloads) the
// shard layout and starts this member's replicas, then the rebalancing
// loop. On an error the caller closes the cluster.
func (c *Cluster) Start(ctx context.Context) error {
	g := c.gossip
	c.server.Serve(c.listener)
	g.OnUserEvent(c.cfg.OnUserEvent)
	g.OnQuery(c.cfg.OnQuery)
	if err := g.Start(ctx); err != nil {
		return fmt.Errorf("starting gossip: %w", err)
	}
	c.wg.Go(c.watchMembership)
	c.wg.Go(c.forwardEvents)

	lay, err := loadLayout(c.cfg.DataDir)
	if err != nil {
		return err
	}
	switch {
	case lay != nil:
		// A restart: the same replicas with the same IDs. Replicas removed
		// while this member was away are found and dropped by reconcile.
		c.layout.Store(lay)
		c.mu.Lock()
		c.clusterID = lay.ClusterID
		c.mu.Unlock()
		c.hostMu.Lock()
		for _, s := range c.hosted() {
			if err := c.host.StartShard(s, lay.Replicas[s], nil, false); err != nil {
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
			if c.local.AwaitLeader(wctx, s) != nil {
				break
			}
		}
		cancel()
	default:
		if lay, err = c.bootstrap(ctx, c.shardCount); err != nil {
			return err
		}
		for _, s := range c.hosted() {
			if err := c.local.AwaitLeader(ctx, s); err != nil {
				return err
			}
		}
	}
	c.mu.Lock()
	c.booted = true
	c.mu.Unlock()
	if err := c.PublishTags(); err != nil {
		return fmt.Errorf("publishing gossip tags: %w", err)
	}
	c.wg.Go(c.reconcileLoop)
	c.log.Info("cluster member started", "cluster_id", lay.ClusterID, "bootstrap_members", lay.Members, "shards_hosted", len(lay.Replicas), "rpc_addr", c.rpcAddr)
	return nil
}

// Joined reports whether this member joined or founded its cluster (it
// has a layout).
func (c *Cluster) Joined() bool { return c.layout.Load() != nil }

// RPCAddr is the member RPC's address.
func (c *Cluster) RPCAddr() string { return c.rpcAddr }

// tags are the gossip tags this member publishes.
func (c *Cluster) tags() map[string]string {
	t := map[string]string{
		tagRaft: c.cfg.BindAddr, tagRPC: c.rpcAddr, tagShards: strconv.FormatUint(c.shardCount, 10),
		tagNodes: strings.Join(c.local.NodeTypes(), ","),
		tagSeed:  c.seed, tagRules: c.cfg.Founding.Fingerprint(),
	}
	c.mu.Lock()
	if c.booted {
		t[tagCluster] = c.clusterID
	}
	c.mu.Unlock()
	return t
}

// PublishTags gossips this member's current tags.
func (c *Cluster) PublishTags() error {
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
	if err := WriteFileSync(filepath.Join(dir, "cluster.json"), b); err != nil {
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

// ReplicaOf returns this member's replica ID in shard s and whether it
// hosts s, from its layout.
func (c *Cluster) ReplicaOf(s uint64) (uint64, bool) {
	lay := c.layout.Load()
	if lay == nil {
		return 0, false
	}
	id, ok := lay.Replicas[s]
	return id, ok
}

// rpcTargets lists the RPC addresses of the members that should hold
// shard s (placement order, preferred leader first), then of every other
// alive member: during a move a replica may still be where the placement
// no longer puts it, and a member without one answers at once that it has
// none.
func (c *Cluster) rpcTargets(s uint64) []string {
	v, err := c.recentView()
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{c.cfg.NodeID: true}
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

// Forward sends a call about shard s to the members holding it, trying each
// until one answers.
func (c *Cluster) Forward(ctx context.Context, s uint64, method string, body []byte) ([]byte, error) {
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

// NodeMember returns the RPC address of an alive member (not this one)
// that registered node, or "".
func (c *Cluster) NodeMember(node string) string {
	for _, p := range c.members() {
		if p.ID != c.cfg.NodeID && slices.Contains(strings.Split(p.Tags[tagNodes], ","), node) {
			return p.Tags[tagRPC]
		}
	}
	return ""
}

// Alive reports whether gossip sees member alive.
func (c *Cluster) Alive(member string) bool {
	for _, p := range c.members() {
		if p.ID == member {
			return true
		}
	}
	return false
}

// Call calls method on the member at RPC address addr.
func (c *Cluster) Call(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	return c.client.Call(ctx, addr, method, body)
}

// Gossip returns the cluster's gossip node.
func (c *Cluster) Gossip() *gossip.Node { return c.gossip }

// Describe fills in the other members, whether this one coordinates and
// the cluster ID.
func (c *Cluster) Describe() (peers []string, coordinator bool, clusterID string) {
	for _, p := range c.members() {
		if p.ID != c.cfg.NodeID {
			peers = append(peers, p.ID)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return peers, c.coordinator == c.cfg.NodeID, c.clusterID
}

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

// handOffTimeout bounds how long Stop waits for the shards this member
// leads to elect the replicas it hands leadership to.
const handOffTimeout = 2 * time.Second

// Close stops the cluster's gossip and RPC; the caller has stopped the
// engine and closes storage (h, if open) afterwards. Between leaving gossip
// and closing, leadership of the shards this member leads is handed to
// other replicas, so the others need not wait out an election timeout.
func (c *Cluster) Close(h *shards.Host) error {
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
func (c *Cluster) handOff(h *shards.Host) {
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
			c.log.Debug("shard leadership handed off")
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.log.Info("shard leadership not handed off before stopping", "shards", led)
}

// refreshLeaders records which member leads each shard hosted here, so
// that starts can go to it directly.
func (c *Cluster) refreshLeaders(h *shards.Host, v *view) {
	next := map[uint64]string{}
	for s, raft := range h.LeaderAddresses() {
		if id := v.byRaft[raft]; id != c.cfg.NodeID && v.alive(id) {
			next[s] = v.rpcAddr(id)
		}
	}
	c.mu.Lock()
	c.leaderRPC = next
	c.mu.Unlock()
}

// LeaderOf returns the RPC address of the other member leading shard s, or
// "" if this member leads it or does not know.
func (c *Cluster) LeaderOf(s uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderRPC[s]
}

// Network is graft.Network: a replacement for the member's links
// (gossip, Raft and member RPC).
// Implementations must be safe for concurrent use.
type Network interface {
	// MemberlistTransport is the gossip transport of endpoint name.
	MemberlistTransport(name string) memberlist.NodeAwareTransport
	// RaftTransportFactory is the Raft transport of endpoint name.
	RaftTransportFactory(name string) dbconfig.TransportFactory
	// Listen is the member RPC listener of endpoint name.
	Listen(name string) net.Listener
	// Dialer dials other endpoints' listeners from endpoint from.
	Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error)
}

// WriteFileSync writes b to path durably: to a temporary file, synced,
// then renamed over path.
func WriteFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
