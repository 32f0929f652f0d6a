package member

import (
	"testing"

	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

func sum(created int64, id string) wf.Summary { return wf.Summary{ID: id, Created: created} }

func TestMergePages(t *testing.T) {
	t.Parallel()
	pos := func(c int64, id string) *wf.Position { return &wf.Position{Created: c, ID: id} }
	ids := func(s []wf.Summary) []string {
		out := []string{}
		for _, x := range s {
			out = append(out, x.ID)
		}
		return out
	}
	tests := []struct {
		name    string
		answers []wf.ListAnswer
		limit   int
		want    []string
		next    *wf.Position
	}{
		{
			name: "every shard done, fewer than the limit",
			answers: []wf.ListAnswer{
				{Items: []wf.Summary{sum(30, "a"), sum(10, "c")}},
				{Items: []wf.Summary{sum(20, "b")}},
			},
			limit: 5, want: []string{"a", "b", "c"},
		},
		{
			name: "ties by ID, page full with more left",
			answers: []wf.ListAnswer{
				{Items: []wf.Summary{sum(30, "b"), sum(20, "d")}},
				{Items: []wf.Summary{sum(30, "a"), sum(30, "c")}},
			},
			limit: 3, want: []string{"a", "b", "c"}, next: pos(30, "c"),
		},
		{
			name: "page full with exactly everything",
			answers: []wf.ListAnswer{
				{Items: []wf.Summary{sum(30, "a")}},
				{Items: []wf.Summary{sum(20, "b")}},
			},
			limit: 2, want: []string{"a", "b"},
		},
		{
			name: "a shard that stopped early cuts the page",
			answers: []wf.ListAnswer{
				{Items: []wf.Summary{sum(30, "a")}, More: true, Last: wf.Position{Created: 25, ID: "x"}},
				{Items: []wf.Summary{sum(28, "b"), sum(20, "c"), sum(10, "d")}},
			},
			limit: 10, want: []string{"a", "b"}, next: pos(25, "x"),
		},
		{
			name: "an empty page can still have a next",
			answers: []wf.ListAnswer{
				{More: true, Last: wf.Position{Created: 5, ID: "z"}},
				{},
			},
			limit: 10, want: []string{}, next: pos(5, "z"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, next := mergePages(tt.answers, tt.limit)
			require.Equal(t, tt.want, ids(got))
			require.Equal(t, tt.next, next)
		})
	}
}
