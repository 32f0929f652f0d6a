// Package events is Graft's in-process event bus. It owns the typed events
// that describe what happens to workflows (started, completed, failed, paused,
// resumed, stopped), to the steps inside them (node started, completed,
// failed), and to the cluster (member joined or left, leader changed, shard
// leader changed, shard replica moved by rebalancing). It also owns the Bus that delivers those events to
// handlers in the same process.
//
// The engine publishes to the Bus, and users, metrics adapters and tests
// subscribe to it:
//
//	bus := events.NewBus(events.Options{Logger: logger})
//	defer bus.Close(ctx)
//
//	unsubscribe := events.Subscribe(bus, func(ev *events.WorkflowCompletedEvent) {
//		log.Printf("workflow %s completed in %v", ev.WorkflowID, ev.Duration)
//	})
//	defer unsubscribe()
//
// A Subscribe[T] handler gets only events of type *T. A SubscribeAll handler
// gets every event.
//
// # When events are published
//
// An event is published as its state transition is applied. On workflow and
// step events, the NodeID field names the cluster member that applied the
// transition. Events are notifications, not a log to rebuild state from. To
// find the current state of a workflow, query it.
//
// # Delivery guarantee
//
// Publication is at-least-once. After a crash or restart, the engine may
// publish some events again for transitions it had already reported.
// Handlers must be idempotent. Deduplicate on the event's IDs, for example
// WorkflowID, or WorkflowID plus ExecutionID and Attempt for step events.
//
// Reaching a subscriber is best effort. Events can be lost in these cases:
//
//   - The subscriber has fallen behind and its buffer is full (see below).
//   - The subscriber has unsubscribed. Events still in its buffer are
//     discarded.
//   - Close's context ended before the buffer was delivered.
//   - The event was published at the same moment as Close. Once Close has
//     been called, Publish does nothing.
//
// Do not rely on events alone for anything that must not be missed. Reconcile
// against workflow state.
//
// # Ordering and concurrency
//
// Each subscriber has its own goroutine and calls its handler on it, one
// event at a time. So a handler is never called concurrently with itself.
// A subscriber gets its events in the order they were published. If two
// Publish calls race each other, their order is undefined. There is no
// ordering between different subscribers: a slow handler only delays itself.
//
// Every subscriber receives the same pointer. Treat events as read-only.
//
// Handlers may call Publish and Subscribe, and may unsubscribe themselves or
// others. A handler must not call Close. Close waits for handlers to return,
// so a handler that calls it blocks until Close's context ends.
//
// # Falling behind
//
// Publish never blocks. The engine publishes from the goroutines that apply
// state transitions, and a slow handler must not stall them. Each subscriber
// has a bounded buffer (Options.BufferSize, default 4096 events). If a
// handler falls so far behind that its buffer is full, then:
//
//   - The new event is dropped for that subscriber only. Other subscribers
//     still get it.
//   - The drop is counted in Bus.Dropped.
//   - A warning naming the subscriber is logged. To avoid flooding the log,
//     each subscriber logs at most one such warning per second, and the
//     warning carries the subscriber's total drop count.
//
// If a handler is slow by nature, for example because it does network I/O,
// have it hand events to your own queue or worker pool instead of doing the
// work inline.
//
// # Panics
//
// If a handler panics, the Bus recovers the panic and logs it at error level
// with the stack trace. The event that caused the panic is not retried.
// Delivery to that subscriber continues with the next event.
package events
