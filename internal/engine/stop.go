package engine

import (
	"context"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/wf"
)

// stopGrace is how long Stop waits, after cancelling the steps still
// running, for them to return, and then for the outcomes of finished steps
// to commit.
const stopGrace = 5 * time.Second

// Stop stops claiming, waits up to DrainTimeout (or until ctx ends) for
// running steps, cancels those still running with executor.ErrStopping,
// waits for the outcomes of finished steps to commit, gives back the claims
// it holds, and ends the engine's goroutines.
//
// A step (or CanStart) that ignores its context's cancellation cannot end
// early: Stop waits stopGrace for it, then abandons it and returns. Its
// goroutine, one of at most WorkerCount workers and ClaimAhead claims, ends
// when the node returns; the step's outcome is not recorded, and the step
// runs again after the member restarts (or on the shard's next leader once
// its lease lapses). Safe to call more than once; later calls wait for the
// first to return.
func (e *Engine) Stop(ctx context.Context) error {
	first := false
	e.stopOnce.Do(func() {
		first = true
		e.mu.Lock()
		e.stopping = true
		e.dispatchCond.Broadcast()
		e.workCond.Broadcast()
		e.noteIdleLocked()
		e.mu.Unlock()
		close(e.stopCh)
	})
	if !first {
		<-e.stopped
		return nil
	}
	defer close(e.stopped)

	drain := e.cfg.Clock.NewTimer(e.cfg.DrainTimeout)
	select {
	case <-e.stepsIdle:
	case <-drain.C():
		e.log.Warn("steps still running after the drain timeout; cancelling them", "timeout", e.cfg.DrainTimeout)
	case <-ctx.Done():
	}
	drain.Stop()
	e.cancelStep(executor.ErrStopping)
	grace := e.cfg.Clock.NewTimer(stopGrace)
	defer grace.Stop()
	abandon := false
	select {
	case <-e.stepsIdle:
		// Every finished step counted its commit before it stopped
		// counting itself, so this waits for all of them; they land before
		// proposals are cancelled and do not re-run after restart.
		e.awaitCommits()
		e.releaseClaims()
	case <-grace.C():
		abandon = true
	}

	e.cancelStor()
	e.mu.Lock()
	e.closing = true
	e.proposeCond.Broadcast()
	e.mu.Unlock()
	e.wg.Wait()

	done := e.nodeCode.close()
	if !abandon {
		select {
		case <-done:
		case <-grace.C(): // a CanStart ignoring cancellation
			abandon = true
		}
	}
	if n := e.nodeCode.running(); abandon && n > 0 {
		e.log.Error("node code ignored cancellation; abandoning it (its goroutines end when it returns, and its steps re-run after restart)",
			"goroutines", n)
	}
	return nil
}

// noteIdleLocked closes stepsIdle, and then quiet, the first time each
// holds after Stop began.
func (e *Engine) noteIdleLocked() {
	if !e.stopping || e.stepping > 0 {
		return
	}
	if !e.stepsIdleClosed {
		e.stepsIdleClosed = true
		close(e.stepsIdle)
	}
	if e.committing == 0 && !e.quietClosed {
		e.quietClosed = true
		close(e.quiet)
	}
}

// awaitCommits waits (at most 5s) for step outcomes being committed.
func (e *Engine) awaitCommits() {
	t := e.cfg.Clock.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-e.quiet:
	case <-t.C():
		e.log.Warn("step outcomes still uncommitted at stop; those steps re-run after restart")
	}
}

// releaseClaims gives back the executions this member claimed but did not
// finish (claimed ahead and never started, or cancelled by Stop), so the
// shard's next leader runs them at once instead of after their lease.
func (e *Engine) releaseClaims() {
	type claim struct {
		k         wfKey
		task      uint64
		exec      string
		unstarted bool
	}
	var claims []claim
	e.mu.Lock()
	for _, w := range e.wfs {
		for id, r := range w.running {
			if !r.committing {
				claims = append(claims, claim{w.key, r.task.ID, id, r.cancel == nil})
			}
		}
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.storeCtx, 2*time.Second)
	defer cancel()
	for _, c := range claims {
		_, err := e.cfg.Store.Apply(ctx, c.k.shard, &wf.Command{Op: wf.OpRequeue, WF: c.k.id,
			Now: e.now().UnixNano(), TaskID: c.task, ExecID: c.exec, Unstarted: c.unstarted})
		if err != nil {
			e.log.Debug("releasing a claim at stop", logkeys.Workflow, c.k.id, "error", err)
			return
		}
	}
}
