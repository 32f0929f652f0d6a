// Package executor owns running workflow steps: the Registry and its Node
// adapter, which accept every node shape Graft supports and decode state and
// config into the node's own types on each call; and the Engine, which, on
// the shards this member leads, keeps pending tasks in a priority queue and
// a timer queue, evaluates CanStart, claims tasks through the replicated
// store, runs them on a bounded worker pool (or on a member that has the
// node type), retries failures with jittered exponential backoff, and
// commits each outcome. Step outcomes are values: Permanent marks an error
// that must not be retried.
package executor
