package harness

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every named scenario's schedule is a pure function of the seed: the same
// seed gives the same faults, within the fault phase, naming only members
// of the topology; some seed gives a different schedule wherever the
// scenario draws anything.
func TestSchedulesAreSeeded(t *testing.T) {
	t.Parallel()
	const d = 10 * time.Second
	names := map[string]bool{}
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			require.False(t, names[sc.Name], "duplicate name")
			names[sc.Name] = true
			require.NotEmpty(t, sc.Description)
			for _, members := range []int{3, 5} {
				a := sc.Schedule(42, members, 4, d)
				require.NotEmpty(t, a)
				require.Equal(t, a, sc.Schedule(42, members, 4, d), "same seed, same schedule")
				topo := topology(members, sc.Spares, 4, d)
				all := append(slices.Clone(topo.Members), topo.Spares...)
				for _, f := range a {
					require.Less(t, time.Duration(f.At), d, "%s", f)
					require.GreaterOrEqual(t, f.At, Duration(0), "%s", f)
					for _, m := range f.Members {
						require.Contains(t, all, m, "%s", f)
					}
					for _, g := range f.Groups {
						require.NotEmpty(t, g)
						for _, m := range g {
							require.Contains(t, topo.Members, m, "%s", f)
						}
					}
					if f.Kind == FaultIsolateLeader {
						require.True(t, f.Shard >= 1 && f.Shard <= 4, "%s", f)
					}
				}
			}
			differs := false
			for seed := range int64(20) {
				if !slices.EqualFunc(sc.Schedule(seed, 5, 4, d), sc.Schedule(42, 5, 4, d), func(a, b Fault) bool {
					return a.String() == b.String()
				}) {
					differs = true
				}
			}
			require.True(t, differs, "the seed changes nothing")
		})
	}
	_, ok := ScenarioNamed("no-such-scenario")
	require.False(t, ok)
}

// A crash is always restarted, and a wipe always follows a crash and
// precedes a restart, so no scenario leaves a member down or wipes a
// running one by surprise.
func TestScheduledCrashesRestart(t *testing.T) {
	t.Parallel()
	for _, sc := range Scenarios() {
		for seed := range int64(10) {
			down := map[string]bool{}
			for _, f := range sc.Schedule(seed, 3, 4, 10*time.Second) {
				switch f.Kind {
				case FaultCrash:
					require.False(t, down[f.Members[0]], "%s seed %d: %s crashed twice", sc.Name, seed, f)
					down[f.Members[0]] = true
				case FaultWipe:
					require.True(t, down[f.Members[0]], "%s seed %d: wipe of a running member", sc.Name, seed)
				case FaultRestart:
					require.True(t, down[f.Members[0]], "%s seed %d: restart of a running member", sc.Name, seed)
					delete(down, f.Members[0])
				}
			}
			require.Empty(t, down, "%s seed %d: left down", sc.Name, seed)
		}
	}
}

// The workload plan is a pure function of the seed: same seed, same
// operations at the same times on the same members with the same triggers;
// every workflow is started once, before its controls and reads.
func TestWorkloadPlanIsSeeded(t *testing.T) {
	t.Parallel()
	w := Workload{}.withDefaults()
	a := planWorkload(7, w, 3, 8*time.Second)
	require.Equal(t, a, planWorkload(7, w, 3, 8*time.Second))
	require.NotEqual(t, a, planWorkload(8, w, 3, 8*time.Second))

	starts := map[string]time.Duration{}
	kinds := map[OpKind]int{}
	for _, p := range a {
		kinds[p.Kind]++
		require.True(t, p.Member >= 0 && p.Member < 3)
		if p.Kind == OpStart {
			require.NotContains(t, starts, p.Workflow)
			starts[p.Workflow] = p.At
			require.Equal(t, p.Workflow, p.Trigger.WorkflowID)
			continue
		}
		at, ok := starts[p.Workflow]
		require.True(t, ok, "%s of %s before its start", p.Kind, p.Workflow)
		require.GreaterOrEqual(t, p.At, at)
	}
	require.Len(t, starts, w.Workflows)
	require.Equal(t, w.Workflows*w.Reads, kinds[OpStatus])
	require.Positive(t, kinds[OpPause]+kinds[OpStop], "the default workload pauses or stops some workflows")
	require.Equal(t, kinds[OpPause], kinds[OpResume], "every pause is followed by a resume")
}

