package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/eleven-am/graft"
)

// failNode fails its workflow at once.
type failNode struct{}

// GetName returns the node's name.
func (failNode) GetName() string { return "Fail" }

// Execute fails permanently.
func (failNode) Execute(_ map[string]any) (*graft.NodeResult, error) {
	return nil, graft.Permanent(errors.New("bench failure"))
}

// listRounds is how many times each list query is timed.
const listRounds = 200

// latency is the p50 and p99 of one timed query, in milliseconds.
type latency struct {
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// Items is the number of workflows the query returned (per page).
	Items int `json:"items"`
}

// newLatency returns the percentiles of d, rounded to microseconds.
func newLatency(d []time.Duration, items int) latency {
	p50, p99, mx := percentiles(d)
	r := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	return latency{P50Ms: r(p50), P99Ms: r(p99), MaxMs: r(mx), Items: items}
}

// runList fills one member with -list-workflows one-step workflows (one
// in 50 fails; metadata tenant=t0..t19 round robin), waits until all have
// ended, then times ListWorkflows pages of 50 (listRounds times each):
// Status=failed (p50_ms/p99_ms), tenant=t7, failed and tenant=t7, no
// filter, every page of Status=failed followed by token, and
// CountWorkflows without filters.
func runList(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
	n := o.listWorkflows
	addr, err := o.ports.Addr()
	if err != nil {
		return nil, err
	}
	cfg := &graft.Config{NodeID: "list", BindAddr: addr, DataDir: dir, Logger: o.logger}
	cfg.Cluster.ShardCount = o.shards
	cfg.Engine.WorkerCount = o.workers
	m := graft.NewWithConfig(cfg)
	defer m.Stop()
	if err := m.RegisterNode(&step{name: "A"}); err != nil {
		return nil, err
	}
	if err := m.RegisterNode(failNode{}); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.Start(sctx, 0); err != nil {
		return nil, fmt.Errorf("starting member: %w", err)
	}

	r := &result{Scenario: "list", Members: 1, Workflows: n, Steps: n, Concurrency: o.starters,
		Shards: len(m.GetClusterInfo().HostedShards)}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.starters)
	for g := range o.starters {
		wg.Go(func() {
			for i := g; i < n; i += o.starters {
				node := "A"
				if i%50 == 7 {
					node = "Fail"
				}
				err := m.StartWorkflowContext(ctx, graft.WorkflowTrigger{
					WorkflowID: fmt.Sprintf("list-%06d", i), InitialNodes: []graft.NodeConfig{{Name: node}},
					Metadata: map[string]string{"tenant": fmt.Sprintf("t%d", i%20)},
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("starting workflows: %w", err)
	}
	deadline := time.Now().Add(o.timeout)
	for {
		c, err := m.CountWorkflows(ctx, graft.ListFilter{})
		if err != nil {
			return nil, fmt.Errorf("counting workflows: %w", err)
		}
		ended := c.ByStatus[graft.WorkflowStateCompleted] + c.ByStatus[graft.WorkflowStateFailed]
		if ended == n {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d workflows ended before the timeout (%v)", ended, n, c.ByStatus)
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.Seconds = time.Since(t0).Seconds()
	r.setRates()
	progress("list: %d workflows stored in %.1fs; timing queries", n, r.Seconds)

	timed := func(opts graft.ListOptions) (latency, error) {
		d := make([]time.Duration, 0, listRounds)
		var items int
		for range listRounds {
			s := time.Now()
			p, err := m.ListWorkflows(ctx, opts)
			if err != nil {
				return latency{}, err
			}
			d = append(d, time.Since(s))
			items = len(p.Workflows)
		}
		return newLatency(d, items), nil
	}
	r.Queries = map[string]latency{}
	for name, opts := range map[string]graft.ListOptions{
		"failed":        {Status: graft.WorkflowStateFailed, Limit: 50},
		"tenant":        {Metadata: map[string]string{"tenant": "t7"}, Limit: 50},
		"failed+tenant": {Status: graft.WorkflowStateFailed, Metadata: map[string]string{"tenant": "t7"}, Limit: 50},
		"all":           {Limit: 50},
	} {
		l, err := timed(opts)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", name, err)
		}
		r.Queries[name] = l
	}
	r.P50Ms, r.P99Ms, r.MaxMs = r.Queries["failed"].P50Ms, r.Queries["failed"].P99Ms, r.Queries["failed"].MaxMs

	// Every page of the failed workflows, by token.
	var pages []time.Duration
	opts := graft.ListOptions{Status: graft.WorkflowStateFailed, Limit: 50}
	listed := 0
	for {
		s := time.Now()
		p, err := m.ListWorkflows(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("paging failed workflows: %w", err)
		}
		pages = append(pages, time.Since(s))
		listed += len(p.Workflows)
		if p.NextPageToken == "" {
			break
		}
		opts.PageToken = p.NextPageToken
	}
	wantFailed := 0
	for i := range n {
		if i%50 == 7 {
			wantFailed++
		}
	}
	if listed != wantFailed {
		return nil, fmt.Errorf("paging listed %d failed workflows, want %d", listed, wantFailed)
	}
	r.Queries["failed-every-page"] = newLatency(pages, listed)

	d := make([]time.Duration, 0, listRounds)
	for range listRounds {
		s := time.Now()
		if _, err := m.CountWorkflows(ctx, graft.ListFilter{}); err != nil {
			return nil, fmt.Errorf("counting workflows: %w", err)
		}
		d = append(d, time.Since(s))
	}
	r.Queries["count"] = newLatency(d, 0)
	r.LoadAvg = loadAvg()
	return r, nil
}

// loadAvg returns the 1-minute load average from /proc/loadavg, 0 if it
// cannot be read.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	if _, err := fmt.Sscan(string(b), &v); err != nil {
		return 0
	}
	return v
}
