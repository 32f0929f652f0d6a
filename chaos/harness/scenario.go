package harness

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/chaos"
)

// FaultKind names a fault a scenario schedules.
type FaultKind string

// The faults. Network faults act on the [chaos.Network] every member's gossip,
// Raft and RPC links go through; member faults act on a member's Manager
// and data directory.
const (
	// FaultPartition splits the members into Fault.Groups (members in no
	// group form one more group); it replaces an earlier partition.
	FaultPartition FaultKind = "partition"
	// FaultIsolate cuts Fault.Members off from everyone.
	FaultIsolate FaultKind = "isolate"
	// FaultIsolateLeader cuts off whichever member leads Fault.Shard when
	// the fault is applied (the report names it).
	FaultIsolateLeader FaultKind = "isolate-leader"
	// FaultDrop drops Fault.Pct of the sends Fault.From -> Fault.To
	// (either may be [chaos.Wildcard]).
	FaultDrop FaultKind = "drop"
	// FaultDelay holds the sends Fault.From -> Fault.To back for
	// Fault.Delay.
	FaultDelay FaultKind = "delay"
	// FaultHeal clears every network fault (crashed members stay cut off).
	FaultHeal FaultKind = "heal"
	// FaultCrash kills Fault.Members[0] as far as one process allows: its
	// links are cut at once (nothing it sends arrives, so no leave, no
	// leadership hand-off and no result reaches anyone), then its Manager
	// is stopped and abandoned. What the stop still does locally, a kill
	// would not: steps running on it are cancelled rather than frozen, and
	// Pebble and Dragonboat close their files cleanly (Dragonboat syncs
	// its log on every commit, so nothing acknowledged depends on that).
	// The stop itself takes about 8s, its gossip leave (3s), leadership
	// hand-off and RPC server stop (2s) timing out against the cut links;
	// a FaultRestart or FaultWipe of the member waits for it, and the rest
	// of the schedule (and the end of the fault phase) moves back by the
	// time it took (AppliedFault.Applied and Took show by how much).
	FaultCrash FaultKind = "crash"
	// FaultRestart starts a crashed member again on the same data
	// directory, address and node ID.
	FaultRestart FaultKind = "restart"
	// FaultWipe deletes a crashed member's data directory (crashing it
	// first if it is up); a later FaultRestart brings it back empty.
	FaultWipe FaultKind = "wipe"
	// FaultDiskFull fills Fault.Members[0]'s disk for real: from now on
	// its file system (a [chaos.FaultFS] under all its storage, Pebble's
	// and Dragonboat's) fails every create, write and sync with ENOSPC and
	// reports no free space, which Graft's disk guard reads, until
	// FaultDiskFree (or the end of the fault phase). The member is not
	// restarted for the fault itself, but the first write or sync that
	// fails under its data directory makes the harness crash it, as
	// Dragonboat's panic on a failed Raft log write, or Pebble's on a
	// commit after a failed WAL write, would end its process (under
	// Graft's storage wrapper the member stops itself, reporting
	// graft.ReadinessStorageFailed); FaultDiskFree then restarts
	// it on its data directory. The report lists that crash with the write
	// that failed. A Pebble commit on the member before its stop would
	// still panic the run's process.
	FaultDiskFull FaultKind = "disk-full"
	// FaultDiskFree ends a FaultDiskFull: writes succeed again.
	FaultDiskFree FaultKind = "disk-free"
	// FaultSlowDisk makes every fsync (file or directory Sync) of
	// Fault.Members[0]'s storage wait Fault.Delay before it runs, until
	// FaultFastDisk (or the end of the fault phase).
	FaultSlowDisk FaultKind = "slow-disk"
	// FaultFastDisk ends a FaultSlowDisk; syncs waiting go on at once.
	FaultFastDisk FaultKind = "fast-disk"
	// FaultDiskFloor makes Fault.Members[0]'s disk look full to Graft's
	// disk guard only: the member is stopped gracefully and restarted on
	// its data directory with Expert.MinFreeDiskBytes above any disk's
	// free space, so its guard refuses new workflows (graft.ErrStorageFull)
	// and holds the writes of its steps before any write could fail.
	FaultDiskFloor FaultKind = "disk-floor"
	// FaultDiskFloorOff restarts a FaultDiskFloor member with its normal
	// configuration (the end of the fault phase does it too).
	FaultDiskFloorOff FaultKind = "disk-floor-off"
	// FaultJoin starts a member that was not among the founders; it joins
	// the running cluster.
	FaultJoin FaultKind = "join"
	// FaultLeave stops a member gracefully (gossip leave, hand-off); it
	// does not come back.
	FaultLeave FaultKind = "leave"
)