// Every shape builds a trigger whose steps have unique task names (so runs
// of one task are runs of one step), except the keyed shape's deliberate
// duplicate, and whose joins wait for tasks the workflow has.
func TestShapes(t *testing.T) {
	t.Parallel()
	for _, s := range AllShapes() {
		tr := shapeTrigger(s, rand.New(rand.NewPCG(1, 2)))
		root := tr.InitialNodes[0].Config.(stepConfig)
		tasks := map[string]int{}
		var walk func(c stepConfig)
		walk = func(c stepConfig) {
			tasks[c.Task]++
			for _, n := range c.Next {
				walk(n.Step)
			}
		}
		walk(root)
		if s == ShapeKeyed {
			// k1 is scheduled twice under one key (and so are its next
			// steps, in the tree of configs); the engine runs it once.
			require.Equal(t, map[string]int{"k0": 1, "k1": 2, "k2": 2, "k3": 2}, tasks)
		} else {
			for task, n := range tasks {
				require.Equal(t, 1, n, "%s: task %s scheduled %d times", s, task, n)
			}
		}
		var joins []string
		var find func(c stepConfig)
		find = func(c stepConfig) {
			joins = append(joins, c.Join...)
			for _, n := range c.Next {
				find(n.Step)
			}
		}
		find(root)
		for _, j := range joins {
			require.Contains(t, tasks, j, "%s: join waits for a task it does not have", s)
		}
	}
}

// A fault's recovery is measured from its end to the start of the first
// one-second window whose step rate is back to 80% of the rate in the two
// seconds before the fault was applied.
func TestRecovery(t *testing.T) {
	t.Parallel()
	var ends []Duration
	for i := range 40 { // 10 steps a second for 4s
		ends = append(ends, ms(100*i+50))
	}
	for i := range 20 { // then nothing for 3s, then 10 a second again
		ends = append(ends, ms(7000+100*i+50))
	}
	rate, after, ok := recoveryOf(ends, ms(4000), ms(5000))
	require.True(t, ok)
	require.Equal(t, 10.0, rate)
	// The window (6.8s, 7.8s] is the first after 5s with 8 ends (7.05s to 7.75s).
	require.Equal(t, ms(1800), after)

	_, after, ok = recoveryOf(ends, ms(4000), ms(7500))
	require.True(t, ok)
	require.Zero(t, after, "the first second after the end ran at full rate")

	rate, _, ok = recoveryOf(ends, ms(0), ms(1000))
	require.False(t, ok, "no throughput before the fault")
	require.Zero(t, rate)
	_, _, ok = recoveryOf(ends[:40], ms(3000), ms(4000))
	require.False(t, ok, "throughput never came back")
}

// Each fault ends at the fault that ends it: a partition at the next heal,
// a crash at its member's restart (not another member's), a join when it
// is done, a fault nothing ends at the end of the fault phase.
func TestEndOf(t *testing.T) {
	t.Parallel()
	fs := []AppliedFault{
		{Fault: Fault{Kind: FaultPartition}, Applied: ms(1000)},
		{Fault: Fault{Kind: FaultCrash, Members: []string{"n1"}}, Applied: ms(1500)},
		{Fault: Fault{Kind: FaultHeal}, Applied: ms(2000)},
		{Fault: Fault{Kind: FaultRestart, Members: []string{"n2"}}, Applied: ms(2500)},
		{Fault: Fault{Kind: FaultRestart, Members: []string{"n1"}}, Applied: ms(3000), Took: ms(400)},
		{Fault: Fault{Kind: FaultJoin, Members: []string{"n4"}}, Applied: ms(4000), Took: ms(700)},
		{Fault: Fault{Kind: FaultDrop}, Applied: ms(5000)},
	}
	type end struct {
		at Duration
		by string
	}
	var got []end
	for i := range fs {
		at, by := endOf(fs, i, ms(9000))
		got = append(got, end{at, by})
	}
	require.Equal(t, end{ms(2000), "heal"}, got[0])
	require.Equal(t, end{ms(3400), "restart"}, got[1])
	require.Equal(t, end{ms(4700), "itself"}, got[5])
	require.Equal(t, end{ms(9000), "end of fault phase"}, got[6])
	require.True(t, endsOthers(FaultHeal))
	require.False(t, endsOthers(FaultCrash))
}
