// Package disktest provides a file system whose free space a test sets,
// for the tests of the free-space guard (internal/disk) and of the member
// that uses it. It imports only the standard library.
package disktest

import "sync"

// Disk is a file system whose free space the test sets; it counts the
// readings. It is safe for concurrent use.
type Disk struct {
	mu     sync.Mutex
	free   uint64
	err    error
	probes int
}

// New returns a Disk with free bytes free.
func New(free uint64) *Disk { return &Disk{free: free} }

// Free returns the free bytes and error set last, whatever the path, and
// counts the reading; it has the shape of the guard's free-space probe.
func (d *Disk) Free(string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.probes++
	return d.free, d.err
}

// Set sets what Free returns from now on.
func (d *Disk) Set(free uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free, d.err = free, err
}

// Probes returns how many times Free was called.
func (d *Disk) Probes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.probes
}
