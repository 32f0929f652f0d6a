package harness

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/backoff"
)

// runWorkload issues the plan's operations at their times, each on its
// own goroutine, at most Workload.Clients at once (an operation waits for a
// free client, so a member that hangs slows the workload only once every
// client waits on it), and returns once all have returned or ctx ended.
func (h *harness) runWorkload(ctx context.Context, plan []plannedOp) {
	clients := make(chan int, h.opts.Workload.Clients)
	for c := range h.opts.Workload.Clients {
		clients <- c
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range plan {
		if h.sleepUntil(ctx, Duration(p.At)) != nil {
			return
		}
		var c int
		select {
		case c = <-clients:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { clients <- c }()
			h.do(ctx, c, p)
		})
	}
}

// do issues one operation on the member the plan picks (or the next one
// up) and records it. An operation finding no member up is not issued.
func (h *harness) do(ctx context.Context, client int, p plannedOp) {
	name, m := h.pick(p.Member)
	if m == nil {
		return
	}
	h.issue(ctx, client, name, m, p)
}

// issue runs one operation on m and records it; it returns what was
// recorded and what the member returned.
func (h *harness) issue(ctx context.Context, client int, name string, m member, p plannedOp) (ClientOp, opResult) {
	op := ClientOp{Client: client, Kind: p.Kind, Workflow: p.Workflow, Member: name, Invoke: h.rec.now()}
	cctx, cancel := context.WithTimeout(ctx, h.opts.Workload.OpTimeout)
	defer cancel()
	res := m.call(cctx, p)
	op.Return = h.rec.now()
	op.Outcome, op.Error = res.Outcome, res.Error
	if res.HasStatus {
		op.Status, op.Committed = res.Status, res.Committed
	}
	h.rec.op(op)
	return op, res
}

// classify maps a client call's error to its outcome. Only the errors
// Graft documents as definite answers are definite; anything else (a
// timeout, a closed member, a broken link) may or may not have taken
// effect.
func classify(kind OpKind, err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case kind == OpStart && errors.Is(err, graft.ErrWorkflowExists):
		return OutcomeExists
	case errors.Is(err, graft.ErrWorkflowNotFound):
		return OutcomeNotFound
	case kind != OpStart && kind != OpStatus && errors.Is(err, graft.ErrInvalidTransition):
		return OutcomeRejected
	}
	return OutcomeUnknown
}

// settle reads every workflow a start was issued for until it is terminal
// (resuming it if it is paused) or Options.Settle passes, and records each
// one's final read. A workflow never acknowledged and not found is final
// at once.
func (h *harness) settle(ctx context.Context) error {
	hist := h.rec.snapshot()
	acked := map[string]bool{}
	for _, id := range hist.acknowledged() {
		acked[id] = true
	}
	stopped := map[string]bool{}
	for _, o := range hist.Ops {
		if o.Kind == OpStop && (o.Outcome == OutcomeOK || o.Outcome == OutcomeUnknown) {
			stopped[o.Workflow] = true
		}
	}
	pending := hist.workflows()
	client := h.opts.Workload.Clients // the settle phase's own client
	deadline := time.Now().Add(h.opts.Settle)
	last := map[string]Final{}
	for i := 0; len(pending) > 0; i++ {
		var still []string
		for j, id := range pending {
			names := h.upMembers()
			if len(names) == 0 {
				return errors.New("no member is up to read from")
			}
			name := names[(i+j)%len(names)]
			m := h.up(name)
			if m == nil {
				still = append(still, id)
				continue
			}
			op, res := h.issue(ctx, client, name, m, plannedOp{Kind: OpStatus, Workflow: id})
			f := Final{Stopped: stopped[id], Error: op.Error}
			switch {
			case op.Outcome == OutcomeNotFound:
				f.Status = "not-found"
			case res.HasStatus:
				f.Status, f.Committed, f.Shape = res.Status, op.Committed, res.Shape
				f.Executing, f.Pending = res.Executing, res.Pending
			}
			last[id] = f
			switch {
			case f.Status == "not-found" && !acked[id]:
			case isTerminal(f.Status):
			case f.Status == string(graft.WorkflowStatePaused):
				h.issue(ctx, client, name, m, plannedOp{Kind: OpResume, Workflow: id})
				still = append(still, id)
			default:
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		if err := backoff.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	for id, f := range last {
		h.rec.final(id, f)
	}
	return nil
}
