package statefleet

import (
	"context"
	"testing"
	"time"

	"github.com/eleven-am/graft/gossip/crdt"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests, but for
// memberlist's own timers: its Shutdown neither waits for a probe in
// flight (which ends on its own timer, ProbeInterval) or an indirect
// ping's nack timer (ProbeTimeout) nor stops suspicion timers, and a
// stream's deadline timer (net.Pipe, under the chaos transport) may fire
// just as the test ends; with 100 members on a loaded machine some are
// still running when goleak looks.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).handleIndirectPing.func2"),
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.newSuspicion.func1"),
		goleak.IgnoreTopFunction("net.(*pipeDeadline).set.func1"))
}

func TestStartRefusesTooFewMembers(t *testing.T) {
	_, err := Start(context.Background(), Config{Members: 1})
	require.ErrorContains(t, err, "Members (1) must be at least 2")
}

// A small fleet converges, counts what it sends, and a record change
// reaches every member.
func TestSmallFleetConverges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := Start(ctx, Config{Members: 5, Seed: 1})
	require.NoError(t, err)
	defer f.Stop()
	_, err = Await(ctx, func() bool { ok, _ := f.Converged(); return ok })
	require.NoError(t, err, "5 members did not converge")
	m := f.Member("m003")
	m.Update(func(r *crdt.MemberRecord) { r.Metadata = map[string]string{"k": "v"} })
	m.Count(crdt.StepsExecuted, 7)
	_, err = Await(ctx, func() bool {
		ok, _ := f.Converged()
		if !ok {
			return false
		}
		rec, _ := f.Member("m000").Snapshot().Record("m003")
		return rec.Data.Metadata["k"] == "v" && f.Member("m001").Snapshot().Total(crdt.StepsExecuted) == 7
	})
	require.NoError(t, err, "the update did not reach every member")
	tr := f.Traffic()
	require.NotZero(t, tr.Gossip, "gossip bytes are counted at the transport")
	require.NotZero(t, tr.Exchange, "exchange bytes are counted")
}

// fleetSize is the member count of the fleet-scale tests.
const fleetSize = 100

// TestHundredMembersConvergeAtFleetScale starts 99 gossip+CRDT members
// in this process at once and waits until every member's state holds all
// of them, equal everywhere; then a 100th member joins and every state
// must hold it, equal everywhere, within 5 s of its join. Then the fleet
// splits 50/50 for 10 s (longer than gossip's failure detection: each half
// sees the other failed), each half changes its members' metadata and
// counters, and after the heal every member's state must be equal and hold
// both halves' changes within 10 s: exchanges with members gossip still
// lists failed carry the changes across before gossip's views merge
// (measured 3.0 to 4.0 s on 2 shared cores, against 7.8 to 16 s without
// them).
func TestHundredMembersConvergeAtFleetScale(t *testing.T) {
	if testing.Short() || raceDetector {
		// About 30 to 60 s here without the race detector (2 shared
		// cores); under it 100 members starve their gossip timers. The
		// join's 5 s held at a 1-minute load average under 5 (3.9 to
		// 4.1 s measured) but not with other jobs loading the machine
		// (load average 5.8 to 9: over 5 s in 3 of 5 runs).
		t.Skip("100 gossip members in one process: runs without -short and -race (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := Start(ctx, Config{Members: fleetSize, Late: 1, Seed: 7})
	require.NoError(t, err)
	defer f.Stop()
	form, err := MeasureFormation(ctx, f, time.Minute)
	require.NoError(t, err)
	t.Logf("%d members started at once: last join %v, converged %v after it, state %d bytes",
		form.Members, form.LastJoin, form.ConvergedAfterJoin, form.StateBytes)

	j, err := MeasureJoin(ctx, f, time.Minute)
	require.NoError(t, err)
	t.Logf("member %s joined %v after its start; converged %v after its join, state %d bytes",
		j.Member, j.Joined, j.ConvergedAfterJoin, j.StateBytes)
	require.LessOrEqual(t, j.ConvergedAfterJoin, 5*time.Second, "converged more than 5 s after the last join")

	p, err := MeasurePartition(ctx, f, PartitionPlan{Hold: 10 * time.Second, Within: 10 * time.Second})
	require.NoError(t, err, "every member's state equal, with both halves' changes, within 10 s of the heal")
	require.True(t, p.Diverged, "the halves' changes crossed the partition")
	t.Logf("partition: halves converged %v after the split; after the heal membership %v, state %v",
		p.HalvesConverged, p.MembershipAfterHeal, p.ConvergedAfterHeal)
}
