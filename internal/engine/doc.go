// Package engine runs the steps of the workflows on the shards this member
// leads. It owns the machinery behind the executor package's step contract:
// the priority queue of ready tasks (priority, then arrival order) and the
// timer queue (delays, retry backoff, CanStart rechecks, lease checks,
// blocked timeouts); claiming tasks through the replicated store, with a
// lease; the bounded worker pool that runs claimed steps (here, or on a
// member that registered the node type); retries with jittered exponential
// backoff; committing each outcome; re-queueing executions whose lease
// lapsed; and purging expired workflows.
//
// It may import executor (the node contract it runs), internal/wf (the
// workflow commands and views it proposes and reads), events (the node
// events it publishes) and internal/logkeys. It knows nothing of shards,
// gossip or the member RPC: the root package plugs those in through the
// Store and Remote interfaces and the Alive function in Config, and fills
// every Config field with resolved values; defaults live in the root
// package's config.go.
package engine
