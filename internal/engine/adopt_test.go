package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// recordingStore records the commands an engine proposes and commits them
// all with an empty result.
type recordingStore struct {
	mu   sync.Mutex
	cmds []wf.Command
}

func (s *recordingStore) Apply(_ context.Context, _ uint64, c *wf.Command) (wf.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, *c)
	return wf.Result{Code: wf.OK}, nil
}

func (s *recordingStore) Active(uint64) ([]wf.View, error) { return nil, nil }

func (s *recordingStore) ops() []wf.Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wf.Op
	for _, c := range s.cmds {
		out = append(out, c.Op)
	}
	return out
}

// Adopt takes only the claims a command made for this run of this member.
// A claim made for another member (say the shard's leader, answering a
// start this member forwarded) is that member's to run: adopting it here
// would give it back while its owner runs it.
func TestAdoptTakesOnlyOwnClaims(t *testing.T) {
	store := &recordingStore{}
	cfg := testConfig(store, executor.NewRegistry(), SystemClock{})
	cfg.Incarnation = "run-2"
	e, err := New(cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Stop(context.Background())) }()
	res := &wf.Result{Code: wf.OK, Claimed: []wf.Claimed{{Task: wf.Task{ID: 1, Node: "A"}, ExecID: "x1"}}}

	e.Adopt(1, &wf.Command{Op: wf.OpStart, WF: "w", Member: "n2", Incarnation: "run-1"}, res)
	e.Adopt(1, &wf.Command{Op: wf.OpStart, WF: "w", Member: "n1", Incarnation: "run-1"}, res)
	e.Adopt(1, &wf.Command{Op: wf.OpStart, WF: "w"}, res)
	require.Never(t, func() bool { return len(store.ops()) > 0 }, 200*time.Millisecond, 10*time.Millisecond,
		"claims of another member or an earlier run were acted on")

	// Its own claim, for a shard it does not lead (it lost leadership while
	// the command was in flight), is given back at once.
	e.Adopt(1, &wf.Command{Op: wf.OpStart, WF: "w", Member: "n1", Incarnation: "run-2"}, res)
	require.Eventually(t, func() bool {
		ops := store.ops()
		return len(ops) == 1 && ops[0] == wf.OpRequeue
	}, 5*time.Second, 10*time.Millisecond)
}
