package disk

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/stretchr/testify/require"
)

// failFS fails the next n writes (Write, WriteAt) or syncs of its files
// with ENOSPC, after writing half of what a write was given.
type failFS struct {
	vfs.FS
	failWrites, failSyncs int
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
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Write(p)
}

func (f *failFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.failWrites > 0 {
		f.fs.failWrites--
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(p, off)
}

func (f *failFile) Sync() error {
	if f.fs.failSyncs > 0 {
		f.fs.failSyncs--
		return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.ENOSPC}
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
	fs := NoSpaceFS(inner, func() { calls++ })
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

	pos, err := f.(io.Seeker).Seek(0, io.SeekEnd)
	require.NoError(t, err)
	require.EqualValues(t, 12, pos)

	inner.failSyncs = 1
	require.ErrorIs(t, f.Sync(), syscall.ENOSPC, "a failed fsync is not retried")
	require.Equal(t, 3, calls)
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
	require.NoError(t, f.Close())
}
