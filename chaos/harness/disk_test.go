package harness_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft/chaos/harness"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
)

// runDiskScenario runs the named scenario on three members with seed 1
// and fails the test unless every check passed.
func runDiskScenario(t *testing.T, name string) *harness.Report {
	t.Helper()
	sc, ok := harness.ScenarioNamed(name)
	require.True(t, ok)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	rep, err := harness.Run(ctx, sc, harness.Options{
		Members: 3, Seed: 1, Duration: 8 * time.Second, Settle: 40 * time.Second, Dir: dir, DataDir: t.TempDir(),
		Workload: harness.Workload{Workflows: 24},
		Logger:   slog.New(slog.NewTextHandler(testlog.New(t, "harness: "), nil)),
	})
	require.NoError(t, err)
	t.Log(rep.Summary())
	if !rep.Passed {
		require.NoError(t, rep.WriteFiles(dir))
		t.Fatalf("chaos scenario %s seed 1: checks failed: %v (report in %s)", name, rep.Failed(), dir)
	}
	require.Equal(t, 24, rep.Workflows.Acknowledged)
	require.Zero(t, rep.Workflows.Lost)
	return rep
}

// A member whose disk fills for real (every write fails with ENOSPC) has
// its first Raft log write fail; the harness crashes it as Dragonboat's
// panic would and restarts it on its data directory once the disk is
// freed; nothing acknowledged is lost and every check passes.
func TestRunDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-member cluster for about 20s")
	}
	rep := runDiskScenario(t, "disk-full")
	var kinds []harness.FaultKind
	crashed := false
	for _, f := range rep.Faults {
		kinds = append(kinds, f.Kind)
		require.Empty(t, f.Error, f.String())
		if f.Kind == harness.FaultCrash && strings.Contains(f.Detail, "failed with ENOSPC") {
			crashed = true
		}
	}
	require.Contains(t, kinds, harness.FaultDiskFull)
	require.Contains(t, kinds, harness.FaultDiskFree)
	require.True(t, crashed, "no Raft log write failed on the full disk: %v", rep.Faults)
}

// A member whose fsyncs are slowed delays syncs while the fault is on and
// every check passes.
func TestRunSlowDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-member cluster for about 15s")
	}
	rep := runDiskScenario(t, "slow-disk")
	require.Len(t, rep.Faults, 2)
	require.Equal(t, harness.FaultSlowDisk, rep.Faults[0].Kind)
	require.Equal(t, harness.FaultFastDisk, rep.Faults[1].Kind)
	require.NotContains(t, rep.Faults[1].Detail, " 0 syncs delayed", "no sync was slowed")
}
