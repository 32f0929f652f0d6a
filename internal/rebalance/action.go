package rebalance

import (
	"fmt"
	"strings"
)

// Kind is what an Action does.
type Kind int

const (
	// Nothing means no change is due; Reason says why.
	Nothing Kind = iota
	// RemoveDeparted removes Replica, whose member is gone for good (rule
	// 1).
	RemoveDeparted
	// Add adds Replica, a never-used ID, on Member at Target; the
	// member is then asked to start it (rule 2).
	Add
	// Confirm asks Member to confirm that Replica runs and has caught up
	// (rule 3). It changes no membership: plan again with the answer.
	Confirm
	// RemoveLost removes Replica, which its member says it does not hold;
	// a new replica replaces it (rule 3).
	RemoveLost
	// RemoveUnplaced removes Replica, which the placement no longer names
	// (rule 3). When it is the leader's own, HandOffTo is set and
	// leadership moves there instead; the new leader removes it.
	RemoveUnplaced
	// TransferLeader hands leadership to Replica, on the preferred leader
	// Member (rule 4).
	TransferLeader
)

// String returns the kind's name as scripts print it.
func (k Kind) String() string {
	switch k {
	case Nothing:
		return "nothing"
	case RemoveDeparted:
		return "remove-departed"
	case Add:
		return "add"
	case Confirm:
		return "confirm"
	case RemoveLost:
		return "remove-lost"
	case RemoveUnplaced:
		return "remove-unplaced"
	case TransferLeader:
		return "transfer-leader"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Action is one step Plan decides on.
type Action struct {
	// Kind is what to do.
	Kind Kind
	// Shard is the shard it applies to.
	Shard uint64
	// Replica is the replica added, confirmed, removed, or handed
	// leadership.
	Replica uint64
	// Member is Replica's member; "" when no member has its target.
	Member string
	// Target names the member an added replica runs on (Add only).
	Target string
	// ConfigChangeID is the membership version the change was decided on:
	// pass it on so that a change based on a stale membership is refused.
	ConfigChangeID uint64
	// HandOffTo, on a RemoveUnplaced of the leader's own replica, is the
	// replica to hand leadership to first; HandOffMember is its member.
	HandOffTo     uint64
	HandOffMember string
	// Reason says why: the cause of a removal, or why Nothing is due.
	Reason string
}

// String describes the action in one line, as scripts print it.
func (a Action) String() string {
	var b strings.Builder
	b.WriteString(a.Kind.String())
	switch a.Kind {
	case Nothing:
	case Add:
		fmt.Fprintf(&b, " replica %d on %s at %s", a.Replica, a.Member, a.Target)
	case TransferLeader, Confirm:
		fmt.Fprintf(&b, " replica %d on %s", a.Replica, a.Member)
	default:
		fmt.Fprintf(&b, " replica %d on %s", a.Replica, orUnknown(a.Member))
	}
	if a.Kind == Add || a.Kind == RemoveDeparted || a.Kind == RemoveLost || a.Kind == RemoveUnplaced {
		fmt.Fprintf(&b, " (config %d)", a.ConfigChangeID)
	}
	if a.HandOffTo != 0 {
		fmt.Fprintf(&b, ", handing leadership to replica %d on %s first", a.HandOffTo, a.HandOffMember)
	}
	if a.Reason != "" {
		b.WriteString(": " + a.Reason)
	}
	return b.String()
}
