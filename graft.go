package graft

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/eleven-am/graft/internal/member"
	"github.com/eleven-am/graft/internal/watch"
)

// Manager is one Graft member: it stores workflows in its shards, runs their
// steps, and delivers their events. Create it with New or NewWithConfig,
// register nodes and handlers, then Start it. All methods are safe for
// concurrent use.
type Manager struct {
	cfg    Config
	member *member.Member
	// SubscribeToWorkflowState's subscriptions, and the once that
	// subscribes their hint handler to the event bus.
	subs     watch.Set[*WorkflowStatus]
	hintOnce sync.Once
}

// New returns a Manager for a lone member with default settings: nodeID
// names the member, bindAddr (host:port) is its Raft address, dataDir holds
// its state, and logger (nil means slog.Default()) receives its logs.
func New(nodeID, bindAddr, dataDir string, logger *slog.Logger) *Manager {
	cfg := DefaultConfig(nodeID, bindAddr, dataDir)
	if logger != nil {
		cfg.Logger = logger
	}
	return NewWithConfig(cfg)
}

// NewWithConfig returns a Manager for cfg. cfg is copied, never modified;
// zero fields take their defaults. An invalid configuration is reported by
// Start.
func NewWithConfig(cfg *Config) *Manager {
	var c Config
	if cfg != nil {
		c = *cfg
		c.Discovery = slices.Clone(cfg.Discovery)
	}
	c = c.withDefaults()
	m := &Manager{cfg: c}
	rc := c.resolve()
	rc.Operator = operatorService{m}
	m.member = member.New(rc, &m.subs)
	return m
}

// RegisterNode registers a node: any value with GetName() string and an
// Execute method of one of the supported shapes (and optionally CanStart).
// The error names the node and what is wrong with it.
func (m *Manager) RegisterNode(node any) error { return m.member.RegisterNode(node) }

// SetMemberMetadata sets key to value in this member's metadata (an empty
// value removes key): labels such as zone, rack or build that every member
// sees in ClusterInfo.Members, usually within a few seconds. The metadata
// is persisted in DataDir and survives restarts. It is bounded: at most
// 64 keys, keys non-empty of at most 256 bytes, values of at most 1024
// bytes, valid UTF-8, and the member's whole record at most 64 KiB; a key
// or value beyond a bound is refused with an error wrapping
// ErrInvalidMetadata that names the bound, and nothing changes. The member
// must be running (ErrNotStarted, ErrClosed otherwise).
func (m *Manager) SetMemberMetadata(key, value string) error { return m.member.SetMetadata(key, value) }

// UnregisterNode removes a node. Pending steps of that node wait until it is
// registered again.
func (m *Manager) UnregisterNode(name string) error { return m.member.UnregisterNode(name) }

// ListNodes returns the names of the registered nodes, sorted.
func (m *Manager) ListNodes() []string { return m.member.Registry().Names() }

// Start opens the member's storage under DataDir, starts its shards and its
// executor, and returns once StartWorkflow can succeed. grpcPort is the port
// of the member RPC used between members and by operators (the graft
// command; see OperatorConfig). A lone member listens on it for operators
// only, and not at all when it is 0. Workflows stored by an earlier run
// continue where they were. ctx bounds the start-up.
func (m *Manager) Start(ctx context.Context, grpcPort int) error {
	return m.member.Start(ctx, grpcPort)
}

// Stop stops the member gracefully: no new steps start, running steps get
// up to Engine.DrainTimeout to finish (then their contexts are cancelled and
// they re-run after restart), results are committed, storage is closed and
// every goroutine ends, except those of steps that ignore the cancellation
// (see EngineConfig.DrainTimeout). Safe to call more than once; later calls
// return the first call's result. A member whose storage failed stops by
// itself (see ReadinessStorageFailed); Stop then ends what it left, the
// state subscriptions, and returns the first stop's result.
func (m *Manager) Stop() error {
	err := m.member.Stop(m.subs.Close)
	m.subs.Close() // idempotent; here for a member that stopped by itself
	return err
}

// Done is closed when Stop has finished.
func (m *Manager) Done() <-chan struct{} { return m.member.Done() }

// GetClusterInfo describes the cluster as this member sees it: the
// cluster's totals and every member's entry from the cluster's CRDT state
// (see ClusterMetrics and MemberInfo), and this member's shards. Its Status is
// "running" once the member is ready, otherwise the readiness state
// ("starting", "joining", "stopped"; see GetReadinessState).
func (m *Manager) GetClusterInfo() ClusterInfo {
	in := m.member.Info()
	info := ClusterInfo{NodeID: m.cfg.NodeID, ClusterID: in.ClusterID, IsLeader: in.IsLeader, Peers: in.Peers,
		Metrics: ClusterMetrics(in.Metrics), Shards: in.Shards, HostedShards: in.HostedShards, LeadShards: in.LeadShards,
		Members: make([]MemberInfo, len(in.Members))}
	for i, mi := range in.Members {
		info.Members[i] = MemberInfo{ID: mi.ID, GossipAddr: mi.GossipAddr, RaftAddr: mi.RaftAddr, RPCAddr: mi.RPCAddr,
			Status: mi.Status, NodeTypes: mi.NodeTypes, WorkerCapacity: mi.WorkerCapacity, Executing: mi.Executing,
			Queued: mi.Queued, Counters: MemberCounters(mi.Counters), ShardsHeld: mi.ShardsHeld, ShardsLed: mi.ShardsLed,
			SoftwareVersion: mi.SoftwareVersion, StartedAt: mi.StartedAt, DiskFull: mi.DiskFull, Metadata: mi.Metadata,
			Incarnation: mi.Incarnation, Version: mi.Version, UpdatedAt: mi.UpdatedAt}
	}
	info.Status = m.GetReadinessState()
	if info.Status == ReadinessReady {
		info.Status = "running"
	}
	return info
}
