package member

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHealthOf(t *testing.T) {
	failing := func(h Health) []string {
		var out []string
		for _, c := range h.Checks {
			if !c.OK {
				out = append(out, c.Name+": "+c.Detail)
			}
		}
		return out
	}
	cases := []struct {
		name        string
		in          healthInput
		live, ready bool
		failing     []string
	}{
		{"ready", healthInput{phase: phaseReady, storageOpen: true, hosted: 8}, true, true, nil},
		{"before Start", healthInput{phase: phaseStarting}, true, false,
			[]string{"started: starting", "storage: storage is not open", "shards: not started"}},
		{"joining", healthInput{phase: phaseJoining, storageOpen: true, hosted: 2}, true, false,
			[]string{"started: joining", "shards: not started"}},
		{"a shard without a leader", healthInput{phase: phaseReady, storageOpen: true, hosted: 8, leaderless: []uint64{3, 5}}, true, false,
			[]string{"shards: no known leader for shards [3 5]"}},
		{"disk full", healthInput{phase: phaseStorageFull, storageOpen: true, hosted: 8}, true, false,
			[]string{"disk: free disk space is below Expert.MinFreeDiskBytes: new workflows are refused"}},
		{"stopped", healthInput{phase: phaseStopped}, false, false,
			[]string{"started: stopped", "storage: storage is not open", "shards: not started"}},
		{"storage failed", healthInput{phase: phaseStorageFailed, failed: errors.New("sync raft/000001.log: input/output error"), storageOpen: true, hosted: 8}, false, false,
			[]string{"started: storage-failed",
				"storage: storage failed, so the member stopped (restart the process once the disk is repaired): sync raft/000001.log: input/output error",
				"shards: not started"}},
		{"a cluster member holding no shard", healthInput{phase: phaseReady, storageOpen: true}, true, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := healthOf(tc.in)
			require.Equal(t, tc.live, h.Live, "live")
			require.Equal(t, tc.ready, h.Ready, "ready")
			require.Equal(t, tc.failing, failing(h))
			require.Len(t, h.Checks, 4)
		})
	}
}
