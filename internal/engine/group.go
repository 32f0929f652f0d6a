package engine

import (
	"sync"
	"sync/atomic"
)

// group tracks goroutines that may be running node code (a step's Execute,
// a CanStart), which the engine can cancel but cannot end. Stop waits for
// them only up to a deadline, so a node that ignores cancellation cannot
// hold it forever; their goroutines stay counted here until the node
// returns, and then end. Nothing waits on the group from a goroutine of its
// own: the last goroutine to leave a closed group closes done.
type group struct {
	n      atomic.Int64 // goroutines running, plus one until close
	closed atomic.Bool
	once   sync.Once
	done   chan struct{}
}

func newGroup() *group {
	g := &group{done: make(chan struct{})}
	g.n.Store(1)
	return g
}

// Go runs f on a new goroutine of the group. It must not be called after
// close.
func (g *group) Go(f func()) {
	g.n.Add(1)
	go func() {
		defer g.leave()
		f()
	}()
}

func (g *group) leave() {
	if g.n.Add(-1) == 0 {
		close(g.done)
	}
}

// close closes the group to new goroutines and returns a channel that is
// closed once every goroutine of the group has ended. Safe to call more
// than once.
func (g *group) close() <-chan struct{} {
	g.once.Do(func() {
		g.closed.Store(true)
		g.leave()
	})
	return g.done
}

// running returns how many goroutines of the group have not ended.
func (g *group) running() int {
	n := g.n.Load()
	if !g.closed.Load() {
		n--
	}
	return int(n)
}
