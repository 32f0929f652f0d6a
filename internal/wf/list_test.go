package wf

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func (b *bundle) list(t *testing.T, q ListQuery) ListAnswer {
	t.Helper()
	out, err := b.l.Lookup(b.kv, EncodeQuery(Query{Op: QueryList, List: &q}))
	require.NoError(t, err)
	var a ListAnswer
	require.NoError(t, json.Unmarshal(out, &a))
	return a
}

func (b *bundle) count(t *testing.T, q ListQuery) CountAnswer {
	t.Helper()
	out, err := b.l.Lookup(b.kv, EncodeQuery(Query{Op: QueryCount, List: &q}))
	require.NoError(t, err)
	var a CountAnswer
	require.NoError(t, json.Unmarshal(out, &a))
	return a
}

func ids(a ListAnswer) []string {
	out := []string{}
	for _, s := range a.Items {
		out = append(out, s.ID)
	}
	return out
}

// indexKeys returns the keys of the secondary indexes and counts in kv.
func indexKeys(kv *memKV) map[string]string {
	out := map[string]string{}
	for k, v := range kv.m {
		switch k[0] {
		case prefixByTime, prefixByStatus, prefixByMeta, prefixByNode, keyStatusCount[0], keyIndexLayout[0]:
			out[k] = string(v)
		}
	}
	return out
}

// requireRebuildable checks that the indexes maintained command by command
// are exactly those Upgrade builds from the records.
func requireRebuildable(t *testing.T, b *bundle) {
	t.Helper()
	rebuilt := &memKV{m: maps.Clone(b.kv.m)}
	for k := range indexKeys(rebuilt) {
		delete(rebuilt.m, k)
	}
	require.NoError(t, b.l.Upgrade(rebuilt))
	want := indexKeys(rebuilt)
	delete(want, keyIndexLayout)
	got := indexKeys(b.kv)
	delete(got, keyIndexLayout)
	require.Equal(t, want, got)
}

// Every status change moves a workflow between the status and node
// indexes, in the same apply as its record; a purge drops every entry.
func TestIndexFollowsEveryStatusChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.l.Upgrade(b.kv))
	c := start("wf", "A")
	c.Metadata = map[string]string{"tenant": "acme", "env": "prod"}
	require.Equal(t, OK, b.do(t, c).Code)

	in := func(q ListQuery) bool {
		q.Limit = 10
		return len(b.list(t, q).Items) == 1
	}
	counts := func() StatusCounts { return b.count(t, ListQuery{}).Counts }
	require.True(t, in(ListQuery{Status: StatusRunning}))
	require.True(t, in(ListQuery{Node: "A"}))
	require.True(t, in(ListQuery{Meta: map[string]string{"tenant": "acme", "env": "prod"}}))
	require.False(t, in(ListQuery{Meta: map[string]string{"tenant": "other"}}))
	require.EqualValues(t, 1, counts()[StatusRunning])
	requireRebuildable(t, b)

	b.do(t, claim("wf", 1, 110))
	require.True(t, in(ListQuery{Node: "A"}), "an executing step keeps its node")
	b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120, Tasks: []NewTask{{Node: "B"}}})
	require.False(t, in(ListQuery{Node: "A"}))
	require.True(t, in(ListQuery{Node: "B"}))
	requireRebuildable(t, b)

	b.do(t, Command{Op: OpPause, WF: "wf", Now: 130})
	require.False(t, in(ListQuery{Status: StatusRunning}))
	require.True(t, in(ListQuery{Status: StatusPaused, Node: "B"}))
	require.EqualValues(t, 1, counts()[StatusPaused])
	require.EqualValues(t, 0, counts()[StatusRunning])
	b.do(t, Command{Op: OpResume, WF: "wf", Now: 140})
	require.Equal(t, OK, b.do(t, Command{Op: OpBlock, WF: "wf", Now: 150, StateVersion: 1}).Code)
	require.True(t, in(ListQuery{Status: ListBlocked}))
	require.False(t, in(ListQuery{Status: StatusRunning}))
	require.Equal(t, ListBlocked, b.list(t, ListQuery{Limit: 1}).Items[0].Status)
	requireRebuildable(t, b)

	b.do(t, claim("wf", 2, 160))
	require.True(t, in(ListQuery{Status: StatusRunning}), "a claim unblocks")
	b.do(t, Command{Op: OpFail, WF: "wf", TaskID: 2, ExecID: "wf/2.1", Now: 170, StartedAt: 160, Error: strings.Repeat("x", 2000)})
	require.True(t, in(ListQuery{Status: StatusFailed, Node: "B"}), "a failed workflow is under its failed node")
	s := b.list(t, ListQuery{Limit: 1}).Items[0]
	require.Equal(t, "B", s.FailedNode)
	require.Len(t, s.LastError, maxSummaryError)
	require.Equal(t, int64(170), s.Ended)
	require.EqualValues(t, 1, counts()[StatusFailed])
	require.EqualValues(t, 0, counts()[StatusRunning]+counts()[ListBlocked])
	requireRebuildable(t, b)

	b.do(t, start("st", "A"))
	b.do(t, Command{Op: OpStop, WF: "st", Now: 180})
	require.Equal(t, []string{"wf"}, ids(b.list(t, ListQuery{Node: "B", Limit: 10})), "stopped workflows wait on no node")
	require.Empty(t, b.list(t, ListQuery{Node: "A", Limit: 10}).Items)
	require.EqualValues(t, 1, counts()[StatusStopped])
	requireRebuildable(t, b)

	require.Equal(t, 2, b.do(t, Command{Op: OpPurge, Now: 1000, Before: 500}).Purged)
	require.Empty(t, b.list(t, ListQuery{Limit: 10}).Items)
	require.Equal(t, StatusCounts{}, counts())
	for k := range indexKeys(b.kv) {
		require.Contains(t, []string{keyStatusCount, keyIndexLayout}, k, "only the counts and layout remain")
	}
}

