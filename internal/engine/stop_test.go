package engine

import (
	"context"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// A step that ignores its context's cancellation cannot hold Stop forever:
// Stop cancels it after DrainTimeout, gives it a grace period, then
// abandons it and returns. The abandoned step's goroutine stays the
// engine's: it is counted until the step returns, and then it ends without
// recording an outcome (the step re-runs after restart).
func TestStopAbandonsStepThatIgnoresCancellation(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	b := setup(t, func(c *Config) { c.skipStartup = false; c.DrainTimeout = time.Second })
	t.Cleanup(func() { close(release) }) // runs before setup's Stop
	b.register(t, &fnNode{name: "Stuck", exec: func(context.Context) (*executor.NodeResult, error) {
		close(started)
		<-release // ignores ctx
		return nil, nil
	}})
	b.lead(t)
	b.start(t, "w", wf.NewTask{Node: "Stuck"})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the step never started")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- b.e.Stop(context.Background()) }()
	var err error
	require.Eventually(t, func() bool {
		b.clock.Advance(time.Second) // past DrainTimeout, then past the grace period
		select {
		case err = <-stopped:
			return true
		default:
			return false
		}
	}, 10*time.Second, 5*time.Millisecond, "Stop hung on a step that ignores cancellation")
	require.NoError(t, err)
	require.Equal(t, 1, b.e.nodeCode.running(), "the stuck step is not accounted for")

	release <- struct{}{}
	select {
	case <-b.e.nodeCode.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned step's goroutine did not end when the step returned")
	}
	require.Empty(t, b.store.commands(wf.OpComplete), "an abandoned step's outcome was recorded")
}
