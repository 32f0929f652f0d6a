package executor

import (
	"context"
	"time"
)

// WorkflowContext describes the step being executed. The executor attaches it
// to the context passed to a node's Execute and CanStart methods; nodes read
// it with GetWorkflowContext. Treat it as read-only: the same value may be
// shared with other code observing the step.
type WorkflowContext struct {
	// WorkflowID identifies the workflow instance.
	WorkflowID string
	// NodeName is the registered name of the node being executed.
	NodeName string
	// MemberID identifies the cluster member executing the step.
	MemberID string
	// ExecutionID identifies this step execution.
	ExecutionID string
	// Attempt is 1 on the first run of the step and increases by one on each
	// retry.
	Attempt int
	// Metadata holds the workflow's string metadata; may be nil.
	Metadata map[string]string
	// StartedAt is when the workflow started.
	StartedAt time.Time
	// StepStartedAt is when this attempt of the step started.
	StepStartedAt time.Time
}

// workflowContextKey is the context key for *WorkflowContext.
type workflowContextKey struct{}

// WithWorkflowContext returns a copy of ctx that carries wc.
func WithWorkflowContext(ctx context.Context, wc *WorkflowContext) context.Context {
	return context.WithValue(ctx, workflowContextKey{}, wc)
}

// GetWorkflowContext returns the WorkflowContext carried by ctx. ok is false
// when ctx carries none (or a nil one), e.g. when a node is called directly
// in a unit test.
func GetWorkflowContext(ctx context.Context) (wc *WorkflowContext, ok bool) {
	if ctx == nil {
		return nil, false
	}
	wc, ok = ctx.Value(workflowContextKey{}).(*WorkflowContext)
	return wc, ok && wc != nil
}