// startAt starts workflow id at time now with metadata md.
func (b *bundle) startAt(t *testing.T, id string, now int64, md map[string]string) {
	t.Helper()
	c := start(id, "A")
	c.Now, c.Metadata = now, md
	require.Equal(t, OK, b.do(t, c).Code)
}

// Pages are newest first, ties by ID; resuming from the last position
// neither repeats nor misses a workflow, even with starts in between.
func TestListPagesAreStable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var want []string
	for i := range 25 {
		now := int64(1000 - i/2*10) // pairs share a start time
		id := fmt.Sprintf("w%02d", i)
		b.startAt(t, id, now, nil)
		want = append(want, id)
	}
	var got []string
	var from *Position
	for page := 0; ; page++ {
		a := b.list(t, ListQuery{Limit: 4, From: from})
		got = append(got, ids(a)...)
		if !a.More {
			break
		}
		from = &a.Last
		// Starts between pages: newer ones fall before the position, so
		// the pages to come are unchanged.
		b.startAt(t, fmt.Sprintf("new%d", page), 5000+int64(page), nil)
	}
	require.Equal(t, want, got)

	// Time bounds are exclusive.
	a := b.list(t, ListQuery{Limit: 100, After: 900, Before: 990})
	require.Equal(t, want[4:20], ids(a), "started in (900, 990): 980 down to 910")
	require.False(t, a.More)
}

func TestListCombinedFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 40 {
		md := map[string]string{"tenant": []string{"a", "b"}[i%2], "n": fmt.Sprint(i % 4)}
		b.startAt(t, fmt.Sprintf("w%02d", i), int64(1000+i), md)
		if i%3 == 0 {
			b.do(t, Command{Op: OpStop, WF: fmt.Sprintf("w%02d", i), Now: 5000})
		}
	}
	want := []string{}
	for i := 39; i >= 0; i-- {
		if i%2 == 0 && i%4 == 2 && i%3 != 0 && i > 5 {
			want = append(want, fmt.Sprintf("w%02d", i))
		}
	}
	q := ListQuery{Status: StatusRunning, Meta: map[string]string{"tenant": "a", "n": "2"}, After: 1005, Limit: 3}
	var got []string
	for {
		a := b.list(t, q)
		got = append(got, ids(a)...)
		if !a.More {
			break
		}
		q.From = &a.Last
	}
	require.Equal(t, want, got)

	// The status index drives when the status is rare enough to examine
	// whole, the metadata index otherwise; the node index always.
	counts := StatusCounts{}
	counts[StatusRunning] = 10
	require.Equal(t, statusPrefix(StatusRunning), q.drive(&counts, 10))
	counts[StatusRunning] = 11
	require.Equal(t, metaPrefix("n", "2"), q.drive(&counts, 10))
	require.Equal(t, metaPrefix("n", "2"), q.drive(nil, 10))
	q.Node = "A"
	require.Equal(t, nodePrefix("A"), q.drive(&counts, 10))

	c := b.count(t, ListQuery{Meta: map[string]string{"tenant": "a", "n": "2"}, After: 1005})
	require.True(t, c.Complete)
	require.EqualValues(t, len(want), c.Counts[StatusRunning])
	require.EqualValues(t, 3, c.Counts[StatusStopped]) // w06, w18, w30
	c = b.count(t, ListQuery{Status: StatusStopped, Before: 1020})
	require.EqualValues(t, 7, c.Counts[StatusStopped]) // w00..w18 by 3
	require.Zero(t, c.Counts[StatusRunning])
}

// A page of a sparse filter examines a bounded number of entries: it may
// come back short with More set, and paging on finds the rest.
func TestListExamineBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range minListExamine + 10 {
		md := map[string]string{"k": "common"}
		if i == 0 {
			md["rare"] = "yes"
		}
		b.startAt(t, fmt.Sprintf("w%05d", i), int64(i+1), md)
	}
	q := ListQuery{Meta: map[string]string{"k": "common", "rare": "yes"}, Limit: 5}
	a := b.list(t, q)
	require.Empty(t, a.Items, "the only match is the oldest, past the budget")
	require.True(t, a.More)
	q.From = &a.Last
	a = b.list(t, q)
	require.Equal(t, []string{"w00000"}, ids(a))
	require.False(t, a.More)
}

func TestListRefusesBadQueries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	many := map[string]string{}
	for i := range maxListMeta + 1 {
		many[fmt.Sprint(i)] = "v"
	}
	for _, tc := range []struct {
		q    *ListQuery
		want string
	}{
		{nil, "without a selection"},
		{&ListQuery{Limit: 0}, "outside 1..1000"},
		{&ListQuery{Limit: MaxListLimit + 1}, "outside 1..1000"},
		{&ListQuery{Limit: 1, Meta: many}, "over the limit of 64"},
	} {
		_, err := b.l.Lookup(b.kv, EncodeQuery(Query{Op: QueryList, List: tc.q}))
		require.ErrorContains(t, err, tc.want)
	}
	_, err := b.l.Lookup(b.kv, EncodeQuery(Query{Op: QueryCount, List: &ListQuery{Meta: many}}))
	require.ErrorContains(t, err, "over the limit of 64")
}

// Upgrade builds the indexes of a keyspace written without them, once.
func TestUpgradeBuildsIndexesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startAt(t, "a", 100, map[string]string{"x": "1"})
	b.startAt(t, "b", 200, nil)
	b.do(t, Command{Op: OpStop, WF: "b", Now: 300})
	old := &memKV{m: maps.Clone(b.kv.m)}
	for k := range indexKeys(old) {
		delete(old.m, k)
	}
	require.NoError(t, b.l.Upgrade(old))
	require.Equal(t, indexLayout, string(old.m[keyIndexLayout]))
	requireRebuildable(t, b)
	upgraded := maps.Clone(old.m)
	require.NoError(t, b.l.Upgrade(old))
	require.Equal(t, upgraded, old.m, "an upgraded keyspace is left alone")

	l2 := NewLogic(7, nil)
	require.NoError(t, l2.Open(old))
	out, err := l2.Lookup(old, EncodeQuery(Query{Op: QueryList, List: &ListQuery{Meta: map[string]string{"x": "1"}, Limit: 5}}))
	require.NoError(t, err)
	var a ListAnswer
	require.NoError(t, json.Unmarshal(out, &a))
	require.Equal(t, []string{"a"}, ids(a))
}
