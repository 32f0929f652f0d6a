package harness

import (
	"fmt"
	"slices"
	"sort"
)

// maxViolations bounds the violations a CheckResult lists; Count has them all.
const maxViolations = 20

// The checkers' names, as they appear in a Report's CheckResult.Name.
const (
	CheckerNotLost           = "acknowledged-not-lost"
	CheckerTerminal          = "acknowledged-terminal"
	CheckerKeyedOnce         = "keyed-step-at-most-once"
	CheckerNoRerun           = "committed-step-not-rerun"
	CheckerLinearizable      = "linearizable"
	CheckerReplicasAgree     = "replicas-agree"
	CheckerReplicationFactor = "replication-factor"
	CheckerGossipViews       = "gossip-views-agree"
	CheckerLeadership        = "leadership-balanced"
)

// CheckResult is one checker's verdict.
type CheckResult struct {
	// Name is one of the Checker* names; Passed reports no violation.
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	// Checked counts what the checker looked at (workflows, keys, steps,
	// shards, members: see its doc).
	Checked int `json:"checked"`
	// Count is the number of violations; Violations lists the first ones.
	Count      int      `json:"violations_count"`
	Violations []string `json:"violations,omitempty"`
	// Note says how to read the result (e.g. where an artefact went).
	Note string `json:"note,omitempty"`
}

func (c *CheckResult) violate(format string, args ...any) {
	c.Count++
	if len(c.Violations) < maxViolations {
		c.Violations = append(c.Violations, fmt.Sprintf(format, args...))
	}
}

func (c *CheckResult) done() CheckResult {
	c.Passed = c.Count == 0
	return *c
}

func isTerminal(status string) bool {
	return status == "completed" || status == "failed" || status == "stopped"
}

// acknowledged returns the workflows the history shows to exist: a start
// returned nil or ErrWorkflowExists, or a read found it. Sorted.
func (h *History) acknowledged() []string {
	set := map[string]bool{}
	for _, o := range h.Ops {
		switch {
		case o.Kind == OpStart && (o.Outcome == OutcomeOK || o.Outcome == OutcomeExists):
			set[o.Workflow] = true
		case o.Kind == OpStatus && o.Outcome == OutcomeOK:
			set[o.Workflow] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// CheckNotLost checks that every workflow the history shows to exist (a
// start acknowledged with nil or ErrWorkflowExists, or a status read that
// found it) is still found by its final read: nothing acknowledged is lost.
// Checked counts those workflows. A workflow whose final read failed
// altogether (no status at all) counts as a violation too: it could not be
// shown to survive.
func CheckNotLost(h *History) CheckResult {
	c := CheckResult{Name: CheckerNotLost}
	for _, id := range h.acknowledged() {
		c.Checked++
		f, ok := h.Final[id]
		switch {
		case !ok:
			c.violate("%s: acknowledged, never read after the faults", id)
		case f.Status == "not-found":
			c.violate("%s: acknowledged, not found after the faults", id)
		case f.Status == "":
			c.violate("%s: acknowledged, its final read failed: %s", id, f.Error)
		}
	}
	return c.done()
}

// CheckTerminalAfterFaults checks that every acknowledged workflow found
// after the faults is in a terminal state (completed, failed or stopped),
// that none is stopped without a client having stopped it, and that the
// harness-shaped ones (Final.Shape set) no client may have stopped
// completed rather than failed (the workload injects fewer step errors
// than Graft's default retries; a Workload.Trigger workflow may fail by
// design).
// The bound is the run's Options.Settle: the final reads are taken once
// every workflow is terminal or that long after the faults were healed.
// Checked counts the workflows. Lost workflows are CheckNotLost's.
func CheckTerminalAfterFaults(h *History) CheckResult {
	c := CheckResult{Name: CheckerTerminal}
	for _, id := range h.acknowledged() {
		f, ok := h.Final[id]
		if !ok || f.Status == "" || f.Status == "not-found" {
			continue
		}
		c.Checked++
		switch {
		case !isTerminal(f.Status):
			c.violate("%s: still %s after the liveness bound (executing %v, %d pending)", id, f.Status, f.Executing, f.Pending)
		case f.Status == "failed" && !f.Stopped && f.Shape != "":
			c.violate("%s: failed, though its steps fail fewer times than the retries allow", id)
		case f.Status == "stopped" && !f.Stopped:
			c.violate("%s: stopped, though no client stopped it", id)
		}
	}
	return c.done()
}

// runsByExec maps execution IDs to the recorded runs.
func (h *History) runsByExec() map[string]StepRun {
	m := make(map[string]StepRun, len(h.Steps))
	for _, s := range h.Steps {
		m[s.ExecutionID] = s
	}
	return m
}

// CheckKeyed checks that a keyed step ran at most once per key: in each
// workflow's final status, at most one committed successful execution
// carries a given idempotency key (the workload schedules some keys twice,
// and schedules a second step under a key already used, so a broken
// deduplication shows here). Runs whose results were never committed (a
// crash, a lost leadership) are allowed: Graft runs such a step again.
// Checked counts the (workflow, key) pairs.
func CheckKeyed(h *History) CheckResult {
	c := CheckResult{Name: CheckerKeyedOnce}
	runs := h.runsByExec()
	for _, id := range sortedKeys(h.Final) {
		byKey := map[string][]string{}
		for _, x := range h.Final[id].Committed {
			if r, ok := runs[x]; ok && r.HasKey {
				byKey[r.Key] = append(byKey[r.Key], x)
			}
		}
		for _, k := range sortedKeys(byKey) {
			c.Checked++
			if xs := byKey[k]; len(xs) > 1 {
				c.violate("%s: key %q committed %d times (executions %v)", id, k, len(xs), xs)
			}
		}
	}
	return c.done()
}

// CheckNoRerun checks that a step whose successful completion was seen
// committed never runs again: for every execution a status read saw
// committed, no run of the same step (workflow and task) starts after that
// read returned. Only runs that started after the read returned count, so
// clock-free reasoning suffices: the commit precedes the read's return.
// Checked counts the committed executions.
func CheckNoRerun(h *History) CheckResult {
	c := CheckResult{Name: CheckerNoRerun}
	runs := h.runsByExec()
	seen := map[string]Duration{} // execution -> earliest return of a read that saw it
	for _, o := range h.Ops {
		if o.Kind != OpStatus || o.Outcome != OutcomeOK {
			continue
		}
		for _, x := range o.Committed {
			if t, ok := seen[x]; !ok || o.Return < t {
				seen[x] = o.Return
			}
		}
	}
	type task struct{ wf, task string }
	byTask := map[task][]StepRun{}
	for _, s := range h.Steps {
		k := task{s.Workflow, s.Task}
		byTask[k] = append(byTask[k], s)
	}
	for _, x := range sortedKeys(seen) {
		r, ok := runs[x]
		if !ok {
			continue
		}
		c.Checked++
		at := seen[x]
		for _, other := range byTask[task{r.Workflow, r.Task}] {
			if other.ExecutionID != x && other.Start > at {
				c.violate("%s task %s: execution %s seen committed by %v, ran again as %s on %s at %v",
					r.Workflow, r.Task, x, at, other.ExecutionID, other.Member, other.Start)
			}
		}
	}
	return c.done()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
