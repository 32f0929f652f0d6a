package graft_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// retNode ends its workflow at once, or schedules next after an hour.
type retNode struct {
	name  string
	later string
}

func (n *retNode) GetName() string { return n.name }

func (n *retNode) Execute(_ context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
	if n.later == "" {
		return nil, nil
	}
	hour := time.Hour
	return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: n.later, Delay: &hour}}}, nil
}

// retShort keeps terminal workflows for 300ms and purges every 100ms.
func retShort(t *testing.T) func(*graft.Config) {
	return func(cfg *graft.Config) {
		cfg.Logger = durLogger(t, "n1")
		cfg.Engine.Retention = 300 * time.Millisecond
		cfg.Engine.PurgeInterval = 100 * time.Millisecond
	}
}

func retRegister(t *testing.T) func(*graft.Manager) {
	return func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&retNode{name: "Once"}))
		require.NoError(t, m.RegisterNode(&retNode{name: "Later", later: "Once"}))
	}
}

func TestRetentionPurgesTerminalWorkflows(t *testing.T) {
	t.Parallel()
	b := setup(t, retShort(t), retRegister(t))
	ctx := context.Background()

	// A running workflow, paused while its next step waits an hour.
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID: "parked", InitialNodes: []graft.NodeConfig{{Name: "Later"}},
	}))
	var last *graft.WorkflowStatus
	require.Eventually(t, func() bool {
		s, err := b.m.GetWorkflowStatus("parked")
		if err != nil {
			return false
		}
		last = s
		return len(s.ExecutedNodes) == 1
	}, 20*time.Second, 5*time.Millisecond, "Later never ran (%s)", describe(last))
	require.NoError(t, b.m.PauseWorkflow(ctx, "parked"))
	waitStatus(t, b.m, "parked", graft.WorkflowStatePaused)

	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID: "done", InitialNodes: []graft.NodeConfig{{Name: "Once"}},
		InitialState: map[string]any{"round": 1},
	}))
	waitStatus(t, b.m, "done", graft.WorkflowStateCompleted)

	var lastErr error
	require.Eventually(t, func() bool {
		_, lastErr = b.m.GetWorkflowStatus("done")
		return errors.Is(lastErr, graft.ErrWorkflowNotFound)
	}, 30*time.Second, 10*time.Millisecond, "the completed workflow was never purged (last error: %v)", lastErr)

	// The paused workflow is older than the purged one and is kept.
	s, err := b.m.GetWorkflowStatus("parked")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStatePaused, s.Status)
	require.Len(t, s.PendingNodes, 1)
	require.Equal(t, "Once", s.PendingNodes[0].NodeName)

	// The purged ID is free again, with a fresh history and state.
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID: "done", InitialNodes: []graft.NodeConfig{{Name: "Once"}},
		InitialState: map[string]any{"round": 2},
	}))
	s = waitStatus(t, b.m, "done", graft.WorkflowStateCompleted)
	require.Len(t, s.ExecutedNodes, 1)
	require.JSONEq(t, `{"round":2}`, string(s.CurrentStateJSON))

	s, err = b.m.GetWorkflowStatus("parked")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStatePaused, s.Status)
}

// retDirSize sums the sizes of the regular files under dir.
func retDirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (compaction)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	require.NoError(t, err)
	return total
}

