package disk

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/stretchr/testify/require"
)

// failFS fails the next n writes (Write, WriteAt) or syncs of its files
// with errno (ENOSPC when zero), after writing half of what a write was
// given.
type failFS struct {
	vfs.FS
	failWrites, failSyncs int
	errno                 syscall.Errno
}

// err returns the error a failed call returns.
func (f *failFS) err(op, path string) error {
	if f.errno == 0 {
		return &os.PathError{Op: op, Path: path, Err: syscall.ENOSPC}
	}
	return &os.PathError{Op: op, Path: path, Err: f.errno}
}

func (f *failFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &failFile{File: file.(*os.File), fs: f}, nil
}

type failFile struct {
	*os.File
	fs *failFS
}

func (f *failFile) Write(p []byte) (int, error) {
	if f.fs.failWrites > 0 {
		f.fs.failWrites--
		n, _ := f.File.Write(p[:len(p)/2])
		return n, f.fs.err("write", f.Name())
	}
	return f.File.Write(p)
}

func (f *failFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.failWrites > 0 {
		f.fs.failWrites--
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, f.fs.err("write", f.Name())
	}
	return f.File.WriteAt(p, off)
}

func (f *failFile) Sync() error {
	if f.fs.failSyncs > 0 {
		f.fs.failSyncs--
		return f.fs.err("sync", f.Name())
	}
	return f.File.Sync()
}

// A write or WriteAt that fails with ENOSPC calls onFull once and is
// finished by the retry, from where the failed one stopped; Seek and the
// descriptor are kept (Dragonboat's snapshot writer needs WriteAt); a
// failed Sync calls onFull but is returned, not retried.
func TestNoSpaceFSRetriesWritesOnce(t *testing.T) {
	t.Parallel()
	inner := &failFS{FS: vfs.Default}
	calls := 0
	var failed []string
	fs := NoSpaceFS(inner, func() { calls++ }, func(op, path string, err error) {
		require.ErrorIs(t, err, syscall.ENOSPC)
		failed = append(failed, op+" "+filepath.Base(path))
	})
	path := filepath.Join(t.TempDir(), "f")
	f, err := fs.Create(path)
	require.NoError(t, err)
	_, hasFd := f.(interface{ Fd() uintptr })
	require.True(t, hasFd, "an *os.File keeps its descriptor")

	inner.failWrites = 1
	n, err := f.Write([]byte("hello world!"))
	require.NoError(t, err)
	require.Equal(t, 12, n)
	require.Equal(t, 1, calls)

	inner.failWrites = 1
	n, err = f.(io.WriterAt).WriteAt([]byte("HELLO"), 0)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Equal(t, 2, calls, "a failure after onFull returned is a new episode")
	require.Empty(t, failed, "a write the retry finished did not fail")

	pos, err := f.(io.Seeker).Seek(0, io.SeekEnd)
	require.NoError(t, err)
	require.EqualValues(t, 12, pos)

	inner.failSyncs = 1
	require.ErrorIs(t, f.Sync(), syscall.ENOSPC, "a failed fsync is not retried")
	require.Equal(t, 3, calls)
	require.Equal(t, []string{"sync f"}, failed)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "HELLO world!", string(b))

	// Still full after onFull: the retry's error is returned.
	f, err = fs.Create(path + "2")
	require.NoError(t, err)
	inner.failWrites = 2
	_, err = f.Write([]byte("abcd"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, 4, calls)
	require.Equal(t, []string{"sync f", "write f2"}, failed)
	require.NoError(t, f.Close())
}

// A write or sync failing with another error (EIO) is not retried and does
// not release the reserve; it is reported as failed, as is an ENOSPC when
// there is no onFull (nothing to free, so no retry). Writes that succeed
// report nothing.
func TestNoSpaceFSReportsFailedWritesAndSyncs(t *testing.T) {
	t.Parallel()
	inner := &failFS{FS: vfs.Default, errno: syscall.EIO}
	calls := 0
	var failed []error
	fs := NoSpaceFS(inner, func() { calls++ }, func(op, path string, err error) {
		failed = append(failed, fmt.Errorf("%s %s: %w", op, filepath.Base(path), err))
	})
	dir := t.TempDir()
	f, err := fs.Create(filepath.Join(dir, "log"))
	require.NoError(t, err)
	_, err = f.Write([]byte("ok"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.Empty(t, failed)

	inner.failWrites = 1
	_, err = f.Write([]byte("lost"))
	require.ErrorIs(t, err, syscall.EIO)
	inner.failSyncs = 1
	require.ErrorIs(t, f.Sync(), syscall.EIO)
	require.Zero(t, calls, "EIO is not a full disk")
	require.Len(t, failed, 2)
	require.ErrorIs(t, failed[0], syscall.EIO)
	require.ErrorContains(t, failed[0], "write log")
	require.ErrorContains(t, failed[1], "sync log")
	require.NoError(t, f.Close())

	d, err := fs.OpenDir(dir)
	require.NoError(t, err)
	inner2 := &failFS{FS: vfs.Default, failWrites: 1}
	var failed2 []string
	noFree := NoSpaceFS(inner2, nil, func(op, path string, err error) { failed2 = append(failed2, op) })
	g, err := noFree.Create(filepath.Join(dir, "other"))
	require.NoError(t, err)
	_, err = g.Write([]byte("abcd"))
	require.ErrorIs(t, err, syscall.ENOSPC, "without onFull a full disk's write is not retried")
	require.Equal(t, []string{"write"}, failed2)
	require.NoError(t, g.Close())
	require.NoError(t, d.Sync(), "a directory opened through the wrapper syncs")
	require.NoError(t, d.Close())
}
