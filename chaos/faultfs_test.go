package chaos_test

import (
	"errors"
	"io"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/chaos"
)

// A full FaultFS fails every call that takes space with ENOSPC, tells
// SetOnFailure's function which, lets reads, renames and removals through,
// reports no free space, and works normally again once freed.
func TestFaultFSFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs := chaos.NewFaultFS(vfs.Default)
	var mu sync.Mutex
	var failures []string
	fs.SetOnFailure(func(op, path string) {
		mu.Lock()
		failures = append(failures, op+" "+filepath.Base(path))
		mu.Unlock()
	})
	path := filepath.Join(dir, "a")
	f, err := fs.Create(path)
	require.NoError(t, err)
	_, err = f.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	u, err := fs.GetDiskUsage(dir)
	require.NoError(t, err)
	require.Positive(t, u.AvailBytes)

	fs.SetFull(true)
	require.True(t, fs.Full())
	_, err = f.Write([]byte("def"))
	require.True(t, errors.Is(err, syscall.ENOSPC), "write: %v", err)
	require.True(t, errors.Is(f.Sync(), syscall.ENOSPC), "sync of a file opened before")
	require.NoError(t, f.Close())
	_, err = fs.Create(filepath.Join(dir, "b"))
	require.True(t, errors.Is(err, syscall.ENOSPC), "create: %v", err)
	require.True(t, errors.Is(fs.MkdirAll(filepath.Join(dir, "d"), 0o755), syscall.ENOSPC), "mkdir of a new directory")
	require.NoError(t, fs.MkdirAll(dir, 0o755), "mkdir of an existing directory")
	require.True(t, errors.Is(fs.Link(path, filepath.Join(dir, "l")), syscall.ENOSPC), "link")
	_, err = fs.ReuseForWrite(path, path)
	require.True(t, errors.Is(err, syscall.ENOSPC), "reuse for write: %v", err)
	u, err = fs.GetDiskUsage(dir)
	require.NoError(t, err)
	require.Zero(t, u.AvailBytes)

	r, err := fs.Open(path)
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "abc", string(got), "the failed write wrote nothing")
	require.NoError(t, r.Close())
	require.NoError(t, fs.Rename(path, filepath.Join(dir, "c")))
	require.NoError(t, fs.Remove(filepath.Join(dir, "c")))

	require.Equal(t, uint64(6), fs.Stats().Failed)
	mu.Lock()
	require.Equal(t, []string{"write a", "sync a", "create b", "mkdir d", "link l", "open a"}, failures)
	mu.Unlock()

	fs.SetFull(false)
	f, err = fs.Create(filepath.Join(dir, "e"))
	require.NoError(t, err)
	_, err = f.Write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	require.Equal(t, uint64(6), fs.Stats().Failed)
}

// A sync delay holds every Sync back by that long; changing it releases
// the syncs waiting.
func TestFaultFSSyncDelay(t *testing.T) {
	t.Parallel()
	fs := chaos.NewFaultFS(vfs.NewMem())
	f, err := fs.Create("a")
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()

	fs.SetSyncDelay(50 * time.Millisecond)
	began := time.Now()
	require.NoError(t, f.Sync())
	require.GreaterOrEqual(t, time.Since(began), 50*time.Millisecond)
	require.Equal(t, uint64(1), fs.Stats().Slowed)

	fs.SetSyncDelay(time.Hour)
	done := make(chan error, 1)
	go func() { done <- f.Sync() }()
	require.Eventually(t, func() bool { return fs.Stats().Slowed == 2 }, 10*time.Second, time.Millisecond)
	fs.SetSyncDelay(0)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting Sync was not released when the delay was cleared")
	}
	began = time.Now()
	require.NoError(t, f.Sync())
	require.Less(t, time.Since(began), time.Second)
	require.Equal(t, uint64(2), fs.Stats().Slowed)
}
