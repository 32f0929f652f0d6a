package main

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/ring"
)

// Prefixes of the parameterised scenarios fleet-N and shard-cost-N, and
// their bounds.
const (
	fleetPrefix     = "fleet-"
	shardCostPrefix = "shard-cost-"
	maxFleet        = 50
	maxShardCost    = 1024
	// fleetShardsPerMember sets fleet-N's shard count without -shards:
	// 2N shards at RF 3 give every member 6 replicas whatever N, so the
	// RSS per member compares like with like.
	fleetShardsPerMember = 2
	// formationLimit bounds the wait for a fleet to place its shards.
	formationLimit = 2 * time.Minute
)

// parameterised returns the scenario that name gives with its number
// (fleet-N or shard-cost-N), or nil if name is neither or N is out of
// range.
func parameterised(name string) scenarioFunc {
	number := func(prefix string, limit int) (int, bool) {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return 0, false
		}
		n, err := strconv.Atoi(rest)
		return n, err == nil && n >= 1 && n <= limit
	}
	if n, ok := number(fleetPrefix, maxFleet); ok {
		return func(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
			return runFleet(ctx, o, dir, n)
		}
	}
	if n, ok := number(gossipPrefix, maxGossip); ok && n >= 2 {
		return func(ctx context.Context, o *options, _ string, _ map[string]*result) (*result, error) {
			return runGossip(ctx, o, n)
		}
	}
	if n, ok := number(shardCostPrefix, maxShardCost); ok {
		return func(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
			return runShardCost(ctx, o, dir, n)
		}
	}
	return nil
}

// runFleet starts n members in this process (RF 3, default gossip
// timings), waits until they form (every member sees the others, hosts
// the replicas the ring places on it, and every shard has a leader), then
// runs o.fleetWorkflows seq3 workflows closed-loop, workflow i started on
// member i mod n. It reports the formation time and the process's RSS
// before, once formed and after the workflows, and per member.
func runFleet(ctx context.Context, o *options, dir string, n int) (*result, error) {
	shards := cmp.Or(o.shards, fleetShardsPerMember*n)
	sh := seq3()
	tr := newTracker(o.fleetWorkflows)
	f, err := formFleet(ctx, o, dir, n, shards, sh, tr)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.stopOnce() }()
	members, place, base, formed, startS, formationS := f.members, f.place, f.base, f.formed, f.startS, f.formationS
	progress("fleet-%d: %d shards placed %.2fs after the first Start; RSS %.0f MiB (%.0f before)", n, shards, formationS, formed, base)

	tr.base = time.Now()
	if err := runClosedLoop(o, members, tr, sh, o.starters); err != nil {
		return nil, err
	}
	res := tr.summarise(sh, false)
	loaded := readRSSMB("VmRSS")
	peak := readRSSMB("VmHWM")
	settled := settledRSSMB()
	res.Members, res.Shards, res.Concurrency = n, shards, o.starters
	res.ReplicationFactor = place.ReplicationFactor()
	res.ReplicasPerMember = float64(shards*place.ReplicationFactor()) / float64(n)
	res.StartS, res.FormationS = startS, formationS
	res.RSSBaseMB, res.RSSFormedMB, res.RSSLoadedMB, res.RSSSettledMB = base, formed, loaded, settled
	res.RSSPerMemberMB = (settled - base) / float64(n)
	res.RSSFormedPerMemberMB = (formed - base) / float64(n)
	res.RSSPeakPerMemberMB = (peak - base) / float64(n)
	res.HeapMB = heapInUseMB()
	for _, m := range members {
		res.DroppedEvents += uint64(m.GetClusterInfo().Metrics.DroppedEvents)
	}
	if err := f.stopOnce(); err != nil {
		return nil, fmt.Errorf("stopping members: %w", err)
	}
	return res, nil
}

