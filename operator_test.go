package graft_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/opclient"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/stretchr/testify/require"
)

// Config.Operators is validated by Start, each problem naming its field.
func TestOperatorsConfigIsValidated(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		tweak func(*graft.Config)
		want  string
	}{
		{"empty name", func(c *graft.Config) { c.Operators.Names = []string{""} }, "Operators.Names[0]"},
		{"name with a slash", func(c *graft.Config) { c.Operators.Names = []string{"ops", "a/b"} }, `Operators.Names[1] "a/b"`},
		{"long name", func(c *graft.Config) { c.Operators.Names = []string{strings.Repeat("o", 129)} }, "1 to 128 bytes"},
		{"not a prefix", func(c *graft.Config) { c.Operators.Networks = []string{"10.0.0.0/8", "office"} }, `Operators.Networks[1] "office" is not a CIDR prefix`},
		{"prefix too long", func(c *graft.Config) { c.Operators.Networks = []string{"10.0.0.0/33"} }, `Operators.Networks[0] "10.0.0.0/33"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
			cfg.Logger = testLogger(t, "n1")
			tc.tweak(cfg)
			require.ErrorContains(t, cfg.Validate(), tc.want)
			m := graft.NewWithConfig(cfg)
			t.Cleanup(func() { require.NoError(t, m.Stop()) })
			err := m.Start(context.Background(), 0)
			require.ErrorIs(t, err, graft.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
	cfg := graft.DefaultConfig("n1", "127.0.0.1:7000", "/tmp/x")
	cfg.Operators = graft.OperatorConfig{Names: []string{"ops", "ci-bot.prod_1"}, Networks: []string{"10.0.0.0/8", "fd00::/8", "192.0.2.7/32"}}
	require.NoError(t, cfg.Validate())
}

// Every member of a cluster serves the operator methods on its member RPC
// port, answering for the whole cluster.
func TestOperatorMethodsOnAClusterMember(t *testing.T) {
	members := startCluster(t, 2, func(m *graft.Manager) { register(t, m, fnNode("Ok", nil)) })
	startWF(t, members[0].m, "op-wf", nil, "Ok")
	waitStatus(t, members[0].m, "op-wf", graft.WorkflowStateCompleted)

	var addr string
	require.Eventually(t, func() bool {
		for _, mi := range members[0].m.GetClusterInfo().Members {
			if mi.ID == "n2" {
				addr = mi.RPCAddr
			}
		}
		return addr != ""
	}, 20*time.Second, 10*time.Millisecond, "n2's RPC address")
	c, err := opclient.New(opclient.Options{Addr: addr, Timeout: 20 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	ctx := t.Context()

	ms, err := c.Members(ctx)
	require.NoError(t, err)
	require.Equal(t, "n2", ms.NodeID)
	require.NotEmpty(t, ms.ClusterID)
	var ids []string
	for _, m := range ms.Members {
		ids = append(ids, m.ID)
		require.NotEmpty(t, m.RPCAddr, m.ID)
	}
	require.ElementsMatch(t, []string{"n1", "n2"}, ids)

	require.Eventually(t, func() bool {
		sh, err := c.Shards(ctx)
		require.NoError(t, err)
		require.Len(t, sh.Shards, 4)
		for _, s := range sh.Shards {
			if s.Leader == "" || len(s.Replicas) != 2 {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "every shard's leader and replicas, as n2 sees them")

	w, err := c.Show(ctx, "op-wf")
	require.NoError(t, err)
	require.Equal(t, "completed", w.Status)
	page, err := c.List(ctx, operator.ListRequest{Filter: operator.Filter{Status: "completed"}})
	require.NoError(t, err)
	require.Len(t, page.Workflows, 1)
	_, err = c.Show(ctx, "no-such-wf")
	var nf *opclient.NotFoundError
	require.ErrorAs(t, err, &nf)
}
