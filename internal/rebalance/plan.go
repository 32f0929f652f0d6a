package rebalance

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Status is a member's state as gossip reports it, as far as placement
// cares.
type Status int

const (
	// Left means the member left or is leaving the cluster, or its state is
	// unknown: it is gone for good at once.
	Left Status = iota
	// Alive means gossip sees the member alive.
	Alive
	// Failed means gossip lost contact with the member. It keeps its
	// replicas until it has been failed for FailureGrace.
	Failed
)

// String returns "left", "alive" or "failed".
func (s Status) String() string {
	switch s {
	case Left:
		return "left"
	case Alive:
		return "alive"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Member is one member of the cluster as the planning leader sees it.
type Member struct {
	// ID is the member's node ID.
	ID string
	// Target is the Raft target a replica added on the member is named
	// by in the shard's membership: its NodeHost ID.
	Target string
	// Aliases are other targets that name the member's replicas in
	// memberships committed earlier (its Raft address, in shards created
	// before NodeHost ID targets).
	Aliases []string
	// Status is the member's gossip state.
	Status Status
	// FailedSince is when the leader first saw the member failed; used
	// only when Status is Failed. The zero time counts as Now (the grace
	// period starts).
	FailedSince time.Time
}

// goneForGood reports whether m is gone for good at now: it left, or has
// been failed for at least grace.
func (m Member) goneForGood(now time.Time, grace time.Duration) bool {
	switch m.Status {
	case Alive:
		return false
	case Failed:
		return now.Sub(cmp.Or(m.FailedSince, now)) >= grace
	}
	return true
}

// Eligible returns, sorted, the IDs of the members placement may give
// replicas to at now: those alive, and those failed for less than grace (a
// short flap moves nothing). Members that left are out at once.
func Eligible(members map[string]Member, now time.Time, grace time.Duration) []string {
	var ids []string
	for id, m := range members {
		if m.Status == Alive || m.Status == Failed && !m.goneForGood(now, grace) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Membership is a shard's Raft membership as committed in its log.
type Membership struct {
	// ConfigChangeID is the version of the membership: a change proposed
	// with a stale one is refused by Raft.
	ConfigChangeID uint64
	// Replicas maps each voting replica ID to its Raft target.
	Replicas map[uint64]string
	// Removed holds the IDs of replicas removed from the shard; IDs are
	// never reused.
	Removed map[uint64]struct{}
}

// NextReplicaID returns a replica ID never used in the shard: one above
// every current and removed ID.
func (m Membership) NextReplicaID() uint64 {
	var top uint64
	for id := range m.Replicas {
		top = max(top, id)
	}
	for id := range m.Removed {
		top = max(top, id)
	}
	return top + 1
}

// Answer is how a member answered, during the current pass, a request to
// confirm one of its replicas that did not succeed.
type Answer int

const (
	// NoAnswer means the request failed or timed out: the replica counts
	// as not confirmed yet, and is not asked again in the same pass.
	NoAnswer Answer = iota + 1
	// NotHeld means the member does not hold the replica (its data
	// directory was replaced, say): the replica is removed and a new one
	// replaces it.
	NotHeld
)

// String returns "no answer" or "not held".
func (a Answer) String() string {
	switch a {
	case NoAnswer:
		return "no answer"
	case NotHeld:
		return "not held"
	}
	return fmt.Sprintf("Answer(%d)", int(a))
}

// Input is everything Plan decides on. Plan does not modify it.
type Input struct {
	// Shard is the shard planned for.
	Shard uint64
	// Self is the ID of the member planning, which leads the shard.
	Self string
	// Membership is the shard's committed membership.
	Membership Membership
	// Placed is the shard's replica set from the placement, preferred
	// leader first.
	Placed []string
	// Members holds every member of the cluster the leader knows, by ID,
	// Self included.
	Members map[string]Member
	// UnknownSince maps the Raft target of a replica that no member has
	// to when the leader first saw it so. A missing entry counts as Now.
	UnknownSince map[string]time.Time
	// Confirmed maps a replica ID to when its member last confirmed it
	// runs and has caught up.
	Confirmed map[uint64]time.Time
	// Answers holds the replicas asked during the current pass without
	// success.
	Answers map[uint64]Answer
	// Now is the time of the decision.
	Now time.Time
	// FailureGrace is how long a failed member keeps its replicas.
	FailureGrace time.Duration
	// ConfirmTTL is how long a confirmation holds; after it the leader
	// asks again, which finds replicas lost since.
	ConfirmTTL time.Duration
}

// confirmed reports whether replica rid confirmed within ConfirmTTL.
func (in *Input) confirmed(rid uint64) bool {
	at, ok := in.Confirmed[rid]
	return ok && in.Now.Sub(at) < in.ConfirmTTL
}

// alive reports whether member id is known and alive.
func (in *Input) alive(id string) bool {
	m, ok := in.Members[id]
	return ok && m.Status == Alive
}

// owners maps each replica of the membership to its member's ID, "" when
// no member has the replica's target, and each member to its replica. A
// target claimed by several members (a member replaced at the same
// address) goes to an alive one first, then the lowest ID.
func (in *Input) owners() (owner map[uint64]string, have map[string]uint64) {
	byRaft := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(in.Members)) {
		for _, addr := range append([]string{in.Members[id].Target}, in.Members[id].Aliases...) {
			if prev, taken := byRaft[addr]; addr == "" || taken && (in.alive(prev) || !in.alive(id)) {
				continue
			}
			byRaft[addr] = id
		}
	}
	owner = map[uint64]string{}
	have = map[string]uint64{}
	for _, rid := range slices.Sorted(maps.Keys(in.Membership.Replicas)) {
		id := byRaft[in.Membership.Replicas[rid]]
		owner[rid] = id
		if id != "" {
			have[id] = rid
		}
	}
	return owner, have
}

// Plan returns the one membership change that brings the shard closer to
// its placement, or an Action of Kind Nothing saying why none is due. See
// the package documentation for the rules.
func Plan(in Input) Action {
	owner, have := in.owners()
	mem := in.Membership
	rids := slices.Sorted(maps.Keys(mem.Replicas))
	act := Action{Shard: in.Shard, ConfigChangeID: mem.ConfigChangeID}
	nothing := func(format string, args ...any) Action {
		return Action{Kind: Nothing, Shard: in.Shard, Reason: fmt.Sprintf(format, args...)}
	}

	// 1. Replicas of members gone for good.
	for _, rid := range rids {
		id := owner[rid]
		if id == in.Self || slices.Contains(in.Placed, id) || len(mem.Replicas) == 1 {
			continue
		}
		var why string
		if id == "" {
			since := cmp.Or(in.UnknownSince[mem.Replicas[rid]], in.Now)
			if in.Now.Sub(since) < in.FailureGrace {
				continue
			}
			why = fmt.Sprintf("no member has its target for %s", in.Now.Sub(since))
		} else {
			m := in.Members[id]
			if !m.goneForGood(in.Now, in.FailureGrace) {
				continue
			}
			why = m.Status.String()
			if m.Status == Failed {
				why = fmt.Sprintf("failed for %s", in.Now.Sub(cmp.Or(m.FailedSince, in.Now)))
			}
		}
		act.Kind, act.Replica, act.Member, act.Reason = RemoveDeparted, rid, id, why
		return act
	}

	// 2. Replicas for placed members that have none, but only while every
	// current replica is up. (A down replica is removed first once it has
	// been gone for FailureGrace, or comes back.)
	for _, rid := range rids {
		if id := owner[rid]; id != in.Self && !in.alive(id) {
			return nothing("replica %d (%s) is down: no replica is added until it is back or removed", rid, orUnknown(id))
		}
	}
	for _, id := range in.Placed {
		if _, ok := have[id]; ok || !in.alive(id) {
			continue
		}
		act.Kind, act.Replica, act.Member, act.Target = Add, mem.NextReplicaID(), id, in.Members[id].Target
		act.Reason = "placed"
		return act
	}

	// 3. Placed replicas running and caught up; then remove the others.
	var pending []string
	for _, id := range in.Placed {
		rid, ok := have[id]
		if id == in.Self || ok && in.confirmed(rid) {
			continue
		}
		switch {
		case !ok:
			pending = append(pending, fmt.Sprintf("%s has no replica", id))
		case !in.alive(id):
			pending = append(pending, fmt.Sprintf("%s is down", id))
		case in.Answers[rid] == NotHeld:
			act.Kind, act.Replica, act.Member, act.Reason = RemoveLost, rid, id, "its member does not hold it"
			return act
		case in.Answers[rid] == NoAnswer:
			pending = append(pending, fmt.Sprintf("replica %d (%s) did not confirm", rid, id))
		default:
			act.Kind, act.Replica, act.Member = Confirm, rid, id
			act.Reason = "not confirmed"
			if _, ok := in.Confirmed[rid]; ok {
				act.Reason = "confirmation expired"
			}
			return act
		}
	}
	var extra []string
	for id := range have {
		if !slices.Contains(in.Placed, id) {
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		if len(pending) > 0 {
			return nothing("%s stays until every placed replica confirmed: %s", extra[0], pending[0])
		}
		id := extra[0]
		act.Kind, act.Replica, act.Member, act.Reason = RemoveUnplaced, have[id], id, "no longer placed"
		if id == in.Self {
			to := preferred(in.Placed)
			rid, ok := have[to]
			if !ok {
				return nothing("the leader's replica is no longer placed but no placed member has a replica")
			}
			act.HandOffTo, act.HandOffMember = rid, to
		}
		return act
	}

	// 4. Leadership on the preferred leader.
	pref := preferred(in.Placed)
	switch rid, ok := have[pref]; {
	case pref == in.Self:
		return nothing("placed, and led by its preferred leader")
	case !in.alive(pref):
		return nothing("placed; preferred leader %s is down", orUnknown(pref))
	case !ok || !in.confirmed(rid):
		return nothing("placed; waiting for preferred leader %s to confirm", pref)
	default:
		act.Kind, act.Replica, act.Member, act.Reason = TransferLeader, rid, pref, "preferred leader"
		return act
	}
}

// preferred returns the placed replica set's preferred leader, or "".
func preferred(placed []string) string {
	if len(placed) == 0 {
		return ""
	}
	return placed[0]
}

// orUnknown returns id, or a placeholder for a replica no member has.
func orUnknown(id string) string {
	return cmp.Or(id, "unknown member")
}
