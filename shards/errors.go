package shards

import (
	"context"
	"errors"
	"fmt"

	"github.com/lni/dragonboat/v4"
)

var (
	// ErrClosed is returned by calls made on a Host after Close, and by calls
	// still waiting when Close runs.
	ErrClosed = errors.New("graft: shards: closed")
	// ErrTimeout is returned when a request did not complete before its
	// deadline. A timed-out proposal may still commit later.
	ErrTimeout = errors.New("graft: shards: timeout")
	// ErrShardNotFound is returned when the shard is not started on this Host.
	ErrShardNotFound = errors.New("graft: shards: shard not found")
	// ErrNotReady is returned when the shard cannot serve the request yet, for
	// example because it has no leader or is still starting. It is retryable.
	ErrNotReady = errors.New("graft: shards: shard not ready")
)

// IsRetryable reports whether err is transient, so that the same request may
// succeed if retried later: ErrNotReady and ErrTimeout. Note that a timed-out
// proposal may have committed; retrying it may apply the command twice unless
// the command is idempotent.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrNotReady) || errors.Is(err, ErrTimeout)
}

// translate maps a Dragonboat error onto this package's sentinels, keeping
// the original text. Errors without a counterpart are returned unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, ErrTimeout),
		errors.Is(err, ErrShardNotFound), errors.Is(err, ErrNotReady):
		return err
	case errors.Is(err, dragonboat.ErrClosed), errors.Is(err, dragonboat.ErrShardClosed):
		sentinel = ErrClosed
	case errors.Is(err, dragonboat.ErrShardNotFound):
		sentinel = ErrShardNotFound
	case errors.Is(err, dragonboat.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		sentinel = ErrTimeout
	case errors.Is(err, dragonboat.ErrShardNotReady),
		errors.Is(err, dragonboat.ErrShardNotInitialized),
		errors.Is(err, dragonboat.ErrSystemBusy),
		errors.Is(err, dragonboat.ErrAborted):
		sentinel = ErrNotReady
	default:
		return err
	}
	return fmt.Errorf("%w: %v", sentinel, err)
}
