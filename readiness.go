package graft

import (
	"context"

	"github.com/eleven-am/graft/internal/member"
)

// Readiness states returned by GetReadinessState.
const (
	// ReadinessStarting: Start has not been called yet, or is opening
	// storage and electing shard leaders.
	ReadinessStarting = member.Starting
	// ReadinessJoining: the member waits to bootstrap or join its cluster
	// (set by the cluster's bootstrap wait).
	ReadinessJoining = member.Joining
	// ReadinessReady: Start succeeded; StartWorkflow can succeed.
	ReadinessReady = member.Ready
	// ReadinessStopped: Stop was called, or Start failed (Start may be
	// called again after a failure, not after Stop).
	ReadinessStopped = member.Stopped
	// ReadinessStorageFull: the member is running but its data directory's
	// disk is below Expert.MinFreeDiskBytes free, so StartWorkflow refuses
	// new workflows with ErrStorageFull; running workflows go on. It
	// returns to "ready" by itself, within about a second of space being
	// freed.
	ReadinessStorageFull = member.StorageFull
	// ReadinessStorageFailed: a write or fsync of the member's storage
	// failed for good (an I/O error, or no space even after the emergency
	// reserve was released). Pebble and Dragonboat cannot go on after
	// that, so the member stopped by itself: Health reports it neither
	// live nor ready and names the failure, StartWorkflow returns
	// ErrClosed, and its shards move to the other members. What was
	// committed before the failure is kept; restart the process on the
	// repaired disk. (A failure under Pebble's own commit can instead end
	// the process, as Pebble panics there.)
	ReadinessStorageFailed = member.StorageFailed
)

// GetReadinessState names what the member is doing: "ready" once
// StartWorkflow can succeed (Start returned nil), otherwise why not:
// "starting" (before and during Start), "joining" (waiting to bootstrap or
// join the cluster), "storage-full" (running, but its disk is below
// Expert.MinFreeDiskBytes free, so new workflows are refused with
// ErrStorageFull; back to "ready" by itself once space is freed),
// "storage-failed" (a storage write failed and the member stopped) or
// "stopped" (after Stop, or after Start failed). The values are the
// Readiness* constants.
func (m *Manager) GetReadinessState() string { return m.member.Readiness() }

// IsReady reports whether StartWorkflow can succeed, i.e. whether
// GetReadinessState is "ready" (false while "storage-full").
func (m *Manager) IsReady() bool { return m.member.IsReady() }

// WaitUntilReady blocks until the member is ready (returns nil; a
// "storage-full" member is waited for until space is freed), ctx ends
// (returns ctx.Err()), or the member cannot become ready: after Stop, or
// once its storage failed, it returns an error that errors.Is ErrClosed,
// and if Start fails one that
// errors.Is ErrNotStarted. It may be called before Start. It wakes on each
// change of the readiness state, without polling.
func (m *Manager) WaitUntilReady(ctx context.Context) error { return m.member.WaitUntilReady(ctx) }
