package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
)

// Store is the replicated storage the engine drives. Implementations must be
// safe for concurrent use.
type Store interface {
	// Apply proposes c to the shard and returns its committed result. It
	// blocks until the command commits or ctx ends.
	Apply(ctx context.Context, shard uint64, c *wf.Command) (wf.Result, error)
	// Active returns this replica's view of every active workflow of the shard.
	Active(shard uint64) ([]wf.View, error)
}

// Publisher receives node events (pointers to events package types). It must
// not block.
type Publisher interface {
	Publish(ev any)
}

// Remote runs steps whose node type is not registered on this member on a
// member that registered it. Implementations must be safe for concurrent use.
type Remote interface {
	// Has reports whether some other alive member registered node.
	Has(node string) bool
	// Run executes node there with the step's context, state and config.
	// Transport failures are returned as ordinary (retried) errors.
	Run(ctx context.Context, node string, wc *executor.WorkflowContext, state, config json.RawMessage) (*executor.Output, error)
}

// Config configures an Engine. Zero values take the defaults noted.
type Config struct {
	// MemberID names this member in executions and events. Required.
	MemberID string
	// Incarnation distinguishes this run of the member from earlier ones, so
	// executions left by a crashed run are re-queued at once. Required.
	Incarnation string
	// Registry holds the nodes this member can run. Required.
	Registry *executor.Registry
	// Store is the replicated storage. Required.
	Store Store
	// Events receives node events; nil discards them.
	Events Publisher
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Clock; nil means the system clock.
	Clock Clock
	// Remote, if set, runs steps of node types this member does not have.
	// Their CanStart, if any, is not evaluated. Nil means such steps wait
	// until the node is registered here.
	Remote Remote
	// Alive reports whether another member is alive (from gossip); the
	// executions of a member that is not are re-queued at once instead of
	// when their lease lapses. Nil means every member counts as alive.
	Alive func(member string) bool

	// WorkerCount is how many steps run at once. Default 8.
	WorkerCount int
	// ClaimAhead is how many tasks may be claimed but not yet running, so
	// that claiming overlaps execution. Default 4×WorkerCount, at least 64.
	ClaimAhead int
	// MaxRetries is how many times a failed step is retried before the
	// workflow fails. Zero means no retries. Default set by the caller.
	MaxRetries int
	// RetryDelay is the base of the exponential backoff between retries.
	// Default 1s.
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff. Default 5m.
	MaxRetryDelay time.Duration
	// StepTimeout cancels a step's context after this long. Zero means no
	// timeout.
	StepTimeout time.Duration
	// LeaseDuration is how long a claim holds a task when StepTimeout is zero
	// (with a timeout, the lease is the timeout plus LeaseDuration). Another
	// member re-runs a task whose lease lapsed. Default 5m.
	LeaseDuration time.Duration
	// BlockedTimeout fails a workflow whose pending nodes are all refused by
	// CanStart, with nothing running, for this long. Default 5m.
	BlockedTimeout time.Duration
	// BlockedRecheck is how often refused nodes are re-evaluated when the
	// workflow's state has not changed. Default 1s.
	BlockedRecheck time.Duration
	// MaxStateBytes bounds a workflow's state after a step. Zero means no limit.
	MaxStateBytes int
	// Retention is how long terminal workflows are kept. Default 7 days.
	Retention time.Duration
	// PurgeInterval is how often expired workflows are purged. Default 1m.
	PurgeInterval time.Duration
	// DrainTimeout is how long Stop waits for running steps before it
	// cancels their contexts. Default 30s.
	DrainTimeout time.Duration
}

func (c Config) withDefaults() Config {
	c.WorkerCount = cmp.Or(c.WorkerCount, 8)
	c.ClaimAhead = cmp.Or(c.ClaimAhead, max(4*c.WorkerCount, 64))
	c.RetryDelay = cmp.Or(c.RetryDelay, time.Second)
	c.MaxRetryDelay = cmp.Or(c.MaxRetryDelay, 5*time.Minute)
	c.LeaseDuration = cmp.Or(c.LeaseDuration, 5*time.Minute)
	c.BlockedTimeout = cmp.Or(c.BlockedTimeout, 5*time.Minute)
	c.BlockedRecheck = cmp.Or(c.BlockedRecheck, time.Second)
	c.Retention = cmp.Or(c.Retention, 7*24*time.Hour)
	c.PurgeInterval = cmp.Or(c.PurgeInterval, time.Minute)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.MemberID == "" {
		errs = append(errs, errors.New("missing MemberID"))
	}
	if c.Incarnation == "" {
		errs = append(errs, errors.New("missing Incarnation"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("missing Registry"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("missing Store"))
	}
	if c.WorkerCount < 0 || c.MaxRetries < 0 || c.MaxStateBytes < 0 {
		errs = append(errs, fmt.Errorf("WorkerCount (%d), MaxRetries (%d) and MaxStateBytes (%d) must not be negative",
			c.WorkerCount, c.MaxRetries, c.MaxStateBytes))
	}
	if c.MaxRetryDelay < c.RetryDelay {
		errs = append(errs, fmt.Errorf("MaxRetryDelay (%s) must be equal or greater than RetryDelay (%s)", c.MaxRetryDelay, c.RetryDelay))
	}
	return errors.Join(errs...)
}
