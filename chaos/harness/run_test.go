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

// TestMain fails the package if any goroutine outlives the tests: every
// member and Network a run starts must stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
