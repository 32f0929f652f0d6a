package graft

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	dbconfig "github.com/lni/dragonboat/v4/config"

	"github.com/eleven-am/graft/internal/wf"
)

// DiscoveryType names a way of finding the other members of a cluster.
type DiscoveryType string

// Discovery methods.
const (
	// DiscoveryStatic joins a fixed list of peers (StaticPeer).
	DiscoveryStatic DiscoveryType = "static"
	// DiscoveryMDNS finds peers on the local network by multicast DNS; for development.
	DiscoveryMDNS DiscoveryType = "mdns"
	// DiscoveryDNS resolves a DNS name (A/SRV records, e.g. a Kubernetes
	// headless service) to peers; for production.
	DiscoveryDNS DiscoveryType = "dns"
)

// StaticPeer is one known member for DiscoveryStatic.
type StaticPeer struct {
	// ID is the peer's node ID.
	ID string
	// Address is the peer's host name or IP address.
	Address string
	// Port is the peer's Raft port (the port of its BindAddr); its gossip
	// port is Port+1 unless GossipPort says otherwise.
	Port int
	// GossipPort overrides the peer's gossip port (its Cluster.GossipPort).
	GossipPort int
}

// DiscoveryConfig configures one discovery method. A member may use several.
type DiscoveryConfig struct {
	// Type selects the method.
	Type DiscoveryType
	// Static lists the peers for DiscoveryStatic.
	Static []StaticPeer
	// Service is the mDNS service name (DiscoveryMDNS; default "_graft._tcp")
	// or the DNS name to resolve (DiscoveryDNS).
	Service string
}

// ClusterPolicy controls which members may join.
type ClusterPolicy string

// Cluster policies.
const (
	// ClusterPolicyOpen lets any member join (development).
	ClusterPolicyOpen ClusterPolicy = "open"
	// ClusterPolicyRestricted requires the cluster key (staging).
	ClusterPolicyRestricted ClusterPolicy = "restricted"
	// ClusterPolicyStrict requires the cluster key and a listed node ID (production).
	ClusterPolicyStrict ClusterPolicy = "strict"
)

// ClusterConfig configures membership and placement.
type ClusterConfig struct {
	// Policy controls who may join. Default (zero) ClusterPolicyOpen.
	Policy ClusterPolicy
	// Key is the cluster key for the restricted and strict policies.
	Key []byte
	// AllowedNodes lists the node IDs the strict policy admits.
	AllowedNodes []string
	// ExpectedMembers, when set, overrides how a new cluster's founding
	// members are chosen: it bootstraps once gossip sees this many members
	// configured with the same number (like Consul's bootstrap_expect), the
	// lowest node IDs founding it. Zero means: the members of the static
	// discovery list (this one counted), or with mDNS/DNS only, one founder
	// elected after BootstrapWait. Above one it makes a member without
	// Discovery part of a cluster too (others must find it).
	ExpectedMembers int
	// BootstrapWait is how long a member that finds its peers by mDNS or DNS
	// only (no static list, no ExpectedMembers) looks for a running cluster
	// to join before the members it sees agree on a founder: the one with
	// the lowest node ID bootstraps alone and the others join it. Default
	// 5s; zero means the default.
	BootstrapWait time.Duration
	// ReplicationFactor is how many members hold a replica of each shard.
	// Default 3, capped at the number of members.
	ReplicationFactor int
	// GossipPort is the port of the Serf gossip listener (TCP and UDP).
	// Default: the port of BindAddr plus one.
	GossipPort int
	// FailureGrace is how long a member gossip reports failed keeps its
	// replicas before they are moved to other members: a member that comes
	// back within it (a restart, a short partition) moves nothing. A member
	// that leaves gracefully (Stop) has its replicas moved at once. Default
	// 30s; zero means the default.
	FailureGrace time.Duration
	// ShardCount is the number of Raft shards workflows are spread over. It
	// is fixed when the data directory is first created. Zero means the
	// count recorded in the data directory, or 8 for a new one; a non-zero
	// count that differs from the recorded one is refused.
	ShardCount int
}

