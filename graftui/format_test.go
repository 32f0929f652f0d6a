package graftui

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

func TestIndentJSONShowsHTMLCharacters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":"\u003cb\u003e \u0026"}`, "{\n  \"a\": \"<b> &\"\n}"},
		{`{"a":"\\u003c"}`, "{\n  \"a\": \"\\\\u003c\"\n}"},
		{`{"a":"\"\u003c\n"}`, "{\n  \"a\": \"\\\"<\\n\"\n}"},
		{`{"a":"\u00e9"}`, "{\n  \"a\": \"\\u00e9\"\n}"},
		{`not json`, `not json`},
		{``, ``},
	} {
		got := indentJSON([]byte(tc.in))
		require.Equal(t, tc.want, got, tc.in)
		if json.Valid([]byte(tc.in)) {
			var a, b any
			require.NoError(t, json.Unmarshal([]byte(tc.in), &a))
			require.NoError(t, json.Unmarshal([]byte(got), &b), "still JSON: %s", got)
			require.Equal(t, a, b, "same value")
		}
	}
}

func TestParseInstant(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"2026-12-07T10:00:00Z", time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), false},
		{"2026-12-07T10:00:00+02:00", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), false},
		{"2026-12-07T10:00", time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), false},
		{"2026-12-07", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"-90m", time.Time{}, true},
		{"0s", time.Time{}, true},
		{"yesterday", time.Time{}, true},
	} {
		got, err := parseInstant("since", tc.in, now)
		if tc.bad {
			var pe *paramError
			require.ErrorAs(t, err, &pe, tc.in)
			require.Equal(t, "since", pe.Param)
			continue
		}
		require.NoError(t, err, tc.in)
		require.True(t, tc.want.Equal(got), "%s: got %s", tc.in, got)
	}
}

func TestTimelinePlacesSteps(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	end := t0.Add(10 * time.Second)
	s := &graft.WorkflowStatus{StartedAt: t0, CompletedAt: &end, ExecutedNodes: []graft.ExecutedNode{
		{NodeName: "A", StartedAt: t0, Duration: 2 * time.Second},
		{NodeName: "B", StartedAt: t0.Add(5 * time.Second), Duration: time.Nanosecond, Error: "boom"},
	}}
	rows, span := timeline(s, t0.Add(time.Hour))
	require.Equal(t, 10*time.Second, span)
	require.Len(t, rows, 2)
	require.InDelta(t, 0, rows[0].X, 0.01)
	require.InDelta(t, 200, rows[0].W, 0.01)
	require.InDelta(t, 500, rows[1].X, 0.01)
	require.InDelta(t, 2, rows[1].W, 0.01, "a short step still shows")
	require.Equal(t, 5*time.Second, rows[1].Offset)

	running := &graft.WorkflowStatus{StartedAt: t0, ExecutingNodes: []graft.ExecutingNode{{NodeName: "C", StartedAt: t0.Add(time.Second)}}}
	rows, span = timeline(running, t0.Add(4*time.Second))
	require.Equal(t, 4*time.Second, span, "a running workflow's timeline ends now")
	require.True(t, rows[0].Running)
	require.Equal(t, 3*time.Second, rows[0].Duration)
	require.InDelta(t, 250, rows[0].X, 0.01)
	require.InDelta(t, 750, rows[0].W, 0.01)
}

func TestShardRowsFromMembers(t *testing.T) {
	info := graft.ClusterInfo{Shards: 3, HostedShards: []uint64{1, 3}, LeadShards: []uint64{3}, Members: []graft.MemberInfo{
		{ID: "n1", ShardsHeld: []uint64{1, 3}, ShardsLed: []uint64{3}},
		{ID: "n2", ShardsHeld: []uint64{1, 2}, ShardsLed: []uint64{1}},
		{ID: "n3", ShardsHeld: []uint64{2, 3}},
	}}
	require.Equal(t, []shardRow{
		{ID: 1, Replicas: []string{"n1", "n2"}, Leaders: []string{"n2"}, HeldHere: true},
		{ID: 2, Replicas: []string{"n2", "n3"}},
		{ID: 3, Replicas: []string{"n1", "n3"}, Leaders: []string{"n1"}, HeldHere: true, LedHere: true},
	}, shardRows(info))
}
