package graft

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/formation"
	"github.com/eleven-am/graft/internal/member"
	"github.com/eleven-am/graft/internal/wf"
)

// Engine settings EngineConfig does not expose. They are defaults too, so
// they live here with the others; resolve hands them to the engine.
const (
	// engineLeaseDuration is how long a claim holds a task beyond
	// EngineConfig.StepTimeout before another member re-runs it.
	engineLeaseDuration = 5 * time.Minute
	// engineBlockedRecheck is how often nodes refused by CanStart are
	// re-evaluated while the workflow's state is unchanged.
	engineBlockedRecheck = time.Second
)

// Config configures a Manager. Build one with DefaultConfig and override
// fields; zero values take the documented defaults.
type Config struct {
	// NodeID names this member uniquely and must stay the same across
	// restarts. Required; at most 128 bytes (gossip.MaxNodeIDLen) of
	// valid UTF-8.
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
	// Operators says who may call the operator methods of the member RPC
	// (the graft command); see OperatorConfig. Zero admits, without TLS,
	// loopback and members; with TLS, any operator certificate from the
	// cluster CA (under the strict policy: none).
	Operators OperatorConfig
	// Engine tunes workflow execution.
	Engine EngineConfig
	// Expert holds rarely tuned storage knobs.
	Expert ExpertConfig

	// rebalance, set only by this package's tests (export_test.go),
	// replaces the rebalancing loop's intervals.
	rebalance *cluster.RebalanceTiming
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
	switch {
	case c.NodeID == "":
		add("NodeID is required")
	case len(c.NodeID) > gossip.MaxNodeIDLen:
		// It names the member's entry in the cluster state, lone or not.
		add("NodeID is %d bytes, at most %d allowed", len(c.NodeID), gossip.MaxNodeIDLen)
	case !utf8.ValidString(c.NodeID):
		add("NodeID %q is not valid UTF-8", c.NodeID)
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
	for i, name := range c.Operators.Names {
		if !validOperatorName(name) {
			add("Operators.Names[%d] %.40q must be 1 to %d bytes of letters, digits, '.', '_' and '-'", i, name, maxOperatorNameLen)
		}
	}
	for i, n := range c.Operators.Networks {
		if _, err := netip.ParsePrefix(n); err != nil {
			add("Operators.Networks[%d] %.60q is not a CIDR prefix such as 10.0.0.0/8: %v", i, n, err)
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

// maxOperatorNameLen bounds an operator's name (OperatorConfig.Names).
const maxOperatorNameLen = 128

// validOperatorName reports whether name can name an operator: 1 to
// maxOperatorNameLen bytes of letters, digits, '.', '_' and '-' (it is the
// host of a URI).
func validOperatorName(name string) bool {
	if name == "" || len(name) > maxOperatorNameLen {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// operatorNetworks returns the valid prefixes of Operators.Networks
// (Validate reports the others), masked.
func (c *Config) operatorNetworks() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range c.Operators.Networks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// enabled reports whether TLS is configured at all.
func (t TLSConfig) enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// resolve converts c, with its defaults filled in, into the member's
// configuration: the engine's settings, the discovery sources, the gossip
// port and policy, the founding rules, and Validate's verdict (reported by
// Start).
func (c *Config) resolve() member.Config {
	retries := c.Engine.MaxRetries
	if retries == NoRetries {
		retries = 0
	}
	raftPort := 0
	if _, port, err := net.SplitHostPort(c.BindAddr); err == nil {
		raftPort, _ = strconv.Atoi(port)
	}
	var disc []gossip.Discoverer
	for _, d := range c.Discovery {
		switch d.Type {
		case DiscoveryStatic:
			var addrs []string
			for _, p := range d.Static {
				addrs = append(addrs, net.JoinHostPort(p.Address, strconv.Itoa(cmp.Or(p.GossipPort, p.Port+1))))
			}
			disc = append(disc, gossip.Static(addrs...))
		case DiscoveryDNS:
			disc = append(disc, gossip.DNS(d.Service, cmp.Or(c.Cluster.GossipPort, raftPort+1)))
		case DiscoveryMDNS:
			disc = append(disc, gossip.MDNS(cmp.Or(d.Service, "_graft._tcp")))
		}
	}
	policy := gossip.Open
	switch c.Cluster.Policy {
	case ClusterPolicyRestricted:
		policy = gossip.Restricted
	case ClusterPolicyStrict:
		policy = gossip.Strict
	}
	e := c.Engine
	return member.Config{
		NodeID: c.NodeID, BindAddr: c.BindAddr, DataDir: c.DataDir, Logger: c.Logger, Invalid: c.Validate(),
		Clustered: c.clustered(), Founding: c.foundingRules(), Discovery: disc,
		Cluster: member.ClusterConfig{
			Policy: policy, Key: c.Cluster.Key, AllowedNodes: c.Cluster.AllowedNodes,
			BootstrapWait: c.Cluster.BootstrapWait, FailureGrace: c.Cluster.FailureGrace,
			ReplicationFactor: c.Cluster.ReplicationFactor, GossipPort: cmp.Or(c.Cluster.GossipPort, raftPort+1),
			ShardCount: uint64(max(c.Cluster.ShardCount, 0)), DefaultShardCount: DefaultShardCount,
		},
		TLS:       member.TLSConfig{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, RevokedSerials: c.TLS.RevokedSerials},
		Operators: member.OperatorConfig{Names: slices.Clone(c.Operators.Names), Networks: c.operatorNetworks()},
		Engine: engine.Config{
			WorkerCount: e.WorkerCount, ClaimAhead: e.QueueBufferSize, MaxRetries: retries, RetryDelay: e.RetryDelay,
			MaxRetryDelay: e.MaxRetryDelay, StepTimeout: e.StepTimeout, BlockedTimeout: e.BlockedTimeout,
			MaxStateBytes: e.MaxStateBytes, Retention: e.Retention, PurgeInterval: e.PurgeInterval,
			DrainTimeout: e.DrainTimeout, LeaseDuration: engineLeaseDuration, BlockedRecheck: engineBlockedRecheck,
		},
		RequestTimeout: e.RequestTimeout, EventBufferSize: e.EventBufferSize,
		Expert: member.ExpertConfig{
			RTTMillisecond: c.Expert.RTTMillisecond, SnapshotEntries: c.Expert.SnapshotEntries,
			CompactionOverhead: c.Expert.CompactionOverhead, MinFreeDiskBytes: c.Expert.MinFreeDiskBytes,
			Memberlist: c.Expert.Memberlist, Network: c.Expert.Network, FS: c.Expert.FS,
		},
		Rebalance: c.rebalance,
	}
}

// clustered reports whether the configuration asks for a cluster: any
// discovery source, or ExpectedMembers above one.
func (c *Config) clustered() bool { return len(c.Discovery) > 0 || c.Cluster.ExpectedMembers > 1 }

// foundingRules says how this member founds a new cluster: ExpectedMembers
// if set; otherwise the static list's members with this one (a peer listed
// without ID counts by its address); otherwise an election among the members
// mDNS or DNS finds.
func (c *Config) foundingRules() formation.Rules {
	var static []formation.ListedPeer
	for _, d := range c.Discovery {
		if d.Type != DiscoveryStatic {
			continue
		}
		for _, p := range d.Static {
			static = append(static, formation.ListedPeer{ID: p.ID, RaftAddr: net.JoinHostPort(p.Address, strconv.Itoa(p.Port))})
		}
	}
	return formation.RulesFor(c.NodeID, c.BindAddr, c.Cluster.ExpectedMembers, static)
}
