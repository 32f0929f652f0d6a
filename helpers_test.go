package graft_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/loopback"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
)

// freeAddr returns a loopback host:port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := ports.Addr()
	require.NoError(t, err)
	return addr
}

// loopbackAddr is freeAddr for the examples, which have no *testing.T: ""
// if none was found.
func loopbackAddr() string {
	addr, _ := ports.Addr()
	return addr
}

// ports hands out the loopback ports of this package's members.
var ports loopback.Ports

// testLogger sends logs to t.Log with the member's name, at warn and above
// (GRAFT_TEST_LOG=info or debug for more), until the test's cleanup starts.
// (Dragonboat's logger is process-wide, so another test's member may log
// through it after this test ended.)
func testLogger(t *testing.T, name string) *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("GRAFT_TEST_LOG") {
	case "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	}
	return testlog.Logger(t, name+": ", level)
}

type bundle struct {
	m   *graft.Manager
	cfg *graft.Config
}

// setup starts a lone member with fast retries after register registers
// its nodes; it stops the member when the test ends.
func setup(t *testing.T, tweak func(*graft.Config), register func(*graft.Manager)) *bundle {
	t.Helper()
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	cfg.Engine.RetryDelay = 5 * time.Millisecond
	cfg.Engine.MaxRetryDelay = 20 * time.Millisecond
	cfg.Engine.DrainTimeout = 2 * time.Second
	if tweak != nil {
		tweak(cfg)
	}
	m := graft.NewWithConfig(cfg)
	if register != nil {
		register(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	return &bundle{m: m, cfg: cfg}
}

// waitStatus polls until the workflow reaches want, failing after 20s.
func waitStatus(t *testing.T, m *graft.Manager, id string, want graft.WorkflowState) *graft.WorkflowStatus {
	t.Helper()
	return pollStatus(t, m, id, string(want), func(s *graft.WorkflowStatus) bool { return s.Status == want })
}

// pollStatus reads id's status from m until done accepts it, for up to
// 20s; on timeout it fails the test with the last status and read error
// seen (what, e.g. "completed", names the goal).
func pollStatus(t *testing.T, m *graft.Manager, id, what string, done func(*graft.WorkflowStatus) bool) *graft.WorkflowStatus {
	t.Helper()
	var last *graft.WorkflowStatus
	var lastErr error
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := m.GetWorkflowStatus(id)
		if err != nil {
			lastErr = err
		} else {
			last = s
			if done(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow %s never reached %s (last: %s, last read error: %v)", id, what, describe(last), lastErr)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func describe(s *graft.WorkflowStatus) string {
	if s == nil {
		return "no status"
	}
	return fmt.Sprintf("%s, pending %d, executing %d, executed %d, error %q, state %s",
		s.Status, len(s.PendingNodes), len(s.ExecutingNodes), len(s.ExecutedNodes), s.LastErrorText(), s.CurrentStateJSON)
}

// awaitMetrics waits until m's ClusterInfo.Metrics satisfy ok and returns
// them: a total is counted when its command's proposer sees it commit, a
// moment after the workflow's status shows it, and reaches other members
// by gossip.
func awaitMetrics(t *testing.T, m *graft.Manager, ok func(graft.ClusterMetrics) bool) graft.ClusterMetrics {
	t.Helper()
	var last graft.ClusterMetrics
	require.Eventually(t, func() bool {
		last = m.GetClusterInfo().Metrics
		return ok(last)
	}, 20*time.Second, 5*time.Millisecond, "metrics of %s: %+v", m.GetClusterInfo().NodeID, &last)
	return last
}
