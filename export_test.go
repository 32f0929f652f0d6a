package graft

import (
	"time"

	"github.com/eleven-am/graft/internal/cluster"
)

// ReplicaStates returns the state of every replica m runs, or nil when its
// storage is not open.
func ReplicaStates(m *Manager) map[uint64]ReplicaState { return m.ReplicaStates() }

// LeadsShard reports whether m's replica of shard s leads it.
func LeadsShard(m *Manager, s uint64) bool {
	h, err := m.member.Storage()
	return err == nil && h.IsLeader(s)
}

// SetRebalanceIntervals makes the member of cfg reconcile the shards it leads
// every interval and ask about a replica that has seen no leader for
// orphanAfter (defaults: 1s and 5s), so tests of rebalancing wait less.
func SetRebalanceIntervals(cfg *Config, interval, orphanAfter time.Duration) {
	t := cluster.DefaultRebalanceTiming()
	t.Interval, t.OrphanAfter = interval, orphanAfter
	cfg.rebalance = &t
}