// EngineConfig tunes workflow execution.
type EngineConfig struct {
	// WorkerCount is how many steps this member runs at once. Default
	// 2×CPU cores, at least 4; zero means the default.
	WorkerCount int
	// MaxRetries is how many times a step that returned an error is retried
	// before the workflow fails. Default 3; zero means the default; use
	// NoRetries for none.
	MaxRetries int
	// RetryDelay is the base of the exponential backoff between retries
	// (doubled per failure, with jitter). Default 1s; zero means the default.
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff. Default 5m; zero means the default.
	MaxRetryDelay time.Duration
	// QueueBufferSize is how many ready tasks may be claimed ahead of the
	// workers, so that claiming overlaps execution. Default 4×WorkerCount,
	// at least 64; zero means the default.
	QueueBufferSize int
	// StepTimeout cancels a step's context when it runs longer. Zero (the
	// default) means no timeout.
	StepTimeout time.Duration
	// BlockedTimeout fails a workflow whose pending nodes are all refused
	// by CanStart, with nothing running, for this long. Default 5m; zero
	// means the default.
	BlockedTimeout time.Duration
	// Retention is how long completed, failed and stopped workflows are
	// kept before they are purged. Default 7 days; zero means the default.
	Retention time.Duration
	// PurgeInterval is how often terminal workflows past Retention are
	// purged. Default 1m; zero means the default.
	PurgeInterval time.Duration
	// DrainTimeout is how long Stop waits for running steps before it
	// cancels them. Default 30s; zero means the default. A step that
	// ignores the cancellation is abandoned 5s later: Stop returns without
	// it, its outcome is discarded, and it runs again after a restart.
	DrainTimeout time.Duration
	// MaxStateBytes limits a workflow's state (JSON bytes), at start and
	// after every step. Default 1 MiB; zero means the default.
	MaxStateBytes int
	// RequestTimeout bounds calls that take no context (StartWorkflow,
	// GetWorkflowStatus). Default 10s; zero means the default.
	RequestTimeout time.Duration
	// EventBufferSize is how many events each event handler may fall behind
	// before further events are dropped for it. Default 4096; zero means the
	// default.
	EventBufferSize int
}

// NoRetries as EngineConfig.MaxRetries disables retries.
const NoRetries = -1

// Engine settings EngineConfig does not expose. They are defaults too, so
// they live here with the others; graft.go hands them to the engine.
const (
	// engineLeaseDuration is how long a claim holds a task beyond
	// EngineConfig.StepTimeout before another member re-runs it.
	engineLeaseDuration = 5 * time.Minute
	// engineBlockedRecheck is how often nodes refused by CanStart are
	// re-evaluated while the workflow's state is unchanged.
	engineBlockedRecheck = time.Second
)

// ExpertConfig holds rarely tuned storage knobs.
type ExpertConfig struct {
	// RTTMillisecond is the expected round trip between members in
	// milliseconds; Raft timeouts are multiples of it. Default 10 on a
	// lone member.
	RTTMillisecond uint64
	// SnapshotEntries is how many Raft log entries are applied between log
	// compactions. Default 10000; zero means the default.
	SnapshotEntries uint64
	// CompactionOverhead is how many applied entries a compaction keeps, so
	// a slightly lagging replica can catch up from the log. Default 5000;
	// zero means the default.
	CompactionOverhead uint64
	// MinFreeDiskBytes refuses new workflows (ErrStorageFull) before the
	// data directory's file system gets below this many free bytes, counting
	// what accepted commands will write; running workflows go on, but their
	// steps' writes wait (and are retried) below half of it. It must cover
	// Pebble's preallocated WAL files and flushes (about 40 MB); keep it at
	// least 64 MiB. Default 64 MiB; zero means the default; set NoDiskCheck
	// to disable.
	MinFreeDiskBytes int64
	// Memberlist, if set, tunes the gossip layer's memberlist configuration
	// (probe, suspicion and gossip timers) before Graft applies its own
	// settings; Graft then overwrites the name, addresses and ports, keys,
	// transport and logger. Nil keeps memberlist's LAN defaults.
	Memberlist func(*memberlist.Config)
	// Network, if set, carries the member's three links (gossip, Raft and
	// member RPC) instead of TCP/UDP: the chaos harness passes its
	// fault-injecting in-process network (chaos.Network). With it, BindAddr
	// is "name:port" where name is this member's endpoint on the network.
	Network Network
}

// Network is a replacement for the member's links; chaos.Network is one.
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

// TLSConfig turns on mutual TLS for a member's Raft and member RPC links.
// Every member of a cluster needs it (with certificates from the same CA)
// and a Cluster.Key (which encrypts gossip). A member's node ID is bound to
// its certificate: the certificate's URI SAN graft://NODE-ID, or, without
// one, its subject common name, must equal Config.NodeID, and a peer is
// known by the ID its certificate names. The files are read again when they
// change (checked at most once a second on new connections), so
// certificates rotate without a restart.
type TLSConfig struct {
	// CAFile is the PEM file of the cluster CA certificate(s) that every
	// member's certificate must chain to.
	CAFile string
	// CertFile and KeyFile are this member's PEM certificate (with any
	// intermediates) and private key; the certificate must be valid for
	// client and server authentication.
	CertFile, KeyFile string
	// RevokedSerials lists certificate serial numbers (hexadecimal; colons
	// and case ignored) refused even when their chain is valid.
	RevokedSerials []string
}