func TestRetentionKeepsStorageBounded(t *testing.T) {
	t.Parallel()
	const rounds, perRound, parallel = 3, 300, 16
	dir, addr := t.TempDir(), freeAddr(t)
	config := func(name string) *graft.Config {
		cfg := durConfig(t, name, addr, dir)
		retShort(t)(cfg)
		return cfg
	}
	m := durStart(t, config("n1"), retRegister(t))

	sizes := make([]int64, 0, rounds)
	var stateRound1 int64
	for r := range rounds {
		ids := make(chan string)
		errs := make(chan error, perRound)
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				for id := range ids {
					errs <- m.StartWorkflow(graft.WorkflowTrigger{
						WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "Once"}},
						InitialState: map[string]any{"payload": fmt.Sprintf("%0200d", r)},
					})
				}
			})
		}
		remaining := map[string]bool{}
		for i := range perRound {
			id := fmt.Sprintf("r%d-%03d", r, i)
			remaining[id] = true
			ids <- id
		}
		close(ids)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		// Every workflow of the round completes and is then purged.
		require.Eventually(t, func() bool {
			return m.GetClusterInfo().Metrics.CompletedWorkflows == (r+1)*perRound
		}, 30*time.Second, 10*time.Millisecond, "round %d: workflows did not complete (metrics %+v)",
			r+1, m.GetClusterInfo().Metrics)
		require.Eventually(t, func() bool {
			for id := range remaining {
				_, err := m.GetWorkflowStatus(id)
				if !errors.Is(err, graft.ErrWorkflowNotFound) {
					return false
				}
				delete(remaining, id)
			}
			return true
		}, 30*time.Second, 20*time.Millisecond, "round %d: %d workflows never purged", r+1, len(remaining))
		require.Eventually(t, func() bool {
			return m.GetClusterInfo().Metrics.ActiveWorkflows == 0
		}, 30*time.Second, 10*time.Millisecond, "round %d: active workflows remain (metrics %+v)",
			r+1, m.GetClusterInfo().Metrics)

		size := retDirSize(t, dir)
		state := retDirSize(t, filepath.Join(dir, "state"))
		if r == 0 {
			stateRound1 = state
		}
		sizes = append(sizes, size)
		t.Logf("round %d: DataDir holds %d bytes after its %d workflows were purged (raft log %d, state db %d)",
			r+1, size, perRound, retDirSize(t, filepath.Join(dir, "raft")), state)
	}

	// Diagnosis: the purges deleted the workflows from the state database,
	// whatever the files of the live member hold (Pebble flushes the
	// recovered log when it reopens).
	require.NoError(t, m.Stop())
	m = durStart(t, config("n1-reopened"), retRegister(t))
	reopened := retDirSize(t, filepath.Join(dir, "state"))
	t.Logf("after a restart: DataDir holds %d bytes (raft log %d, state db %d)", retDirSize(t, dir),
		retDirSize(t, filepath.Join(dir, "raft")), reopened)
	require.LessOrEqual(t, reopened, stateRound1, "the state db kept purged workflows")
	require.Zero(t, m.GetClusterInfo().Metrics.ActiveWorkflows)
	// The live member's files grow by each round's writes until Pebble's
	// memtables (4 MiB) flush and its WAL is recycled; that fixed buffer is
	// the bound, reached only past this test's volume. What the test pins
	// down is that nothing purged survives a flush.
	require.Len(t, sizes, rounds)
}

func TestStartRefusesDifferentShardCount(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	register := func(m *graft.Manager) { require.NoError(t, m.RegisterNode(&retNode{name: "Once"})) }

	m := durStart(t, durConfig(t, "first", addr, dir), register) // 2 shards
	require.NoError(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "kept", InitialNodes: []graft.NodeConfig{{Name: "Once"}}}))
	waitStatus(t, m, "kept", graft.WorkflowStateCompleted)
	require.NoError(t, m.Stop())

	for _, shards := range []int{1, 3} {
		cfg := durConfig(t, fmt.Sprintf("shards-%d", shards), addr, dir)
		cfg.Cluster.ShardCount = shards
		bad := graft.NewWithConfig(cfg)
		register(bad)
		err := bad.Start(ctx, 0)
		require.Error(t, err, "ShardCount %d on a 2-shard DataDir", shards)
		require.ErrorIs(t, err, graft.ErrInvalidConfig)
		require.Contains(t, err.Error(), "ShardCount")
		require.ErrorIs(t, bad.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "x", InitialNodes: []graft.NodeConfig{{Name: "Once"}}}),
			graft.ErrNotStarted)
		require.NoError(t, bad.Stop())
	}

	// The refused starts changed nothing: the original count still opens it.
	m = durStart(t, durConfig(t, "again", addr, dir), register)
	s, err := m.GetWorkflowStatus("kept")
	require.NoError(t, err)
	require.Equal(t, graft.WorkflowStateCompleted, s.Status)
}

func TestStartFailsWithUnusableDataDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dataDir func(t *testing.T) string
	}{
		{"DataDir under a regular file", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "file")
			require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
			return filepath.Join(file, "data")
		}},
		{"DataDir state is a regular file", func(t *testing.T) string {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "state"), []byte("x"), 0o644))
			return dir
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := graft.DefaultConfig("n1", freeAddr(t), tt.dataDir(t))
			cfg.Logger = durLogger(t, "n1")
			cfg.Cluster.ShardCount = 2
			m := graft.NewWithConfig(cfg)
			require.NoError(t, m.RegisterNode(&retNode{name: "Once"}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := m.Start(ctx, 0)
			require.Error(t, err)
			t.Logf("Start: %v", err)
			require.ErrorIs(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "x", InitialNodes: []graft.NodeConfig{{Name: "Once"}}}),
				graft.ErrNotStarted)
			require.NoError(t, m.Stop())
			require.NoError(t, m.Stop())
			require.ErrorIs(t, m.Start(ctx, 0), graft.ErrClosed)
		})
	}
}
