package graft_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// listNodes registers Ok (completes), Boom (fails the workflow) and Wait
// (runs until rel opens).
func listNodes(t *testing.T, rel *gate) func(*graft.Manager) {
	return func(m *graft.Manager) {
		register(t, m,
			fnNode("Ok", nil),
			fnNode("Boom", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return nil, graft.Permanent(errors.New("boom"))
			}),
			fnNode("Wait", func(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				if err := hold(ctx, rel.c); err != nil {
					return nil, err
				}
				return &graft.NodeResult{GlobalState: s}, nil
			}))
	}
}

// listAll pages through ListWorkflows with opts, calling between (if
// set) after each page, and returns every workflow listed.
func listAll(t *testing.T, m *graft.Manager, opts graft.ListOptions, between func(page int)) []graft.WorkflowSummary {
	t.Helper()
	var all []graft.WorkflowSummary
	for page := 0; ; page++ {
		require.Less(t, page, 1000, "paging never ended")
		p, err := m.ListWorkflows(context.Background(), opts)
		require.NoError(t, err)
		limit := opts.Limit
		if limit == 0 {
			limit = graft.DefaultListLimit
		}
		require.LessOrEqual(t, len(p.Workflows), limit)
		all = append(all, p.Workflows...)
		if p.NextPageToken == "" {
			return all
		}
		opts.PageToken = p.NextPageToken
		if between != nil {
			between(page)
		}
	}
}

// requireListOrder checks that ws are newest first, ties by ID, without
// duplicates, and returns their IDs.
func requireListOrder(t *testing.T, ws []graft.WorkflowSummary) []string {
	t.Helper()
	seen := map[string]bool{}
	var ids []string
	for i, w := range ws {
		require.False(t, seen[w.WorkflowID], "%s listed twice", w.WorkflowID)
		seen[w.WorkflowID] = true
		ids = append(ids, w.WorkflowID)
		if i > 0 {
			prev := ws[i-1]
			require.True(t, prev.StartedAt.After(w.StartedAt) ||
				(prev.StartedAt.Equal(w.StartedAt) && prev.WorkflowID < w.WorkflowID),
				"%s (%s) listed before %s (%s)", prev.WorkflowID, prev.StartedAt, w.WorkflowID, w.StartedAt)
		}
	}
	return ids
}

// startListed starts workflow id running node with metadata tenant.
func startListed(t *testing.T, m *graft.Manager, id, node, tenant string) {
	t.Helper()
	require.NoError(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id,
		InitialNodes: []graft.NodeConfig{{Name: node}}, Metadata: map[string]string{"tenant": tenant, "id": id}}))
}

