package formation

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	listed := Rules{Mode: Listed, IDs: []string{"n1", "n2", "n3"}}
	count3 := Rules{Mode: Count, Want: 3}
	elect := Rules{Mode: Elect}
	peer := func(id string, r Rules) Peer { return Peer{ID: id, Seed: "seed-" + id, Rules: r.Fingerprint()} }
	booted := func(id, cluster string) Peer {
		return Peer{ID: id, Cluster: cluster, Seed: "seed-" + id, Rules: "elect"}
	}

	tests := []struct {
		name   string
		in     Input
		action Action
		want   Decision
	}{
		{
			name:   "listed waits for a missing founder",
			in:     Input{Self: peer("n2", listed), Rules: listed, Seen: []Peer{peer("n1", listed), peer("n2", listed)}},
			action: Wait,
		},
		{
			name: "listed bootstraps with every founder; the lowest founder's seed is the cluster ID",
			in: Input{Self: peer("n2", listed), Rules: listed,
				Seen: []Peer{peer("n3", listed), peer("n1", listed), peer("n2", listed), peer("n9", elect)}},
			want: Decision{Action: Bootstrap, Cluster: "seed-n1", Founders: []string{"n1", "n2", "n3"}},
		},
		{
			name: "listed waits while a founder has another list",
			in: Input{Self: peer("n1", listed), Rules: listed,
				Seen: []Peer{peer("n1", listed), peer("n2", Rules{Mode: Listed, IDs: []string{"n1", "n2"}}), peer("n3", listed)}},
			action: Wait,
		},
		{
			name:   "a list of only this member bootstraps alone at once",
			in:     Input{Self: peer("n1", Rules{Mode: Listed, IDs: []string{"n1"}}), Rules: Rules{Mode: Listed, IDs: []string{"n1"}}},
			want:   Decision{Action: Bootstrap, Cluster: "seed-n1", Founders: []string{"n1"}},
			action: Bootstrap,
		},
		{
			name: "a booted member is joined whatever the rules",
			in: Input{Self: peer("n2", listed), Rules: listed,
				Seen: []Peer{booted("n1", "c1"), peer("n2", listed)}},
			want: Decision{Action: Join, Cluster: "c1", Others: []string{}},
		},
		{
			name: "of two booted clusters the larger is joined and the other reported",
			in: Input{Self: peer("n5", elect), Rules: elect,
				Seen: []Peer{booted("n1", "cz"), booted("n2", "ca"), booted("n3", "cz"), peer("n5", elect)}},
			want: Decision{Action: Join, Cluster: "cz", Others: []string{"ca"}},
		},
		{
			name:   "count waits below the expected number",
			in:     Input{Self: peer("n1", count3), Rules: count3, Seen: []Peer{peer("n1", count3), peer("n2", count3)}},
			action: Wait,
		},
		{
			name: "count does not count members with other rules",
			in: Input{Self: peer("n1", count3), Rules: count3,
				Seen: []Peer{peer("n1", count3), peer("n2", count3), peer("n3", Rules{Mode: Count, Want: 2})}},
			action: Wait,
		},
		{
			name: "count bootstraps with the lowest IDs",
			in: Input{Self: peer("n2", count3), Rules: count3,
				Seen: []Peer{peer("n4", count3), peer("n1", count3), peer("n2", count3), peer("n3", count3)}},
			want: Decision{Action: Bootstrap, Cluster: "seed-n1", Founders: []string{"n1", "n2", "n3"}},
		},
		{
			name: "count fails a member outside the lowest IDs",
			in: Input{Self: peer("n4", count3), Rules: count3,
				Seen: []Peer{peer("n4", count3), peer("n1", count3), peer("n2", count3), peer("n3", count3)}},
			action: Fail,
		},
		{
			name:   "elect waits for BootstrapWait",
			in:     Input{Self: peer("n1", elect), Rules: elect, Seen: []Peer{peer("n1", elect)}},
			action: Wait,
		},
		{
			name:   "elect: a higher ID waits for the lowest",
			in:     Input{Self: peer("n2", elect), Rules: elect, Seen: []Peer{peer("n1", elect), peer("n2", elect)}, Waited: true},
			action: Wait,
		},
		{
			name: "elect: the lowest ID founds alone",
			in: Input{Self: peer("n1", elect), Rules: elect,
				Seen: []Peer{peer("n1", elect), peer("n2", elect), peer("n0", listed)}, Waited: true},
			want: Decision{Action: Bootstrap, Cluster: "seed-n1", Founders: []string{"n1"}},
		},
		{
			name:   "no seed yet: wait",
			in:     Input{Self: Peer{ID: "n1", Rules: elect.Fingerprint()}, Rules: elect, Waited: true},
			action: Wait,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Decide(tt.in)
			if tt.want.Action != Wait || tt.want.Cluster != "" {
				require.Equal(t, tt.want, got)
				return
			}
			require.Equal(t, tt.action, got.Action, "decision %+v", got)
			require.NotEmpty(t, got.Reason)
		})
	}
}

// Members that see each other and run Decide on the same view never found
// two clusters, whatever order they are in.
func TestDecideOneFounder(t *testing.T) {
	t.Parallel()
	elect := Rules{Mode: Elect}
	seen := []Peer{
		{ID: "b", Seed: "sb", Rules: elect.Fingerprint()},
		{ID: "a", Seed: "sa", Rules: elect.Fingerprint()},
		{ID: "c", Seed: "sc", Rules: elect.Fingerprint()},
	}
	var founders []string
	for _, self := range seen {
		d := Decide(Input{Self: self, Rules: elect, Seen: seen, Waited: true})
		if d.Action == Bootstrap {
			founders = append(founders, self.ID)
		}
	}
	require.Equal(t, []string{"a"}, founders)
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a := Rules{Mode: Listed, IDs: []string{"n1", "n2"}}
	require.Equal(t, a.Fingerprint(), Rules{Mode: Listed, IDs: []string{"n1", "n2"}}.Fingerprint())
	require.NotEqual(t, a.Fingerprint(), Rules{Mode: Listed, IDs: []string{"n1", "n2", "n3"}}.Fingerprint())
	require.NotEqual(t, a.Fingerprint(), Rules{Mode: Listed, IDs: []string{"n1n2"}}.Fingerprint())
	require.Equal(t, "count:3", Rules{Mode: Count, Want: 3}.Fingerprint())
	require.Equal(t, "elect", Rules{Mode: Elect}.Fingerprint())
}
