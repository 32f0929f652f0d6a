// Package executor is the public step contract: what a node is and what it
// returns. It owns the node shapes the Registry accepts (GetName, Execute
// and an optional CanStart, each in several forms) and the Node adapter that
// decodes state and config into the node's own types on each call; the
// values a step returns (NodeResult, NextNode, and their encoded forms
// Output and Next); the WorkflowContext a step reads from its context; and
// the step errors: Permanent marks an error that must not be retried,
// DecodeError and PanicError describe adapter failures, and ErrStopping and
// ErrWorkflowStopped are the causes a step's context is cancelled with.
//
// The machinery that runs steps (queues, timers, claims, leases, the worker
// pool) lives in internal/engine and uses this package; executor imports
// nothing of Graft's, so users and every other package may import it.
package executor
