package member

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/formation"
	"github.com/hashicorp/memberlist"
	dbconfig "github.com/lni/dragonboat/v4/config"
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
	// Rebalance, set by tests, replaces the rebalancing loop's clock and
	// intervals; nil means DefaultRebalanceTiming.
	Rebalance *RebalanceTiming
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
}

// Network is graft.Network: a replacement for the member's links.
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
