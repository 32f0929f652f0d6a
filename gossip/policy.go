package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/serf/serf"
)

// admission implements serf.MergeDelegate for the Strict policy and
// Config.Admit. Serf calls it (through memberlist's Merge and Alive
// delegates) before a member enters the member list, both when states are
// merged on join/push-pull and for every alive message (tag updates
// included), so a refused member never appears in Members.
type admission struct {
	self    string
	allowed map[string]bool // nil: every ID (not Strict)
	check   func(Member) error
	logger  *slog.Logger

	mu      sync.Mutex
	refused map[string]int // node ID -> times refused
}

var _ serf.MergeDelegate = (*admission)(nil)

// newAdmission returns the admission of a member: strict selects the
// AllowedNodes check, check is Config.Admit (may be nil).
func newAdmission(self string, strict bool, allowed []string, check func(Member) error, logger *slog.Logger) *admission {
	a := &admission{self: self, check: check, logger: logger, refused: map[string]int{}}
	if strict {
		a.allowed = map[string]bool{}
		for _, id := range allowed {
			a.allowed[id] = true
		}
	}
	return a
}

// NotifyMerge refuses the whole merge if any member is not allowed (that is
// memberlist's granularity for merges).
func (a *admission) NotifyMerge(members []*serf.Member) error {
	for _, m := range members {
		if a.allowed != nil && !a.allowed[m.Name] {
			a.refuse(m.Name, m.Addr.String(), int(m.Port))
			return fmt.Errorf("graft: member %q refused: not in AllowedNodes (policy strict)", m.Name)
		}
		if a.check == nil || m.Name == a.self {
			continue
		}
		if err := a.check(memberFromSerf(*m)); err != nil {
			a.count(m.Name)
			return fmt.Errorf("graft: member %q refused: %w", m.Name, err)
		}
	}
	return nil
}

// count records one refusal of id and reports whether it was the first.
func (a *admission) count(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refused[id]++
	return a.refused[id] == 1
}

// refuse logs the refusal at warn level the first time a node is refused
// (memberlist asks again for every alive message) and at debug afterwards.
func (a *admission) refuse(id, addr string, port int) {
	first := a.count(id)
	level := slog.LevelDebug
	if first {
		level = slog.LevelWarn
	}
	a.logger.Log(context.Background(), level, "gossip: refused member not in AllowedNodes (policy strict)",
		"refused_node", id, "addr", joinHostPort(addr, port))
}

// admits reports whether id may send user events and queries.
func (a *admission) admits(id string) bool {
	if a == nil || a.allowed == nil {
		return true
	}
	return a.allowed[id]
}

// refusals returns how many times id was refused.
func (a *admission) refusals(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused[id]
}
