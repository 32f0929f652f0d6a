package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/vfs"
)

// NoSpaceFS wraps fs so that a write that fails with ENOSPC calls onFull
// (the guard's DiskFull, which releases the emergency reserve) and is
// retried once into the space it gave back, as Pebble's vfs.OnDiskFull
// does. It is Graft's own rather than OnDiskFull because Dragonboat's
// file system adapter needs the files' WriteAt and Seek (its snapshot
// writer writes the header at offset 0 last), which OnDiskFull's files
// hide; its files keep them, and their descriptor when they have one.
//
// onFull runs once per episode: writes that fail while it runs wait for it
// and then retry without calling it again; a later failure (after onFull
// returned) calls it again. A failed Sync calls onFull but is never
// retried: after a failed fsync the kernel may have dropped the unsynced
// pages, so a second Sync could report success for data that is gone. A
// nil onFull retries nothing.
//
// onFailed, if not nil, is told of every file write, positioned write or
// sync that fails for good (after the retry, or with an error other than
// ENOSPC), with the operation ("write", "sync") and the file's path:
// Pebble and Dragonboat treat such a failure as fatal to the store, so
// the member stops (see member.storageFailed).
func NoSpaceFS(fs vfs.FS, onFull func(), onFailed func(op, path string, err error)) vfs.FS {
	return &noSpaceFS{FS: fs, onFull: onFull, onFailed: onFailed}
}

type noSpaceFS struct {
	vfs.FS
	onFull   func()
	onFailed func(op, path string, err error)
	mu       sync.Mutex    // held while onFull runs
	gen      atomic.Uint64 // episodes handled so far
}

// failed reports a write or sync that failed for good to onFailed.
func (fs *noSpaceFS) failed(op, path string, err error) {
	if err != nil && fs.onFailed != nil {
		fs.onFailed(op, path, err)
	}
}

// isNoSpace reports whether err is ENOSPC.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// handle runs onFull for the episode gen, unless a write of that episode
// already did; it returns when onFull has run.
func (fs *noSpaceFS) handle(gen uint64) {
	if fs.onFull == nil {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.gen.Load() == gen {
		fs.onFull()
		fs.gen.Add(1)
	}
}

// retry runs op, and once more after onFull if it failed with ENOSPC.
func (fs *noSpaceFS) retry(op func() error) error {
	gen := fs.gen.Load()
	err := op()
	if err != nil && isNoSpace(err) && fs.onFull != nil {
		fs.handle(gen)
		err = op()
	}
	return err
}

func (fs *noSpaceFS) Create(name string) (vfs.File, error) {
	var f vfs.File
	err := fs.retry(func() (err error) { f, err = fs.FS.Create(name); return err })
	return fs.wrap(name, f, err)
}

func (fs *noSpaceFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	var f vfs.File
	err := fs.retry(func() (err error) { f, err = fs.FS.ReuseForWrite(oldname, newname); return err })
	return fs.wrap(newname, f, err)
}

func (fs *noSpaceFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	return fs.wrap(name, f, err)
}

func (fs *noSpaceFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return fs.wrap(name, f, err)
}

func (fs *noSpaceFS) Link(oldname, newname string) error {
	return fs.retry(func() error { return fs.FS.Link(oldname, newname) })
}

func (fs *noSpaceFS) Rename(oldname, newname string) error {
	return fs.retry(func() error { return fs.FS.Rename(oldname, newname) })
}

func (fs *noSpaceFS) MkdirAll(dir string, perm os.FileMode) error {
	return fs.retry(func() error { return fs.FS.MkdirAll(dir, perm) })
}

// Unwrap returns the wrapped file system.
func (fs *noSpaceFS) Unwrap() vfs.FS { return fs.FS }

// wrap returns f, opened at path, as a noSpaceFile (a noSpaceFdFile when
// f has a descriptor).
func (fs *noSpaceFS) wrap(path string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	nf := noSpaceFile{File: f, fs: fs, path: path}
	if d, ok := f.(interface{ Fd() uintptr }); ok {
		return noSpaceFdFile{noSpaceFile: nf, fd: d.Fd()}, nil
	}
	return nf, nil
}

// noSpaceFile is a file of a noSpaceFS.
type noSpaceFile struct {
	vfs.File
	fs   *noSpaceFS
	path string
}

// Write writes p, writing what a write that failed with ENOSPC left out
// once more after onFull.
func (f noSpaceFile) Write(p []byte) (int, error) {
	gen := f.fs.gen.Load()
	n, err := f.File.Write(p)
	if err != nil && isNoSpace(err) && f.fs.onFull != nil {
		f.fs.handle(gen)
		var m int
		m, err = f.File.Write(p[n:])
		n += m
	}
	f.fs.failed("write", f.path, err)
	return n, err
}

// WriteAt forwards to the file's WriteAt, retried like Write.
func (f noSpaceFile) WriteAt(p []byte, off int64) (int, error) {
	w, ok := f.File.(io.WriterAt)
	if !ok {
		return 0, fmt.Errorf("graft: %T cannot write at an offset", f.File)
	}
	gen := f.fs.gen.Load()
	n, err := w.WriteAt(p, off)
	if err != nil && isNoSpace(err) && f.fs.onFull != nil {
		f.fs.handle(gen)
		var m int
		m, err = w.WriteAt(p[n:], off+int64(n))
		n += m
	}
	f.fs.failed("write", f.path, err)
	return n, err
}

// Seek forwards to the file's Seek.
func (f noSpaceFile) Seek(offset int64, whence int) (int64, error) {
	if s, ok := f.File.(io.Seeker); ok {
		return s.Seek(offset, whence)
	}
	return 0, fmt.Errorf("graft: %T cannot seek", f.File)
}

// Sync syncs the file; on ENOSPC it calls onFull (so that other writes
// find room) but returns the error: a failed fsync is not retried.
func (f noSpaceFile) Sync() error {
	gen := f.fs.gen.Load()
	err := f.File.Sync()
	if err != nil && isNoSpace(err) {
		f.fs.handle(gen)
	}
	f.fs.failed("sync", f.path, err)
	return err
}

// noSpaceFdFile is a noSpaceFile whose file has a descriptor.
type noSpaceFdFile struct {
	noSpaceFile
	fd uintptr
}

// Fd returns the file's descriptor.
func (f noSpaceFdFile) Fd() uintptr { return f.fd }
