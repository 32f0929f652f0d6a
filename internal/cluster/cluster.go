package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/formation"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/rebalance"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
	"github.com/hashicorp/memberlist"
	dbconfig "github.com/lni/dragonboat/v4/config"
)

// Gossip tags every member publishes.
const (
	tagRaft     = "raft"    // Raft address (Config.BindAddr)
	tagNodeHost = "nhid"    // NodeHost ID, the Raft target of its replicas (shards.Host.NodeHostID)
	tagRPC      = "rpc"     // member RPC address (host:grpcPort)
	tagInc      = "inc"     // this run's incarnation (Config.Incarnation): a restart changes it
	tagShards   = "shards"  // shard count of its data directory
	tagCluster  = "cluster" // its cluster's ID, once it is part of a running cluster
	tagSeed     = "seed"    // the cluster ID it proposes should it found one
	tagRules    = "found"   // fingerprint of its founding rules (formation.Rules)
)

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
	// Incarnation names this run of the member (the engine's), published
	// so that the others know when it restarted (Incarnation).
	Incarnation string
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
	// OnMemberGone, if set, is told of each member gossip reports as
	// left or reaped (the cluster state tombstones it). It runs on the
	// membership goroutine and must not block.
	OnMemberGone func(id string)
}

// Local is the member a Cluster belongs to, as the cluster uses it. Its
// methods must be safe for concurrent use.
type Local interface {
	// Storage returns the member's shards while they are open.
	Storage() (*shards.Host, error)
	// Running returns the member's shards while the member runs.
	Running() (*shards.Host, error)
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
		tagSeed: c.seed, tagRules: c.cfg.Founding.Fingerprint(),
	}
	if c.host != nil {
		t[tagNodeHost] = c.host.NodeHostID()
	}
	if c.cfg.Incarnation != "" {
		t[tagInc] = c.cfg.Incarnation
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
