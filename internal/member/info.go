package member

import (
	"maps"
	"slices"
	"time"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/gossip/crdt"
	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/statesync"
)

// Metrics are graft.ClusterMetrics, field for field (the facade converts
// one to the other).
type Metrics struct {
	TotalWorkflows     int
	ActiveWorkflows    int
	CompletedWorkflows int
	FailedWorkflows    int
	StoppedWorkflows   int
	NodesExecuted      int
	StepsExecuted      int
	StepErrors         int
	QueueDepth         int
	ExecutingSteps     int
	BlockedWorkflows   int
	DroppedEvents      int
}

// Counters are one member's counters (graft.MemberCounters).
type Counters struct {
	WorkflowsStarted, WorkflowsCompleted, WorkflowsFailed, WorkflowsStopped uint64
	StepsExecuted, StepErrors                                               uint64
}

func countersOf(c crdt.Counters) Counters {
	return Counters{
		WorkflowsStarted: c[crdt.WorkflowsStarted], WorkflowsCompleted: c[crdt.WorkflowsCompleted],
		WorkflowsFailed: c[crdt.WorkflowsFailed], WorkflowsStopped: c[crdt.WorkflowsStopped],
		StepsExecuted: c[crdt.StepsExecuted], StepErrors: c[crdt.StepErrors],
	}
}

// MemberInfo is one member as this member sees it (graft.MemberInfo).
type MemberInfo struct {
	ID                            string
	GossipAddr, RaftAddr, RPCAddr string
	Status                        string
	NodeTypes                     []string
	WorkerCapacity                int
	Executing, Queued             int
	Counters                      Counters
	ShardsHeld, ShardsLed         []uint64
	SoftwareVersion               string
	StartedAt                     time.Time
	DiskFull                      bool
	Metadata                      map[string]string
	Incarnation, Version          uint64
	UpdatedAt                     time.Time
}

// Info is the cluster as this member sees it (graft.ClusterInfo without
// Status).
type Info struct {
	ClusterID    string
	IsLeader     bool
	Peers        []string
	Metrics      Metrics
	Shards       int
	HostedShards []uint64
	LeadShards   []uint64
	Members      []MemberInfo
}

// Info describes the cluster as this member sees it: the cluster's
// totals from the CRDT state, every member's entry, and this member's
// shards.
func (m *Member) Info() Info {
	var info Info
	m.mu.Lock()
	logics := maps.Clone(m.logics)
	h, n, s := m.host, m.netLocked(), m.sync
	m.mu.Unlock()
	info.Peers, info.IsLeader, info.ClusterID = n.Describe()
	if info.Peers == nil {
		info.Peers = []string{}
	}
	info.Shards = int(m.shardCount())
	for sh, l := range logics {
		info.HostedShards = append(info.HostedShards, sh)
		if h != nil && h.IsLeader(sh) {
			info.LeadShards = append(info.LeadShards, sh)
			info.Metrics.BlockedWorkflows += l.Counters().Blocked
		}
	}
	slices.Sort(info.HostedShards)
	slices.Sort(info.LeadShards)
	info.Metrics.DroppedEvents = int(m.bus.Dropped())
	if s == nil {
		return info
	}
	t := s.Totals()
	mt := &info.Metrics
	mt.TotalWorkflows = int(t[crdt.WorkflowsStarted])
	mt.CompletedWorkflows = int(t[crdt.WorkflowsCompleted])
	mt.FailedWorkflows = int(t[crdt.WorkflowsFailed])
	mt.StoppedWorkflows = int(t[crdt.WorkflowsStopped])
	mt.ActiveWorkflows = max(0, mt.TotalWorkflows-mt.CompletedWorkflows-mt.FailedWorkflows-mt.StoppedWorkflows)
	mt.StepsExecuted = int(t[crdt.StepsExecuted])
	mt.StepErrors = int(t[crdt.StepErrors])
	mt.NodesExecuted = mt.StepsExecuted + mt.StepErrors
	own, ver := s.Own()
	info.Members = m.members(s.View(), n.Peers(), own, ver)
	for _, mi := range info.Members {
		mt.QueueDepth += mi.Queued
		mt.ExecutingSteps += mi.Executing
	}
	return info
}

// members merges the cluster state's entries with gossip's view (peers),
// this member's own entry taken fresh from its parts.
func (m *Member) members(v *statesync.View, peers []cluster.Peer, own crdt.Counters, ver crdt.Version) []MemberInfo {
	byID := map[string]*MemberInfo{}
	for _, r := range v.Members {
		d := &r.Data
		status := "unknown"
		if v.Left[r.ID] {
			status = gossip.StatusLeft.String()
		}
		byID[r.ID] = &MemberInfo{ID: r.ID, Status: status, NodeTypes: d.NodeTypes, WorkerCapacity: int(d.WorkerCapacity),
			Executing: int(d.Executing), Queued: int(d.Queued), Counters: countersOf(v.Counters[r.ID]),
			ShardsHeld: d.ShardsHeld, ShardsLed: d.ShardsLed, SoftwareVersion: d.SoftwareVersion, StartedAt: d.StartedAt,
			DiskFull: d.DiskFull, Metadata: d.Metadata, Incarnation: r.Version.Incarnation, Version: r.Version.Counter,
			UpdatedAt: v.Updated[r.ID]}
	}
	for _, p := range peers {
		mi := byID[p.ID]
		if mi == nil {
			mi = &MemberInfo{ID: p.ID}
			byID[p.ID] = mi
		}
		mi.GossipAddr, mi.RaftAddr, mi.RPCAddr, mi.Status = p.GossipAddr, p.RaftAddr, p.RPCAddr, p.Status.String()
	}
	self := byID[m.cfg.NodeID]
	if self == nil {
		self = &MemberInfo{ID: m.cfg.NodeID}
		byID[m.cfg.NodeID] = self
	}
	if len(peers) == 0 { // a lone member
		self.RaftAddr, self.Status = m.cfg.BindAddr, gossip.StatusAlive.String()
	}
	rec := m.localRecord()
	self.NodeTypes = slices.Sorted(slices.Values(rec.NodeTypes))
	self.WorkerCapacity, self.Executing, self.Queued = int(rec.WorkerCapacity), int(rec.Executing), int(rec.Queued)
	self.ShardsHeld, self.ShardsLed = slices.Sorted(slices.Values(rec.ShardsHeld)), slices.Sorted(slices.Values(rec.ShardsLed))
	self.SoftwareVersion, self.StartedAt, self.DiskFull, self.Metadata = rec.SoftwareVersion, rec.StartedAt, rec.DiskFull, rec.Metadata
	self.Counters, self.Incarnation, self.Version = countersOf(own), ver.Incarnation, ver.Counter
	out := make([]MemberInfo, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, *byID[id])
	}
	return out
}
