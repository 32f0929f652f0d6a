package main

import (
	"bufio"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is one scenario's output line. The first ten fields are the
// required keys; the rest are extras, omitted when they do not apply.
type result struct {
	Scenario      string  `json:"scenario"`
	Members       int     `json:"members"`
	Workflows     int     `json:"workflows"`
	Steps         int     `json:"steps"`
	Seconds       float64 `json:"seconds"`
	WorkflowsPerS float64 `json:"workflows_per_s"`
	StepsPerS     float64 `json:"steps_per_s"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	RSSMB         float64 `json:"rss_mb"`

	// RSSKind names the /proc/self/status field rss_mb comes from:
	// "VmHWM" (peak, reset before the scenario) or "VmRSS" (at the end).
	RSSKind  string  `json:"rss_kind"`
	RSSEndMB float64 `json:"rss_end_mb"`
	// CPUSeconds is the process's user+system CPU time during the scenario.
	CPUSeconds float64 `json:"cpu_s"`
	// MaxMs is the largest latency.
	MaxMs float64 `json:"max_ms"`
	// StartP50Ms and StartP99Ms are the latencies of StartWorkflow calls.
	StartP50Ms float64 `json:"start_p50_ms,omitempty"`
	StartP99Ms float64 `json:"start_p99_ms,omitempty"`
	// Shards and Workers are the member's shard count and worker count.
	Shards  int `json:"shards,omitempty"`
	Workers int `json:"workers,omitempty"`
	// Concurrency is the number of goroutines issuing requests.
	Concurrency int `json:"concurrency"`
	// OfferedRate is the open-loop start rate in workflows/s (seq3-half);
	// StartRate is the rate at which starts were actually issued.
	OfferedRate float64 `json:"offered_rate,omitempty"`
	StartRate   float64 `json:"start_rate,omitempty"`
	// SchedP50Ms and SchedP99Ms measure open-loop latency from each start's
	// scheduled time instead of its call, so that a pacer falling behind
	// counts against the latency (no coordinated omission).
	SchedP50Ms float64 `json:"sched_p50_ms,omitempty"`
	SchedP99Ms float64 `json:"sched_p99_ms,omitempty"`
	// MaxLagMs is the largest delay of a start behind its schedule.
	MaxLagMs float64 `json:"max_lag_ms,omitempty"`
	// DirMBSamples and RSSMBSamples are the data directory's size and the
	// RSS sampled every second (retention-soak); DirMBFinal is the size at
	// the end.
	DirMBSamples []float64 `json:"dir_mb_samples,omitempty"`
	RSSMBSamples []float64 `json:"rss_mb_samples,omitempty"`
	DirMBFinal   float64   `json:"dir_mb_final,omitempty"`
	// DroppedEvents is ClusterMetrics.DroppedEvents at the end.
	DroppedEvents uint64 `json:"dropped_events"`

	// The fleet-N and shard-cost-N figures. ReplicationFactor is the
	// shards' RF and ReplicasPerMember the replicas each member holds on
	// average. StartS is the time from the first member's Start to the
	// last one's return; FormationS the time from the first Start until
	// every member saw the others, hosted the replicas the ring places on
	// it and every shard had a leader.
	ReplicationFactor int     `json:"rf,omitempty"`
	ReplicasPerMember float64 `json:"replicas_per_member,omitempty"`
	StartS            float64 `json:"start_s,omitempty"`
	FormationS        float64 `json:"formation_s,omitempty"`
	// RSS readings in MiB, all but RSSLoadedMB after a forced garbage
	// collection that returns freed memory to the OS: RSSBaseMB before the
	// first member starts, RSSFormedMB once formed, RSSLoadedMB (without
	// the collection) and RSSSettledMB after the workflows completed.
	RSSBaseMB    float64 `json:"rss_base_mb,omitempty"`
	RSSFormedMB  float64 `json:"rss_formed_mb,omitempty"`
	RSSLoadedMB  float64 `json:"rss_loaded_mb,omitempty"`
	RSSSettledMB float64 `json:"rss_settled_mb,omitempty"`
	// RSSPerMemberMB is (RSSSettledMB - RSSBaseMB) / members,
	// RSSFormedPerMemberMB the same once formed, and RSSPeakPerMemberMB
	// (peak RSS during the scenario - RSSBaseMB) / members.
	RSSPerMemberMB       float64 `json:"rss_per_member_mb,omitempty"`
	RSSFormedPerMemberMB float64 `json:"rss_formed_per_member_mb,omitempty"`
	RSSPeakPerMemberMB   float64 `json:"rss_peak_per_member_mb,omitempty"`
	// HeapMB is the Go heap in use at the end (runtime.MemStats.HeapInuse).
	HeapMB float64 `json:"heap_mb,omitempty"`
	// IdleS is how long shard-cost-N left its members idle, IdleCPUS the
	// CPU time the process used meanwhile and IdleCPUPct the same as a
	// percentage of one core.
	IdleS      float64 `json:"idle_s,omitempty"`
	IdleCPUS   float64 `json:"idle_cpu_s,omitempty"`
	IdleCPUPct float64 `json:"idle_cpu_pct,omitempty"`
	// Per replica hosted in the process (shards × RF), fixed costs
	// included: formation time, RSS once formed above the base, idle CPU.
	FormationMsPerReplica float64 `json:"formation_ms_per_replica,omitempty"`
	RSSMBPerReplica       float64 `json:"rss_mb_per_replica,omitempty"`
	IdleCPUPctPerReplica  float64 `json:"idle_cpu_pct_per_replica,omitempty"`
	// Queries are the list scenario's timed queries by name; LoadAvg the
	// 1-minute load average at its end.
	Queries map[string]latency `json:"queries,omitempty"`
	LoadAvg float64            `json:"load_avg,omitempty"`

	// The gossip-N figures, times in seconds. Formation (n-1 members
	// started at once): GossipFormationJoinS is when every member had
	// joined and GossipFormationMembershipS when every Node saw every
	// member alive, from the first Start; GossipFormationConvergedS is
	// from the last join until every member's state held every member,
	// equal everywhere. GossipJoinConvergedS is the same after the n-th
	// member's join into the formed fleet. GossipHealConvergedS is from
	// the heal of a 50/50 split (held GossipPartitionHoldS, different
	// changes on each side, GossipDiverged if the halves' states
	// differed at the heal) until every state was equal and held both
	// sides' changes; GossipHealMembershipS until every Node saw every
	// member alive again.
	GossipFormationJoinS       float64 `json:"formation_join_s,omitempty"`
	GossipFormationMembershipS float64 `json:"formation_membership_s,omitempty"`
	GossipFormationConvergedS  float64 `json:"formation_converged_after_join_s,omitempty"`
	GossipJoinConvergedS       float64 `json:"join_converged_after_join_s,omitempty"`
	GossipHealConvergedS       float64 `json:"heal_converged_s,omitempty"`
	GossipHealMembershipS      float64 `json:"heal_membership_s,omitempty"`
	GossipPartitionHoldS       float64 `json:"partition_hold_s,omitempty"`
	GossipDiverged             bool    `json:"partition_diverged,omitempty"`
	// StateBytes is the encoded cluster state (crdt.State.Encode) at n
	// members, StateBytesPerMember the same per member.
	StateBytes          int     `json:"state_bytes,omitempty"`
	StateBytesPerMember float64 `json:"state_bytes_per_member,omitempty"`
	// Bytes sent per member per second (gossip at the transport plus
	// anti-entropy requests and replies), and each part, over -idle:
	// idle (nothing changes) and busy (every member's load changes every
	// second, so each publishes once a second); FormationBytesPerMemberPerS
	// from the first Start to convergence. FormationEventsDelivered counts
	// the state events the Nodes delivered until then.
	IdleBytesPerMemberPerS         float64 `json:"idle_bytes_per_member_per_s,omitempty"`
	IdleGossipBytesPerMemberPerS   float64 `json:"idle_gossip_bytes_per_member_per_s,omitempty"`
	IdleExchangeBytesPerMemberPerS float64 `json:"idle_exchange_bytes_per_member_per_s,omitempty"`
	BusyBytesPerMemberPerS         float64 `json:"busy_bytes_per_member_per_s,omitempty"`
	BusyGossipBytesPerMemberPerS   float64 `json:"busy_gossip_bytes_per_member_per_s,omitempty"`
	BusyExchangeBytesPerMemberPerS float64 `json:"busy_exchange_bytes_per_member_per_s,omitempty"`
	FormationBytesPerMemberPerS    float64 `json:"formation_bytes_per_member_per_s,omitempty"`
	FormationEventsDelivered       uint64  `json:"formation_events_delivered,omitempty"`
}

// rounded returns a copy of r with floats rounded for printing.
func (r *result) rounded() *result {
	c := *r
	for _, f := range []*float64{&c.Seconds, &c.WorkflowsPerS, &c.StepsPerS, &c.P50Ms, &c.P99Ms, &c.RSSMB,
		&c.RSSEndMB, &c.CPUSeconds, &c.MaxMs, &c.StartP50Ms, &c.StartP99Ms, &c.OfferedRate, &c.StartRate,
		&c.SchedP50Ms, &c.SchedP99Ms, &c.MaxLagMs, &c.ReplicasPerMember, &c.StartS, &c.FormationS, &c.RSSBaseMB,
		&c.RSSFormedMB, &c.RSSLoadedMB, &c.RSSSettledMB, &c.RSSPerMemberMB, &c.RSSFormedPerMemberMB,
		&c.RSSPeakPerMemberMB, &c.HeapMB, &c.IdleS, &c.IdleCPUS, &c.IdleCPUPct, &c.FormationMsPerReplica,
		&c.RSSMBPerReplica, &c.IdleCPUPctPerReplica, &c.GossipFormationJoinS, &c.GossipFormationMembershipS,
		&c.GossipFormationConvergedS, &c.GossipJoinConvergedS, &c.GossipHealConvergedS, &c.GossipHealMembershipS,
		&c.GossipPartitionHoldS, &c.StateBytesPerMember, &c.IdleBytesPerMemberPerS, &c.IdleGossipBytesPerMemberPerS,
		&c.IdleExchangeBytesPerMemberPerS, &c.BusyBytesPerMemberPerS, &c.BusyGossipBytesPerMemberPerS,
		&c.BusyExchangeBytesPerMemberPerS, &c.FormationBytesPerMemberPerS} {
		*f = math.Round(*f*1000) / 1000
	}
	return &c
}

// setRates fills the per-second rates from the counts and Seconds.
func (r *result) setRates() {
	if r.Seconds > 0 {
		r.WorkflowsPerS = float64(r.Workflows) / r.Seconds
		r.StepsPerS = float64(r.Steps) / r.Seconds
	}
}

// percentiles sorts d and returns its p50, p99 and maximum in milliseconds
// (nearest rank). An empty d gives zeros.
func percentiles(d []time.Duration) (p50, p99, maxMs float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return ms(d[min(max(i, 0), len(d)-1)])
	}
	return rank(0.50), rank(0.99), ms(d[len(d)-1])
}

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// resetPeakRSS collects garbage, returns freed memory to the OS and resets
// the kernel's peak-RSS mark, so that VmHWM afterwards measures this
// scenario. It returns "VmHWM" on success and "VmRSS" if the reset is not
// supported (then the end-of-scenario RSS is reported instead).
func resetPeakRSS() string {
	runtime.GC()
	debug.FreeOSMemory()
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return "VmRSS"
	}
	return "VmHWM"
}

// readRSSMB returns the named /proc/self/status field (VmHWM or VmRSS) in
// MiB, or 0 if it cannot be read.
func readRSSMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
}

// cpuSeconds returns the user+system CPU time the process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