// enabled reports whether TLS is configured at all.
func (t TLSConfig) enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// NoDiskCheck as Expert.MinFreeDiskBytes disables the free-space check.
const NoDiskCheck = -1

// Config configures a Manager. Build one with DefaultConfig and override
// fields; zero values take the documented defaults.
type Config struct {
	// NodeID names this member uniquely and must stay the same across
	// restarts. Required.
	NodeID string
	// BindAddr is the host:port the member's Raft transport listens on.
	// Required.
	BindAddr string
	// DataDir holds the member's state. Required. Reusing it after a
	// restart resumes every workflow where it was.
	DataDir string
	// Logger receives Graft's logs and those of its dependencies. nil means
	// slog.Default().
	Logger *slog.Logger
	// Discovery lists how to find other members. A member with any source
	// runs gossip and the member RPC and forms or joins a cluster; empty
	// means a lone member (unless Cluster.ExpectedMembers is above one).
	Discovery []DiscoveryConfig
	// Cluster configures membership and placement.
	Cluster ClusterConfig
	// TLS, when set, authenticates and encrypts the member's Raft and
	// member RPC links with mutual TLS. Zero means none (a trusted network
	// only; see the README's Security section).
	TLS TLSConfig
	// Engine tunes workflow execution.
	Engine EngineConfig
	// Expert holds rarely tuned storage knobs.
	Expert ExpertConfig
}

// DefaultShardCount is the shard count of a new data directory when
// Cluster.ShardCount is zero.
const DefaultShardCount = 8

// MaxWorkflowIDLength is the longest accepted workflow ID, in bytes.
const MaxWorkflowIDLength = 256

// MaxStateDepth is the deepest nesting of JSON objects and arrays accepted
// in a workflow's state (InitialState and every step's GlobalState), a
// node's config (InitialNodes and NextNodes) and a dev command's params.
// Depth counts open containers: {} and [1] are 1 deep, {"a":[2]} is 2 deep.
//
// 100 is far beyond hand-designed state (rarely 10 levels), matches the
// nesting limits of MongoDB documents and of protobuf's C++ and Java decoders,
// and leaves room for the few levels a reader's envelope adds under
// decoders with low limits (serde_json's 128) and Go's encoding/json
// (10,000). It also bounds the work of merging a step's state: the path of
// each changed field has at most MaxStateDepth keys.
const MaxStateDepth = wf.MaxDepth

// DefaultConfig returns a configuration with every default filled in, for a
// lone member with the given identity.
func DefaultConfig(nodeID, bindAddr, dataDir string) *Config {
	c := (&Config{NodeID: nodeID, BindAddr: bindAddr, DataDir: dataDir}).withDefaults()
	return &c
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Cluster.Policy = cmp.Or(c.Cluster.Policy, ClusterPolicyOpen)
	c.Cluster.ReplicationFactor = cmp.Or(c.Cluster.ReplicationFactor, 3)
	c.Cluster.FailureGrace = cmp.Or(c.Cluster.FailureGrace, 30*time.Second)
	c.Cluster.BootstrapWait = cmp.Or(c.Cluster.BootstrapWait, 5*time.Second)
	e := &c.Engine
	e.WorkerCount = cmp.Or(e.WorkerCount, max(4, 2*runtime.NumCPU()))
	e.MaxRetries = cmp.Or(e.MaxRetries, 3)
	e.RetryDelay = cmp.Or(e.RetryDelay, time.Second)
	e.MaxRetryDelay = cmp.Or(e.MaxRetryDelay, 5*time.Minute)
	e.QueueBufferSize = cmp.Or(e.QueueBufferSize, max(64, 4*e.WorkerCount))
	e.BlockedTimeout = cmp.Or(e.BlockedTimeout, 5*time.Minute)
	e.Retention = cmp.Or(e.Retention, 7*24*time.Hour)
	e.PurgeInterval = cmp.Or(e.PurgeInterval, time.Minute)
	e.DrainTimeout = cmp.Or(e.DrainTimeout, 30*time.Second)
	e.MaxStateBytes = cmp.Or(e.MaxStateBytes, 1<<20)
	e.RequestTimeout = cmp.Or(e.RequestTimeout, 10*time.Second)
	e.EventBufferSize = cmp.Or(e.EventBufferSize, 4096)
	c.Expert.RTTMillisecond = cmp.Or(c.Expert.RTTMillisecond, 10)
	c.Expert.SnapshotEntries = cmp.Or(c.Expert.SnapshotEntries, 10000)
	c.Expert.CompactionOverhead = cmp.Or(c.Expert.CompactionOverhead, 5000)
	c.Expert.MinFreeDiskBytes = cmp.Or(c.Expert.MinFreeDiskBytes, 64<<20)
	return c
}

