package engine

import (
	"container/heap"

	"github.com/eleven-am/graft/internal/wf"
)

// itemState says where a task item currently is.
type itemState uint8

const (
	itemParked   itemState = iota // in no queue: workflow paused, or node not registered here
	itemReady                     // in the ready queue
	itemDelayed                   // in the timer queue (delay, retry backoff or CanStart recheck)
	itemClaiming                  // taken by the dispatcher: CanStart and claim in progress
)

// itemKind distinguishes timer entries that are not tasks.
type itemKind uint8

const (
	kindTask         itemKind = iota
	kindBlockTimeout          // fail the workflow if it is still blocked
	kindLeaseCheck            // re-queue another member's execution if its lease lapsed
)

// item is a pending task (or a timed check) of a workflow on a shard this
// member leads.
type item struct {
	kind  itemKind
	shard uint64
	wf    string
	task  wf.Task
	seq   uint64 // engine-wide arrival order, the FIFO tie-break
	due   int64  // unix nanos, for the timer queue
	state itemState
	index int // position in its heap, -1 when in none

	waitVersion uint64 // >0: CanStart refused this task at that state version
	version     uint64 // blockTimeout: state version the workflow was blocked at
	execID      string // leaseCheck: the execution to re-queue
}

// itemHeap is a heap of items under an ordering; it keeps each item's index
// so that items can be removed from the middle.
type itemHeap struct {
	items []*item
	less  func(a, b *item) bool
}

// byPriority orders ready tasks: higher priority first, then arrival order.
func byPriority(a, b *item) bool {
	if a.task.Priority != b.task.Priority {
		return a.task.Priority > b.task.Priority
	}
	return a.seq < b.seq
}

// byDue orders timed entries by due time, then arrival order.
func byDue(a, b *item) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	return a.seq < b.seq
}

func (h *itemHeap) Len() int           { return len(h.items) }
func (h *itemHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *itemHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}
func (h *itemHeap) Push(x any) {
	it := x.(*item)
	it.index = len(h.items)
	h.items = append(h.items, it)
}
func (h *itemHeap) Pop() any {
	n := len(h.items) - 1
	it := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	it.index = -1
	return it
}

// peek returns the first item without removing it, or nil.
func (h *itemHeap) peek() *item {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func removeFrom(h heap.Interface, it *item) {
	if it.index >= 0 {
		heap.Remove(h, it.index)
	}
}
