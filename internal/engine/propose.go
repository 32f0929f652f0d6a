package engine

import (
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/wf"
)

// proposers is how many goroutines propose the engine's own corrections
// (re-queues, blocks, failures of blocked workflows). Many can fall due at
// once, say when a member fails and every lease it held lapses; they wait
// in a queue instead of each starting a goroutine. 32 keep enough
// proposals in flight for the shards' group commit to batch them.
const proposers = 32

// proposalKind says what a proposal proposes.
type proposalKind uint8

const (
	proposeRequeue     proposalKind = iota // give an execution back to the pending tasks
	proposeBlock                           // mark a workflow blocked: CanStart refused every pending task
	proposeFailBlocked                     // fail a workflow blocked for BlockedTimeout
)

// proposal is a command the engine proposes on its own account, queued
// for the proposers.
type proposal struct {
	kind      proposalKind
	k         wfKey
	task      uint64 // requeue: the execution's task
	execID    string // requeue: the execution
	unstarted bool   // requeue: it never ran, so it does not count as an attempt
	version   uint64 // block, failBlocked: the state version the tasks were refused at
	msg       string // failBlocked: the workflow's error
}

// proposeLocked queues p for the proposers.
func (e *Engine) proposeLocked(p proposal) {
	e.proposals = append(e.proposals, p)
	e.proposeCond.Signal()
}

// requeueLocked queues the re-queue of an execution, unless one is queued
// or in flight already; unstarted means it never ran, so it does not count
// as an attempt.
func (e *Engine) requeueLocked(k wfKey, task uint64, execID string, unstarted bool) {
	if e.queuedExecs[execID] {
		return
	}
	e.queuedExecs[execID] = true
	e.proposeLocked(proposal{kind: proposeRequeue, k: k, task: task, execID: execID, unstarted: unstarted})
}

// nextProposalLocked takes the first queued proposal.
func (e *Engine) nextProposalLocked() (proposal, bool) {
	if len(e.proposals) == 0 {
		return proposal{}, false
	}
	p := e.proposals[0]
	e.proposals[0] = proposal{}
	e.proposals = e.proposals[1:]
	if len(e.proposals) == 0 {
		e.proposals = nil // let the backing array go after a burst
	}
	return p, true
}

// proposeLoop proposes queued proposals until Stop cancels proposals; the
// ones still queued then are dropped (the next leader re-derives them from
// the replicated state).
func (e *Engine) proposeLoop() {
	for {
		e.mu.Lock()
		for !e.closing && len(e.proposals) == 0 {
			e.proposeCond.Wait()
		}
		if e.closing {
			e.mu.Unlock()
			return
		}
		p, _ := e.nextProposalLocked()
		e.mu.Unlock()
		e.propose(p)
	}
}

// propose proposes p and applies what its answer means to the engine.
func (e *Engine) propose(p proposal) {
	now := e.now()
	switch p.kind {
	case proposeRequeue:
		// The execution stays in queuedExecs until its re-queue has been
		// answered, so a claim answered meanwhile does not run it (see
		// takenBackLocked); one that started running first keeps it.
		e.mu.Lock()
		_, running := e.live[p.execID]
		e.mu.Unlock()
		if !running {
			_, err := e.cfg.Store.Apply(e.storeCtx, p.k.shard, &wf.Command{Op: wf.OpRequeue, WF: p.k.id,
				Now: now.UnixNano(), TaskID: p.task, ExecID: p.execID, Unstarted: p.unstarted})
			if err != nil {
				e.log.Warn("re-queueing an abandoned execution", logkeys.Workflow, p.k.id, "error", err)
			}
		}
		e.mu.Lock()
		delete(e.queuedExecs, p.execID)
		e.mu.Unlock()
	case proposeBlock:
		res, err := e.cfg.Store.Apply(e.storeCtx, p.k.shard, &wf.Command{Op: wf.OpBlock, WF: p.k.id,
			Now: now.UnixNano(), StateVersion: p.version})
		e.mu.Lock()
		defer e.mu.Unlock()
		w := e.wfs[p.k]
		if w == nil {
			return
		}
		if err != nil || res.Code != wf.OK {
			w.blockProposed = false
			return
		}
		if !w.timeoutQueued {
			e.queueBlockTimeoutLocked(w, now.Add(e.cfg.BlockedTimeout))
		}
	case proposeFailBlocked:
		_, err := e.cfg.Store.Apply(e.storeCtx, p.k.shard, &wf.Command{Op: wf.OpFail, WF: p.k.id,
			Now: now.UnixNano(), StateVersion: p.version, Error: p.msg})
		if err != nil {
			e.log.Warn("failing blocked workflow", logkeys.Workflow, p.k.id, "error", err)
		}
	}
}