// Fault is one scheduled fault.
type Fault struct {
	// At is when the fault is applied, from the start of the run.
	At   Duration  `json:"at"`
	Kind FaultKind `json:"kind"`
	// Members are the members a member fault or an isolation acts on
	// (member faults use the first).
	Members []string `json:"members,omitempty"`
	// Groups are a partition's groups.
	Groups [][]string `json:"groups,omitempty"`
	// Shard is the shard whose leader FaultIsolateLeader cuts off.
	Shard uint64 `json:"shard,omitempty"`
	// From, To, Pct and Delay are a drop or delay rule's link, fraction
	// and delay; Delay is also a FaultSlowDisk's sync delay.
	From  string   `json:"from,omitempty"`
	To    string   `json:"to,omitempty"`
	Pct   float64  `json:"pct,omitempty"`
	Delay Duration `json:"delay,omitempty"`
}

// String describes the fault in a line.
func (f Fault) String() string {
	s := fmt.Sprintf("%v %s", time.Duration(f.At), f.Kind)
	switch f.Kind {
	case FaultPartition:
		s += fmt.Sprint(" ", f.Groups)
	case FaultIsolateLeader:
		s += fmt.Sprint(" of shard ", f.Shard)
	case FaultDrop:
		s += fmt.Sprintf(" %s->%s %.0f%%", f.From, f.To, f.Pct*100)
	case FaultDelay:
		s += fmt.Sprintf(" %s->%s %v", f.From, f.To, time.Duration(f.Delay))
	case FaultSlowDisk:
		s += fmt.Sprint(" ", time.Duration(f.Delay))
	}
	if len(f.Members) > 0 {
		s += fmt.Sprint(" ", f.Members)
	}
	return s
}

// Topology is what a scenario's schedule is built from.
type Topology struct {
	// Members are the founding members, "n1".."nN".
	Members []string
	// Spares are the names of members a scenario may join, in order.
	Spares []string
	// Duration is the fault phase: every fault is scheduled before it,
	// and everything is healed and restarted at its end (moved back by
	// the time faults took to apply).
	Duration time.Duration
	// Shards is the cluster's shard count.
	Shards int
}

// Scenario is a named fault schedule.
type Scenario struct {
	// Name identifies the scenario (e.g. "partition-halves").
	Name string
	// Description says what it does, in a line.
	Description string
	// Spares is how many members the scenario may join.
	Spares int
	// Config, if set, adjusts every member's configuration for the
	// scenario (e.g. a short FailureGrace so that replicas move while a
	// member is down); Options.Config runs after it.
	Config func(*graft.Config)
	// Faults returns the schedule for one run. It must be a pure
	// function of its arguments (draw only from r), so that a seed
	// reproduces the schedule.
	Faults func(r *rand.Rand, t Topology) []Fault
}

// Schedule returns the scenario's faults for seed over a topology of
// members founders (plus the scenario's spares), sorted by time: the same
// arguments give the same schedule.
func (s Scenario) Schedule(seed int64, members, shards int, duration time.Duration) []Fault {
	t := topology(members, s.Spares, shards, duration)
	r := rand.New(rand.NewPCG(uint64(seed), 0xfa_017_5c4ed))
	var fs []Fault
	if s.Faults != nil {
		fs = s.Faults(r, t)
	}
	slices.SortStableFunc(fs, func(a, b Fault) int { return int(a.At - b.At) })
	return fs
}

func topology(members, spares, shards int, d time.Duration) Topology {
	t := Topology{Duration: d, Shards: shards}
	for i := range members + spares {
		name := fmt.Sprintf("n%d", i+1)
		if i < members {
			t.Members = append(t.Members, name)
		} else {
			t.Spares = append(t.Spares, name)
		}
	}
	return t
}