// Validate reports every problem with the configuration, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == "" {
		add("NodeID is required")
	}
	if c.DataDir == "" {
		add("DataDir is required")
	}
	if c.BindAddr == "" {
		add("BindAddr is required")
	} else if host, port, err := net.SplitHostPort(c.BindAddr); err != nil {
		add("BindAddr %q is not host:port: %v", c.BindAddr, err)
	} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || host == "" {
		add("BindAddr %q needs a host and a port between 1 and 65535", c.BindAddr)
	}
	switch c.Cluster.Policy {
	case ClusterPolicyOpen, ClusterPolicyRestricted, ClusterPolicyStrict:
	default:
		add("Cluster.Policy %q is not one of open, restricted, strict", c.Cluster.Policy)
	}
	if c.Cluster.FailureGrace < 0 {
		add("Cluster.FailureGrace (%s) is negative", c.Cluster.FailureGrace)
	}
	if c.Cluster.BootstrapWait < 0 {
		add("Cluster.BootstrapWait (%s) is negative", c.Cluster.BootstrapWait)
	}
	if c.Cluster.ExpectedMembers < 0 || c.Cluster.ReplicationFactor < 1 || c.Cluster.GossipPort < 0 || c.Cluster.GossipPort > 65535 {
		add("Cluster.ExpectedMembers (%d), Cluster.ReplicationFactor (%d) and Cluster.GossipPort (%d) are out of range",
			c.Cluster.ExpectedMembers, c.Cluster.ReplicationFactor, c.Cluster.GossipPort)
	}
	if c.Cluster.Policy != ClusterPolicyOpen || len(c.Cluster.Key) > 0 {
		if n := len(c.Cluster.Key); n != 16 && n != 24 && n != 32 {
			add("Cluster.Key must be 16, 24 or 32 bytes (it is %d) for the %s policy", n, c.Cluster.Policy)
		}
	}
	if c.Cluster.Policy == ClusterPolicyStrict && !slices.Contains(c.Cluster.AllowedNodes, c.NodeID) {
		add("Cluster.AllowedNodes must list every admitted node ID, this member's (%q) included, for the strict policy", c.NodeID)
	}
	if c.TLS.enabled() {
		if c.TLS.CAFile == "" || c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			add("TLS needs TLS.CAFile, TLS.CertFile and TLS.KeyFile (some are empty)")
		}
		if len(c.Cluster.Key) == 0 {
			add("TLS needs Cluster.Key too: it encrypts gossip, which TLS does not cover")
		}
	}
	if c.Cluster.ShardCount < 0 || c.Cluster.ShardCount > 4096 {
		add("Cluster.ShardCount (%d) must be between 0 (default) and 4096", c.Cluster.ShardCount)
	}
	for i, d := range c.Discovery {
		switch d.Type {
		case DiscoveryStatic:
			for j, p := range d.Static {
				if p.Address == "" || p.Port <= 0 || p.Port > 65535 || p.GossipPort < 0 || p.GossipPort > 65535 {
					add("Discovery[%d].Static[%d] (%q) needs an Address and a Port between 1 and 65535", i, j, p.ID)
				}
			}
		case DiscoveryMDNS:
		case DiscoveryDNS:
			if d.Service == "" {
				add("Discovery[%d].Service (the DNS name to resolve) is required for dns discovery", i)
			}
		default:
			add("Discovery[%d].Type %q is not one of static, mdns, dns", i, d.Type)
		}
	}
	if c.Expert.MinFreeDiskBytes < NoDiskCheck {
		add("Expert.MinFreeDiskBytes (%d) must be NoDiskCheck (-1) or more", c.Expert.MinFreeDiskBytes)
	}
	e := c.Engine
	if e.WorkerCount < 1 {
		add("Engine.WorkerCount (%d) must be at least 1", e.WorkerCount)
	}
	if e.MaxRetries < NoRetries {
		add("Engine.MaxRetries (%d) must be NoRetries (-1) or more", e.MaxRetries)
	}
	if e.RetryDelay < 0 || e.StepTimeout < 0 || e.BlockedTimeout < 0 || e.Retention < 0 || e.DrainTimeout < 0 || e.PurgeInterval < 0 {
		add("Engine durations must not be negative")
	}
	if e.MaxRetryDelay < e.RetryDelay {
		add("Engine.MaxRetryDelay (%s) must be equal or greater than Engine.RetryDelay (%s)", e.MaxRetryDelay, e.RetryDelay)
	}
	if e.MaxStateBytes < 2 {
		add("Engine.MaxStateBytes (%d) must be at least 2", e.MaxStateBytes)
	}
	if e.QueueBufferSize < 1 || e.EventBufferSize < 1 {
		add("Engine.QueueBufferSize (%d) and Engine.EventBufferSize (%d) must be positive", e.QueueBufferSize, e.EventBufferSize)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}
