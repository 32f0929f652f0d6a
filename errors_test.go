package graft_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

func TestStartWorkflowRefusesBadTriggers(t *testing.T) {
	t.Parallel()
	const maxState = 1024
	b := setup(t, func(c *graft.Config) { c.Engine.MaxStateBytes = maxState }, func(m *graft.Manager) {
		register(t, m, fnNode("Ok", nil))
	})
	ok := []graft.NodeConfig{{Name: "Ok"}}
	cases := []struct {
		name string
		tr   graft.WorkflowTrigger
		want []string
	}{
		{"empty ID", graft.WorkflowTrigger{InitialNodes: ok}, []string{"WorkflowID is empty"}},
		{"ID too long", graft.WorkflowTrigger{WorkflowID: strings.Repeat("x", graft.MaxWorkflowIDLength+1), InitialNodes: ok},
			[]string{"WorkflowID", "257 bytes", "256"}},
		{"ID of max length is fine but node missing", graft.WorkflowTrigger{WorkflowID: strings.Repeat("y", graft.MaxWorkflowIDLength),
			InitialNodes: []graft.NodeConfig{{Name: "Ghost"}}}, []string{`"Ghost"`, "not registered"}},
		{"control character in ID", graft.WorkflowTrigger{WorkflowID: "bad\nid", InitialNodes: ok}, []string{"control character"}},
		{"invalid UTF-8 ID", graft.WorkflowTrigger{WorkflowID: "bad\xffid", InitialNodes: ok}, []string{"UTF-8"}},
		{"no initial nodes", graft.WorkflowTrigger{WorkflowID: "no-nodes"}, []string{"InitialNodes is empty"}},
		{"unregistered initial node", graft.WorkflowTrigger{WorkflowID: "ghost", InitialNodes: []graft.NodeConfig{{Name: "Ok"}, {Name: "Ghost"}}},
			[]string{"InitialNodes[1]", `"Ghost"`, "not registered"}},
		{"state not encodable", graft.WorkflowTrigger{WorkflowID: "chan-state", InitialNodes: ok, InitialState: make(chan int)},
			[]string{"InitialState", "JSON-encodable"}},
		{"state is a string", graft.WorkflowTrigger{WorkflowID: "string-state", InitialNodes: ok, InitialState: "hello"},
			[]string{"InitialState", "JSON object"}},
		{"state is a slice", graft.WorkflowTrigger{WorkflowID: "slice-state", InitialNodes: ok, InitialState: []int{1}},
			[]string{"InitialState", "JSON object"}},
		{"state too large", graft.WorkflowTrigger{WorkflowID: "big-state", InitialNodes: ok,
			InitialState: map[string]any{"blob": strings.Repeat("x", maxState)}}, []string{"MaxStateBytes", "1024"}},
		{"config not encodable", graft.WorkflowTrigger{WorkflowID: "func-config",
			InitialNodes: []graft.NodeConfig{{Name: "Ok", Config: func() {}}}}, []string{`"Ok"`, "config", "JSON-encodable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := b.m.StartWorkflow(tc.tr)
			require.ErrorIs(t, err, graft.ErrInvalidWorkflow)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			_, err = b.m.GetWorkflowStatus(tc.tr.WorkflowID)
			require.ErrorIs(t, err, graft.ErrWorkflowNotFound, "a refused trigger stored a workflow")
		})
	}
	t.Run("nil state means empty object", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "nil-state", InitialNodes: ok}))
		s := waitStatus(t, b.m, "nil-state", graft.WorkflowStateCompleted)
		require.JSONEq(t, `{}`, string(s.CurrentStateJSON))
	})
}

