package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft"
)

// idPrefix starts every benchmark workflow ID; the rest is its index.
const idPrefix = "wf-"

// step is a no-op node: it leaves the (map) state unchanged and schedules
// its successors.
type step struct {
	name string
	next []string
}

// GetName returns the node's name.
func (s *step) GetName() string { return s.name }

// Execute schedules the node's successors.
func (s *step) Execute(_ map[string]any) (*graft.NodeResult, error) {
	if len(s.next) == 0 {
		return &graft.NodeResult{}, nil
	}
	next := make([]graft.NextNode, len(s.next))
	for i, n := range s.next {
		next[i] = graft.NextNode{NodeName: n}
	}
	return &graft.NodeResult{NextNodes: next}, nil
}

// shape is a workflow graph: its nodes, the first of which starts the
// workflow, and the number of steps one workflow runs.
type shape struct {
	nodes []*step
	steps int
}

// seq3 returns the shape A→B→C.
func seq3() shape {
	return shape{steps: 3, nodes: []*step{
		{name: "A", next: []string{"B"}}, {name: "B", next: []string{"C"}}, {name: "C"},
	}}
}

// fanout3 returns the shape A→{B1,B2,B3}.
func fanout3() shape {
	return shape{steps: 4, nodes: []*step{
		{name: "A", next: []string{"B1", "B2", "B3"}}, {name: "B1"}, {name: "B2"}, {name: "B3"},
	}}
}

// runSeq3 runs seq3 closed-loop.
func runSeq3(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
	return runWorkflows(ctx, o, dir, seq3(), 0)
}

// runFanout3 runs fanout3 closed-loop.
func runFanout3(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
	return runWorkflows(ctx, o, dir, fanout3(), 0)
}

// runSeq3Half runs seq3 open-loop at half the workflows/s of an earlier
// seq3 run, or at -rate without one.
func runSeq3Half(ctx context.Context, o *options, dir string, prev map[string]*result) (*result, error) {
	rate := o.rate
	if r := prev["seq3"]; r != nil && r.WorkflowsPerS > 0 {
		rate = r.WorkflowsPerS / 2
		progress("seq3-half: offering %.0f workflows/s (half of seq3's %.0f)", rate, r.WorkflowsPerS)
	} else {
		progress("seq3-half: seq3 did not run first; offering -rate %.0f workflows/s", rate)
	}
	return runWorkflows(ctx, o, dir, seq3(), rate)
}

// tracker records, per workflow index, when its start was scheduled and
// called, how long StartWorkflow took and when its completion event
// arrived, all as nanoseconds since base (monotonic clock).
type tracker struct {
	base      time.Time
	n         int
	scheduled []atomic.Int64
	called    []atomic.Int64
	startDur  []atomic.Int64
	completed []atomic.Int64

	count    atomic.Int64
	all      chan struct{} // closed when every workflow completed
	failures chan string   // first workflow failure, buffered
}

func newTracker(n int) *tracker {
	return &tracker{
		n:         n,
		scheduled: make([]atomic.Int64, n),
		called:    make([]atomic.Int64, n),
		startDur:  make([]atomic.Int64, n),
		completed: make([]atomic.Int64, n),
		all:       make(chan struct{}),
		failures:  make(chan string, 1),
	}
}

// since returns the nanoseconds since base, at least 1 so that zero can
// mean "not yet".
func (t *tracker) since() int64 { return max(int64(time.Since(t.base)), 1) }

// index parses a benchmark workflow ID; ok is false for any other ID.
func (t *tracker) index(id string) (int, bool) {
	if len(id) <= len(idPrefix) || id[:len(idPrefix)] != idPrefix {
		return 0, false
	}
	i, err := strconv.Atoi(id[len(idPrefix):])
	return i, err == nil && i >= 0 && i < t.n
}

// onCompleted is the OnWorkflowCompleted handler. It must stay cheap: the
// event bus drops events for a handler that falls behind.
func (t *tracker) onCompleted(ev *graft.WorkflowCompletedEvent) {
	now := t.since()
	i, ok := t.index(ev.WorkflowID)
	if !ok || !t.completed[i].CompareAndSwap(0, now) {
		return
	}
	if int(t.count.Add(1)) == t.n {
		close(t.all)
	}
}