func TestListWorkflowsOnALoneMember(t *testing.T) {
	t.Parallel()
	rel := release(t)
	b := setup(t, func(c *graft.Config) { c.Cluster.ShardCount, c.Engine.WorkerCount = 4, 32 }, listNodes(t, rel))
	ctx := context.Background()
	nodes := []string{"Ok", "Boom", "Wait"}
	want := map[graft.WorkflowState][]string{}
	for i := range 30 {
		id := fmt.Sprintf("wf-%02d", i)
		startListed(t, b.m, id, nodes[i%3], []string{"a", "b"}[i%2])
	}
	for i := range 30 {
		id := fmt.Sprintf("wf-%02d", i)
		st := []graft.WorkflowState{graft.WorkflowStateCompleted, graft.WorkflowStateFailed, graft.WorkflowStateRunning}[i%3]
		if st == graft.WorkflowStateRunning {
			waitUntil(t, b.m, id, "Wait executing", func(s *graft.WorkflowStatus) bool { return len(s.ExecutingNodes) == 1 })
		} else {
			waitStatus(t, b.m, id, st)
		}
		want[st] = append(want[st], id)
	}

	// Every workflow, across the 4 shards, in pages of 7 with starts
	// between pages: none twice, none missed, newest first.
	var added []string
	all := listAll(t, b.m, graft.ListOptions{Limit: 7}, func(page int) {
		id := fmt.Sprintf("late-%d", page)
		startListed(t, b.m, id, "Ok", "c")
		added = append(added, id)
	})
	ids := requireListOrder(t, all)
	require.NotEmpty(t, added)
	for i := range 30 {
		require.Contains(t, ids, fmt.Sprintf("wf-%02d", i))
	}
	require.Len(t, ids, 30, "workflows started after the first page are newer, so not in later pages")

	// Filters.
	failed := listAll(t, b.m, graft.ListOptions{Status: graft.WorkflowStateFailed, Limit: 4}, nil)
	require.ElementsMatch(t, want[graft.WorkflowStateFailed], requireListOrder(t, failed))
	for _, w := range failed {
		require.Equal(t, "Boom", w.FailedNode)
		require.Contains(t, w.LastError, "boom")
		require.NotNil(t, w.CompletedAt)
	}
	stuck := listAll(t, b.m, graft.ListOptions{NodeName: "Wait"}, nil)
	require.ElementsMatch(t, want[graft.WorkflowStateRunning], requireListOrder(t, stuck), "stuck on Wait")
	for _, w := range stuck {
		require.Equal(t, []string{"Wait"}, w.ExecutingNodes)
		require.Nil(t, w.CompletedAt)
	}
	require.ElementsMatch(t, want[graft.WorkflowStateFailed],
		requireListOrder(t, listAll(t, b.m, graft.ListOptions{NodeName: "Boom"}, nil)), "failed in Boom")
	require.Empty(t, listAll(t, b.m, graft.ListOptions{NodeName: "Ok"}, nil), "completed workflows wait on no node")

	combined := listAll(t, b.m, graft.ListOptions{Status: graft.WorkflowStateFailed,
		Metadata: map[string]string{"tenant": "a"}, Limit: 2}, nil)
	var wantCombined []string
	for i := 1; i < 30; i += 3 {
		if i%2 == 0 {
			wantCombined = append(wantCombined, fmt.Sprintf("wf-%02d", i))
		}
	}
	require.ElementsMatch(t, wantCombined, requireListOrder(t, combined))
	one := listAll(t, b.m, graft.ListOptions{Metadata: map[string]string{"id": "wf-07", "tenant": "b"}}, nil)
	require.Equal(t, []string{"wf-07"}, requireListOrder(t, one))

	first := all[0].StartedAt
	window := listAll(t, b.m, graft.ListOptions{StartedBefore: first}, nil)
	require.Len(t, window, 29, "StartedBefore is exclusive")
	require.Empty(t, listAll(t, b.m, graft.ListOptions{StartedAfter: time.Now().Add(time.Hour)}, nil))

	// Counts.
	for _, id := range added {
		waitStatus(t, b.m, id, graft.WorkflowStateCompleted)
	}
	c, err := b.m.CountWorkflows(ctx, graft.ListFilter{})
	require.NoError(t, err)
	require.True(t, c.Complete)
	require.Equal(t, map[graft.WorkflowState]int{
		graft.WorkflowStateCompleted: 10 + len(added), graft.WorkflowStateFailed: 10, graft.WorkflowStateRunning: 10,
	}, c.ByStatus)
	require.Equal(t, 30+len(added), c.Total)
	c, err = b.m.CountWorkflows(ctx, graft.ListFilter{Metadata: map[string]string{"tenant": "a"}})
	require.NoError(t, err)
	require.Equal(t, 15, c.Total)
	require.Equal(t, 5, c.ByStatus[graft.WorkflowStateFailed])
	c, err = b.m.CountWorkflows(ctx, graft.ListFilter{Status: graft.WorkflowStateRunning, StartedBefore: first})
	require.NoError(t, err)
	running := 0
	for _, w := range window {
		if w.Status == graft.WorkflowStateRunning {
			running++
		}
	}
	require.Equal(t, 9, running, "wf-29, the newest, runs Wait")
	require.Equal(t, map[graft.WorkflowState]int{graft.WorkflowStateRunning: running}, c.ByStatus)

	// Refused options.
	p, err := b.m.ListWorkflows(ctx, graft.ListOptions{Status: graft.WorkflowStateFailed, Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, p.NextPageToken)
	manyPairs := map[string]string{}
	for i := range graft.MaxListMetadataPairs + 1 {
		manyPairs[fmt.Sprint(i)] = "x"
	}
	for name, opts := range map[string]graft.ListOptions{
		"negative limit":     {Limit: -1},
		"limit over the max": {Limit: graft.MaxListLimit + 1},
		"unknown status":     {Status: "sleeping"},
		"too many pairs":     {Metadata: manyPairs},
		"empty key":          {Metadata: map[string]string{"": "x"}},
		"empty range":        {StartedAfter: first, StartedBefore: first},
		"garbage token":      {PageToken: "not a token!"},
		"truncated token":    {PageToken: p.NextPageToken[:10]},
		"token of a filter":  {Status: graft.WorkflowStateRunning, PageToken: p.NextPageToken},
	} {
		_, err := b.m.ListWorkflows(ctx, opts)
		require.ErrorIs(t, err, graft.ErrInvalidListOptions, name)
	}
	_, err = b.m.CountWorkflows(ctx, graft.ListFilter{Status: "sleeping"})
	require.ErrorIs(t, err, graft.ErrInvalidListOptions)
}

// Lists and counts from every member of a 3-member cluster cover every
// shard, whichever member leads it; with two replicas per shard, each
// member reads some shards through another member (the member RPC).
func TestListWorkflowsAcrossACluster(t *testing.T) {
	rel := release(t)
	peers := make([]graft.StaticPeer, 3)
	for i := range peers {
		peers[i] = graft.StaticPeer{ID: fmt.Sprintf("n%d", i+1), Address: "127.0.0.1",
			Port: portOf(t, freeAddr(t)), GossipPort: portOf(t, freeAddr(t))}
	}
	members := startMembers(t, peers, func(p graft.StaticPeer, cfg *graft.Config) {
		cfg.BindAddr = "127.0.0.1:" + strconv.Itoa(p.Port)
		cfg.Cluster.ReplicationFactor = 2
	}, listNodes(t, rel))
	notHosting := 0
	for _, cm := range members {
		if len(cm.m.GetClusterInfo().HostedShards) < cm.cfg.Cluster.ShardCount {
			notHosting++
		}
	}
	require.Positive(t, notHosting, "some member must read a shard it does not hold")
	var ids, failed []string
	for i, cm := range members {
		for j := range 10 {
			id := fmt.Sprintf("wf-%d-%d", i, j)
			node := []string{"Ok", "Boom"}[j%2]
			startListed(t, cm.m, id, node, cm.cfg.NodeID)
			ids = append(ids, id)
			if node == "Boom" {
				failed = append(failed, id)
			}
		}
	}
	for _, id := range ids {
		pollStatus(t, members[0].m, id, "terminal", func(s *graft.WorkflowStatus) bool { return s.Status.Terminal() })
	}
	for _, cm := range members {
		all := listAll(t, cm.m, graft.ListOptions{Limit: 4}, nil)
		require.ElementsMatch(t, ids, requireListOrder(t, all), "listed from %s", cm.cfg.NodeID)
		f := listAll(t, cm.m, graft.ListOptions{Status: graft.WorkflowStateFailed, NodeName: "Boom", Limit: 3}, nil)
		require.ElementsMatch(t, failed, requireListOrder(t, f), "failed, listed from %s", cm.cfg.NodeID)
		mine := listAll(t, cm.m, graft.ListOptions{Metadata: map[string]string{"tenant": "n2"}}, nil)
		require.Len(t, mine, 10, "n2's workflows, listed from %s", cm.cfg.NodeID)
		c, err := cm.m.CountWorkflows(context.Background(), graft.ListFilter{})
		require.NoError(t, err)
		require.Equal(t, map[graft.WorkflowState]int{graft.WorkflowStateCompleted: 15, graft.WorkflowStateFailed: 15},
			c.ByStatus, "counted from %s", cm.cfg.NodeID)
	}
	requireReplicasAgree(t, members)
}

// The indexes and status counts are stored with the workflows: a
// restarted member lists and counts what it listed before.
func TestListWorkflowsAfterARestart(t *testing.T) {
	t.Parallel()
	rel := release(t)
	addr, dir := freeAddr(t), t.TempDir()
	m := durStart(t, durConfig(t, "n1", addr, dir), listNodes(t, rel))
	for i := range 6 {
		startListed(t, m, fmt.Sprintf("wf-%d", i), []string{"Ok", "Boom"}[i%2], "a")
	}
	for i := range 6 {
		pollStatus(t, m, fmt.Sprintf("wf-%d", i), "terminal", func(s *graft.WorkflowStatus) bool { return s.Status.Terminal() })
	}
	before := requireListOrder(t, listAll(t, m, graft.ListOptions{Limit: 2}, nil))
	require.Len(t, before, 6)
	require.NoError(t, m.Stop())

	m = durStart(t, durConfig(t, "n1-again", addr, dir), listNodes(t, rel))
	require.Equal(t, before, requireListOrder(t, listAll(t, m, graft.ListOptions{Limit: 2}, nil)))
	failed := listAll(t, m, graft.ListOptions{Status: graft.WorkflowStateFailed, NodeName: "Boom"}, nil)
	require.ElementsMatch(t, []string{"wf-1", "wf-3", "wf-5"}, requireListOrder(t, failed))
	c, err := m.CountWorkflows(context.Background(), graft.ListFilter{})
	require.NoError(t, err)
	require.Equal(t, map[graft.WorkflowState]int{graft.WorkflowStateCompleted: 3, graft.WorkflowStateFailed: 3}, c.ByStatus)
}