func TestDuplicateWorkflowID(t *testing.T) {
	t.Parallel()
	rel := release(t)
	b := setup(t, nil, func(m *graft.Manager) {
		register(t, m, fnNode("Wait", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
			if err := hold(ctx, rel.c); err != nil {
				return nil, err
			}
			s["done"] = true
			return &graft.NodeResult{GlobalState: s}, nil
		}))
	})
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "dup", InitialNodes: []graft.NodeConfig{{Name: "Wait"}},
		InitialState: map[string]any{"first": true}, Metadata: map[string]string{"who": "first"}}))
	err := b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "dup", InitialNodes: []graft.NodeConfig{{Name: "Wait"}},
		InitialState: map[string]any{"second": true}, Metadata: map[string]string{"who": "second"}})
	require.ErrorIs(t, err, graft.ErrWorkflowExists)
	require.ErrorContains(t, err, `"dup"`)
	rel.open()
	s := waitStatus(t, b.m, "dup", graft.WorkflowStateCompleted)
	require.JSONEq(t, `{"first":true,"done":true}`, string(s.CurrentStateJSON))
	require.Equal(t, "first", s.Metadata["who"])
	require.Len(t, s.ExecutedNodes, 1, "the duplicate start scheduled steps")

	// A terminal workflow keeps its ID.
	err = b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "dup", InitialNodes: []graft.NodeConfig{{Name: "Wait"}}})
	require.ErrorIs(t, err, graft.ErrWorkflowExists)
}

func TestInvalidStepOutputFailsWorkflow(t *testing.T) {
	t.Parallel()
	const maxState = 1024
	b := setup(t, func(c *graft.Config) { c.Engine.MaxStateBytes = maxState }, func(m *graft.Manager) {
		register(t, m,
			fnNode("Ok", nil),
			fnNode("ToGhost", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: next("Ok", "Ghost")}, nil
			}),
			fnNode("Grow", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["blob"] = strings.Repeat("x", 2*maxState)
				return &graft.NodeResult{GlobalState: s, NextNodes: next("Ok")}, nil
			}),
			fnNode("StringState", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{GlobalState: "not an object"}, nil
			}),
			fnNode("EmptyNext", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: ""}}}, nil
			}),
			fnNode("BadNextConfig", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: "Ok", Config: make(chan int)}}}, nil
			}),
		)
	})
	cases := []struct {
		node string
		want []string
	}{
		{"ToGhost", []string{`"ToGhost"`, `"Ghost"`, "not registered"}},
		{"Grow", []string{`"Grow"`, "limit", "1024"}},
		{"StringState", []string{`"StringState"`, "GlobalState", "JSON object"}},
		{"EmptyNext", []string{`"EmptyNext"`, "NextNodes[0]", "empty NodeName"}},
		{"BadNextConfig", []string{`"BadNextConfig"`, "NextNodes[0]", "Config"}},
	}
	for _, tc := range cases {
		t.Run(tc.node, func(t *testing.T) {
			t.Parallel()
			id := "bad-" + tc.node
			startWF(t, b.m, id, map[string]any{"seed": 1}, tc.node)
			s := waitStatus(t, b.m, id, graft.WorkflowStateFailed)
			for _, w := range tc.want {
				require.Contains(t, s.LastErrorText(), w)
			}
			require.Equal(t, tc.node, s.FailedNode)
			require.Len(t, s.ExecutedNodes, 1, "an invalid output must fail at once, without retries: %s", describe(s))
			require.JSONEq(t, `{"seed":1}`, string(s.CurrentStateJSON), "the invalid step's state was recorded")
		})
	}
	t.Run("member keeps working", func(t *testing.T) {
		t.Parallel()
		startWF(t, b.m, "good-after-bad", nil, "Ok")
		waitStatus(t, b.m, "good-after-bad", graft.WorkflowStateCompleted)
	})
}

func TestStartRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		tweak func(*graft.Config)
		port  int
		want  string
	}{
		{"empty NodeID", func(c *graft.Config) { c.NodeID = "" }, 0, "NodeID"},
		{"long NodeID", func(c *graft.Config) { c.NodeID = strings.Repeat("n", 129) }, 0, "NodeID is 129 bytes, at most 128 allowed"},
		{"NodeID not UTF-8", func(c *graft.Config) { c.NodeID = "n\xff" }, 0, "not valid UTF-8"},
		{"empty DataDir", func(c *graft.Config) { c.DataDir = "" }, 0, "DataDir"},
		{"BindAddr without port", func(c *graft.Config) { c.BindAddr = "localhost" }, 0, "BindAddr"},
		{"BindAddr without host", func(c *graft.Config) { c.BindAddr = ":7000" }, 0, "BindAddr"},
		{"BindAddr port out of range", func(c *graft.Config) { c.BindAddr = "127.0.0.1:70000" }, 0, "BindAddr"},
		{"negative WorkerCount", func(c *graft.Config) { c.Engine.WorkerCount = -1 }, 0, "WorkerCount"},
		{"MaxRetries below NoRetries", func(c *graft.Config) { c.Engine.MaxRetries = -2 }, 0, "MaxRetries"},
		{"MaxRetryDelay below RetryDelay", func(c *graft.Config) {
			c.Engine.RetryDelay = time.Second
			c.Engine.MaxRetryDelay = 10 * time.Millisecond
		}, 0, "MaxRetryDelay"},
		{"negative StepTimeout", func(c *graft.Config) { c.Engine.StepTimeout = -time.Second }, 0, "negative"},
		{"unknown policy", func(c *graft.Config) { c.Cluster.Policy = "lax" }, 0, "Cluster.Policy"},
		{"negative FailureGrace", func(c *graft.Config) { c.Cluster.FailureGrace = -time.Second }, 0, "Cluster.FailureGrace"},
		{"too many shards", func(c *graft.Config) { c.Cluster.ShardCount = 5000 }, 0, "ShardCount"},
		{"negative BootstrapWait", func(c *graft.Config) { c.Cluster.BootstrapWait = -time.Second }, 0, "Cluster.BootstrapWait"},
		{"static peer without port", func(c *graft.Config) {
			c.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryStatic, Static: []graft.StaticPeer{{ID: "n2", Address: "10.0.0.2"}}}}
		}, 0, "Discovery[0].Static[0]"},
		{"dns without a name", func(c *graft.Config) {
			c.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryDNS}}
		}, 0, "Discovery[0].Service"},
		{"bad grpc port", nil, -1, "grpcPort"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
			cfg.Logger = testLogger(t, "n1")
			if tc.tweak != nil {
				tc.tweak(cfg)
			}
			m := graft.NewWithConfig(cfg)
			t.Cleanup(func() { require.NoError(t, m.Stop()) })
			err := m.Start(context.Background(), tc.port)
			require.ErrorIs(t, err, graft.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "x"}), graft.ErrNotStarted,
				"a member whose Start failed must not accept workflows")
		})
	}
}

func TestCallsOutsideTheRunningState(t *testing.T) {
	t.Parallel()
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	m := graft.NewWithConfig(cfg)
	require.NoError(t, m.RegisterNode(fnNode("Ok", nil)))
	ctx := context.Background()
	tr := graft.WorkflowTrigger{WorkflowID: "w", InitialNodes: []graft.NodeConfig{{Name: "Ok"}}}

	require.ErrorIs(t, m.StartWorkflow(tr), graft.ErrNotStarted)
	t.Run("GetWorkflowStatus before Start", func(t *testing.T) {
		var err error
		require.NotPanics(t, func() { _, err = m.GetWorkflowStatus("w") })
		require.ErrorIs(t, err, graft.ErrNotStarted)
	})
	require.ErrorIs(t, m.PauseWorkflow(ctx, "w"), graft.ErrNotStarted)
	require.ErrorIs(t, m.BroadcastCommand(ctx, &graft.DevCommand{Command: "c"}), graft.ErrNotStarted)

	require.NoError(t, m.Start(ctx, 0))
	require.NoError(t, m.StartWorkflow(tr))
	waitStatus(t, m, "w", graft.WorkflowStateCompleted)
	require.NoError(t, m.Stop())

	require.ErrorIs(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "w2", InitialNodes: tr.InitialNodes}), graft.ErrClosed)
	_, err := m.GetWorkflowStatus("w")
	require.ErrorIs(t, err, graft.ErrClosed)
	require.ErrorIs(t, m.PauseWorkflow(ctx, "w"), graft.ErrClosed)
	require.ErrorIs(t, m.ResumeWorkflow(ctx, "w"), graft.ErrClosed)
	require.ErrorIs(t, m.StopWorkflow(ctx, "w"), graft.ErrClosed)
	require.ErrorIs(t, m.BroadcastCommand(ctx, &graft.DevCommand{Command: "c"}), graft.ErrClosed)
	require.ErrorIs(t, m.Start(ctx, 0), graft.ErrClosed)
}
