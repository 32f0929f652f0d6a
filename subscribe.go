package graft

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/internal/logkeys"
)

// StatusPollInterval is how often a SubscribeToWorkflowState subscription
// re-reads its workflow's status even without a hint of a change, so it
// sees changes committed on shards this member holds no replica of.
const StatusPollInterval = 250 * time.Millisecond

// errUnsubscribed is the cause of a subscription's context when its
// unsubscribe function was called.
var errUnsubscribed = errors.New("unsubscribed")

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
	m.subs.hintOnce.Do(func() {
		m.member.Bus().SubscribeAll(func(ev any) {
			if id := eventWorkflowID(ev); id != "" {
				m.subs.Poke(id)
			}
		})
	})
	sub, err := m.subs.add(workflowID)
	if err != nil {
		return nil, nil, fmt.Errorf("subscribing to workflow %q: %w", workflowID, err)
	}
	rctx, cancel := context.WithTimeout(sub.ctx, m.cfg.Engine.RequestTimeout)
	first, err := m.GetWorkflowStatusContext(rctx, workflowID)
	cancel()
	if err != nil {
		m.subs.finish(sub)
		return nil, nil, err
	}
	sub.ch <- first
	if first.Status.Terminal() {
		m.subs.finish(sub)
		return sub.ch, sub.unsubscribe, nil
	}
	go m.watchStatus(sub, fingerprint(sub.seed, first))
	return sub.ch, sub.unsubscribe, nil
}

// watchStatus re-reads a subscription's workflow on each hint and poll
// tick and delivers the statuses that differ, until the workflow is
// terminal, the subscription ends or the Manager stops. It runs on a
// goroutine tracked by m.subs (added in statusSubs.add).
func (m *Manager) watchStatus(sub *statusSub, last uint64) {
	defer m.subs.finish(sub)
	tick := time.NewTicker(StatusPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-sub.ctx.Done():
			return
		case <-sub.hint:
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(sub.ctx, m.cfg.Engine.RequestTimeout)
		s, err := m.GetWorkflowStatusContext(rctx, sub.id)
		cancel()
		switch {
		case sub.ctx.Err() != nil, errors.Is(err, ErrClosed):
			return
		case errors.Is(err, ErrWorkflowNotFound):
			// Purged after its retention period: nothing more will come.
			return
		case err != nil:
			m.member.Logger().Debug("reading workflow status for a subscription", logkeys.Workflow, sub.id, "error", err)
			continue
		}
		if fp := fingerprint(sub.seed, s); fp != last {
			last = fp
			sub.offer(s)
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

// eventWorkflowID is the workflow an event is about, "" for other events.
func eventWorkflowID(ev any) string {
	switch e := ev.(type) {
	case *events.WorkflowStartedEvent:
		return e.WorkflowID
	case *events.WorkflowCompletedEvent:
		return e.WorkflowID
	case *events.WorkflowErrorEvent:
		return e.WorkflowID
	case *events.WorkflowPausedEvent:
		return e.WorkflowID
	case *events.WorkflowResumedEvent:
		return e.WorkflowID
	case *events.WorkflowStoppedEvent:
		return e.WorkflowID
	case *events.NodeStartedEvent:
		return e.WorkflowID
	case *events.NodeCompletedEvent:
		return e.WorkflowID
	case *events.NodeErrorEvent:
		return e.WorkflowID
	}
	return ""
}

// statusSubs are a Manager's status subscriptions. Each has a goroutine
// tracked by wg; close cancels them all and waits for them.
type statusSubs struct {
	hintOnce sync.Once // subscribes the hint handler to the event bus
	count    atomic.Int64

	mu     sync.Mutex
	closed bool
	ctx    context.Context
	cancel context.CancelCauseFunc
	byID   map[string]map[*statusSub]struct{}
	seed   maphash.Seed
	wg     sync.WaitGroup
}

// statusSub is one subscription.
type statusSub struct {
	id     string
	ch     chan *WorkflowStatus
	hint   chan struct{} // one pending hint of a change
	seed   maphash.Seed
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed by finish, after ch
	once   sync.Once
}

// add registers a subscription to workflow id and counts its goroutine in
// wg (finish marks it done, whether the goroutine ran or not).
func (s *statusSubs) add(id string) (*statusSub, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancelCause(context.Background())
		s.byID = map[string]map[*statusSub]struct{}{}
		s.seed = maphash.MakeSeed()
	}
	sub := &statusSub{id: id, ch: make(chan *WorkflowStatus, 1), hint: make(chan struct{}, 1),
		seed: s.seed, done: make(chan struct{})}
	sub.ctx, sub.cancel = context.WithCancelCause(s.ctx)
	if s.byID[id] == nil {
		s.byID[id] = map[*statusSub]struct{}{}
	}
	s.byID[id][sub] = struct{}{}
	s.count.Add(1)
	s.wg.Add(1)
	return sub, nil
}

// finish ends a subscription: it leaves the set, its channel is closed and
// its goroutine counted done. Only the first call has an effect.
func (s *statusSubs) finish(sub *statusSub) {
	sub.once.Do(func() {
		s.mu.Lock()
		delete(s.byID[sub.id], sub)
		if len(s.byID[sub.id]) == 0 {
			delete(s.byID, sub.id)
		}
		s.mu.Unlock()
		s.count.Add(-1)
		sub.cancel(errUnsubscribed)
		close(sub.ch)
		close(sub.done)
		s.wg.Done()
	})
}

// Watching reports whether any subscription is open (member.Watcher).
func (s *statusSubs) Watching() bool { return s.count.Load() > 0 }

// Poke hints the subscriptions to workflow id that it may have changed
// (member.Watcher). It never blocks (it runs on the shards' apply
// goroutines).
func (s *statusSubs) Poke(id string) {
	if s.count.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.byID[id] {
		select {
		case sub.hint <- struct{}{}:
		default:
		}
	}
}

// close ends every subscription and waits for their goroutines; later
// subscriptions are refused.
func (s *statusSubs) close() {
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel(ErrClosed)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// unsubscribe stops the subscription and waits until its channel is
// closed.
func (sub *statusSub) unsubscribe() {
	sub.cancel(errUnsubscribed)
	<-sub.done
}

// offer delivers st, replacing a status the reader has not taken yet. Only
// the subscription's goroutine sends, so the loop ends at once.
func (sub *statusSub) offer(st *WorkflowStatus) {
	for {
		select {
		case sub.ch <- st:
			return
		default:
		}
		select {
		case <-sub.ch:
		default:
		}
	}
}