// recheck looks up, on m, every started workflow whose completion event
// has not arrived, and counts those completed as completed now (so their
// latency is an upper bound). It returns how many it counted.
func (t *tracker) recheck(m *graft.Manager) int {
	found := 0
	for i := range t.completed {
		if t.completed[i].Load() != 0 || t.called[i].Load() == 0 {
			continue
		}
		st, err := m.GetWorkflowStatus(idPrefix + strconv.Itoa(i))
		if err != nil || st.Status != graft.WorkflowStateCompleted {
			continue
		}
		if t.completed[i].CompareAndSwap(0, t.since()) {
			found++
			if int(t.count.Add(1)) == t.n {
				close(t.all)
			}
		}
	}
	return found
}

// onError is the OnWorkflowError handler.
func (t *tracker) onError(ev *graft.WorkflowErrorEvent) {
	select {
	case t.failures <- fmt.Sprintf("workflow %s failed in node %s: %v", ev.WorkflowID, ev.NodeName, ev.Error):
	default:
	}
}

// runWorkflows runs o.workflows workflows of shape sh on a fresh member in
// dir. rate 0 starts them closed-loop (each starter starts the next
// workflow as soon as StartWorkflow returns); a positive rate starts them
// open-loop at rate workflows/s, each starter following its own fixed
// schedule whatever the latency of its calls.
func runWorkflows(ctx context.Context, o *options, dir string, sh shape, rate float64) (*result, error) {
	tr := newTracker(o.workflows)
	m, err := startMember(ctx, o, dir, sh, tr)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = m.Stop()
		}
	}()

	first := sh.nodes[0].name
	var (
		errOnce  sync.Once
		startErr error
		quit     = make(chan struct{}) // closed to make the starters give up
		quitOnce sync.Once
		wg       sync.WaitGroup
		next     atomic.Int64 // closed loop: next workflow index to start
	)
	stop := func() { quitOnce.Do(func() { close(quit) }) }
	// start starts workflow i, due at sched (nanoseconds since base; 0
	// means now), and reports whether the starter should go on.
	start := func(i int, sched int64) bool {
		select {
		case <-quit:
			return false
		default:
		}
		called := tr.since()
		tr.called[i].Store(called)
		tr.scheduled[i].Store(cmp.Or(sched, called))
		err := m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID:   idPrefix + strconv.Itoa(i),
			InitialNodes: []graft.NodeConfig{{Name: first}},
		})
		tr.startDur[i].Store(tr.since() - called)
		if err != nil {
			errOnce.Do(func() { startErr = err })
			stop()
			return false
		}
		return true
	}
	// Open loop: workflow i is due at base + i/rate; starter s takes
	// i = s, s+starters, ..., so each starter ticks every starters/rate
	// on a fixed schedule, whatever its calls' latency.
	due := func(i int) time.Duration { return time.Duration(float64(i) / rate * float64(time.Second)) }

	tr.base = time.Now()
	for s := range o.starters {
		wg.Go(func() {
			if rate <= 0 {
				for {
					i := int(next.Add(1) - 1)
					if i >= o.workflows || !start(i, 0) {
						return
					}
				}
			}
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for i := s; i < o.workflows; i += o.starters {
				if wait := due(i) - time.Since(tr.base); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-quit:
						return
					}
				}
				if !start(i, max(int64(due(i)), 1)) {
					return
				}
			}
		})
	}
	startsDone := make(chan struct{})
	go func() { wg.Wait(); close(startsDone) }()

	err = waitAll(o, tr, quit, nil)
	stop()
	<-startsDone
	if startErr != nil {
		return nil, fmt.Errorf("starting workflows: %w", startErr)
	}
	if err != nil {
		return nil, err
	}

	res := tr.summarise(sh, rate > 0)
	res.Concurrency = o.starters
	res.OfferedRate = rate
	info := m.GetClusterInfo()
	res.Shards = info.Shards
	res.DroppedEvents = uint64(info.Metrics.DroppedEvents)
	res.Workers = o.workers
	if res.Workers == 0 {
		res.Workers = graft.DefaultConfig("", "", "").Engine.WorkerCount
	}
	stopped = true
	if err := m.Stop(); err != nil {
		return nil, fmt.Errorf("stopping member: %w", err)
	}
	return res, nil
}

