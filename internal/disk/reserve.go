package disk

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/vfs"
)

// The emergency reserve. The guard stops Graft's own writes before the
// disk fills, but something else on the machine (a runaway log, another
// program) can take the last byte at any moment, and a write Pebble or
// Dragonboat cannot finish is fatal to them: Pebble panics on a failed WAL
// write, Dragonboat on a failed Raft log write. So a member keeps a file
// of zeros in its data directory, the reserve, and writes through
// NoSpaceFS: the first write that fails with ENOSPC calls the guard's
// DiskFull (other writes failing meanwhile wait for it), which deletes
// the reserve and takes a fresh reading, which now refuses new workflows
// and holds steps; then the write is retried into the space the reserve
// gave back. When space returns, the guard's monitor writes the reserve
// again.
//
// What the reserve cannot save: a write that fails after the reserve is
// gone (a second ENOSPC before the guard's monitor could write it again,
// which takes something filling the disk again after the reserve was
// released, or the reserve being too small for the writes in flight), and
// a failed fsync, which NoSpaceFS never retries (after a failed fsync the
// kernel may have dropped the unsynced pages: PostgreSQL's "fsyncgate"),
// both fatal as before.

// ReserveName is the emergency reserve's file name in the data directory.
const ReserveName = "EMERGENCY_RESERVE"

// MaxReserve caps a member's reserve, whatever its floor: 1 GiB outlasts
// any burst of writes in flight when the disk fills.
const MaxReserve = 1 << 30

// reserveChunk is how much of the reserve one write writes.
const reserveChunk = 1 << 20

// errUnsupported: the file system cannot allocate blocks without writing
// them.
var errUnsupported = errors.New("allocation without writing not supported")

// Reserve is a member's emergency reserve: a file of Size zeros that
// Release deletes to give the disk back to writes that found it full, and
// Fill writes again. All methods are safe for concurrent use.
type Reserve struct {
	fs   vfs.FS // the file system under the ENOSPC wrapper
	path string
	size uint64
	log  *slog.Logger

	fill    sync.Mutex // serializes Fill
	mu      sync.Mutex
	present bool
}

// NewReserve returns the reserve of size bytes at path on fs (which must be
// the file system writes go to, not a wrapper that calls Release). It
// writes nothing: the guard's monitor calls Fill when the disk has room.
func NewReserve(fs vfs.FS, path string, size uint64, log *slog.Logger) *Reserve {
	if log == nil {
		log = slog.Default()
	}
	return &Reserve{fs: fs, path: path, size: size, log: log}
}

// Size is the reserve's size in bytes.
func (r *Reserve) Size() uint64 { return r.size }

// Present reports whether the reserve is on disk.
func (r *Reserve) Present() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.present
}

// Fill writes the reserve if it is not on disk: an existing file of the
// right size (left by an earlier run) is kept, anything else at its path
// is replaced. It writes to a temporary name and renames, so that a crash
// never leaves a short reserve under the real name. A failed write (the
// disk filled meanwhile) removes what it wrote and returns the error.
func (r *Reserve) Fill() error {
	r.fill.Lock()
	defer r.fill.Unlock()
	if r.Present() {
		return nil
	}
	if fi, err := r.fs.Stat(r.path); err == nil && uint64(fi.Size()) == r.size {
		r.setPresent(true)
		return nil
	}
	if err := r.fs.MkdirAll(r.fs.PathDir(r.path), 0o755); err != nil {
		return fmt.Errorf("writing the emergency reserve %s: %w", r.path, err)
	}
	tmp := r.path + ".tmp"
	if err := r.write(tmp); err != nil {
		_ = r.fs.Remove(tmp)
		return fmt.Errorf("writing the emergency reserve %s (%d bytes): %w", r.path, r.size, err)
	}
	if err := r.fs.Rename(tmp, r.path); err != nil {
		_ = r.fs.Remove(tmp)
		return fmt.Errorf("writing the emergency reserve %s: %w", r.path, err)
	}
	r.setPresent(true)
	return nil
}

// write gives name size bytes of disk and syncs it: allocated at once
// where the file system can (fallocate on Linux), written as zeros
// elsewhere.
func (r *Reserve) write(name string) (err error) {
	f, err := r.fs.Create(name)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		switch err := allocate(fd.Fd(), r.size); {
		case err == nil:
			return f.Sync()
		case !errors.Is(err, errUnsupported):
			return err
		}
	}
	zeros := make([]byte, reserveChunk)
	for left := r.size; left > 0; {
		n := min(left, reserveChunk)
		if _, err := f.Write(zeros[:n]); err != nil {
			return err
		}
		left -= n
	}
	return f.Sync()
}

// Release deletes the reserve, returning whether it was on disk (and so
// gave back Size bytes). It runs in NoSpaceFS's callback (Guard.DiskFull),
// which writes that fail meanwhile wait for, so it does nothing but the
// delete.
func (r *Reserve) Release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.present {
		return false
	}
	if err := r.fs.Remove(r.path); err != nil {
		r.log.Error("deleting the emergency reserve failed", "path", r.path, "error", err)
		return false
	}
	r.present = false
	return true
}

func (r *Reserve) setPresent(p bool) {
	r.mu.Lock()
	r.present = p
	r.mu.Unlock()
}
