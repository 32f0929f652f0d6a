package chaos

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/vfs"
)

// FaultFS is a file system (Pebble's vfs.FS, what graft.ExpertConfig.FS
// takes) that passes everything to the one it wraps, except the faults it
// is told to inject:
//
//   - Full: every call that would take space fails with an error that
//     errors.Is syscall.ENOSPC, as on a full disk: creating a file or a
//     directory, a hard link, reusing a file for writing, and every Write,
//     WriteAt and Sync of a file (whenever it was opened). Reads, stats,
//     listings, renames, removals and closes go through. GetDiskUsage
//     reports no space available.
//   - A sync delay: every Sync of a file or directory waits that long
//     before it is passed on (as a slow disk's fsync would); clearing or
//     changing the delay releases the syncs waiting.
//
// All methods are safe for concurrent use.
type FaultFS struct {
	fs vfs.FS

	full   atomic.Bool
	failed atomic.Uint64 // calls failed with ENOSPC
	slowed atomic.Uint64 // syncs delayed
	onFail atomic.Pointer[func(op, path string)]

	mu      sync.Mutex
	delay   time.Duration
	changed chan struct{} // closed (and replaced) when the delay changes
}

var _ vfs.FS = (*FaultFS)(nil)

// NewFaultFS returns a FaultFS over fs (nil means vfs.Default) with no
// fault on.
func NewFaultFS(fs vfs.FS) *FaultFS {
	if fs == nil {
		fs = vfs.Default
	}
	return &FaultFS{fs: fs, changed: make(chan struct{})}
}

// SetFull turns the full disk on or off.
func (f *FaultFS) SetFull(full bool) { f.full.Store(full) }

// Full reports whether the disk is full.
func (f *FaultFS) Full() bool { return f.full.Load() }

// SetSyncDelay makes every Sync wait d before it is passed on; zero turns
// the slow disk off. Syncs already waiting are released.
func (f *FaultFS) SetSyncDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = max(d, 0)
	close(f.changed)
	f.changed = make(chan struct{})
}

// SetOnFailure makes fn be called with the operation and path of every
// call the full disk fails, on the goroutine of the call, before the call
// returns; it must return promptly. Nil removes it.
func (f *FaultFS) SetOnFailure(fn func(op, path string)) {
	if fn == nil {
		f.onFail.Store(nil)
		return
	}
	f.onFail.Store(&fn)
}

// FaultFSStats counts the faults a FaultFS injected.
type FaultFSStats struct {
	// Failed is how many calls failed with ENOSPC.
	Failed uint64
	// Slowed is how many syncs were delayed.
	Slowed uint64
}

// Stats returns how many faults were injected so far.
func (f *FaultFS) Stats() FaultFSStats {
	return FaultFSStats{Failed: f.failed.Load(), Slowed: f.slowed.Load()}
}

// noSpace returns the error of op on path when the disk is full, else nil.
func (f *FaultFS) noSpace(op, path string) error {
	if !f.full.Load() {
		return nil
	}
	f.failed.Add(1)
	if fn := f.onFail.Load(); fn != nil {
		(*fn)(op, path)
	}
	return &os.PathError{Op: op, Path: path, Err: syscall.ENOSPC}
}

// slow waits out the sync delay, if any.
func (f *FaultFS) slow() {
	f.mu.Lock()
	d, changed := f.delay, f.changed
	f.mu.Unlock()
	if d <= 0 {
		return
	}
	f.slowed.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changed:
	}
}

func (f *FaultFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

// Create creates name, or fails when the disk is full.
func (f *FaultFS) Create(name string) (vfs.File, error) {
	if err := f.noSpace("create", name); err != nil {
		return nil, err
	}
	file, err := f.fs.Create(name)
	return f.wrap(name, file, err)
}

// Link links newname to oldname, or fails when the disk is full.
func (f *FaultFS) Link(oldname, newname string) error {
	if err := f.noSpace("link", newname); err != nil {
		return err
	}
	return f.fs.Link(oldname, newname)
}

// Open opens name for reading.
func (f *FaultFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.fs.Open(name, opts...)
	return f.wrap(name, file, err)
}

// OpenDir opens directory name for syncing.
func (f *FaultFS) OpenDir(name string) (vfs.File, error) {
	file, err := f.fs.OpenDir(name)
	return f.wrap(name, file, err)
}

// Remove removes name.
func (f *FaultFS) Remove(name string) error { return f.fs.Remove(name) }

// RemoveAll removes name and its children.
func (f *FaultFS) RemoveAll(name string) error { return f.fs.RemoveAll(name) }

// Rename renames oldname to newname.
func (f *FaultFS) Rename(oldname, newname string) error { return f.fs.Rename(oldname, newname) }

// ReuseForWrite reuses oldname as newname for writing, or fails when the
// disk is full.
func (f *FaultFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	if err := f.noSpace("open", newname); err != nil {
		return nil, err
	}
	file, err := f.fs.ReuseForWrite(oldname, newname)
	return f.wrap(newname, file, err)
}

// MkdirAll creates dir and its parents; when the disk is full it fails
// unless dir exists already.
func (f *FaultFS) MkdirAll(dir string, perm os.FileMode) error {
	if f.full.Load() {
		if st, err := f.fs.Stat(dir); err == nil && st.IsDir() {
			return nil
		}
		if err := f.noSpace("mkdir", dir); err != nil {
			return err
		}
	}
	return f.fs.MkdirAll(dir, perm)
}

// Lock locks name.
func (f *FaultFS) Lock(name string) (io.Closer, error) { return f.fs.Lock(name) }

// List lists dir.
func (f *FaultFS) List(dir string) ([]string, error) { return f.fs.List(dir) }

// Stat describes name.
func (f *FaultFS) Stat(name string) (os.FileInfo, error) { return f.fs.Stat(name) }

// PathBase is the wrapped FS's PathBase.
func (f *FaultFS) PathBase(path string) string { return f.fs.PathBase(path) }

// PathJoin is the wrapped FS's PathJoin.
func (f *FaultFS) PathJoin(elem ...string) string { return f.fs.PathJoin(elem...) }

// PathDir is the wrapped FS's PathDir.
func (f *FaultFS) PathDir(path string) string { return f.fs.PathDir(path) }

// GetDiskUsage is the wrapped FS's, with no space available when the disk
// is full.
func (f *FaultFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := f.fs.GetDiskUsage(path)
	if err == nil && f.full.Load() {
		u.UsedBytes += u.AvailBytes
		u.AvailBytes = 0
	}
	return u, err
}

// faultFile is a file of a FaultFS.
type faultFile struct {
	vfs.File
	fs   *FaultFS
	name string
}

// Write fails when the disk is full.
func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.noSpace("write", f.name); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

// WriteAt fails when the disk is full; it forwards to the file's WriteAt.
func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.noSpace("write", f.name); err != nil {
		return 0, err
	}
	w, ok := f.File.(io.WriterAt)
	if !ok {
		return 0, fmt.Errorf("chaos: %s: %T cannot write at an offset", f.name, f.File)
	}
	return w.WriteAt(p, off)
}

// Seek forwards to the file's Seek.
func (f *faultFile) Seek(offset int64, whence int) (int64, error) {
	s, ok := f.File.(io.Seeker)
	if !ok {
		return 0, fmt.Errorf("chaos: %s: %T cannot seek", f.name, f.File)
	}
	return s.Seek(offset, whence)
}

// Sync waits out the sync delay, then fails when the disk is full.
func (f *faultFile) Sync() error {
	f.fs.slow()
	if err := f.fs.noSpace("sync", f.name); err != nil {
		return err
	}
	return f.File.Sync()
}
