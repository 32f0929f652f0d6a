package rebalance

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// epoch is time zero of scripts and simulations; times print as offsets
// from it.
var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// raftAddr is the Raft address scripts and simulations give member id.
func raftAddr(id string) string { return id + ".raft" }

// sim is a shard under rebalancing: Plan's input, and how the members
// answer confirmations. It applies actions as the cluster would, without
// failures of the membership changes themselves.
type sim struct {
	in Input
	// lost holds the replicas whose members no longer hold them: asked to
	// confirm, they answer NotHeld.
	lost map[uint64]bool
	// silent holds the replicas whose members do not answer.
	silent map[uint64]bool
}

// newSim returns a simulation of shard 1 led by self with no members.
func newSim(self string) *sim {
	return &sim{
		in: Input{Shard: 1, Self: self, Members: map[string]Member{}, UnknownSince: map[string]time.Time{},
			Confirmed: map[uint64]time.Time{}, Answers: map[uint64]Answer{}, Now: epoch,
			FailureGrace: 30 * time.Second, ConfirmTTL: 30 * time.Second,
			Membership: Membership{Replicas: map[uint64]string{}, Removed: map[uint64]struct{}{}}},
		lost: map[uint64]bool{}, silent: map[uint64]bool{},
	}
}

// plan plans the next action.
func (s *sim) plan() Action { return Plan(s.in) }

// apply carries out a as the Reconciler and the cluster would. A Confirm
// records the member's answer; any other action ends the pass, which
// clears the answers. A change of leader hands planning to the new leader,
// which holds no confirmations yet.
func (s *sim) apply(a Action) error {
	mem := &s.in.Membership
	change := func() error {
		if a.ConfigChangeID != mem.ConfigChangeID {
			return fmt.Errorf("%s: stale config %d, membership is at %d", a, a.ConfigChangeID, mem.ConfigChangeID)
		}
		mem.ConfigChangeID++
		return nil
	}
	switch a.Kind {
	case Nothing:
	case Confirm:
		if _, ok := mem.Replicas[a.Replica]; !ok {
			return fmt.Errorf("%s: no such replica", a)
		}
		switch {
		case s.lost[a.Replica]:
			s.in.Answers[a.Replica] = NotHeld
		case s.silent[a.Replica]:
			s.in.Answers[a.Replica] = NoAnswer
		default:
			s.in.Confirmed[a.Replica] = s.in.Now
		}
		return nil
	case Add:
		if _, used := mem.Removed[a.Replica]; used || mem.Replicas[a.Replica] != "" {
			return fmt.Errorf("%s: replica ID already used", a)
		}
		if err := change(); err != nil {
			return err
		}
		mem.Replicas[a.Replica] = a.Target
		// The new member confirms at once, as the Reconciler asks it.
		if !s.silent[a.Replica] {
			s.in.Confirmed[a.Replica] = s.in.Now
		}
	case RemoveDeparted, RemoveLost, RemoveUnplaced:
		if a.HandOffTo != 0 {
			s.lead(a.HandOffMember)
			break
		}
		if _, ok := mem.Replicas[a.Replica]; !ok {
			return fmt.Errorf("%s: no such replica", a)
		}
		if a.Member == s.in.Self {
			return fmt.Errorf("%s: the leader removes its own replica", a)
		}
		if err := change(); err != nil {
			return err
		}
		delete(mem.Replicas, a.Replica)
		delete(s.in.Confirmed, a.Replica)
		mem.Removed[a.Replica] = struct{}{}
	case TransferLeader:
		s.lead(a.Member)
	default:
		return fmt.Errorf("unknown action %s", a)
	}
	clear(s.in.Answers)
	return nil
}

// lead makes member id the shard's leader.
func (s *sim) lead(id string) {
	s.in.Self = id
	clear(s.in.Confirmed)
}

// owners lists the members holding replicas, sorted, with "?" for an
// address no member has.
func (s *sim) owners() []string {
	owner, _ := s.in.owners()
	var out []string
	for _, id := range owner {
		out = append(out, orUnknownShort(id))
	}
	slices.Sort(out)
	return out
}

// converged reports whether the shard holds exactly its placed replica
// set and is led by its preferred leader.
func (s *sim) converged() bool {
	placed := slices.Sorted(slices.Values(s.in.Placed))
	return slices.Equal(s.owners(), placed) && s.in.Self == preferred(s.in.Placed)
}

// describeMembership prints the membership: config, replicas with their
// members, removed IDs.
func (s *sim) describeMembership() string {
	mem := s.in.Membership
	owner, _ := s.in.owners()
	var b strings.Builder
	fmt.Fprintf(&b, "membership config %d:", mem.ConfigChangeID)
	for _, rid := range slices.Sorted(maps.Keys(mem.Replicas)) {
		if id := owner[rid]; id != "" {
			fmt.Fprintf(&b, " %d=%s", rid, id)
		} else {
			fmt.Fprintf(&b, " %d=%s(no member)", rid, mem.Replicas[rid])
		}
	}
	if len(mem.Removed) > 0 {
		b.WriteString(" removed")
		for _, rid := range slices.Sorted(maps.Keys(mem.Removed)) {
			fmt.Fprintf(&b, " %d", rid)
		}
	}
	fmt.Fprintf(&b, "; leader %s", s.in.Self)
	return b.String()
}

// orUnknownShort is id, or "?" for a replica no member has.
func orUnknownShort(id string) string {
	if id == "" {
		return "?"
	}
	return id
}
