package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/eleven-am/graft/internal/backoff"
)

// Report is what a run found. It encodes to JSON as report.json; the
// history goes to history.json (see WriteFiles).
type Report struct {
	// Scenario and Seed name the run; rerun them to repeat it.
	Scenario string `json:"scenario"`
	Seed     int64  `json:"seed"`
	// Members is the number of founding members; Shards the shard count.
	Members int `json:"members"`
	Shards  int `json:"shards"`
	// FaultPhase is the fault phase as configured; FaultsEnded when it
	// ended (from the start of the run, the members' start-up included);
	// Elapsed the run until the checks were done (its shutdown aside).
	FaultPhase  Duration `json:"fault_phase"`
	FaultsEnded Duration `json:"faults_ended"`
	Elapsed     Duration `json:"elapsed"`
	// Faults lists the faults as applied, with the restarts of the end of
	// the fault phase.
	Faults []AppliedFault `json:"faults"`
	// Workflows are the workflow figures.
	Workflows Counts `json:"workflows"`
	// Ops and StepRuns count the recorded client operations and step
	// executions.
	Ops      int `json:"ops"`
	StepRuns int `json:"step_runs"`
	// Throughput is successful step runs per second during the fault
	// phase and after it.
	Throughput Throughput `json:"throughput"`
	// Checks are the checkers' verdicts, in the order they ran.
	Checks []CheckResult `json:"checks"`
	// Passed reports whether every check passed.
	Passed bool `json:"passed"`
	// Cluster is the last snapshot the convergence checks looked at.
	Cluster ClusterState `json:"cluster"`
	// History is the recorded history (not part of report.json).
	History *History `json:"-"`
}

// Counts are the workflow figures of a run.
type Counts struct {
	// Started counts the workflows a start was issued for.
	Started int `json:"started"`
	// Acknowledged counts those shown to exist (see CheckNotLost).
	Acknowledged int `json:"acknowledged"`
	// Completed, Failed and Stopped count the acknowledged workflows by
	// final status; NotTerminal those still active at the bound; Lost
	// those not found at the end.
	Completed   int `json:"completed"`
	Failed      int `json:"failed"`
	Stopped     int `json:"stopped"`
	NotTerminal int `json:"not_terminal"`
	Lost        int `json:"lost"`
	// UnknownStarts counts starts whose outcome was unknown (a timeout,
	// a member going down).
	UnknownStarts int `json:"unknown_starts"`
}

// Throughput is successful step runs per second.
type Throughput struct {
	// DuringFaults is from the start of the fault phase to its end;
	// AfterFaults from then to the last successful step run.
	DuringFaults float64 `json:"during_faults"`
	AfterFaults  float64 `json:"after_faults"`
}

// Failed returns the names of the checks that failed.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c.Name)
		}
	}
	return out
}

// Summary describes the run in a line, with the seed to repeat it.
func (r *Report) Summary() string {
	verdict := "passed"
	if !r.Passed {
		verdict = fmt.Sprintf("FAILED %v", r.Failed())
	}
	w := r.Workflows
	return fmt.Sprintf("scenario %s seed %d, %d members: %s; workflows started %d, acknowledged %d, completed %d, failed %d, stopped %d, not terminal %d, lost %d; %d ops, %d step runs; %.1f steps/s during faults, %.1f after; elapsed %v",
		r.Scenario, r.Seed, r.Members, verdict, w.Started, w.Acknowledged, w.Completed, w.Failed, w.Stopped, w.NotTerminal, w.Lost,
		r.Ops, r.StepRuns, r.Throughput.DuringFaults, r.Throughput.AfterFaults, time.Duration(r.Elapsed).Round(time.Millisecond))
}

// WriteFiles writes report.json and history.json into dir, creating it.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for name, v := range map[string]any{"report.json": r, "history.json": r.History} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

func newReport(scenario string, o Options, h *History, faults []AppliedFault, checks []CheckResult, c ClusterState,
	started, faultsEnd, elapsed Duration) *Report {
	r := &Report{Scenario: scenario, Seed: o.Seed, Members: o.Members, Shards: o.Shards, FaultPhase: Duration(o.Duration),
		FaultsEnded: faultsEnd, Elapsed: elapsed, Faults: faults, Ops: len(h.Ops), StepRuns: len(h.Steps),
		Checks: checks, Passed: allPassed(checks), Cluster: c, History: h}
	var during, after int
	var lastEnd Duration
	for _, s := range h.Steps {
		if s.Result != "ok" {
			continue
		}
		lastEnd = max(lastEnd, s.End)
		if s.End <= faultsEnd {
			during++
		} else {
			after++
		}
	}
	if d := time.Duration(faultsEnd - started).Seconds(); d > 0 {
		r.Throughput.DuringFaults = float64(during) / d
	}
	if d := time.Duration(lastEnd - faultsEnd).Seconds(); d > 0 {
		r.Throughput.AfterFaults = float64(after) / d
	}
	var ends []Duration
	for _, s := range h.Steps {
		if s.Result == "ok" {
			ends = append(ends, s.End)
		}
	}
	for i := range r.Faults {
		if !endsOthers(r.Faults[i].Kind) {
			ended, by := endOf(r.Faults, i, faultsEnd)
			rec := &Recovery{Ended: ended, EndedBy: by}
			rec.RateBefore, rec.After, rec.Recovered = recoveryOf(ends, r.Faults[i].Applied, ended)
			r.Faults[i].Recovery = rec
		}
		var next Duration = -1
		for _, s := range h.Steps {
			if s.Result == "ok" && s.End > r.Faults[i].Applied && (next < 0 || s.End < next) {
				next = s.End
			}
		}
		if next >= 0 {
			r.Faults[i].NextStep = next - r.Faults[i].Applied
		}
	}
	r.Workflows.Started = len(h.workflows())
	unknown := map[string]bool{}
	for _, op := range h.Ops {
		if op.Kind == OpStart && op.Outcome == OutcomeUnknown {
			unknown[op.Workflow] = true
		}
	}
	r.Workflows.UnknownStarts = len(unknown)
	for _, id := range h.acknowledged() {
		r.Workflows.Acknowledged++
		switch f := h.Final[id]; {
		case f.Status == "completed":
			r.Workflows.Completed++
		case f.Status == "failed":
			r.Workflows.Failed++
		case f.Status == "stopped":
			r.Workflows.Stopped++
		case f.Status == "not-found":
			r.Workflows.Lost++
		default:
			r.Workflows.NotTerminal++
		}
	}
	return r
}

// snapshot reads every member up: its gossip view and replicas.
func (h *harness) snapshot(ctx context.Context) ClusterState {
	c := ClusterState{Shards: h.opts.Shards, ReplicationFactor: h.rf}
	for _, n := range h.upMembers() {
		if m := h.up(n); m != nil {
			v, err := m.state(ctx)
			if err != nil {
				h.log.Warn("chaos: reading a member's state", "member", n, "error", err)
				continue
			}
			c.Members = append(c.Members, MemberState{Name: n, Peers: v.Peers, Replicas: v.Replicas})
		}
	}
	return c
}

// converge takes snapshots until the convergence checks pass or
// Options.Settle passes, and returns the last snapshot and its results.
func (h *harness) converge(ctx context.Context) (ClusterState, []CheckResult, error) {
	deadline := time.Now().Add(h.opts.Settle)
	for {
		c := h.snapshot(ctx)
		res := convergence(c)
		if allPassed(res) || time.Now().After(deadline) {
			return c, res, nil
		}
		if err := backoff.Sleep(ctx, 250*time.Millisecond); err != nil {
			return c, res, err
		}
	}
}
