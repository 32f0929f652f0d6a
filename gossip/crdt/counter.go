package crdt

import (
	"fmt"
	"maps"
	"math"
)

// GCounter is a grow-only counter keyed by member: each member increments
// only its own entry, the value is the sum of the entries, and Merge takes
// the per-member maximum. The zero value is an empty counter ready to use;
// a GCounter is not safe for concurrent use.
type GCounter struct {
	n map[string]uint64
}

// Add adds delta to member's entry. An entry saturates at math.MaxUint64
// rather than wrapping, so it never decreases.
func (c *GCounter) Add(member string, delta uint64) {
	if delta == 0 {
		return
	}
	if c.n == nil {
		c.n = make(map[string]uint64)
	}
	c.n[member] = satAdd(c.n[member], delta)
}

// Get returns member's entry.
func (c *GCounter) Get(member string) uint64 { return c.n[member] }

// Value returns the sum of all entries, saturating at math.MaxUint64.
func (c *GCounter) Value() uint64 {
	var sum uint64
	for _, v := range c.n {
		sum = satAdd(sum, v)
	}
	return sum
}

// Merge folds other into c: each entry becomes the maximum of the two.
func (c *GCounter) Merge(other *GCounter) {
	for m, v := range other.n {
		if c.n == nil {
			c.n = make(map[string]uint64)
		}
		if v > c.n[m] {
			c.n[m] = v
		}
	}
}

// Clone returns a copy of c.
func (c *GCounter) Clone() GCounter { return GCounter{n: maps.Clone(c.n)} }

// Entries returns a copy of the non-zero per-member entries (never nil).
func (c *GCounter) Entries() map[string]uint64 {
	out := make(map[string]uint64, len(c.n))
	maps.Copy(out, c.n)
	return out
}

// PNCounter is a counter that can also decrease: two GCounters, one for
// increments and one for decrements, each keyed by member. The zero value
// is ready to use; a PNCounter is not safe for concurrent use.
type PNCounter struct {
	p, n GCounter
}

// Add adds delta to member's increments (delta >= 0) or decrements
// (delta < 0).
func (c *PNCounter) Add(member string, delta int64) {
	if delta >= 0 {
		c.p.Add(member, uint64(delta))
	} else {
		c.n.Add(member, uint64(-(delta+1))+1)
	}
}

// Value returns increments minus decrements, clamped to the int64 range.
func (c *PNCounter) Value() int64 {
	p, n := c.p.Value(), c.n.Value()
	if p >= n {
		return int64(min(p-n, math.MaxInt64))
	}
	d := n - p
	if d > math.MaxInt64 {
		return math.MinInt64
	}
	return -int64(d)
}

// Merge folds other into c (per-member maximum of both halves).
func (c *PNCounter) Merge(other *PNCounter) {
	c.p.Merge(&other.p)
	c.n.Merge(&other.n)
}

// Clone returns a copy of c.
func (c *PNCounter) Clone() PNCounter { return PNCounter{p: c.p.Clone(), n: c.n.Clone()} }

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// Counter names one of the per-member counters a State carries.
type Counter uint8

// The counters every member keeps about its own work. Each is a G-counter
// keyed by member: a member counts only what it did itself, and the cluster's
// figure is the sum over members (State.Total).
const (
	// WorkflowsStarted counts workflows this member started.
	WorkflowsStarted Counter = iota
	// WorkflowsCompleted counts workflows that completed on this member.
	WorkflowsCompleted
	// WorkflowsFailed counts workflows that failed on this member.
	WorkflowsFailed
	// WorkflowsStopped counts workflows stopped on this member.
	WorkflowsStopped
	// StepsExecuted counts steps this member ran.
	StepsExecuted
	// StepErrors counts steps this member ran that returned an error.
	StepErrors

	// NumCounters is the number of counters in Counters.
	NumCounters = 6
)

var counterNames = [NumCounters]string{
	"workflows_started", "workflows_completed", "workflows_failed",
	"workflows_stopped", "steps_executed", "step_errors",
}

// String returns the counter's snake_case name, e.g. "workflows_started".
func (c Counter) String() string {
	if int(c) < NumCounters {
		return counterNames[c]
	}
	return fmt.Sprintf("Counter(%d)", uint8(c))
}

// Counters is one member's set of named counters, indexed by Counter. It is
// one member's column of NumCounters G-counters: merging two copies takes the
// maximum of each.
type Counters [NumCounters]uint64

// merge sets each counter of c to the maximum of c and o.
func (c *Counters) merge(o *Counters) {
	for i := range c {
		c[i] = max(c[i], o[i])
	}
}