// runShardCost starts o.costMembers members (RF 3, or fewer members) in
// this process, each configured with shards shards, waits until they form,
// and then leaves them idle for o.idle. It reports the time to form, the
// process's RSS once formed, the CPU time used while idle, and each per
// replica hosted in this process (shards × RF replicas), fixed costs
// included: the cost of one more shard is the difference between two
// shard counts.
func runShardCost(ctx context.Context, o *options, dir string, shards int) (*result, error) {
	n := o.costMembers
	f, err := formFleet(ctx, o, dir, n, shards, seq3(), newTracker(1))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.stopOnce() }()
	t0, place, base, formed, startS, formationS := f.t0, f.place, f.base, f.formed, f.startS, f.formationS
	progress("shard-cost-%d: %d member(s) formed in %.2fs; idle for %s", shards, n, formationS, o.idle)

	cpu0 := cpuSeconds()
	idle0 := time.Now()
	select {
	case <-time.After(o.idle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	idleS := time.Since(idle0).Seconds()
	idleCPU := cpuSeconds() - cpu0

	replicas := float64(shards * place.ReplicationFactor())
	res := &result{Members: n, Shards: shards, ReplicationFactor: place.ReplicationFactor(), Seconds: time.Since(t0).Seconds()}
	res.ReplicasPerMember = replicas / float64(n)
	res.StartS, res.FormationS = startS, formationS
	res.RSSBaseMB, res.RSSFormedMB = base, formed
	res.RSSFormedPerMemberMB = (formed - base) / float64(n)
	res.HeapMB = heapInUseMB()
	res.IdleS, res.IdleCPUS = idleS, idleCPU
	res.IdleCPUPct = 100 * idleCPU / idleS
	res.FormationMsPerReplica = 1000 * formationS / replicas
	res.RSSMBPerReplica = (formed - base) / replicas
	res.IdleCPUPctPerReplica = res.IdleCPUPct / replicas
	if err := f.stopOnce(); err != nil {
		return nil, fmt.Errorf("stopping members: %w", err)
	}
	return res, nil
}

// fleet is n members started in this process and formed.
type fleet struct {
	members            []*graft.Manager
	place              *ring.Placement
	t0                 time.Time // when the first Start began
	base, formed       float64   // the process's settled RSS (MiB) before the members and once formed
	startS, formationS float64   // seconds from t0 until every Start returned and until formed
	stopped            bool
}

// formFleet starts n members with shards shards (sh's nodes, tr's
// handlers) under dir and waits until they form (awaitFormed).
func formFleet(ctx context.Context, o *options, dir string, n, shards int, sh shape, tr *tracker) (*fleet, error) {
	f := &fleet{base: settledRSSMB(), t0: time.Now()}
	members, err := startClusterMembers(ctx, o, dir, clusterSpec{n: n, shards: shards}, sh, tr)
	if err != nil {
		return nil, err
	}
	f.members = members
	f.startS = time.Since(f.t0).Seconds()
	if f.place, err = awaitFormed(ctx, members, n, shards, formationLimit); err != nil {
		_ = f.stopOnce()
		return nil, err
	}
	f.formationS = time.Since(f.t0).Seconds()
	f.formed = settledRSSMB()
	return f, nil
}

// stopOnce stops the members the first time it is called, returning the
// first error; later calls return nil.
func (f *fleet) stopOnce() error {
	if f.stopped {
		return nil
	}
	f.stopped = true
	return stopAll(f.members)
}

// awaitFormed waits up to within for members (node IDs memberName(i, n))
// to form: each sees the n-1 others as peers and hosts exactly the shards
// the ring places on it, and every shard has a leader. It returns the
// placement it waited for.
func awaitFormed(ctx context.Context, members []*graft.Manager, n, shards int, within time.Duration) (*ring.Placement, error) {
	ids := make([]ring.Member, n)
	for i := range ids {
		ids[i] = ring.Member{ID: memberName(i, n)}
	}
	place, err := ring.Place(ring.Config{ShardCount: shards, ReplicationFactor: min(n, 3)}, ids)
	if err != nil {
		return nil, fmt.Errorf("placing %d shards on %d members: %w", shards, n, err)
	}
	formed := func() string {
		led := map[uint64]bool{}
		for i, m := range members {
			info := m.GetClusterInfo()
			id := memberName(i, n)
			if len(info.Peers) != n-1 {
				return fmt.Sprintf("%s sees %d peers", id, len(info.Peers))
			}
			if want := place.ShardsOf(id); !slices.Equal(info.HostedShards, want) {
				return fmt.Sprintf("%s hosts shards %v, placed %v", id, info.HostedShards, want)
			}
			for _, s := range info.LeadShards {
				led[s] = true
			}
		}
		if len(led) != shards {
			return fmt.Sprintf("%d of %d shards have a leader", len(led), shards)
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := formed()
		if waiting == "" {
			return place, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d members did not form within %s: %s", n, within, waiting)
		case <-tick.C:
		}
	}
}

// settledRSSMB collects garbage, returns freed memory to the OS and
// returns the RSS in MiB, so that readings compare live memory rather
// than garbage not yet collected.
func settledRSSMB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	return readRSSMB("VmRSS")
}

// heapInUseMB returns the Go heap in use (runtime.MemStats.HeapInuse) in
// MiB.
func heapInUseMB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}
