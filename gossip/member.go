package gossip

import (
	"fmt"
	"maps"
	"time"

	"github.com/hashicorp/serf/serf"
)

// MemberStatus is a member's state as seen by this member.
type MemberStatus int

const (
	// StatusUnknown is the zero value.
	StatusUnknown MemberStatus = iota
	// StatusAlive: the member answers probes.
	StatusAlive
	// StatusLeaving: the member announced a graceful leave.
	StatusLeaving
	// StatusLeft: the member left gracefully.
	StatusLeft
	// StatusFailed: the member stopped answering probes without leaving.
	StatusFailed
)

// String returns "alive", "leaving", "left", "failed" or "unknown".
func (s MemberStatus) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusLeaving:
		return "leaving"
	case StatusLeft:
		return "left"
	case StatusFailed:
		return "failed"
	default:
		return "unknown"
	}
}

// Member is a cluster member as seen through gossip.
type Member struct {
	// ID is the member's NodeID.
	ID string
	// Addr is the member's advertised gossip IP.
	Addr string
	// Port is the member's advertised gossip port.
	Port int
	// Tags are the member's tags (a copy; safe to modify).
	Tags map[string]string
	// Status is the member's state.
	Status MemberStatus
}

// Address returns Addr:Port.
func (m Member) Address() string { return joinHostPort(m.Addr, m.Port) }

func memberFromSerf(m serf.Member) Member {
	var status MemberStatus
	switch m.Status {
	case serf.StatusAlive:
		status = StatusAlive
	case serf.StatusLeaving:
		status = StatusLeaving
	case serf.StatusLeft:
		status = StatusLeft
	case serf.StatusFailed:
		status = StatusFailed
	}
	return Member{
		ID:     m.Name,
		Addr:   m.Addr.String(),
		Port:   int(m.Port),
		Tags:   maps.Clone(m.Tags),
		Status: status,
	}
}

// EventKind is the kind of a membership Event.
type EventKind int

const (
	// EventJoin: a member joined (this member itself included, once, at
	// Start).
	EventJoin EventKind = iota + 1
	// EventLeave: a member left gracefully. Rarely, when memberlist's
	// dead notice arrives before Serf's leave intent, an EventFailed comes
	// first and the EventLeave follows.
	EventLeave
	// EventFailed: a member stopped answering probes without leaving.
	EventFailed
	// EventUpdate: a member changed its tags.
	EventUpdate
	// EventReap: a failed or left member was removed from the member list
	// for good (Serf's reconnect/tombstone timeouts).
	EventReap
)

// String returns "join", "leave", "failed", "update" or "reap".
func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventFailed:
		return "failed"
	case EventUpdate:
		return "update"
	case EventReap:
		return "reap"
	default:
		return fmt.Sprintf("event(%d)", int(k))
	}
}

// Event is a membership change seen by this member.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// Member is the member it happened to, with its status after the change.
	Member Member
	// At is when this member observed the change.
	At time.Time
}

func eventKindFromSerf(t serf.EventType) (EventKind, bool) {
	switch t {
	case serf.EventMemberJoin:
		return EventJoin, true
	case serf.EventMemberLeave:
		return EventLeave, true
	case serf.EventMemberFailed:
		return EventFailed, true
	case serf.EventMemberUpdate:
		return EventUpdate, true
	case serf.EventMemberReap:
		return EventReap, true
	default:
		return 0, false
	}
}
