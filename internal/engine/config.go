package engine

import (
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
// safe for concurrent use. The engine calls Apply without holding its own
// lock, so Apply may deliver the committed changes (OnChanges) before it
// returns; it calls Active with its lock held, so Active must not call back
// into the engine.
type Store interface {
	// Apply proposes c to the shard and returns its committed result. It
	// blocks until the command commits or ctx ends, and must return once ctx
	// is done: Stop waits for proposals in flight.
	Apply(ctx context.Context, shard uint64, c *wf.Command) (wf.Result, error)
	// Active returns this replica's view of every active workflow of the shard.
	Active(shard uint64) ([]wf.View, error)
}

// Publisher receives node events (pointers to events package types). It must
// not block.
type Publisher interface {
	// Publish hands ev to the subscribers without blocking.
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

// Config configures an Engine. Every field holds a resolved value: the
// engine fills in no defaults (they live in the root package's config.go,
// which builds this from graft.Config). New validates it and names the
// first field of each problem in its error.
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
	// Logger receives the engine's logs. Required.
	Logger *slog.Logger
	// Clock is the engine's only source of time. Required (SystemClock
	// outside tests).
	Clock Clock
	// Remote, if set, runs steps of node types this member does not have.
	// Their CanStart, if any, is not evaluated. Nil means such steps wait
	// until the node is registered here.
	Remote Remote
	// Alive reports whether a run of another member, in incarnation, may
	// still be running: the member is alive (from gossip) and has not
	// restarted since (its current incarnation, where known, is that one).
	// The executions of a run that is not are re-queued at once instead of
	// when their lease lapses: a member killed and back within a sweep is
	// alive, but its steps died with its earlier process. Nil means every
	// run counts as alive.
	Alive func(member, incarnation string) bool

	// WorkerCount is how many steps run at once. At least 1.
	WorkerCount int
	// ClaimAhead is how many tasks may be claimed but not yet running, so
	// that claiming overlaps execution. At least 1.
	ClaimAhead int
	// MaxRetries is how many times a failed step is retried before the
	// workflow fails. Zero means no retries; not negative.
	MaxRetries int
	// RetryDelay is the base of the exponential backoff between retries:
	// the delay before retry n is RetryDelay×2^(n-1), capped at
	// MaxRetryDelay, of which the second half is random. Not negative.
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff. At least RetryDelay.
	MaxRetryDelay time.Duration
	// StepTimeout cancels a step's context after this long. Zero means no
	// timeout; not negative.
	StepTimeout time.Duration
	// LeaseDuration is how long a claim holds a task when StepTimeout is zero
	// (with a timeout, the lease is the timeout plus LeaseDuration). Another
	// member re-runs a task whose lease lapsed. Positive.
	LeaseDuration time.Duration
	// BlockedTimeout fails a workflow whose pending nodes are all refused by
	// CanStart, with nothing running, for this long. Positive.
	BlockedTimeout time.Duration
	// BlockedRecheck is how often refused nodes are re-evaluated when the
	// workflow's state has not changed. Positive.
	BlockedRecheck time.Duration
	// MaxStateBytes bounds a workflow's state after a step. Zero means no
	// limit; not negative.
	MaxStateBytes int
	// Retention is how long terminal workflows are kept. Positive.
	Retention time.Duration
	// PurgeInterval is how often expired workflows are purged. Positive.
	PurgeInterval time.Duration
	// DrainTimeout is how long Stop waits for running steps before it
	// cancels their contexts. Zero means it cancels them at once; not
	// negative.
	DrainTimeout time.Duration

	// skipStartup builds the engine without its goroutines (dispatcher,
	// timers, workers, sweep, purge, proposers), so that tests drive each
	// of them by hand (hashicorp/raft's skipStartup).
	skipStartup bool
}

// validate reports every problem with c, each naming its field.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MemberID == "" {
		add("MemberID is required")
	}
	if c.Incarnation == "" {
		add("Incarnation is required")
	}
	if c.Registry == nil {
		add("Registry is required")
	}
	if c.Store == nil {
		add("Store is required")
	}
	if c.Logger == nil {
		add("Logger is required")
	}
	if c.Clock == nil {
		add("Clock is required")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"WorkerCount", c.WorkerCount}, {"ClaimAhead", c.ClaimAhead}} {
		if f.v < 1 {
			add("%s (%d) must be at least 1", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxRetries", c.MaxRetries}, {"MaxStateBytes", c.MaxStateBytes}} {
		if f.v < 0 {
			add("%s (%d) must not be negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"RetryDelay", c.RetryDelay}, {"StepTimeout", c.StepTimeout}, {"DrainTimeout", c.DrainTimeout}} {
		if f.v < 0 {
			add("%s (%s) must not be negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"LeaseDuration", c.LeaseDuration}, {"BlockedTimeout", c.BlockedTimeout}, {"BlockedRecheck", c.BlockedRecheck},
		{"Retention", c.Retention}, {"PurgeInterval", c.PurgeInterval}} {
		if f.v <= 0 {
			add("%s (%s) must be positive", f.name, f.v)
		}
	}
	if c.MaxRetryDelay < c.RetryDelay {
		add("MaxRetryDelay (%s) must be equal or greater than RetryDelay (%s)", c.MaxRetryDelay, c.RetryDelay)
	}
	return errors.Join(errs...)
}
