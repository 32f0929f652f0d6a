package gossip

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by this package. Test them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every configuration error from New.
	ErrInvalidConfig = errors.New("graft: invalid gossip config")
	// ErrNotStarted is returned by methods that need a started Node.
	ErrNotStarted = errors.New("graft: gossip not started")
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("graft: gossip already started")
	// ErrClosed is returned once the Node has been stopped or has left.
	ErrClosed = errors.New("graft: gossip closed")
	// ErrPayloadTooLarge is matched by *PayloadTooLargeError.
	ErrPayloadTooLarge = errors.New("graft: gossip payload too large")
	// ErrNoQueryHandler is the reply error of a member that has no
	// OnQuery handler.
	ErrNoQueryHandler = errors.New("graft: no query handler")
)

// PayloadTooLargeError reports a user event or query refused before it was
// sent because name plus payload exceed the limit. It matches
// ErrPayloadTooLarge.
type PayloadTooLargeError struct {
	// Kind is "user event" or "query".
	Kind string
	// Size is len(name) + len(payload) in bytes.
	Size int
	// Limit is the largest accepted Size in bytes.
	Limit int
}

// Error implements error.
func (e *PayloadTooLargeError) Error() string {
	return fmt.Sprintf("graft: gossip %s of %d bytes (name + payload) exceeds the limit of %d bytes", e.Kind, e.Size, e.Limit)
}

// Is reports whether target is ErrPayloadTooLarge.
func (e *PayloadTooLargeError) Is(target error) bool { return target == ErrPayloadTooLarge }

// RemoteError is the error a member returned from its OnQuery handler (or
// ErrNoQueryHandler's text), carried back in a QueryResponse.
type RemoteError struct {
	// Node is the ID of the member that replied.
	Node string
	// Msg is the text of the member's error.
	Msg string
}

// Error implements error.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("graft: query failed on %s: %s", e.Node, e.Msg)
}
