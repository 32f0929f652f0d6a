package harness_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/chaos/harness"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// A three-member cluster through a minority partition and its heal, run
// through the public API: every checker passes, workflows were
// acknowledged and completed, and the report names the fault it applied.
func TestRunPartitionMinority(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-member cluster for about 20s")
	}
	sc, ok := harness.ScenarioNamed("partition-minority")
	require.True(t, ok)
	const seed = 1
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	rep, err := harness.Run(ctx, sc, harness.Options{
		Members: 3, Seed: seed, Duration: 8 * time.Second, Settle: 40 * time.Second, Dir: dir, DataDir: t.TempDir(),
		Workload: harness.Workload{Workflows: 24},
		Logger:   slog.New(slog.NewTextHandler(testlog.New(t, "harness: "), nil)),
		MemberLogger: func(name string) *slog.Logger {
			return slog.New(slog.NewTextHandler(testlog.New(t, name+": "), &slog.HandlerOptions{Level: slog.LevelWarn}))
		},
	})
	require.NoError(t, err)
	t.Log(rep.Summary())
	if !rep.Passed {
		require.NoError(t, rep.WriteFiles(dir))
		for _, c := range rep.Checks {
			t.Logf("%s: passed %v, checked %d, violations %v %s", c.Name, c.Passed, c.Checked, c.Violations, c.Note)
		}
		t.Fatalf("chaos seed %d: checks failed: %v (report in %s)", seed, rep.Failed(), dir)
	}
	require.Equal(t, 24, rep.Workflows.Started)
	require.Positive(t, rep.Workflows.Acknowledged)
	require.Positive(t, rep.Workflows.Completed)
	require.Zero(t, rep.Workflows.Lost)
	require.Len(t, rep.Checks, 9)
	require.Equal(t, harness.FaultPartition, rep.Faults[0].Kind)
	require.Empty(t, rep.Faults[0].Error)
	require.Equal(t, sc.Schedule(seed, 3, 4, 8*time.Second)[0].Groups, rep.Faults[0].Groups)
}

// A run whose members are configured against the workload (no retries,
// so the retry shape's injected errors fail its workflows) reports the
// failure: Passed is false, the terminal checker names the failed
// workflows, the others pass, and the report files are written.
func TestRunReportsAFailedCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-member cluster for about 10s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := harness.Run(ctx, harness.Scenario{Name: "no-faults"}, harness.Options{
		Seed: 3, Duration: 2 * time.Second, Settle: 30 * time.Second, DataDir: t.TempDir(),
		Workload: harness.Workload{Workflows: 4, Shapes: []harness.Shape{harness.ShapeRetry}, Controls: -1, Reads: -1},
		Config:   func(c *graft.Config) { c.Engine.MaxRetries = graft.NoRetries },
		Logger:   slog.New(slog.NewTextHandler(testlog.New(t, "harness: "), nil)),
	})
	require.NoError(t, err)
	t.Log(rep.Summary())
	require.False(t, rep.Passed)
	require.Equal(t, []string{harness.CheckerTerminal}, rep.Failed())
	require.Equal(t, 4, rep.Workflows.Failed)
	for _, c := range rep.Checks {
		if c.Name == harness.CheckerTerminal {
			require.Equal(t, 4, c.Count)
			require.Contains(t, c.Violations[0], "failed, though its steps fail fewer times than the retries allow")
		}
	}
	dir := t.TempDir()
	require.NoError(t, rep.WriteFiles(dir))
	require.FileExists(t, filepath.Join(dir, "report.json"))
	require.FileExists(t, filepath.Join(dir, "history.json"))
}

// userNode is a user's node type run through the harness.
type userNode struct{}

func (userNode) GetName() string { return "user.echo" }

func (userNode) Execute(state map[string]any) (*graft.NodeResult, error) {
	state["echoed"] = true
	return &graft.NodeResult{GlobalState: state}, nil
}

// A user's own node types go through a run: Register registers them on
// every member, Trigger starts workflows of them, and the checkers see
// their client operations (not their steps, which the harness does not
// record).
func TestRunWithUserNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-member cluster for about 10s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var registered sync.Map
	rep, err := harness.Run(ctx, harness.Scenario{Name: "no-faults"}, harness.Options{
		Seed: 4, Duration: 2 * time.Second, Settle: 30 * time.Second, DataDir: t.TempDir(),
		Register: func(m *graft.Manager) error {
			registered.Store(m, true)
			return m.RegisterNode(userNode{})
		},
		Workload: harness.Workload{Workflows: 5, Controls: -1, Trigger: func(i int, _ *rand.Rand) graft.WorkflowTrigger {
			return graft.WorkflowTrigger{WorkflowID: "ignored", InitialNodes: []graft.NodeConfig{{Name: "user.echo"}}}
		}},
		Logger: slog.New(slog.NewTextHandler(testlog.New(t, "harness: "), nil)),
	})
	require.NoError(t, err)
	t.Log(rep.Summary())
	require.True(t, rep.Passed, "%v", rep.Failed())
	require.Equal(t, 5, rep.Workflows.Completed)
	require.Zero(t, rep.StepRuns, "user steps are not recorded")
	n := 0
	registered.Range(func(_, _ any) bool { n++; return true })
	require.Equal(t, 3, n, "Register ran on every member")
	for id, f := range rep.History.Final {
		require.Equal(t, "completed", f.Status, id)
		require.Empty(t, f.Shape, id)
	}
}

