package member

import (
	"context"
	"fmt"
	"sync"

	"github.com/eleven-am/graft/internal/errs"
)

// The readiness names, graft's Readiness* constants.
const (
	Starting    = "starting"
	Joining     = "joining"
	Ready       = "ready"
	Stopped     = "stopped"
	StorageFull = "storage-full"
	// StorageFailed: a write or fsync of the member's storage failed, so
	// the member stopped (see Member.storageFailed).
	StorageFailed = "storage-failed"
)

// readiness is the phase a member is in, as GetReadinessState names it.
type readiness int32

const (
	phaseStarting readiness = iota
	phaseJoining            // set with m.setReadiness while the member forms or joins its cluster (bootstrap.go)
	phaseReady
	phaseStopped
	phaseStorageFull   // reported, never set: phaseReady while the disk guard says full
	phaseStorageFailed // reported, never set: any phase once a storage write failed
)

// String returns the phase's name (one of the readiness names).
func (p readiness) String() string {
	switch p {
	case phaseStarting:
		return Starting
	case phaseJoining:
		return Joining
	case phaseReady:
		return Ready
	case phaseStopped:
		return Stopped
	case phaseStorageFull:
		return StorageFull
	case phaseStorageFailed:
		return StorageFailed
	default:
		return fmt.Sprintf("readiness(%d)", int32(p))
	}
}

// readinessState holds a member's phase and wakes its waiters on every
// change: changed is closed and replaced each time the phase (or the
// storage-full flag) changes.
type readinessState struct {
	mu      sync.Mutex
	phase   readiness
	full    bool  // the disk guard refuses new workflows; a ready member reports phaseStorageFull
	failed  error // the first storage write that failed for good; the member then reports phaseStorageFailed
	sealed  bool  // Stop was called: the phase stays phaseStopped
	changed chan struct{}
}

// snapshot returns the phase as reported (phaseStorageFull for a ready
// member whose disk is full, phaseStorageFailed once storage failed),
// whether Stop sealed it, and a channel closed at the next change.
func (r *readinessState) snapshot() (readiness, bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	p := r.phase
	switch {
	case r.failed != nil:
		p = phaseStorageFailed
	case p == phaseReady && r.full:
		p = phaseStorageFull
	}
	return p, r.sealed, r.changed
}

// setFailed records the first storage failure and wakes the waiters; it
// reports whether err was the first.
func (r *readinessState) setFailed(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed != nil {
		return false
	}
	r.failed = err
	r.wakeLocked()
	return true
}

// failure returns the storage failure, or nil.
func (r *readinessState) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// isFull reports whether the disk guard refuses new workflows.
func (r *readinessState) isFull() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full
}

// setFull records whether the disk guard refuses new workflows and wakes
// the waiters when that changed.
func (r *readinessState) setFull(full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full == full {
		return
	}
	r.full = full
	r.wakeLocked()
}

// set moves to phase p and wakes the waiters; seal makes it final. A
// sealed state ignores further changes.
func (r *readinessState) set(p readiness, seal bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sealed || (r.phase == p && !seal) {
		return
	}
	r.phase = p
	r.sealed = seal
	r.wakeLocked()
}

// wakeLocked wakes the waiters of the current changed channel.
func (r *readinessState) wakeLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// setReadiness moves the member to phase p (Start sets phaseStarting,
// phaseReady or phaseStopped; the cluster's bootstrap wait sets
// phaseJoining). After Stop it has no effect.
func (m *Member) setReadiness(p readiness) { m.ready.set(p, false) }

// Readiness names what the member is doing (one of the readiness names).
func (m *Member) Readiness() string {
	p, _, _ := m.ready.snapshot()
	return p.String()
}

// IsReady reports whether the member is ready (not storage-full).
func (m *Member) IsReady() bool {
	p, _, _ := m.ready.snapshot()
	return p == phaseReady
}

// WaitUntilReady blocks until the member is ready (returns nil; a
// "storage-full" member is waited for until space is freed), ctx ends
// (returns ctx.Err()), or the member cannot become ready: after Stop, or
// once its storage failed, it returns an error that errors.Is
// errs.ErrClosed (and names the failure), and if Start fails one that
// errors.Is errs.ErrNotStarted. It may be called before Start. It wakes on each
// change of the readiness state, without polling.
func (m *Member) WaitUntilReady(ctx context.Context) error {
	for {
		p, sealed, changed := m.ready.snapshot()
		switch {
		case p == phaseReady:
			return nil
		case p == phaseStorageFailed:
			return fmt.Errorf("waiting until ready: the member stopped: %w: %w", m.ready.failure(), errs.ErrClosed)
		case sealed:
			return fmt.Errorf("waiting until ready: %w", errs.ErrClosed)
		case p == phaseStopped:
			return fmt.Errorf("waiting until ready: start failed: %w", errs.ErrNotStarted)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
