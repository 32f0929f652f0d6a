// Package watch holds a member's subscriptions to workflows (graft's
// SubscribeToWorkflowState): who watches which workflow, the hints that a
// workflow may have changed (poked from the shards' apply goroutines and
// from events, never blocking), and the one-value channels that deliver the
// newest value. It imports events and internal/errs only.
package watch

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/internal/errs"
)

// errUnsubscribed is the cause of a subscription's context when its
// unsubscribe function was called.
var errUnsubscribed = errors.New("unsubscribed")

// WorkflowOf is the workflow an event is about, "" for other events.
func WorkflowOf(ev any) string {
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

// Set is a member's subscriptions to workflows, each delivering values of
// type T (graft's *WorkflowStatus). Each subscription has a goroutine
// tracked by the set; Close cancels them all and waits for them. The zero
// Set is ready to use; all methods are safe for concurrent use.
type Set[T any] struct {
	count atomic.Int64

	mu     sync.Mutex
	closed bool
	ctx    context.Context
	cancel context.CancelCauseFunc
	byID   map[string]map[*Sub[T]]struct{}
	seed   maphash.Seed
	wg     sync.WaitGroup
}

// Sub is one subscription.
type Sub[T any] struct {
	// ID is the workflow watched.
	ID string
	// C delivers the values; it holds one (see Offer) and is closed by
	// Finish.
	C chan T
	// Hint holds one pending hint of a change.
	Hint chan struct{}
	// Seed is the set's hash seed, for fingerprints of the values.
	Seed maphash.Seed
	// Ctx ends when the subscription or the set ends.
	Ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed by Finish, after C
	once   sync.Once
}

// Add registers a subscription to workflow id and counts its goroutine
// (Finish marks it done, whether the goroutine ran or not). After Close it
// returns ErrClosed.
func (s *Set[T]) Add(id string) (*Sub[T], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errs.ErrClosed
	}
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancelCause(context.Background())
		s.byID = map[string]map[*Sub[T]]struct{}{}
		s.seed = maphash.MakeSeed()
	}
	sub := &Sub[T]{ID: id, C: make(chan T, 1), Hint: make(chan struct{}, 1),
		Seed: s.seed, done: make(chan struct{})}
	sub.Ctx, sub.cancel = context.WithCancelCause(s.ctx)
	if s.byID[id] == nil {
		s.byID[id] = map[*Sub[T]]struct{}{}
	}
	s.byID[id][sub] = struct{}{}
	s.count.Add(1)
	s.wg.Add(1)
	return sub, nil
}

// Finish ends a subscription: it leaves the set, its channel is closed and
// its goroutine counted done. Only the first call has an effect.
func (s *Set[T]) Finish(sub *Sub[T]) {
	sub.once.Do(func() {
		s.mu.Lock()
		delete(s.byID[sub.ID], sub)
		if len(s.byID[sub.ID]) == 0 {
			delete(s.byID, sub.ID)
		}
		s.mu.Unlock()
		s.count.Add(-1)
		sub.cancel(errUnsubscribed)
		close(sub.C)
		close(sub.done)
		s.wg.Done()
	})
}

// Watching reports whether any subscription is open.
func (s *Set[T]) Watching() bool { return s.count.Load() > 0 }

// Poke hints the subscriptions to workflow id that it may have changed.
// It never blocks (it runs on the shards' apply goroutines).
func (s *Set[T]) Poke(id string) {
	if s.count.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.byID[id] {
		select {
		case sub.Hint <- struct{}{}:
		default:
		}
	}
}

// Close ends every subscription and waits for their goroutines; later
// subscriptions are refused.
func (s *Set[T]) Close() {
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel(errs.ErrClosed)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Unsubscribe stops the subscription and waits until its channel is
// closed.
func (sub *Sub[T]) Unsubscribe() {
	sub.cancel(errUnsubscribed)
	<-sub.done
}

// Offer delivers st, replacing a value the reader has not taken yet. Only
// the subscription's goroutine sends, so the loop ends at once.
func (sub *Sub[T]) Offer(st T) {
	for {
		select {
		case sub.C <- st:
			return
		default:
		}
		select {
		case <-sub.C:
		default:
		}
	}
}
