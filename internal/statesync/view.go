package statesync

import (
	"slices"
	"time"

	"github.com/eleven-am/graft/gossip/crdt"
)

// viewMaxAge is how long a decoded View may lag the state: rebuilding it
// decodes every record, and counters change the state on every commit.
const viewMaxAge = 100 * time.Millisecond

// View is a decoded, read-only picture of the state: every present
// member's record and counters, and the cluster's totals. Callers must
// not modify it.
type View struct {
	// Members are the records of every member the state holds, sorted by
	// ID: present ones and, until their tombstones are collected, those
	// that left (Left).
	Members []crdt.Record
	// Left holds the members that left (tombstoned).
	Left map[string]bool
	// Counters are each member's counters, by ID.
	Counters map[string]crdt.Counters
	// Totals are the cluster's totals of each counter (State.Total: over
	// every member the state holds, tombstoned ones included until
	// collected).
	Totals crdt.Counters
	// Updated is when this member last saw each present member's entry
	// change (its own clock).
	Updated map[string]time.Time
	// byType lists, per node type, the indexes in Members of the present
	// members that registered it.
	byType map[string][]int
}

// newView decodes st.
func newView(st *crdt.State, updated map[string]time.Time) *View {
	v := &View{Left: map[string]bool{}, Counters: map[string]crdt.Counters{}, Updated: map[string]time.Time{}, byType: map[string][]int{}}
	for _, id := range st.IDs() {
		rec, _ := st.Record(id)
		v.Members = append(v.Members, rec)
		v.Counters[id] = st.Counters(id)
		v.Updated[id] = updated[id]
		if !st.Present(id) {
			v.Left[id] = true
			continue
		}
		for _, t := range rec.Data.NodeTypes {
			v.byType[t] = append(v.byType[t], len(v.Members)-1)
		}
	}
	for c := range v.Totals {
		v.Totals[c] = st.Total(crdt.Counter(c))
	}
	return v
}

// View returns a decoded picture of the state, at most about 100 ms
// older than the state.
func (s *Syncer) View() *View {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if s.view == nil || (s.viewGen != s.gen && now.Sub(s.viewBuilt) >= viewMaxAge) {
		s.view, s.viewGen, s.viewBuilt = newView(s.state, s.updated), s.gen, now
	}
	return s.view
}

// Pick returns the least-loaded member other than self that registered
// node type node and that alive accepts: least (Executing + Queued +
// extra) per unit of WorkerCapacity, then lowest ID. extra, if set, adds
// what the caller knows the published load lacks (the steps it sent there
// since). ok is false if there is none.
func (v *View) Pick(node, self string, alive func(string) bool, extra func(string) uint64) (string, bool) {
	best, found := -1, false
	var bestLoad uint64
	for _, i := range v.byType[node] {
		r := &v.Members[i]
		if r.ID == self || (alive != nil && !alive(r.ID)) {
			continue
		}
		load := r.Data.Executing + r.Data.Queued
		if extra != nil {
			load += extra(r.ID)
		}
		if !found || lessLoaded(load, r.Data.WorkerCapacity, bestLoad, v.Members[best].Data.WorkerCapacity) {
			best, found, bestLoad = i, true, load
		}
	}
	if !found {
		return "", false
	}
	return v.Members[best].ID, true
}

// lessLoaded reports whether load la on capacity ca is less than lb on cb
// (the members' IDs break ties: Members is sorted, so the first found
// wins).
func lessLoaded(la, ca, lb, cb uint64) bool {
	// la/ca < lb/cb, compared without division.
	ca, cb = max(ca, 1), max(cb, 1)
	return la*cb < lb*ca
}

// Has reports whether a member other than self that alive accepts
// registered node type node.
func (v *View) Has(node, self string, alive func(string) bool) bool {
	_, ok := v.Pick(node, self, alive, nil)
	return ok
}

// Present returns the number of members that have not left.
func (v *View) Present() int { return len(v.Members) - len(v.Left) }

// NodeTypes returns every node type a present member registered, sorted.
func (v *View) NodeTypes() []string {
	out := make([]string, 0, len(v.byType))
	for t := range v.byType {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
