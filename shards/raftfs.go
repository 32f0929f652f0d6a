package shards

import (
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/vfs"
	lvfs "github.com/lni/vfs"
)

// dragonboatFS returns fs as the file system Dragonboat's NodeHost takes.
//
// Dragonboat's default LogDB accepts only its default file system, an
// *lni/vfs.ErrorFS or an *lni/vfs.MemFS: any other panics with "invalid
// fs" (internal/logdb/kv_default.go), and NewNodeHost recovers that
// panic (its value is a string, not an error) and returns a nil NodeHost
// with a nil error. So the adapter is wrapped in an ErrorFS that injects
// nothing. An ErrorFS also turns on Dragonboat's "error injection mode":
// a panic in its step worker (which is how it treats a failed raft log
// write or sync) is recovered and the worker returns, instead of the
// panic ending the process. With one step worker (engineConfig) that
// freezes every replica on the Host until it is closed; see Config.FS.
func dragonboatFS(fs vfs.FS) lvfs.FS {
	return lvfs.Wrap(raftFS{fs}, noFaults{})
}

// noFaults is an lni/vfs Injector that injects nothing.
type noFaults struct{}

func (noFaults) MaybeError(lvfs.Op) error { return nil }

// raftFS adapts the Pebble vfs.FS of Config.FS to the file system
// Dragonboat's NodeHost takes (config.ExpertConfig.FS, an lni/vfs.FS). The
// two are forks of one interface and not interchangeable: lni/vfs adds
// FS.OpenForAppend and File.Seek and File.WriteAt, and has its own
// OpenOption and DiskUsage types. raftFS is used only when Config.FS is
// set; without it Dragonboat keeps its own default file system.
type raftFS struct{ fs vfs.FS }

var _ lvfs.FS = raftFS{}

func (r raftFS) Create(name string) (lvfs.File, error) { return wrapRaftFile(r.fs.Create(name)) }

func (r raftFS) Link(oldname, newname string) error { return r.fs.Link(oldname, newname) }

// Open opens name for reading; opts (read-ahead hints for *os.File) are
// applied to the adapted file, where they do what they do on the file the
// wrapped FS returned only if it is an *os.File (hints are otherwise
// ignored).
func (r raftFS) Open(name string, opts ...lvfs.OpenOption) (lvfs.File, error) {
	f, err := wrapRaftFile(r.fs.Open(name))
	if err != nil {
		return nil, err
	}
	var inner vfs.File
	switch rf := f.(type) {
	case raftFile:
		inner = rf.File
	case raftFdFile:
		inner = rf.File
	}
	if of, ok := inner.(*os.File); ok {
		for _, o := range opts {
			o.Apply(of)
		}
	}
	return f, nil
}

func (r raftFS) OpenDir(name string) (lvfs.File, error) { return wrapRaftFile(r.fs.OpenDir(name)) }

// OpenForAppend opens the existing file name for writing at its end, as
// lni/vfs's default does with O_APPEND: Pebble's FS has no such call, so
// it reuses the file for writing (no truncation) and seeks to its end.
func (r raftFS) OpenForAppend(name string) (lvfs.File, error) {
	if _, err := r.fs.Stat(name); err != nil {
		return nil, err
	}
	f, err := wrapRaftFile(r.fs.ReuseForWrite(name, name))
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return nil, errorsJoinClose(fmt.Errorf("graft: shards: opening %s for append: %w", name, err), f)
	}
	return f, nil
}

func (r raftFS) Remove(name string) error                 { return r.fs.Remove(name) }
func (r raftFS) RemoveAll(name string) error              { return r.fs.RemoveAll(name) }
func (r raftFS) Rename(oldname, newname string) error     { return r.fs.Rename(oldname, newname) }
func (r raftFS) MkdirAll(dir string, p os.FileMode) error { return r.fs.MkdirAll(dir, p) }
func (r raftFS) Lock(name string) (io.Closer, error)      { return r.fs.Lock(name) }
func (r raftFS) List(dir string) ([]string, error)        { return r.fs.List(dir) }
func (r raftFS) Stat(name string) (os.FileInfo, error)    { return r.fs.Stat(name) }
func (r raftFS) PathBase(path string) string              { return r.fs.PathBase(path) }
func (r raftFS) PathJoin(elem ...string) string           { return r.fs.PathJoin(elem...) }
func (r raftFS) PathDir(path string) string               { return r.fs.PathDir(path) }

func (r raftFS) ReuseForWrite(oldname, newname string) (lvfs.File, error) {
	return wrapRaftFile(r.fs.ReuseForWrite(oldname, newname))
}

func (r raftFS) GetDiskUsage(path string) (lvfs.DiskUsage, error) {
	u, err := r.fs.GetDiskUsage(path)
	return lvfs.DiskUsage{AvailBytes: u.AvailBytes, TotalBytes: u.TotalBytes, UsedBytes: u.UsedBytes}, err
}

// raftFile adds Seek and WriteAt to a Pebble vfs.File, forwarding them to
// the file when it has them (an *os.File and Pebble's MemFS files do) and
// failing them otherwise. It has the file's Fd only when the file has one
// (raftFdFile): Pebble then syncs through the descriptor (fdatasync,
// sync_file_range) around the wrapped FS's Sync, as it does on the real
// file system. Files that must see every Sync (chaos.FaultFS, which delays
// them) have no Fd, and so neither has their raftFile.
type raftFile struct{ vfs.File }

var _ lvfs.File = raftFile{}

// raftFdFile is a raftFile whose file has a descriptor.
type raftFdFile struct {
	raftFile
	fd uintptr
}

// Fd returns the file's descriptor.
func (f raftFdFile) Fd() uintptr { return f.fd }

func wrapRaftFile(f vfs.File, err error) (lvfs.File, error) {
	if err != nil {
		return nil, err
	}
	if d, ok := f.(interface{ Fd() uintptr }); ok {
		return raftFdFile{raftFile{f}, d.Fd()}, nil
	}
	return raftFile{f}, nil
}

// Seek forwards to the file's Seek.
func (f raftFile) Seek(offset int64, whence int) (int64, error) {
	if s, ok := f.File.(io.Seeker); ok {
		return s.Seek(offset, whence)
	}
	return 0, fmt.Errorf("graft: shards: %T cannot seek", f.File)
}

// WriteAt forwards to the file's WriteAt.
func (f raftFile) WriteAt(p []byte, off int64) (int, error) {
	if w, ok := f.File.(io.WriterAt); ok {
		return w.WriteAt(p, off)
	}
	return 0, fmt.Errorf("graft: shards: %T cannot write at an offset", f.File)
}

// errorsJoinClose closes c and returns err with the close's error, if any.
func errorsJoinClose(err error, c io.Closer) error {
	if cerr := c.Close(); cerr != nil {
		return fmt.Errorf("%w (closing: %v)", err, cerr)
	}
	return err
}