// Three members in child processes of their own, on loopback sockets: one
// is killed with SIGKILL mid-workload and restarted on its data directory
// by a new process 500ms later, before gossip sees it dead. The other
// members must re-run what its earlier process was executing at once: it
// publishes a new incarnation, and their engines re-queue claims of an
// older one (restarts within 1.5-1.8s of the kill used to leave its
// executions waiting out their 5-minute lease, found by crash-restart
// seed 2 in process mode). Every checker passes over the history the
// harness recorded through the members' control servers, nothing
// acknowledged is lost, every workflow ends within the 40s settle, the
// killed process answered client operations before the kill and its
// successor after the restart and holds replicas equal to the others',
// and the report shows the kill and the restart.
func TestRunProcessesKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three member processes for about 30s")
	}
	sc := harness.Scenario{Name: "kill-one", Faults: func(_ *rand.Rand, tp harness.Topology) []harness.Fault {
		return []harness.Fault{
			{At: harness.Duration(tp.Duration * 2 / 10), Kind: harness.FaultCrash, Members: []string{"n2"}},
			{At: harness.Duration(tp.Duration*2/10 + 500*time.Millisecond), Kind: harness.FaultRestart, Members: []string{"n2"}},
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	began := time.Now()
	rep, err := harness.Run(ctx, sc, harness.Options{
		Members: 3, Seed: 5, Duration: 6 * time.Second, Settle: 40 * time.Second, Dir: dir, DataDir: t.TempDir(),
		Workload: harness.Workload{Workflows: 24},
		Process:  &harness.ProcessOptions{},
		Logger:   slog.New(slog.NewTextHandler(testlog.New(t, "harness: "), nil)),
		MemberLogger: func(name string) *slog.Logger {
			return slog.New(slog.NewTextHandler(testlog.New(t, name+": "), nil))
		},
	})
	require.NoError(t, err)
	t.Logf("%s (test took %v)", rep.Summary(), time.Since(began))
	if !rep.Passed {
		require.NoError(t, rep.WriteFiles(dir))
		for _, c := range rep.Checks {
			t.Logf("%s: passed %v, checked %d, violations %v %s", c.Name, c.Passed, c.Checked, c.Violations, c.Note)
		}
		t.Fatalf("checks failed: %v (report in %s)", rep.Failed(), dir)
	}
	require.Len(t, rep.Checks, 9)
	require.Equal(t, 24, rep.Workflows.Started)
	require.Positive(t, rep.Workflows.Completed)
	require.Zero(t, rep.Workflows.Lost)
	require.GreaterOrEqual(t, len(rep.Faults), 2)
	require.Equal(t, harness.FaultCrash, rep.Faults[0].Kind)
	require.Empty(t, rep.Faults[0].Error)
	require.Equal(t, harness.FaultRestart, rep.Faults[1].Kind)
	require.Empty(t, rep.Faults[1].Error)
	restarted := rep.Faults[1].Applied + rep.Faults[1].Took
	var before, served int
	for _, o := range rep.History.Ops {
		switch {
		case o.Member != "n2" || o.Outcome != harness.OutcomeOK:
		case o.Return < rep.Faults[0].Applied:
			before++
		case o.Invoke > restarted:
			served++
		}
	}
	require.Positive(t, before, "n2 answered client operations before the kill")
	require.Positive(t, served, "n2's new process answered client operations after the restart")
	require.Positive(t, rep.StepRuns, "the member processes streamed their step runs")
	require.Len(t, rep.Cluster.Members, 3)
	require.Equal(t, "n2", rep.Cluster.Members[1].Name)
	require.NotEmpty(t, rep.Cluster.Members[1].Replicas, "n2's replicas, equal to the others' (replicas-agree passed)")
}

// Process mode refuses a scenario whose faults need the in-process network,
// naming the fault, and the hooks that cannot reach a member process.
func TestRunProcessesRefusesNetworkFaults(t *testing.T) {
	sc, ok := harness.ScenarioNamed("partition-minority")
	require.True(t, ok)
	_, err := harness.Run(context.Background(), sc, harness.Options{Seed: 1, Process: &harness.ProcessOptions{}})
	require.ErrorContains(t, err, `process mode cannot apply scenario partition-minority's fault "partition"`)
	sc, ok = harness.ScenarioNamed("crash-restart")
	require.True(t, ok)
	_, err = harness.Run(context.Background(), sc, harness.Options{Seed: 1, Process: &harness.ProcessOptions{},
		Register: func(*graft.Manager) error { return nil }})
	require.ErrorContains(t, err, "Options.Register and Options.Config cannot reach a member process")
}

// TestMain fails the package if any goroutine outlives the tests: every
// member and Network a run starts must stop.
// A process the test starts as a chaos member (process mode) runs the
// member instead.
func TestMain(m *testing.M) {
	harness.MemberMain(harness.MemberOptions{})
	goleak.VerifyTestMain(m)
}
