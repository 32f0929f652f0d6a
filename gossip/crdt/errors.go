package crdt

import "errors"

// Sentinel errors returned by this package. Test them with errors.Is; the
// wrapping message names the member, the field, the size and the limit.
var (
	// ErrTooLarge is wrapped by every error that refuses a value beyond
	// one of the package's bounds (MaxRecordSize, MaxMetadataKeys,
	// MaxMembers, MaxStateSize, ...).
	ErrTooLarge = errors.New("graft: crdt value too large")
	// ErrInvalid is wrapped by every error that refuses malformed input:
	// bytes that are not the canonical encoding of a value (truncated,
	// trailing bytes, unsorted, overlong varints), an empty or non-UTF-8
	// name, a zero version.
	ErrInvalid = errors.New("graft: invalid crdt value")
	// ErrStaleIncarnation is returned by local updates whose incarnation
	// is lower than one the state has already seen for that member, or not
	// higher than the incarnation the member was tombstoned at. The caller
	// must restart the member's record at a higher incarnation.
	ErrStaleIncarnation = errors.New("graft: crdt incarnation is stale")
	// ErrUnknownMember is returned by Leave for a member the state has no
	// record of.
	ErrUnknownMember = errors.New("graft: crdt member unknown")
)
