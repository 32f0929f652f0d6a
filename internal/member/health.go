package member

import (
	"fmt"
	"slices"
)

// HealthCheck is one named check of the member's health (see Health).
type HealthCheck struct {
	// Name is the check's name: "started", "storage", "disk", "shards".
	Name string
	// OK reports whether the check passes.
	OK bool
	// Detail says why it fails, or what it saw when it passes.
	Detail string
}

// Health is the member's health: Live unless it stopped (or its Start
// failed), Ready when every check passes (StartWorkflow can succeed).
type Health struct {
	Live   bool
	Ready  bool
	State  string // the readiness name
	Checks []HealthCheck
}

// healthInput is what Health observes of the member.
type healthInput struct {
	phase       readiness
	failed      error // the storage failure, if any (phase is phaseStorageFailed)
	storageOpen bool
	hosted      int      // shards this member holds a replica of
	leaderless  []uint64 // of those, the ones with no known leader
}

// healthOf decides the member's health from what it observed.
func healthOf(in healthInput) Health {
	// A member whose storage failed is not live: it stopped, and only a
	// restart of the process (on the repaired disk) brings it back.
	h := Health{Live: in.phase != phaseStopped && in.failed == nil, State: in.phase.String()}
	started := in.phase == phaseReady || in.phase == phaseStorageFull
	h.Checks = []HealthCheck{
		{Name: "started", OK: started, Detail: in.phase.String()},
		{Name: "storage", OK: in.storageOpen, Detail: "open"},
		{Name: "disk", OK: in.phase != phaseStorageFull, Detail: "above the free-space floor"},
		{Name: "shards", OK: started && len(in.leaderless) == 0,
			Detail: fmt.Sprintf("a leader known for each of the %d shards held here", in.hosted)},
	}
	switch {
	case in.failed != nil:
		h.Checks[1].OK = false
		h.Checks[1].Detail = fmt.Sprintf("storage failed, so the member stopped (restart the process once the disk is repaired): %v", in.failed)
	case !in.storageOpen:
		h.Checks[1].Detail = "storage is not open"
	}
	if in.phase == phaseStorageFull {
		h.Checks[2].Detail = "free disk space is below Expert.MinFreeDiskBytes: new workflows are refused"
	}
	switch {
	case len(in.leaderless) > 0:
		h.Checks[3].Detail = fmt.Sprintf("no known leader for shards %v", in.leaderless)
	case !started:
		h.Checks[3].Detail = "not started"
	}
	h.Ready = true
	for _, c := range h.Checks {
		h.Ready = h.Ready && c.OK
	}
	return h
}

// Health reports the member's health (see graft.Manager.Health).
func (m *Member) Health() Health {
	p, _, _ := m.ready.snapshot()
	in := healthInput{phase: p, failed: m.ready.failure()}
	h, err := m.storage()
	in.storageOpen = err == nil && p != phaseStopped
	if in.storageOpen {
		for s := uint64(1); s <= m.shardCount(); s++ {
			if _, ok := m.replicaOf(s); !ok {
				continue
			}
			in.hosted++
			if leader, _, ok := h.Leader(s); !ok || leader == 0 {
				in.leaderless = append(in.leaderless, s)
			}
		}
		slices.Sort(in.leaderless)
	}
	return healthOf(in)
}
