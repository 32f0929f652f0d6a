package member

import "github.com/eleven-am/graft/internal/disk"

// freeBytes returns how the disk guard reads the free space under the data
// directory: through Expert.FS when one is set (so a fault-injecting file
// system that reports a full disk is seen as one), statfs otherwise.
func (m *Member) freeBytes() func(dir string) (uint64, error) {
	fs := m.cfg.Expert.FS
	if fs == nil {
		return disk.FreeBytes
	}
	return func(dir string) (uint64, error) {
		u, err := fs.GetDiskUsage(dir)
		if err != nil {
			return 0, err
		}
		return u.AvailBytes, nil
	}
}
