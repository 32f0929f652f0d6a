package crdt

import "errors"

// ErrTooLarge is wrapped by every error that refuses a value beyond one of
// the package's bounds (MaxRecordSize, MaxMetadataKeys, MaxMembers, ...).
// The message names the field and gives the size and the limit.
var ErrTooLarge = errors.New("crdt: value exceeds its bound")

// ErrInvalid is wrapped by every error that refuses malformed input: bytes
// that are not the canonical encoding of a value, an empty or non-UTF-8
// name, a zero version. The message names what is wrong.
var ErrInvalid = errors.New("crdt: invalid value")

// ErrStaleIncarnation is returned by local updates whose incarnation is lower
// than one the state has already seen for that member, or not higher than
// the incarnation the member was tombstoned at. The caller must restart the
// member with a higher incarnation.
var ErrStaleIncarnation = errors.New("crdt: incarnation is stale")

// ErrUnknownMember is returned by Leave for a member the state has no record
// of.
var ErrUnknownMember = errors.New("crdt: unknown member")