// waitAll waits until every workflow completed, reporting progress every
// 5 s. It fails on a workflow failure, on quit (a start failed) or after
// o.timeout.
//
// recheck, if not nil, runs at a progress tick with no completion since the
// previous one: events forwarded between members are best effort (a full
// outbox drops them), so a cluster run looks the stragglers up instead of
// waiting out the timeout for events that will not come.
func waitAll(o *options, tr *tracker, quit <-chan struct{}, recheck func()) error {
	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	last := int64(-1)
	issued := func() int {
		n := 0
		for i := range tr.called {
			if tr.called[i].Load() != 0 {
				n++
			}
		}
		return n
	}
	for {
		select {
		case <-tr.all:
			return nil
		case msg := <-tr.failures:
			return errors.New(msg)
		case <-quit:
			return errors.New("starting workflows failed")
		case <-deadline.C:
			return fmt.Errorf("only %d of %d workflows completed within %s (%d started)",
				tr.count.Load(), tr.n, o.timeout, issued())
		case <-tick.C:
			n := tr.count.Load()
			progress("  %d started, %d completed", issued(), n)
			if recheck != nil && n == last {
				recheck()
			}
			last = n
		}
	}
}

// summarise computes the scenario's result from a finished run.
func (t *tracker) summarise(sh shape, openLoop bool) *result {
	lat := make([]time.Duration, t.n)
	sched := make([]time.Duration, t.n)
	starts := make([]time.Duration, t.n)
	var last, firstCall, lastCall int64
	var maxLag time.Duration
	firstCall = t.called[0].Load()
	for i := range t.n {
		done, called, sc := t.completed[i].Load(), t.called[i].Load(), t.scheduled[i].Load()
		lat[i] = time.Duration(done - called)
		sched[i] = time.Duration(done - sc)
		starts[i] = time.Duration(t.startDur[i].Load())
		maxLag = max(maxLag, time.Duration(called-sc))
		last = max(last, done)
		firstCall = min(firstCall, called)
		lastCall = max(lastCall, called)
	}
	res := &result{Members: 1, Workflows: t.n, Steps: t.n * sh.steps}
	// Time runs from the first start (base, just before the first
	// StartWorkflow call) to the last completion event.
	res.Seconds = time.Duration(last).Seconds()
	res.setRates()
	res.P50Ms, res.P99Ms, res.MaxMs = percentiles(lat)
	res.StartP50Ms, res.StartP99Ms, _ = percentiles(starts)
	if openLoop {
		res.SchedP50Ms, res.SchedP99Ms, _ = percentiles(sched)
		res.MaxLagMs = ms(maxLag)
		if span := time.Duration(lastCall - firstCall).Seconds(); span > 0 {
			res.StartRate = float64(t.n-1) / span
		}
	}
	return res
}

// startMember starts a lone Graft member in dir on a free loopback port
// with sh's nodes and tr's event handlers registered.
func startMember(ctx context.Context, o *options, dir string, sh shape, tr *tracker) (*graft.Manager, error) {
	addr, err := o.ports.Addr()
	if err != nil {
		return nil, err
	}
	cfg := &graft.Config{NodeID: "bench", BindAddr: addr, DataDir: dir, Logger: o.logger}
	cfg.Cluster.ShardCount = o.shards
	cfg.Engine.WorkerCount = o.workers
	m := graft.NewWithConfig(cfg)
	for _, n := range sh.nodes {
		if err := m.RegisterNode(&step{name: n.name, next: slices.Clone(n.next)}); err != nil {
			return nil, err
		}
	}
	m.OnWorkflowCompleted(tr.onCompleted)
	m.OnWorkflowError(tr.onError)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.Start(ctx, 0); err != nil {
		_ = m.Stop()
		return nil, fmt.Errorf("starting member: %w", err)
	}
	return m, nil
}
