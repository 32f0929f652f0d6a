package engine

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/backoff"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/wf"
)

// workLoop runs claimed steps, highest priority first. Steps are node
// code, so workers run in the nodeCode group.
func (e *Engine) workLoop() {
	for {
		e.mu.Lock()
		for !e.stopping && e.claimed.Len() == 0 {
			e.workCond.Wait()
		}
		if e.stopping {
			e.mu.Unlock()
			return
		}
		if commit := e.runClaimedLocked(); commit != nil {
			e.goAdded(commit)
		}
	}
}

// runClaimedLocked takes the first claimed task and runs its step. It is
// called with e.mu held and a claimed task queued, and returns with e.mu
// released. It returns the function that commits the step's outcome,
// already counted in e.wg (the work loop runs it on a goroutine of its
// own), or nil when there is nothing to commit.
func (e *Engine) runClaimedLocked() (commit func()) {
	it := heap.Pop(&e.claimed).(*item)
	r := e.runs[it]
	delete(e.runs, it)
	e.inflight--
	e.dispatchCond.Signal()
	w := r.w
	if w == nil || e.wfs[w.key] != w || w.status != wf.StatusRunning {
		// Paused (or gone) between claim and start: give the task back.
		e.dropRunLocked(r)
		e.requeueLocked(wfKey{it.shard, it.wf}, it.task.ID, r.execID, true)
		e.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancelCause(e.stepCtx)
	r.cancel = cancel
	e.stepping++
	e.mu.Unlock()

	cmd := e.execute(ctx, r)
	cancel(nil)

	e.mu.Lock()
	defer e.mu.Unlock()
	e.stepping--
	if cmd == nil || e.closing {
		e.dropRunLocked(r)
		if e.stopping {
			e.noteIdleLocked()
		}
		return nil
	}
	// The execution stays in w.running until its outcome is committed, so
	// the sweep never mistakes a slow commit for an orphan. The commit is
	// counted before the step stops counting, so Stop's drain sees it.
	r.committing = true
	e.committing++
	e.wg.Add(1)
	return func() {
		e.commit(it.shard, cmd)
		e.mu.Lock()
		e.dropRunLocked(r) // r.w, not w: a regained shard may hold it now
		e.committing--
		if e.stopping {
			e.noteIdleLocked()
		}
		e.mu.Unlock()
	}
}

// workflowContext is the context CanStart sees: no execution yet.
func (e *Engine) workflowContext(it *item, snap claimSnapshot, now time.Time) *executor.WorkflowContext {
	return &executor.WorkflowContext{
		WorkflowID: it.wf, NodeName: it.task.Node, MemberID: e.cfg.MemberID,
		Attempt: it.task.Claims + 1, Metadata: snap.meta, StartedAt: time.Unix(0, snap.created),
		StepStartedAt: now,
	}
}

// execute runs one claimed step and returns the command that records its
// outcome, or nil when the outcome must not be recorded (the member is
// stopping or the workflow ended meanwhile).
func (e *Engine) execute(ctx context.Context, r *run) *wf.Command {
	it, task := r.it, r.task
	node, ok := e.cfg.Registry.Get(task.Node)
	start := e.now()
	wc := &executor.WorkflowContext{
		WorkflowID: it.wf, NodeName: task.Node, MemberID: e.cfg.MemberID, ExecutionID: r.execID,
		Attempt: task.Claims, Metadata: r.meta, StartedAt: time.Unix(0, r.created), StepStartedAt: start,
	}
	e.publish(&events.NodeStartedEvent{WorkflowID: it.wf, NodeName: task.Node, ExecutionID: r.execID,
		Attempt: task.Claims, StartedAt: start, Config: task.Config, NodeID: e.cfg.MemberID})

	var out *executor.Output
	var err error
	remote := !ok && e.cfg.Remote != nil && e.cfg.Remote.Has(task.Node)
	if !ok && !remote {
		err = fmt.Errorf("node %q is registered on no member", task.Node)
	} else {
		stepCtx := executor.WithWorkflowContext(ctx, wc)
		if e.cfg.StepTimeout > 0 {
			var cancel context.CancelFunc
			stepCtx, cancel = context.WithTimeoutCause(stepCtx, e.cfg.StepTimeout,
				fmt.Errorf("node %q exceeded the step timeout of %s", task.Node, e.cfg.StepTimeout))
			defer cancel()
		}
		if remote {
			out, err = e.cfg.Remote.Run(stepCtx, task.Node, wc, r.state, task.Config)
		} else {
			out, err = node.Execute(stepCtx, r.state, task.Config)
		}
		if err != nil && stepCtx.Err() != nil {
			if cause := context.Cause(stepCtx); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w (context: %w)", err, cause)
			}
		}
	}
	end := e.now()
	dur := end.Sub(start)
	if cause := context.Cause(ctx); cause != nil {
		// Cancelled by Stop or by the workflow ending: leave the execution
		// to be re-run (member stopping) or discarded (workflow ended).
		e.log.Debug("step cancelled", logkeys.Workflow, it.wf, logkeys.Step, task.Node, "cause", cause)
		return nil
	}
	base := &wf.Command{WF: it.wf, Now: end.UnixNano(), TaskID: task.ID, ExecID: r.execID, StartedAt: start.UnixNano()}
	if err == nil {
		err = e.finishOutput(base, task.Node, r.state, out)
	}
	if err == nil {
		e.ClaimFields(it.shard, base)
		e.publish(&events.NodeCompletedEvent{WorkflowID: it.wf, NodeName: task.Node, ExecutionID: r.execID,
			Attempt: task.Claims, StartedAt: start, Duration: dur, NextNodes: nextNames(base.Tasks), NodeID: e.cfg.MemberID})
		return base
	}

	var pe *executor.PanicError
	if errors.As(err, &pe) {
		e.log.Error("node panicked", logkeys.Workflow, it.wf, logkeys.Step, task.Node,
			"panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	failures := task.Failures + 1
	retry := !executor.IsPermanent(err) && failures <= e.cfg.MaxRetries
	base.Op = wf.OpFail
	base.Tasks, base.Patch = nil, nil
	base.Error = err.Error()
	base.Retry = retry
	var retryAt time.Time
	if retry {
		retryAt = end.Add(e.backoff(failures))
		base.RetryAt = retryAt.UnixNano()
	}
	e.log.Debug("step failed", logkeys.Workflow, it.wf, logkeys.Step, task.Node, "attempt", task.Claims,
		"retry", retry, "error", err)
	e.publish(&events.NodeErrorEvent{WorkflowID: it.wf, NodeName: task.Node, ExecutionID: r.execID,
		Attempt: task.Claims, StartedAt: start, Duration: dur, Error: err, WillRetry: retry, RetryAt: retryAt,
		NodeID: e.cfg.MemberID})
	return base
}

// finishOutput turns a node's output into a Complete command: the state
// patch against what the node read, and the next tasks. An invalid output
// (an unregistered next node, a state or config nested deeper than
// wf.MaxDepth) is a permanent error.
func (e *Engine) finishOutput(c *wf.Command, nodeName string, read json.RawMessage, out *executor.Output) error {
	c.Op = wf.OpComplete
	c.MaxStateBytes = e.cfg.MaxStateBytes
	if out == nil {
		return nil
	}
	if err := wf.CheckDepth(out.State); err != nil {
		return executor.Permanent(fmt.Errorf("node %q: its state is %w", nodeName, err))
	}
	for i, n := range out.Next {
		if !e.runnable(n.Node) {
			return executor.Permanent(fmt.Errorf("node %q returned next node %q, which is not registered", nodeName, n.Node))
		}
		if err := wf.CheckDepth(n.Config); err != nil {
			return executor.Permanent(fmt.Errorf("node %q: NextNodes[%d] (%q): its config is %w", nodeName, i, n.Node, err))
		}
		t := wf.NewTask{Node: n.Node, Config: n.Config, Priority: n.Priority, Key: n.IdempotencyKey, HasKey: n.HasKey}
		if n.Delay > 0 {
			t.NotBefore = c.Now + int64(n.Delay)
		}
		c.Tasks = append(c.Tasks, t)
	}
	if out.State != nil {
		base := out.Base
		if base == nil {
			base = read
		}
		p, err := wf.Diff(base, out.State)
		if err != nil {
			return executor.Permanent(fmt.Errorf("node %q: %w", nodeName, err))
		}
		c.Patch = p
	}
	return nil
}

func nextNames(ts []wf.NewTask) []string {
	if len(ts) == 0 {
		return nil
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Node
	}
	return out
}

// backoff returns the delay before retry number n (1-based): RetryDelay
// doubled per failure, capped at MaxRetryDelay, with equal jitter (half
// fixed, half random) so that retries of many workflows spread out.
func (e *Engine) backoff(n int) time.Duration {
	d := backoff.Delay(n, e.cfg.RetryDelay, e.cfg.MaxRetryDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// commit proposes a step's outcome until it commits, is refused for good, or
// the engine stops (then the execution re-runs after restart).
func (e *Engine) commit(shard uint64, c *wf.Command) {
	bo := backoff.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	for {
		res, err := e.cfg.Store.Apply(e.storeCtx, shard, c)
		if err == nil {
			if res.Code != wf.OK {
				e.log.Debug("step outcome not recorded", logkeys.Workflow, c.WF, "op", c.Op,
					"code", res.Code, "reason", res.Message)
			}
			e.Adopt(shard, c, &res)
			return
		}
		if e.storeCtx.Err() != nil {
			return
		}
		e.log.Debug("recording step outcome; retrying", logkeys.Workflow, c.WF, "error", err)
		t := e.cfg.Clock.NewTimer(bo.Next())
		select {
		case <-t.C():
		case <-e.storeCtx.Done():
			t.Stop()
			return
		}
	}
}

func (e *Engine) publish(ev any) {
	if e.cfg.Events != nil {
		e.cfg.Events.Publish(ev)
	}
}
