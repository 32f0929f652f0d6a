package main

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// A workflow whose completion event never reached the tracker is counted
// once by recheck, and only once it completed; one never started is not
// looked up.
func TestRecheckCountsCompletionsWhoseEventsWereLost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	m := graft.NewWithConfig(&graft.Config{NodeID: "n1", BindAddr: addr, DataDir: filepath.Join(t.TempDir(), "n1")})
	require.NoError(t, m.RegisterNode(&step{name: "A"}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	defer func() { require.NoError(t, m.Stop()) }()

	tr := newTracker(3)
	tr.base = time.Now()
	for _, i := range []int{0, 1} { // wf-2 is never started
		tr.called[i].Store(tr.since())
		require.NoError(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: idPrefix + string(rune('0'+i)), InitialNodes: []graft.NodeConfig{{Name: "A"}}}))
	}
	require.Eventually(t, func() bool {
		for _, id := range []string{"wf-0", "wf-1"} {
			st, err := m.GetWorkflowStatus(id)
			if err != nil || st.Status != graft.WorkflowStateCompleted {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	tr.onCompleted(&graft.WorkflowCompletedEvent{WorkflowID: "wf-0"}) // wf-1's event was lost

	require.Equal(t, 1, tr.recheck(m), "wf-1 found by status")
	require.EqualValues(t, 2, tr.count.Load())
	require.Equal(t, 0, tr.recheck(m), "nothing counted twice")
	select {
	case <-tr.all:
		t.Fatal("all done with wf-2 never started")
	default:
	}
}