// at returns the fraction f of the fault phase as a Duration.
func (t Topology) at(f float64) Duration { return Duration(float64(t.Duration) * f) }

// shuffled returns the founders in an order drawn from r.
func (t Topology) shuffled(r *rand.Rand) []string {
	m := slices.Clone(t.Members)
	r.Shuffle(len(m), func(i, j int) { m[i], m[j] = m[j], m[i] })
	return m
}

// minority returns a minority of the founders drawn from r (at least one).
func (t Topology) minority(r *rand.Rand) []string {
	m := t.shuffled(r)
	return m[:max(1, (len(m)-1)/2)]
}

// Scenarios returns the named scenarios, sorted by name.
func Scenarios() []Scenario {
	s := []Scenario{
		{Name: "mixed", Description: "every 1-2s a fault drawn from the seed (a partition, a shard leader isolated, drops, a slow member, a crash), each healed or restarted before the next",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				var fs []Fault
				for at := t.at(0.1); at < t.at(0.8); {
					end := at + Duration(time.Duration(700+r.IntN(800))*time.Millisecond)
					switch r.IntN(5) {
					case 0:
						m := t.shuffled(r)
						fs = append(fs, Fault{At: at, Kind: FaultPartition, Groups: [][]string{m[:1+r.IntN(len(m)-1)]}})
					case 1:
						fs = append(fs, Fault{At: at, Kind: FaultIsolateLeader, Shard: uint64(1 + r.IntN(t.Shards))})
					case 2:
						fs = append(fs, Fault{At: at, Kind: FaultDrop, From: chaos.Wildcard, To: chaos.Wildcard, Pct: 0.1 + 0.3*r.Float64()})
					case 3:
						m := t.Members[r.IntN(len(t.Members))]
						d := Duration(time.Duration(20+r.IntN(180)) * time.Millisecond)
						fs = append(fs, Fault{At: at, Kind: FaultDelay, From: m, To: chaos.Wildcard, Delay: d},
							Fault{At: at, Kind: FaultDelay, From: chaos.Wildcard, To: m, Delay: d})
					case 4:
						m := t.Members[r.IntN(len(t.Members))]
						fs = append(fs, Fault{At: at, Kind: FaultCrash, Members: []string{m}},
							Fault{At: end, Kind: FaultRestart, Members: []string{m}})
						at = end + Duration(time.Duration(200+r.IntN(500))*time.Millisecond)
						continue
					}
					fs = append(fs, Fault{At: end, Kind: FaultHeal})
					at = end + Duration(time.Duration(200+r.IntN(500))*time.Millisecond)
				}
				return fs
			}},
		{Name: "partition-halves", Description: "the members split into two halves (the smaller without a quorum) for 40% of the run, then heal",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				m := t.shuffled(r)
				return []Fault{
					{At: t.at(0.2), Kind: FaultPartition, Groups: [][]string{m[:len(m)/2], m[len(m)/2:]}},
					{At: t.at(0.6), Kind: FaultHeal},
				}
			}},
		{Name: "partition-minority", Description: "a minority is cut off from the rest for 40% of the run, then heals",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				return []Fault{
					{At: t.at(0.2), Kind: FaultPartition, Groups: [][]string{t.minority(r)}},
					{At: t.at(0.6), Kind: FaultHeal},
				}
			}},
		{Name: "isolate-leader", Description: "the leader of a shard drawn from the seed is isolated, twice",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				return []Fault{
					{At: t.at(0.15), Kind: FaultIsolateLeader, Shard: uint64(1 + r.IntN(t.Shards))},
					{At: t.at(0.4), Kind: FaultHeal},
					{At: t.at(0.55), Kind: FaultIsolateLeader, Shard: uint64(1 + r.IntN(t.Shards))},
					{At: t.at(0.8), Kind: FaultHeal},
				}
			}},
		{Name: "disk-floor", Description: "a member is restarted with a free-space floor no disk meets (see FaultDiskFloor) for half the run",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				m := t.shuffled(r)[:1]
				return []Fault{
					{At: t.at(0.15), Kind: FaultDiskFloor, Members: m},
					{At: t.at(0.65), Kind: FaultDiskFloorOff, Members: m},
				}
			}},
		{Name: "disk-full", Description: "a member's file system fails every write with ENOSPC (see FaultDiskFull) for 40% of the run",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				m := t.shuffled(r)[:1]
				return []Fault{
					{At: t.at(0.2), Kind: FaultDiskFull, Members: m},
					{At: t.at(0.6), Kind: FaultDiskFree, Members: m},
				}
			}},
		{Name: "slow-disk", Description: "a member's fsyncs take 50-200ms for 60% of the run",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				m := t.shuffled(r)[:1]
				d := Duration(time.Duration(50+r.IntN(150)) * time.Millisecond)
				return []Fault{
					{At: t.at(0.15), Kind: FaultSlowDisk, Members: m, Delay: d},
					{At: t.at(0.75), Kind: FaultFastDisk, Members: m},
				}
			}},
		{Name: "flapping", Description: "partitions between random halves come and go every 0.5-1.5s",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				var fs []Fault
				for at := t.at(0.1); at < t.at(0.85); {
					m := t.shuffled(r)
					cut := 1 + r.IntN(len(m)-1)
					fs = append(fs, Fault{At: at, Kind: FaultPartition, Groups: [][]string{m[:cut]}})
					at += Duration(time.Duration(500+r.IntN(1000)) * time.Millisecond)
					fs = append(fs, Fault{At: at, Kind: FaultHeal})
					at += Duration(time.Duration(200+r.IntN(800)) * time.Millisecond)
				}
				return fs
			}},
		{Name: "lossy", Description: "every link drops 10-30% and one member's links are slowed by 20-100ms",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				slow := t.Members[r.IntN(len(t.Members))]
				d := Duration(time.Duration(20+r.IntN(80)) * time.Millisecond)
				return []Fault{
					{At: t.at(0.1), Kind: FaultDrop, From: chaos.Wildcard, To: chaos.Wildcard, Pct: 0.1 + 0.2*r.Float64()},
					{At: t.at(0.1), Kind: FaultDelay, From: slow, To: chaos.Wildcard, Delay: d},
					{At: t.at(0.1), Kind: FaultDelay, From: chaos.Wildcard, To: slow, Delay: d},
					{At: t.at(0.8), Kind: FaultHeal},
				}
			}},
		{Name: "crash-restart", Description: "a member is killed and restarted on its data directory, then another",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				m := t.shuffled(r)
				return []Fault{
					{At: t.at(0.15), Kind: FaultCrash, Members: m[:1]},
					{At: t.at(0.4), Kind: FaultRestart, Members: m[:1]},
					{At: t.at(0.55), Kind: FaultCrash, Members: m[1:2]},
					{At: t.at(0.8), Kind: FaultRestart, Members: m[1:2]},
				}
			}},
		{Name: "crash-past-grace", Description: "a member is killed for longer than FailureGrace (2s here): its replicas are removed, and re-added when it is restarted",
			Config: func(c *graft.Config) { c.Cluster.FailureGrace = 2 * time.Second },
			Faults: func(r *rand.Rand, t Topology) []Fault {
				m := t.shuffled(r)[:1]
				return []Fault{
					{At: t.at(0.15), Kind: FaultCrash, Members: m},
					{At: t.at(0.65), Kind: FaultRestart, Members: m},
				}
			}},
		{Name: "wipe", Description: "a minority member is killed, its data directory deleted, and it comes back empty",
			Faults: func(r *rand.Rand, t Topology) []Fault {
				m := t.minority(r)[:1]
				return []Fault{
					{At: t.at(0.2), Kind: FaultCrash, Members: m},
					{At: t.at(0.3), Kind: FaultWipe, Members: m},
					{At: t.at(0.5), Kind: FaultRestart, Members: m},
				}
			}},
		{Name: "join-leave", Description: "a new member joins, then a founder leaves gracefully",
			Spares: 1,
			Faults: func(r *rand.Rand, t Topology) []Fault {
				return []Fault{
					{At: t.at(0.2), Kind: FaultJoin, Members: t.Spares[:1]},
					{At: t.at(0.6), Kind: FaultLeave, Members: []string{t.Members[r.IntN(len(t.Members))]}},
				}
			}},
	}
	slices.SortFunc(s, func(a, b Scenario) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return s
}

// ScenarioNamed returns the named scenario.
func ScenarioNamed(name string) (Scenario, bool) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}
