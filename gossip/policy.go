package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/serf/serf"
)

// admission implements serf.MergeDelegate for the Strict policy. Serf calls
// it (through memberlist's Merge and Alive delegates) before a member enters
// the member list, both when states are merged on join/push-pull and for
// every alive message, so a refused member never appears in Members.
type admission struct {
	self    string
	allowed map[string]bool
	logger  *slog.Logger

	mu      sync.Mutex
	refused map[string]int // node ID -> times refused
}

var _ serf.MergeDelegate = (*admission)(nil)

func newAdmission(self string, allowed []string, logger *slog.Logger) *admission {
	a := &admission{self: self, allowed: map[string]bool{}, logger: logger, refused: map[string]int{}}
	for _, id := range allowed {
		a.allowed[id] = true
	}
	return a
}

// NotifyMerge refuses the whole merge if any member is not allowed (that is
// memberlist's granularity for merges).
func (a *admission) NotifyMerge(members []*serf.Member) error {
	for _, m := range members {
		if a.allowed[m.Name] {
			continue
		}
		a.refuse(m.Name, m.Addr.String(), int(m.Port))
		return fmt.Errorf("graft: member %q refused: not in AllowedNodes (policy strict)", m.Name)
	}
	return nil
}

// refuse logs the refusal at warn level the first time a node is refused
// (memberlist asks again for every alive message) and at debug afterwards.
func (a *admission) refuse(id, addr string, port int) {
	a.mu.Lock()
	a.refused[id]++
	first := a.refused[id] == 1
	a.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelWarn
	}
	a.logger.Log(context.Background(), level, "gossip: refused member not in AllowedNodes (policy strict)",
		"refused_node", id, "addr", joinHostPort(addr, port))
}

// admits reports whether id may send user events and queries.
func (a *admission) admits(id string) bool {
	if a == nil {
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
