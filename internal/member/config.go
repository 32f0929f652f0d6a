package member

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/formation"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/hashicorp/memberlist"
)

// Config is a member's resolved configuration: graft.Config with every
// default filled in (graft's config.go is the only place defaults live),
// converted to what the member's parts take. New copies it; the member
// never modifies it.
type Config struct {
	// NodeID, BindAddr and DataDir are graft.Config's.
	NodeID, BindAddr, DataDir string
	// Logger receives the member's logs. Required.
	Logger *slog.Logger
	// Invalid is why graft.Config.Validate refused the configuration; Start
	// reports it. Nil means valid.
	Invalid error
	// Clustered: the member runs gossip and the member RPC and forms or
	// joins a cluster; otherwise it is a lone member.
	Clustered bool
	// Founding says how this member founds a new cluster.
	Founding formation.Rules
	// Discovery finds the other members.
	Discovery []gossip.Discoverer
	// Cluster configures membership and placement.
	Cluster ClusterConfig
	// TLS, when enabled, authenticates the member's Raft and RPC links.
	TLS TLSConfig
	// Operators says who may call the operator methods.
	Operators OperatorConfig
	// Operator serves the operator methods of the member RPC; nil means
	// they are refused as unavailable.
	Operator operator.Service
	// Engine holds the engine's tunables; the member fills in its
	// collaborators (MemberID, Incarnation, Registry, Store, Events,
	// Logger, Alive, Remote, Clock).
	Engine engine.Config
	// RequestTimeout bounds calls that take no context.
	RequestTimeout time.Duration
	// EventBufferSize is how far each event handler may fall behind.
	EventBufferSize int
	// Expert holds rarely tuned storage knobs and the network hook.
	Expert ExpertConfig
	// StateSync tunes the spreading of the cluster's CRDT state; zero
	// fields mean internal/statesync's defaults.
	StateSync StateSyncConfig
	// Rebalance, set by tests, replaces the rebalancing loop's clock and
	// intervals; nil means cluster.DefaultRebalanceTiming.
	Rebalance *cluster.RebalanceTiming
}

// ClusterConfig is graft.ClusterConfig resolved.
type ClusterConfig struct {
	// Policy, Key and AllowedNodes control who may join.
	Policy       gossip.Policy
	Key          []byte
	AllowedNodes []string
	// BootstrapWait, FailureGrace and ReplicationFactor are graft's.
	BootstrapWait     time.Duration
	FailureGrace      time.Duration
	ReplicationFactor int
	// GossipPort is the gossip listener's port.
	GossipPort int
	// ShardCount is the configured shard count; zero means the count
	// recorded in DataDir, or DefaultShardCount for a new one.
	ShardCount        uint64
	DefaultShardCount uint64
}

// TLSConfig is graft.TLSConfig.
type TLSConfig struct {
	CAFile, CertFile, KeyFile string
	RevokedSerials            []string
}

// enabled reports whether TLS is configured at all.
func (t TLSConfig) enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// OperatorConfig is graft.OperatorConfig resolved.
type OperatorConfig struct {
	// Names are the operators admitted under the strict policy.
	Names []string
	// Networks admit callers without TLS besides loopback and members.
	Networks []netip.Prefix
}

// ExpertConfig is graft.ExpertConfig resolved.
type ExpertConfig struct {
	RTTMillisecond     uint64
	SnapshotEntries    uint64
	CompactionOverhead uint64
	// MinFreeDiskBytes is the disk guard's intake floor; zero or less
	// disables the guard.
	MinFreeDiskBytes int64
	Memberlist       func(*memberlist.Config)
	Network          Network
	// FS, if set, replaces the real file system under DataDir for the
	// shards' storage and the disk guard's free-space readings.
	FS vfs.FS
}

// Network is graft.Network: a replacement for the member's links.
type Network = cluster.Network

// StateSyncConfig tunes internal/statesync. Zero means the default.
type StateSyncConfig struct {
	// PublishInterval is the least time between two broadcasts of the
	// member's entry (default 1 s).
	PublishInterval time.Duration
	// ExchangeInterval is the time between two anti-entropy exchanges
	// with a random peer (default 2 s).
	ExchangeInterval time.Duration
	// TombstoneHorizon is how long the entry of a member that left is kept
	// as a tombstone before it is collected (default 24 h): it must exceed
	// the longest partition the cluster should heal from.
	TombstoneHorizon time.Duration
}
