package graft

import (
	"errors"
	"fmt"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/shards"
)

// Sentinel errors. Errors returned by the Manager wrap these, so test them
// with errors.Is; the message adds what exactly was wrong.
var (
	// ErrInvalidConfig: the configuration was refused (Start).
	ErrInvalidConfig = errors.New("graft: invalid config")
	// ErrNotStarted: the Manager has not been started.
	ErrNotStarted = errors.New("graft: not started")
	// ErrClosed: the Manager has been stopped.
	ErrClosed = errors.New("graft: closed")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("graft: already started")
	// ErrInvalidWorkflow: a workflow trigger was refused (ID, nodes, state
	// or metadata); nothing was stored.
	ErrInvalidWorkflow = errors.New("graft: invalid workflow")
	// ErrWorkflowExists: a workflow with that ID already exists.
	ErrWorkflowExists = errors.New("graft: workflow already exists")
	// ErrWorkflowNotFound: no workflow has that ID (it never existed or was
	// purged after its retention period).
	ErrWorkflowNotFound = errors.New("graft: workflow not found")
	// ErrInvalidTransition: the workflow's status does not allow the
	// operation (e.g. pausing a completed workflow).
	ErrInvalidTransition = errors.New("graft: invalid workflow transition")
	// ErrTimeout: the operation did not complete in time; it may still take
	// effect.
	ErrTimeout = errors.New("graft: timeout")
	// ErrNotReady: storage is not ready (e.g. no shard leader yet); retry.
	ErrNotReady = errors.New("graft: not ready")
	// ErrStorageFull: accepting the workflow would take the data
	// directory's disk below Expert.MinFreeDiskBytes free; new workflows are
	// refused until space is freed (running ones continue). Readiness is
	// "storage-full" while the disk is below the floor.
	ErrStorageFull = errors.New("graft: storage full")
	// ErrNotAdmitted: the cluster's members did not admit this member
	// (Start): the cluster policy refused it (wrong key, or a node ID the
	// strict policy does not list), or they never saw it.
	ErrNotAdmitted = errors.New("graft: not admitted to the cluster")
	// ErrInvalidCommand: a dev command was refused (name, params, size).
	ErrInvalidCommand = errors.New("graft: invalid command")
	// ErrUnknownCommand: no handler is registered for the command.
	ErrUnknownCommand = errors.New("graft: unknown command")
	// ErrInvalidHandler: an event handler was refused (a nil function).
	ErrInvalidHandler = errors.New("graft: invalid handler")

	// ErrInvalidNode: RegisterNode refused a node (see the message).
	ErrInvalidNode = executor.ErrInvalidNode
	// ErrDuplicateNode: a node with that name is already registered.
	ErrDuplicateNode = executor.ErrDuplicateNode
	// ErrNodeNotFound: no node with that name is registered.
	ErrNodeNotFound = executor.ErrNodeNotFound
)

// IsRetryable reports whether err is transient, so the same call may
// succeed later.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrNotReady)
}

// translate maps storage errors to the package's sentinels, keeping the
// original text.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, shards.ErrClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, shards.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.Is(err, shards.ErrNotReady), errors.Is(err, shards.ErrShardNotFound):
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return err
}
