package member

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/eleven-am/graft/gossip/crdt"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

func TestChangeCounts(t *testing.T) {
	t.Parallel()
	ok := &wf.HistoryEntry{Node: "a"}
	failed := &wf.HistoryEntry{Node: "a", Error: "boom"}
	for _, tc := range []struct {
		name string
		ch   wf.Change
		want []crdt.Counter
	}{
		{"start", wf.Change{Kind: wf.ChangeStarted}, []crdt.Counter{crdt.WorkflowsStarted}},
		{"step done", wf.Change{Kind: wf.ChangeUpdated, Entry: ok}, []crdt.Counter{crdt.StepsExecuted}},
		{"step failed, retried", wf.Change{Kind: wf.ChangeUpdated, Entry: failed}, []crdt.Counter{crdt.StepErrors}},
		{"last step done", wf.Change{Kind: wf.ChangeCompleted, Entry: ok}, []crdt.Counter{crdt.WorkflowsCompleted, crdt.StepsExecuted}},
		{"last attempt failed", wf.Change{Kind: wf.ChangeFailed, Entry: failed}, []crdt.Counter{crdt.WorkflowsFailed, crdt.StepErrors}},
		{"state not merged", wf.Change{Kind: wf.ChangeFailed, Entry: ok}, []crdt.Counter{crdt.WorkflowsFailed}},
		{"blocked too long", wf.Change{Kind: wf.ChangeFailed}, []crdt.Counter{crdt.WorkflowsFailed}},
		{"stopped", wf.Change{Kind: wf.ChangeStopped}, []crdt.Counter{crdt.WorkflowsStopped}},
		{"claimed", wf.Change{Kind: wf.ChangeUpdated}, nil},
		{"paused", wf.Change{Kind: wf.ChangePaused}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, changeCounts(&tc.ch))
		})
	}
}

// The persisted entry round-trips; a missing file is a first start; a
// corrupt or oversized one is refused with its path.
func TestSavedState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := loadState(dir)
	require.NoError(t, err)
	require.Zero(t, s.Incarnation)

	s.Incarnation = 7
	s.setCounters(crdt.Counters{crdt.WorkflowsCompleted: 3, crdt.StepErrors: 1})
	s.Metadata = map[string]string{"zone": "z1"}
	require.NoError(t, saveState(dir, s))
	got, err := loadState(dir)
	require.NoError(t, err)
	require.Equal(t, s, got)
	require.Equal(t, crdt.Counters{crdt.WorkflowsCompleted: 3, crdt.StepErrors: 1}, got.counters())
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	require.NoError(t, err)
	require.JSONEq(t, `{"incarnation":7,"counters":{"workflows_completed":3,"step_errors":1},"metadata":{"zone":"z1"}}`, string(b))
	_, err = os.Stat(filepath.Join(dir, stateFile+".tmp"))
	require.ErrorIs(t, err, os.ErrNotExist, "the temporary file was renamed")

	require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o600))
	_, err = loadState(dir)
	require.ErrorContains(t, err, "member.json is corrupt")
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), make([]byte, maxStateFile+1), 0o600))
	_, err = loadState(dir)
	require.ErrorContains(t, err, "is over")
}

// Only the changes of commands this replica proposed in this run count:
// not another member's, not another replica's, not an earlier run's.
func TestCountChangesOnlyCountsThisReplicasProposals(t *testing.T) {
	t.Parallel()
	m := New(testConfig(t), nil)
	require.NoError(t, m.openState())
	t.Cleanup(func() { m.syncer().Stop() })
	s := uint64(3)
	mine := m.proposerStamp(s)
	require.Equal(t, "n1/0/1", mine, "member, replica (none yet), incarnation")
	started := wf.Change{Kind: wf.ChangeStarted}
	changes := []wf.Change{started, started, started, started}
	changes[0].Proposer = mine
	changes[1].Proposer = "n2/0/1"
	changes[2].Proposer = "n1/4/1"
	changes[3].Proposer = "n1/0/0"
	m.countChanges(s, changes)
	own, _ := m.syncer().Own()
	require.Equal(t, uint64(1), own[crdt.WorkflowsStarted])
}
