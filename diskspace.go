package graft

import (
	"fmt"
	"sync"
	"time"
)

// diskGuard refuses new workflows while the data directory's file system
// has less free space than the configured minimum, so a filling disk stops
// intake before storage writes start failing; workflows already accepted
// keep running (their steps free nothing, but they need far less space than
// new workflows would).
type diskGuard struct {
	dir     string
	min     uint64
	free    func(dir string) (uint64, error)
	mu      sync.Mutex
	checked time.Time
	last    error
}

// check returns ErrStorageFull when free space is below the minimum. The
// answer is cached for a second.
func (g *diskGuard) check(now time.Time) error {
	if g == nil || g.min == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.checked) < time.Second && !g.checked.IsZero() {
		return g.last
	}
	g.checked = now
	free, err := g.free(g.dir)
	switch {
	case err != nil:
		g.last = nil // unknown: do not refuse work on a failed probe
	case free < g.min:
		g.last = fmt.Errorf("%w: %d bytes free under %s, below Expert.MinFreeDiskBytes (%d)", ErrStorageFull, free, g.dir, g.min)
	default:
		g.last = nil
	}
	return g.last
}
