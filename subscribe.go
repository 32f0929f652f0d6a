package graft

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/watch"
)

// StatusPollInterval is how often a SubscribeToWorkflowState subscription
// re-reads its workflow's status even without a hint of a change, so it
// sees changes committed on shards this member holds no replica of.
const StatusPollInterval = 250 * time.Millisecond

// SubscribeToWorkflowState delivers the status of a workflow each time it
// changes, wherever the workflow runs. The first status is the current
// one; then a status comes each time it differs from the last one
// delivered in Status, the number of executed, executing or pending nodes,
// the state or LastError. The last status is terminal (completed, failed
// or stopped), after which the channel is closed.
//
// The channel holds one status: a reader that falls behind finds only the
// newest status (the older ones are dropped), so a slow reader never
// stalls the engine and never reads a stale status last.
//
// The subscription wakes when this member applies a change of the
// workflow (it holds a replica of its shard) or receives one of its
// lifecycle events (forwarded to the member that started it), and re-reads
// the status every StatusPollInterval (250ms) in any case; each read is a
// linearizable GetWorkflowStatus, routed to a member holding the shard.
//
// The returned function unsubscribes: it stops the updates and closes the
// channel before it returns, and is safe to call more than once. Stop
// closes the channels of every subscription too. An unknown workflow ID
// gives an error that errors.Is ErrWorkflowNotFound; before Start or after
// Stop the error is ErrNotStarted or ErrClosed.
func (m *Manager) SubscribeToWorkflowState(workflowID string) (<-chan *WorkflowStatus, func(), error) {
	if err := m.member.Running(); err != nil {
		return nil, nil, fmt.Errorf("subscribing to workflow %q: %w", workflowID, err)
	}
	m.hintOnce.Do(func() {
		m.member.Bus().SubscribeAll(func(ev any) {
			if id := watch.WorkflowOf(ev); id != "" {
				m.subs.Poke(id)
			}
		})
	})
	sub, err := m.subs.Add(workflowID)
	if err != nil {
		return nil, nil, fmt.Errorf("subscribing to workflow %q: %w", workflowID, err)
	}
	rctx, cancel := context.WithTimeout(sub.Ctx, m.cfg.Engine.RequestTimeout)
	first, err := m.GetWorkflowStatusContext(rctx, workflowID)
	cancel()
	if err != nil {
		m.subs.Finish(sub)
		return nil, nil, err
	}
	sub.C <- first
	if first.Status.Terminal() {
		m.subs.Finish(sub)
		return sub.C, sub.Unsubscribe, nil
	}
	go m.watchStatus(sub, fingerprint(sub.Seed, first))
	return sub.C, sub.Unsubscribe, nil
}

// watchStatus re-reads a subscription's workflow on each hint and poll
// tick and delivers the statuses that differ, until the workflow is
// terminal, the subscription ends or the Manager stops. It runs on a
// goroutine tracked by m.subs (added in Set.Add).
func (m *Manager) watchStatus(sub *watch.Sub[*WorkflowStatus], last uint64) {
	defer m.subs.Finish(sub)
	tick := time.NewTicker(StatusPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-sub.Ctx.Done():
			return
		case <-sub.Hint:
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(sub.Ctx, m.cfg.Engine.RequestTimeout)
		s, err := m.GetWorkflowStatusContext(rctx, sub.ID)
		cancel()
		switch {
		case sub.Ctx.Err() != nil, errors.Is(err, ErrClosed):
			return
		case errors.Is(err, ErrWorkflowNotFound):
			// Purged after its retention period: nothing more will come.
			return
		case err != nil:
			m.member.Logger().Debug("reading workflow status for a subscription", logkeys.Workflow, sub.ID, "error", err)
			continue
		}
		if fp := fingerprint(sub.Seed, s); fp != last {
			last = fp
			sub.Offer(s)
		}
		if s.Status.Terminal() {
			return
		}
	}
}

// fingerprint summarises what a subscription compares to decide whether a
// status changed: status, node counts, state and last error.
func fingerprint(seed maphash.Seed, s *WorkflowStatus) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	_, _ = fmt.Fprintf(&h, "%s|%d|%d|%d|%q|", s.Status, len(s.ExecutedNodes), len(s.ExecutingNodes),
		len(s.PendingNodes), s.LastErrorText())
	_, _ = h.Write(s.CurrentStateJSON)
	return h.Sum64()
}
