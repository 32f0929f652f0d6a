//go:build linux

package disk

import (
	"errors"

	"golang.org/x/sys/unix"
)

// allocate gives the file with descriptor fd size bytes of disk blocks at
// once (fallocate), without writing them. errUnsupported means the file
// system cannot, and the caller writes zeros instead.
func allocate(fd uintptr, size uint64) error {
	err := unix.Fallocate(int(fd), 0, 0, int64(size))
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return errUnsupported
	}
	return err
}
