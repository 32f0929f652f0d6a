package graft

import (
	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/errs"
)

// Sentinel errors. Errors returned by the Manager wrap these, so test them
// with errors.Is; the message adds what exactly was wrong.
var (
	// ErrInvalidConfig: the configuration was refused (Start).
	ErrInvalidConfig = errs.ErrInvalidConfig
	// ErrNotStarted: the Manager has not been started.
	ErrNotStarted = errs.ErrNotStarted
	// ErrClosed: the Manager has been stopped.
	ErrClosed = errs.ErrClosed
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errs.ErrAlreadyStarted
	// ErrInvalidWorkflow: a workflow trigger was refused (ID, nodes, state
	// or metadata); nothing was stored.
	ErrInvalidWorkflow = errs.ErrInvalidWorkflow
	// ErrWorkflowExists: a workflow with that ID already exists.
	ErrWorkflowExists = errs.ErrWorkflowExists
	// ErrWorkflowNotFound: no workflow has that ID (it never existed or was
	// purged after its retention period).
	ErrWorkflowNotFound = errs.ErrWorkflowNotFound
	// ErrInvalidTransition: the workflow's status does not allow the
	// operation (e.g. pausing a completed workflow).
	ErrInvalidTransition = errs.ErrInvalidTransition
	// ErrTimeout: the operation did not complete in time; it may still take
	// effect.
	ErrTimeout = errs.ErrTimeout
	// ErrNotReady: storage is not ready (e.g. no shard leader yet); retry.
	ErrNotReady = errs.ErrNotReady
	// ErrStorageFull: accepting the workflow would take the data
	// directory's disk below Expert.MinFreeDiskBytes free; new workflows are
	// refused until space is freed (running ones continue). Readiness is
	// "storage-full" while the disk is below the floor.
	ErrStorageFull = errs.ErrStorageFull
	// ErrNotAdmitted: the cluster's members did not admit this member
	// (Start): the cluster policy refused it (wrong key, or a node ID the
	// strict policy does not list), or they never saw it.
	ErrNotAdmitted = errs.ErrNotAdmitted
	// ErrInvalidCommand: a dev command was refused (name, params, size).
	ErrInvalidCommand = errs.ErrInvalidCommand
	// ErrUnknownCommand: no handler is registered for the command.
	ErrUnknownCommand = errs.ErrUnknownCommand
	// ErrInvalidHandler: an event handler was refused (a nil function).
	ErrInvalidHandler = errs.ErrInvalidHandler
	// ErrInvalidMetadata: SetMemberMetadata refused a key or value (the
	// message names the bound: MaxMetadataKeys, MaxMetadataKeyLen,
	// MaxMetadataValueLen, or the 64 KiB member record).
	ErrInvalidMetadata = errs.ErrInvalidMetadata
	// ErrInvalidListOptions: ListWorkflows or CountWorkflows refused its
	// options (an unknown status, a limit outside 0..MaxListLimit, a
	// metadata filter over its bounds, an empty time range, or a page
	// token that is malformed or was made for other filters); the message
	// names which.
	ErrInvalidListOptions = errs.ErrInvalidListOptions

	// ErrInvalidNode: RegisterNode refused a node (see the message).
	ErrInvalidNode = executor.ErrInvalidNode
	// ErrDuplicateNode: a node with that name is already registered.
	ErrDuplicateNode = executor.ErrDuplicateNode
	// ErrNodeNotFound: no node with that name is registered.
	ErrNodeNotFound = executor.ErrNodeNotFound
)

// IsRetryable reports whether err is transient, so the same call may
// succeed later.
func IsRetryable(err error) bool { return errs.IsRetryable(err) }
