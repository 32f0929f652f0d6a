// Package errs holds graft's sentinel errors, so that the member's internal
// packages and the root package share them: the root re-exports each one
// (graft.ErrClosed is errs.ErrClosed), so errors.Is works across the
// boundary. It also maps storage errors to the sentinels (Translate) and
// classifies them (IsRetryable). It imports only shards, for the storage
// errors it maps.
package errs

import (
	"errors"
	"fmt"

	"github.com/eleven-am/graft/shards"
)

// The sentinels; graft's errors.go documents each one.
var (
	// ErrInvalidConfig: the configuration was refused.
	ErrInvalidConfig = errors.New("graft: invalid config")
	// ErrNotStarted: the member has not been started.
	ErrNotStarted = errors.New("graft: not started")
	// ErrClosed: the member has been stopped.
	ErrClosed = errors.New("graft: closed")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("graft: already started")
	// ErrInvalidWorkflow: a workflow trigger was refused.
	ErrInvalidWorkflow = errors.New("graft: invalid workflow")
	// ErrWorkflowExists: a workflow with that ID already exists.
	ErrWorkflowExists = errors.New("graft: workflow already exists")
	// ErrWorkflowNotFound: no workflow has that ID.
	ErrWorkflowNotFound = errors.New("graft: workflow not found")
	// ErrInvalidTransition: the workflow's status does not allow the operation.
	ErrInvalidTransition = errors.New("graft: invalid workflow transition")
	// ErrTimeout: the operation did not complete in time.
	ErrTimeout = errors.New("graft: timeout")
	// ErrNotReady: storage is not ready; retry.
	ErrNotReady = errors.New("graft: not ready")
	// ErrStorageFull: the data directory's disk is below its floor.
	ErrStorageFull = errors.New("graft: storage full")
	// ErrNotAdmitted: the cluster's members did not admit this member.
	ErrNotAdmitted = errors.New("graft: not admitted to the cluster")
	// ErrInvalidCommand: a dev command was refused.
	ErrInvalidCommand = errors.New("graft: invalid command")
	// ErrUnknownCommand: no handler is registered for the command.
	ErrUnknownCommand = errors.New("graft: unknown command")
	// ErrInvalidHandler: an event handler was refused.
	ErrInvalidHandler = errors.New("graft: invalid handler")
	// ErrInvalidMetadata: member metadata was refused (a bound exceeded,
	// an empty key, invalid UTF-8).
	ErrInvalidMetadata = errors.New("graft: invalid member metadata")
	// ErrInvalidListOptions: a list or count of workflows was refused.
	ErrInvalidListOptions = errors.New("graft: invalid list options")
)

// IsRetryable reports whether err is transient, so the same call may
// succeed later.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrNotReady)
}

// Translate maps storage errors to the sentinels, keeping the original
// text.
func Translate(err error) error {
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
