package disk

import (
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/stretchr/testify/require"
)

// smallFS is an in-memory file system of cap bytes: a write past them
// fails with ENOSPC (possibly after writing part of its bytes, as a real
// file system does), and removing a file gives its bytes back.
type smallFS struct {
	vfs.FS
	mu   sync.Mutex
	cap  uint64
	used uint64
}

func newSmallFS(capacity uint64) *smallFS { return &smallFS{FS: vfs.NewMem(), cap: capacity} }

func (s *smallFS) Create(name string) (vfs.File, error) {
	_ = s.Remove(name) // Create replaces the file and frees its bytes
	f, err := s.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &smallFile{File: f, fs: s}, nil
}

func (s *smallFS) Remove(name string) error {
	fi, err := s.FS.Stat(name)
	if err != nil {
		return err
	}
	if err := s.FS.Remove(name); err != nil {
		return err
	}
	s.mu.Lock()
	s.used -= uint64(fi.Size())
	s.mu.Unlock()
	return nil
}

func (s *smallFS) Rename(oldname, newname string) error {
	if _, err := s.FS.Stat(newname); err == nil {
		if err := s.Remove(newname); err != nil {
			return err
		}
	}
	return s.FS.Rename(oldname, newname)
}

// free is the guard's probe of smallFS.
func (s *smallFS) free(string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cap - s.used, nil
}

type smallFile struct {
	vfs.File
	fs *smallFS
}

func (f *smallFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	room := f.fs.cap - f.fs.used
	n := len(p)
	if uint64(n) > room {
		n = int(room)
	}
	f.fs.used += uint64(n)
	f.fs.mu.Unlock()
	w, err := f.File.Write(p[:n])
	if err == nil && n < len(p) {
		err = &os.PathError{Op: "write", Path: "smallfs", Err: syscall.ENOSPC}
	}
	return w, err
}

// fill writes n bytes to a new file name on fs, returning the write's
// error.
func fill(t *testing.T, fs vfs.FS, name string, n int) error {
	t.Helper()
	require.NoError(t, fs.MkdirAll(fs.PathDir(name), 0o755))
	f, err := fs.Create(name)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	_, err = f.Write(make([]byte, n))
	return err
}

func TestReserveFillAndRelease(t *testing.T) {
	t.Parallel()
	fs := newSmallFS(1 << 30)
	r := NewReserve(fs, "/data/"+ReserveName, 3<<20+5, nil)
	require.False(t, r.Present())
	require.False(t, r.Release(), "nothing to release before Fill")
	require.NoError(t, r.Fill())
	fi, err := fs.Stat("/data/" + ReserveName)
	require.NoError(t, err)
	require.EqualValues(t, 3<<20+5, fi.Size())
	require.True(t, r.Present())
	require.True(t, r.Release())
	_, err = fs.Stat("/data/" + ReserveName)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.False(t, r.Release(), "released once")
	free, _ := fs.free("")
	require.EqualValues(t, 1<<30, free, "the released reserve gave its bytes back")
}

// A reserve left by an earlier run is kept; a short one (a crash while
// writing it can leave only the temporary name, but a file of the wrong
// size is replaced all the same) is written again.
func TestReserveFromAnEarlierRun(t *testing.T) {
	t.Parallel()
	fs := newSmallFS(1 << 30)
	require.NoError(t, fill(t, fs, "/"+ReserveName, 1<<20))
	r := NewReserve(fs, "/"+ReserveName, 1<<20, nil)
	require.NoError(t, r.Fill())
	require.True(t, r.Present())
	used, _ := fs.free("")
	require.EqualValues(t, 1<<30-1<<20, used, "the existing reserve was kept, not written twice")

	require.NoError(t, fill(t, fs, "/short/"+ReserveName, 100))
	r = NewReserve(fs, "/short/"+ReserveName, 1<<20, nil)
	require.NoError(t, r.Fill())
	fi, err := fs.Stat("/short/" + ReserveName)
	require.NoError(t, err)
	require.EqualValues(t, 1<<20, fi.Size())
}

// A reserve that does not fit fails cleanly and leaves nothing behind.
func TestReserveThatDoesNotFit(t *testing.T) {
	t.Parallel()
	fs := newSmallFS(1 << 20)
	r := NewReserve(fs, "/"+ReserveName, 2<<20, nil)
	err := r.Fill()
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorContains(t, err, "emergency reserve")
	require.False(t, r.Present())
	free, _ := fs.free("")
	require.EqualValues(t, 1<<20, free, "the partial reserve was removed")
}

// The point of the reserve: something else fills the disk to the last
// byte, and a member's write through NoSpaceFS(fs, guard.DiskFull, nil)
// still succeeds, into the space the released reserve gave back; the
// guard then refuses new workflows, and its monitor writes the reserve
// again once space returns. Without the wrapper the same write fails.
func TestDiskFullReleasesTheReserveForTheWrite(t *testing.T) {
	t.Parallel()
	const mib = 1 << 10 // sizes are in KiB, named as the default's MiB
	fs := newSmallFS(200 * mib)
	var fulls []bool
	g := New("/data", 64*mib, fs.free, func(full bool) { fulls = append(fulls, full) }, nil)
	r := NewReserve(fs, "/data/"+ReserveName, 32*mib, nil)
	g.SetReserve(r)
	now := time.Now() // DiskFull reads the clock
	g.Poll(now)
	g.refill(now)
	require.True(t, r.Present(), "200 units free leave room for the reserve above the floor")
	require.Empty(t, fulls)

	// Something else takes every byte left.
	free, _ := fs.free("")
	require.ErrorIs(t, fill(t, fs, "/other", int(free)+1), syscall.ENOSPC)
	require.ErrorIs(t, fill(t, fs, "/data/plain", 1000), syscall.ENOSPC, "without the wrapper a write fails")

	wrapped := NoSpaceFS(fs, g.DiskFull, nil)
	require.NoError(t, fill(t, wrapped, "/data/wal", 4*mib), "the write goes into the released reserve")
	require.False(t, r.Present())
	require.Equal(t, []bool{true}, fulls, "the guard took a reading at once and went full")
	_, err := g.Reserve(now.Add(time.Second), 100, Intake)
	require.ErrorContains(t, err, "below Expert.MinFreeDiskBytes")

	// Still too little room to write the reserve again: nothing happens.
	now = now.Add(time.Second)
	g.Poll(now)
	g.refill(now)
	require.False(t, r.Present())

	// Space returns: the monitor writes the reserve, intake reopens.
	require.NoError(t, fs.Remove("/other"))
	now = now.Add(time.Second)
	g.Poll(now)
	g.refill(now)
	require.True(t, r.Present())
	require.Equal(t, []bool{true, false}, fulls)
	_, err = g.Reserve(now.Add(time.Second), 100, Intake)
	require.NoError(t, err)

	// With the reserve gone and not written back, a full disk fails the
	// write: the reserve is what the retry lives on.
	require.True(t, r.Release())
	free, _ = fs.free("")
	require.ErrorIs(t, fill(t, fs, "/other", int(free)+1), syscall.ENOSPC)
	require.ErrorIs(t, fill(t, wrapped, "/data/wal2", 4*mib), syscall.ENOSPC)
}
