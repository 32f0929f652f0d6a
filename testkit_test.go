package graft_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// Helpers shared by the semantics, errors, events, commands and lifecycle
// tests. They add to helpers_test.go (setup, waitStatus, freeAddr,
// testLogger) without changing it.

// mapNode is a node over map state and config that runs fn; a nil fn
// returns the state unchanged and ends its branch.
type mapNode struct {
	name string
	fn   func(ctx context.Context, s map[string]any, c map[string]any) (*graft.NodeResult, error)
}

func (n *mapNode) GetName() string { return n.name }

func (n *mapNode) Execute(ctx context.Context, s map[string]any, c map[string]any) (*graft.NodeResult, error) {
	if n.fn == nil {
		return &graft.NodeResult{GlobalState: s}, nil
	}
	return n.fn(ctx, s, c)
}

// gatedNode is a mapNode with a CanStart method.
type gatedNode struct {
	mapNode
	can func(s map[string]any) bool
}

func (n *gatedNode) CanStart(_ context.Context, s map[string]any, _ map[string]any) bool {
	return n.can(s)
}

// fnNode returns a mapNode named name running fn.
func fnNode(name string, fn func(ctx context.Context, s map[string]any, c map[string]any) (*graft.NodeResult, error)) *mapNode {
	return &mapNode{name: name, fn: fn}
}

// next lists next nodes by name.
func next(names ...string) []graft.NextNode {
	out := make([]graft.NextNode, len(names))
	for i, n := range names {
		out[i] = graft.NextNode{NodeName: n}
	}
	return out
}

// register registers every node, failing the test on error.
func register(t *testing.T, m *graft.Manager, nodes ...any) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, m.RegisterNode(n))
	}
}

// startWF starts a workflow with the given initial nodes (no config).
func startWF(t *testing.T, m *graft.Manager, id string, state any, nodes ...string) {
	t.Helper()
	cfgs := make([]graft.NodeConfig, len(nodes))
	for i, n := range nodes {
		cfgs[i] = graft.NodeConfig{Name: n}
	}
	require.NoError(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id, InitialNodes: cfgs, InitialState: state}))
}

// decodeMap decodes a status's state into a map.
func decodeMap(t *testing.T, s *graft.WorkflowStatus) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, s.DecodeState(&m))
	return m
}

// executedNames lists the node names of a status's executed nodes, in
// commit order.
func executedNames(s *graft.WorkflowStatus) []string {
	out := make([]string, len(s.ExecutedNodes))
	for i, e := range s.ExecutedNodes {
		out[i] = e.NodeName
	}
	return out
}

// waitUntil polls the workflow's status until cond holds, failing after 20s.
func waitUntil(t *testing.T, m *graft.Manager, id string, what string, cond func(*graft.WorkflowStatus) bool) *graft.WorkflowStatus {
	t.Helper()
	var last *graft.WorkflowStatus
	require.Eventually(t, func() bool {
		s, err := m.GetWorkflowStatus(id)
		if err != nil {
			return false
		}
		last = s
		return cond(s)
	}, 20*time.Second, 5*time.Millisecond, "workflow %s: never saw %s (last: %s)", id, what, describe(last))
	return last
}

// collect returns a channel receiving every event a handler registered with
// subscribe gets, failing the test if the handler is refused. Events
// beyond its (large) buffer are dropped, which the tests never reach.
func collect[T any](t *testing.T, subscribe func(func(*T)) error) <-chan *T {
	t.Helper()
	ch := make(chan *T, 4096)
	require.NoError(t, subscribe(func(e *T) {
		select {
		case ch <- e:
		default:
		}
	}))
	return ch
}

// waitEvent returns the first event from ch that match accepts, failing
// after 20s.
func waitEvent[T any](t *testing.T, ch <-chan *T, what string, match func(*T) bool) *T {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case e := <-ch:
			if match == nil || match(e) {
				return e
			}
		case <-deadline.C:
			require.FailNow(t, "timed out waiting for event", what)
			return nil
		}
	}
}

// recv returns the next value from ch, failing after 20s.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		require.FailNow(t, "timed out waiting", what)
		var zero T
		return zero
	}
}

// gate is a channel that blocked nodes wait on until it is opened.
type gate struct {
	c    chan struct{}
	once sync.Once
}

// open releases every waiter; it may be called more than once.
func (g *gate) open() { g.once.Do(func() { close(g.c) }) }

// release returns a closed gate that is opened when the test ends (before
// the member stops, since cleanups run last-in first-out), so no node
// outlives its test.
func release(t *testing.T) *gate {
	g := &gate{c: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

// hold blocks until rel is closed or receives, or ctx ends.
func hold(ctx context.Context, rel <-chan struct{}) error {
	select {
	case <-rel:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trail is a goroutine-safe ordered record of strings.
type trail struct {
	mu  sync.Mutex
	got []string
}

func (r *trail) add(s string) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

func (r *trail) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// signal sends on ch without blocking (ch is buffered by the caller).
func signal[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}
