//go:build linux

package graft_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// mountSmallFS mounts a tmpfs of the given size (e.g. "40m") on a fresh
// directory for the test, or skips the test when mounting is not permitted
// (not root, or a sandbox without mount rights).
func mountSmallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("needs a small file system to fill, and mounting a %s tmpfs failed (not root, or no mount permission here): %v: %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// statfsFree is the free bytes of dir's file system as the guard reads it.
func statfsFree(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return uint64(st.Bavail) * uint64(st.Bsize)
}

// writeBallast fills path with n bytes that take space on a tmpfs.
func writeBallast(t *testing.T, path string, n int) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, make([]byte, n), 0o600))
}

// lowWater records the lowest free space of a directory's file system,
// sampled every millisecond until stop.
type lowWater struct {
	min  atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func watchLowWater(t *testing.T, dir string) *lowWater {
	t.Helper()
	w := &lowWater{stop: make(chan struct{})}
	w.min.Store(statfsFree(t, dir))
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			var st syscall.Statfs_t
			if syscall.Statfs(dir, &st) != nil {
				continue
			}
			free := uint64(st.Bavail) * uint64(st.Bsize)
			for cur := w.min.Load(); free < cur && !w.min.CompareAndSwap(cur, free); cur = w.min.Load() {
			}
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *lowWater) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// A burst of large starts against a member on a 40 MiB file system is
// refused with ErrStorageFull before the disk fills; the member never
// fails a write (a failed Raft log or Pebble write would panic the test
// binary), every accepted workflow completes, readiness says
// "storage-full" once the disk is below the floor, and intake resumes by
// itself once space is freed.
func TestBurstOnSmallFileSystem(t *testing.T) {
	t.Parallel()
	const (
		fsSize  = "160m"
		minFree = 64 << 20  // the default Expert.MinFreeDiskBytes; steps' hard floor is half
		starts  = 600       // in the burst
		workers = 16        // starting at once
		stateSz = 100 << 10 // bytes of each workflow's initial state
	)
	fs := mountSmallFS(t, fsSize)
	writeBallast(t, filepath.Join(fs, "ballast"), 16<<20) // freed at the end: room to get back above the floor
	b := setup(t, func(c *graft.Config) {
		c.DataDir = filepath.Join(fs, "data")
	}, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
	})
	// The member writes its emergency reserve (half the floor) once it
	// runs; the figures below are taken with it in place.
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(fs, "data", "EMERGENCY_RESERVE")); return err == nil },
		10*time.Second, 10*time.Millisecond)
	low := watchLowWater(t, fs)
	require.Equal(t, int64(minFree), b.cfg.Expert.MinFreeDiskBytes)
	t.Logf("after Start: %d bytes free of the %s file system", statfsFree(t, fs), fsSize)

	raw := make([]byte, stateSz*3/4)
	_, _ = rand.Read(raw) // incompressible, as Pebble sees it
	big := base64.StdEncoding.EncodeToString(raw)
	var (
		mu        sync.Mutex
		accepted  []string
		refused   int
		others    []error
		freeAtRef uint64
		next      atomic.Int64
		wg        sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= starts; i = next.Add(1) {
				id := fmt.Sprintf("burst-%03d", i)
				err := b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id,
					InitialNodes: []graft.NodeConfig{{Name: "A"}},
					InitialState: map[string]any{"big": big, "i": i}})
				free := statfsFree(t, fs)
				mu.Lock()
				switch {
				case err == nil:
					accepted = append(accepted, id)
				case errors.Is(err, graft.ErrStorageFull):
					if refused == 0 {
						freeAtRef = free
						t.Logf("first refusal after %d accepted, %d bytes free: %v", len(accepted), free, err)
					}
					refused++
				default:
					others = append(others, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("burst of %d starts of %d KiB: %d accepted, %d refused with ErrStorageFull; %d bytes free at the first refusal",
		starts, stateSz>>10, len(accepted), refused, freeAtRef)
	require.Empty(t, others)
	require.NotEmpty(t, accepted)
	require.Positive(t, refused, "the burst must hit the floor")
	require.Greater(t, freeAtRef, uint64(minFree/2), "refused before the disk got near full")
	for _, id := range accepted {
		waitStatus(t, b.m, id, graft.WorkflowStateCompleted)
	}
	t.Logf("all %d accepted workflows completed; %d bytes free", len(accepted), statfsFree(t, fs))

	// Something else fills the disk below the floor (not below the hard
	// floor): intake stops and readiness says so, steps go on.
	free := statfsFree(t, fs)
	if free > minFree-(8<<20) {
		writeBallast(t, filepath.Join(fs, "ballast2"), int(free-(minFree-(8<<20))))
	}
	require.Eventually(t, func() bool { return b.m.GetReadinessState() == graft.ReadinessStorageFull },
		10*time.Second, 10*time.Millisecond)
	require.False(t, b.m.IsReady())
	require.Equal(t, graft.ReadinessStorageFull, b.m.GetClusterInfo().Status)
	err := b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "while-full", InitialNodes: []graft.NodeConfig{{Name: "A"}}})
	require.ErrorIs(t, err, graft.ErrStorageFull)
	t.Logf("disk filled to %d bytes free: readiness %q", statfsFree(t, fs), b.m.GetReadinessState())

	// Space returns: readiness and intake recover by themselves.
	require.NoError(t, os.Remove(filepath.Join(fs, "ballast")))
	_ = os.Remove(filepath.Join(fs, "ballast2"))
	require.Eventually(t, b.m.IsReady, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "after-free",
		InitialNodes: []graft.NodeConfig{{Name: "A"}}, InitialState: map[string]any{"big": big}}))
	waitStatus(t, b.m, "after-free", graft.WorkflowStateCompleted)

	low.close()
	t.Logf("lowest free space seen during the test: %d bytes", low.min.Load())
	require.Positive(t, low.min.Load(), "the disk never filled")
}
