package graft_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// A disk below Expert.MinFreeDiskBytes refuses new workflows with
// ErrStorageFull and stores nothing; the member stays up and serves reads,
// and its readiness says "storage-full".
func TestFullDiskRefusesNewWorkflows(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *graft.Config) { c.Expert.MinFreeDiskBytes = 1 << 62 }, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
	})
	err := b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "full", InitialNodes: []graft.NodeConfig{{Name: "A"}}})
	require.ErrorIs(t, err, graft.ErrStorageFull)
	require.ErrorContains(t, err, "Expert.MinFreeDiskBytes")
	_, err = b.m.GetWorkflowStatus("full")
	require.ErrorIs(t, err, graft.ErrWorkflowNotFound)
	require.Equal(t, 0, b.m.GetClusterInfo().Metrics.ActiveWorkflows)

	require.Eventually(t, func() bool { return b.m.GetReadinessState() == graft.ReadinessStorageFull },
		20*time.Second, 5*time.Millisecond)
	require.False(t, b.m.IsReady())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.m.WaitUntilReady(ctx), context.DeadlineExceeded, "waits until space is freed")
}

// switchFS is a vfs.FS that records the files created through it and can
// report a full disk.
type switchFS struct {
	vfs.FS
	full    atomic.Bool
	mu      sync.Mutex
	created []string
}

func (f *switchFS) Create(name string) (vfs.File, error) {
	f.mu.Lock()
	f.created = append(f.created, name)
	f.mu.Unlock()
	return f.FS.Create(name)
}

func (f *switchFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := f.FS.GetDiskUsage(path)
	if f.full.Load() {
		u.AvailBytes = 0
	}
	return u, err
}

func (f *switchFS) createdUnder(dir string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.created {
		if strings.HasPrefix(c, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// Expert.FS carries the member's storage: the Raft log and the state
// database are created through it, a workflow runs on it, and the disk
// guard reads free space from it, so a file system reporting a full disk
// gets new workflows refused with ErrStorageFull.
func TestExpertFSCarriesStorageAndFreeSpace(t *testing.T) {
	t.Parallel()
	fs := &switchFS{FS: vfs.Default}
	b := setup(t, func(c *graft.Config) { c.Expert.FS = fs }, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
	})
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "on-fs", InitialNodes: []graft.NodeConfig{{Name: "A"}}}))
	waitStatus(t, b.m, "on-fs", graft.WorkflowStateCompleted)
	require.True(t, fs.createdUnder(filepath.Join(b.cfg.DataDir, "raft")), "no Raft log file created through Expert.FS")
	require.True(t, fs.createdUnder(filepath.Join(b.cfg.DataDir, "state")), "no state file created through Expert.FS")

	fs.full.Store(true)
	i := 0
	require.Eventually(t, func() bool {
		i++
		err := b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: fmt.Sprint("full-", i), InitialNodes: []graft.NodeConfig{{Name: "A"}}})
		return errors.Is(err, graft.ErrStorageFull)
	}, 20*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return b.m.GetReadinessState() == graft.ReadinessStorageFull },
		20*time.Second, 5*time.Millisecond)
}

// A member's storage goes through the ENOSPC wrapper (the emergency
// reserve's), which must keep everything Dragonboat does with its files:
// its snapshot writer writes the header at offset 0 last (WriteAt). With
// a snapshot every 20 entries, 120 workflows take several snapshots of
// every shard, and a member restarted on the data directory has them all.
// (Pebble's vfs.OnDiskFull hid WriteAt: the first snapshot panicked the
// process with "cannot write at an offset".)
func TestSnapshotsThroughTheStorageWrapper(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	tweak := func(c *graft.Config) {
		c.DataDir, c.BindAddr = dir, addr
		c.Expert.SnapshotEntries, c.Expert.CompactionOverhead = 20, 5
	}
	register := func(m *graft.Manager) { require.NoError(t, m.RegisterNode(&seqNode{"A", ""})) }
	b := setup(t, tweak, register)
	for i := range 120 {
		require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: fmt.Sprint("snap-", i), InitialNodes: []graft.NodeConfig{{Name: "A"}}}))
	}
	for i := range 120 {
		waitStatus(t, b.m, fmt.Sprint("snap-", i), graft.WorkflowStateCompleted)
	}
	require.NoError(t, b.m.Stop())
	b = setup(t, tweak, register)
	for i := range 120 {
		waitStatus(t, b.m, fmt.Sprint("snap-", i), graft.WorkflowStateCompleted)
	}
}
