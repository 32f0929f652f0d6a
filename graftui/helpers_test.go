package graftui_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/loopback"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
)

// cardError is the error the Charge node fails with: markup in it must be
// shown as text.
const cardError = "card declined: <b>insufficient funds</b>"

// fixture is a running lone member with completed, failed, held (a step
// that runs until released) and blocked (a CanStart gate that stays shut)
// workflows.
type fixture struct {
	m         *graft.Manager
	completed []string
	failed    []string
	held      []string
	blocked   []string
}

// mapNode is a node over map state running fn.
type mapNode struct {
	name string
	fn   func(ctx context.Context, s map[string]any) (*graft.NodeResult, error)
}

func (n *mapNode) GetName() string { return n.name }

func (n *mapNode) Execute(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
	return n.fn(ctx, s)
}

// gateNode is a node whose CanStart stays shut until the test ends.
type gateNode struct {
	mapNode
	open func() bool
}

func (n *gateNode) CanStart(_ context.Context, _ map[string]any, _ map[string]any) bool {
	return n.open()
}

// ports hands out the loopback ports of this package's members.
var ports loopback.Ports

// freeAddr returns a loopback host:port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := ports.Addr()
	require.NoError(t, err)
	return addr
}

// newFixture starts a member and its workflows, and waits until each
// reached its status. The held steps are released, and the gate opened,
// before the member stops.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testlog.Logger(t, "n1: ", slog.LevelWarn)
	cfg.Cluster.ShardCount = 2
	cfg.Engine.RetryDelay = 5 * time.Millisecond
	cfg.Engine.MaxRetryDelay = 20 * time.Millisecond
	cfg.Engine.DrainTimeout = 2 * time.Second
	m := graft.NewWithConfig(cfg)
	release := make(chan struct{})
	var once sync.Once
	done := func() bool {
		select {
		case <-release:
			return true
		default:
			return false
		}
	}
	nodes := []any{
		&mapNode{name: "Quick", fn: func(_ context.Context, s map[string]any) (*graft.NodeResult, error) {
			s["quick"] = true
			return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{{NodeName: "Finish"}}}, nil
		}},
		&mapNode{name: "Finish", fn: func(_ context.Context, s map[string]any) (*graft.NodeResult, error) {
			s["finished"] = true
			return &graft.NodeResult{GlobalState: s}, nil
		}},
		&mapNode{name: "Charge", fn: func(context.Context, map[string]any) (*graft.NodeResult, error) {
			return nil, graft.Permanent(errors.New(cardError))
		}},
		&mapNode{name: "Hold", fn: func(ctx context.Context, s map[string]any) (*graft.NodeResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &graft.NodeResult{GlobalState: s}, nil
		}},
		&gateNode{mapNode: mapNode{name: "Gate", fn: func(_ context.Context, s map[string]any) (*graft.NodeResult, error) {
			return &graft.NodeResult{GlobalState: s}, nil
		}}, open: done},
	}
	for _, n := range nodes {
		require.NoError(t, m.RegisterNode(n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	f := &fixture{m: m}
	start := func(id, node string, meta map[string]string) {
		require.NoError(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id,
			InitialNodes: []graft.NodeConfig{{Name: node}},
			InitialState: map[string]any{"id": id, "note": "<script>alert(1)</script>"}, Metadata: meta}))
	}
	for i := range 3 {
		id := fmt.Sprintf("done-%d", i)
		start(id, "Quick", map[string]string{"team": "blue"})
		f.completed = append(f.completed, id)
	}
	for i := range 2 {
		id := fmt.Sprintf("fail-%d", i)
		start(id, "Charge", map[string]string{"team": "red"})
		f.failed = append(f.failed, id)
	}
	for i := range 2 {
		id := fmt.Sprintf("held-%d", i)
		start(id, "Hold", map[string]string{"team": "blue"})
		f.held = append(f.held, id)
	}
	start("gate-0", "Gate", nil)
	f.blocked = append(f.blocked, "gate-0")

	for _, id := range f.completed {
		f.waitStatus(t, id, graft.WorkflowStateCompleted)
	}
	for _, id := range f.failed {
		f.waitStatus(t, id, graft.WorkflowStateFailed)
	}
	for _, id := range f.held {
		f.waitFor(t, id, "executing", func(s *graft.WorkflowStatus) bool { return len(s.ExecutingNodes) == 1 })
	}
	for _, id := range f.blocked {
		f.waitStatus(t, id, graft.WorkflowStateBlocked)
	}
	return f
}

// waitStatus waits until workflow id reaches want.
func (f *fixture) waitStatus(t *testing.T, id string, want graft.WorkflowState) {
	t.Helper()
	f.waitFor(t, id, string(want), func(s *graft.WorkflowStatus) bool { return s.Status == want })
}

// waitFor polls workflow id's status until ok accepts it, for up to 30s.
func (f *fixture) waitFor(t *testing.T, id, what string, ok func(*graft.WorkflowStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *graft.WorkflowStatus
	var lastErr error
	for time.Now().Before(deadline) {
		s, err := f.m.GetWorkflowStatus(id)
		if err == nil && ok(s) {
			return
		}
		last, lastErr = s, err
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	status := graft.WorkflowState("none")
	if last != nil {
		status = last.Status
	}
	t.Fatalf("workflow %s never became %s (last status %s, last error %v)", id, what, status, lastErr)
}
