package shards

import (
	"github.com/google/uuid"
)

// Raft targets. Graft installs its own node registry (see registry.go), so
// Dragonboat names every replica by its member's NodeHost ID, a UUID,
// rather than by a Raft address: initial members, added replicas and the
// SourceAddress of message batches all carry NodeHost IDs, and the
// registry turns one into the member's current Raft address when a message
// is sent. Shards whose membership was committed before Graft had its own
// registry name replicas by Raft address ("host:port"); such a target
// stays valid and resolves to itself.

// nodeHostNamespace is the UUID namespace of NodeHostIDOf.
var nodeHostNamespace = uuid.MustParse("8f3c2a4e-5b1d-4c6e-9a7f-2d0e1b3c4a5f")

// NodeHostIDOf returns the NodeHost ID a Host with Config.NodeID nodeID
// gives a new data directory: a name-based (SHA-1) UUID of the node ID, so
// that any member can compute another's target from its node ID. A data
// directory created before Host did this keeps the random ID Dragonboat
// gave it (see Host.NodeHostID).
func NodeHostIDOf(nodeID string) string {
	return uuid.NewSHA1(nodeHostNamespace, []byte(nodeID)).String()
}

// IsNodeHostID reports whether s is a NodeHost ID in the canonical form
// Dragonboat writes (36 characters, lower-case hex with hyphens). Other
// spellings uuid.Parse accepts are refused, so that one ID has one spelling.
func IsNodeHostID(s string) bool {
	if len(s) != 36 {
		return false
	}
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// validTarget reports whether s may name a replica: a canonical NodeHost
// ID, or a Raft address (host:port) as recorded by shards created before
// NodeHost ID targets.
func validTarget(s string) bool { return IsNodeHostID(s) || validAddress(s) }
