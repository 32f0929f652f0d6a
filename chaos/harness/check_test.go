package harness

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft"
)

// ms is a run offset in milliseconds.
func ms(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }

func start(wf string, outcome Outcome, at int) ClientOp {
	return ClientOp{Kind: OpStart, Workflow: wf, Member: "n1", Invoke: ms(at), Return: ms(at + 1), Outcome: outcome}
}

func read(wf, status string, at int, committed ...string) ClientOp {
	o := ClientOp{Kind: OpStatus, Workflow: wf, Member: "n2", Invoke: ms(at), Return: ms(at + 1), Outcome: OutcomeOK,
		Status: status, Committed: committed}
	if status == "not-found" {
		o.Outcome, o.Status = OutcomeNotFound, ""
	}
	return o
}

func control(kind OpKind, wf string, outcome Outcome, at int) ClientOp {
	return ClientOp{Kind: kind, Workflow: wf, Member: "n3", Invoke: ms(at), Return: ms(at + 1), Outcome: outcome}
}

func run(wf, task, key, exec string, startMS, endMS int) StepRun {
	return StepRun{Workflow: wf, Node: stepNodeName, Task: task, Key: key, HasKey: key != "", ExecutionID: exec,
		Member: "n1", Attempt: 1, Start: ms(startMS), End: ms(endMS), Result: "ok"}
}

// The acknowledgement checkers pass on a healthy history and fail on a
// planted lost workflow, one stuck running and one failed without cause.
func TestCheckNotLostAndTerminal(t *testing.T) {
	t.Parallel()
	healthy := &History{
		Ops:   []ClientOp{start("a", OutcomeOK, 0), start("b", OutcomeUnknown, 0), start("c", OutcomeExists, 5)},
		Final: map[string]Final{"a": {Status: "completed"}, "b": {Status: "not-found"}, "c": {Status: "stopped", Stopped: true}},
	}
	for _, c := range []CheckResult{CheckNotLost(healthy), CheckTerminalAfterFaults(healthy)} {
		require.True(t, c.Passed, "%+v", c)
		require.Equal(t, 2, c.Checked, "a and c are acknowledged, b is not")
	}

	lost := &History{
		Ops:   []ClientOp{start("a", OutcomeOK, 0), start("b", OutcomeOK, 0), read("c", "running", 3)},
		Final: map[string]Final{"a": {Status: "not-found"}, "b": {Status: "completed"}},
	}
	c := CheckNotLost(lost)
	require.False(t, c.Passed)
	require.Equal(t, 2, c.Count, "a is gone and c was never read again: %v", c.Violations)
	require.Contains(t, c.Violations[0], "a: acknowledged, not found")

	stuck := &History{
		Ops: []ClientOp{start("a", OutcomeOK, 0), start("b", OutcomeOK, 0), start("c", OutcomeOK, 0),
			start("user", OutcomeOK, 0)},
		Final: map[string]Final{"a": {Status: "running", Shape: "long"}, "b": {Status: "failed", Shape: "retry"},
			"c": {Status: "stopped", Shape: "long"}, "user": {Status: "failed"}},
	}
	c = CheckTerminalAfterFaults(stuck)
	require.False(t, c.Passed)
	require.Equal(t, 4, c.Checked)
	require.Equal(t, 3, c.Count, "a user's workflow may fail: %v", c.Violations)
}

// The keyed checker fails when two committed executions carry one key.
func TestCheckKeyed(t *testing.T) {
	t.Parallel()
	h := &History{
		Steps: []StepRun{run("w", "k1", "a", "x1", 0, 5), run("w", "k1", "a", "x2", 6, 9), run("w", "k3", "b", "x3", 10, 12)},
		Final: map[string]Final{"w": {Status: "completed", Committed: []string{"x2", "x3"}}},
	}
	c := CheckKeyed(h)
	require.True(t, c.Passed, "x1 ran but was never committed: %+v", c)
	require.Equal(t, 2, c.Checked)

	// Planted: the deduplication failed, k2 ran under k1's key and committed.
	h.Steps = append(h.Steps, run("w", "k2", "a", "x4", 13, 14))
	h.Final["w"] = Final{Status: "completed", Committed: []string{"x2", "x3", "x4"}}
	c = CheckKeyed(h)
	require.False(t, c.Passed)
	require.Equal(t, 1, c.Count)
	require.Contains(t, c.Violations[0], `key "a" committed 2 times`)
}

// The rerun checker fails when a step starts again after a read saw its
// completion committed, and not when it ran again before any read did.
func TestCheckNoRerun(t *testing.T) {
	t.Parallel()
	h := &History{
		Steps: []StepRun{run("w", "s1", "", "x1", 0, 5), run("w", "s1", "", "x2", 8, 10)},
		Ops:   []ClientOp{read("w", "running", 12, "x2")},
	}
	c := CheckNoRerun(h)
	require.True(t, c.Passed, "%+v", c)
	require.Equal(t, 1, c.Checked)

	// Planted: x1 is seen committed at 7ms, and s1 runs again at 8ms.
	h.Ops = append(h.Ops, read("w", "running", 6, "x1"))
	c = CheckNoRerun(h)
	require.False(t, c.Passed)
	require.Equal(t, 1, c.Count)
	require.Contains(t, c.Violations[0], "execution x1 seen committed")
}

// The model accepts Graft's documented behaviour, including unknown
// outcomes and the engine finishing a paused workflow, and the checker
// fails on planted anomalies, writing the visualisation.
func TestCheckLinearizability(t *testing.T) {
	t.Parallel()
	good := []ClientOp{
		read("w", "not-found", 0),
		start("w", OutcomeOK, 2),
		read("w", "running", 4),
		control(OpPause, "w", OutcomeOK, 6),
		read("w", "paused", 8),
		control(OpResume, "w", OutcomeUnknown, 10),
		read("w", "paused", 12), // the resume had not taken effect yet
		read("w", "running", 14),
		read("w", "completed", 16),
		control(OpStop, "w", OutcomeRejected, 18),
		start("w", OutcomeExists, 20),
		start("v", OutcomeUnknown, 0),
		read("v", "not-found", 3),
		read("v", "running", 5), // the unknown start took effect late
		control(OpPause, "v", OutcomeOK, 7),
		read("v", "completed", 9), // a step running at the pause finished it
		start("u", OutcomeOK, 0),
		control(OpStop, "u", OutcomeOK, 2),
		control(OpStop, "u", OutcomeOK, 4),
		control(OpResume, "u", OutcomeRejected, 6),
		read("u", "stopped", 8),
	}
	dir := t.TempDir()
	c := CheckLinearizability(good, dir, 10*time.Second)
	require.True(t, c.Passed, "%+v", c)
	require.Equal(t, len(good), c.Checked)
	require.NoFileExists(t, filepath.Join(dir, "history.html"))

	cases := map[string][]ClientOp{
		"completed then running":       {start("w", OutcomeOK, 0), read("w", "completed", 2), read("w", "running", 4)},
		"paused without a pause":       {start("w", OutcomeOK, 0), read("w", "paused", 2)},
		"acknowledged start not found": {start("w", OutcomeOK, 0), read("w", "not-found", 2)},
		"stop acknowledged, still running": {start("w", OutcomeOK, 0), control(OpStop, "w", OutcomeOK, 2),
			read("w", "running", 4)},
		"two starts acknowledged": {start("w", OutcomeOK, 0), start("w", OutcomeOK, 2)},
		"resume of a stopped workflow accepted": {start("w", OutcomeOK, 0), control(OpStop, "w", OutcomeOK, 2),
			control(OpResume, "w", OutcomeOK, 4)},
	}
	for name, ops := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ops := append(ops, good[11:]...) // a healthy workflow alongside
			c := CheckLinearizability(ops, dir, 10*time.Second)
			require.False(t, c.Passed)
			require.Equal(t, []string{"w: the client operations on it are not linearizable"}, c.Violations)
			html, err := os.ReadFile(filepath.Join(dir, "history.html"))
			require.NoError(t, err)
			require.Contains(t, string(html), "<html")
			require.Contains(t, c.Note, "history.html")
		})
	}
}

// cluster is a healthy three-member snapshot with two shards at RF 3,
// each member leading as the placement says.
func cluster(t *testing.T) ClusterState {
	t.Helper()
	c := ClusterState{Shards: 3, ReplicationFactor: 3}
	for i, name := range []string{"n1", "n2", "n3"} {
		peers := []string{"n1", "n2", "n3"}
		peers = append(peers[:i:i], peers[i+1:]...)
		reps := map[uint64]graft.ReplicaState{}
		for s := uint64(1); s <= 3; s++ {
			reps[s] = graft.ReplicaState{Hash: 100 + s, Applied: 10 * s, Replica: uint64(i + 1), Members: []uint64{1, 2, 3}}
		}
		c.Members = append(c.Members, MemberState{Name: name, Peers: peers, Replicas: reps})
	}
	// n_s leads shard s: with three shards on three members each leads one.
	for s := range uint64(3) {
		r := c.Members[s].Replicas[s+1]
		r.Leader = true
		c.Members[s].Replicas[s+1] = r
	}
	return c
}

// The convergence checkers pass on a healthy snapshot and each fails on
// its planted anomaly.
func TestCheckConvergence(t *testing.T) {
	t.Parallel()
	for _, r := range convergence(cluster(t)) {
		require.True(t, r.Passed, "%+v", r)
		require.Equal(t, 3, r.Checked, r.Name)
	}
	setReplica := func(c ClusterState, member int, s uint64, f func(*graft.ReplicaState)) {
		r := c.Members[member].Replicas[s]
		f(&r)
		c.Members[member].Replicas[s] = r
	}
	cases := []struct {
		name  string
		check func(ClusterState) CheckResult
		plant func(c ClusterState) ClusterState
		want  string
	}{
		{"diverged hashes", CheckReplicas, func(c ClusterState) ClusterState {
			setReplica(c, 2, 2, func(r *graft.ReplicaState) { r.Hash++ })
			return c
		}, "shard 2: replicas on n3 and"},
		{"replica behind", CheckReplicas, func(c ClusterState) ClusterState {
			setReplica(c, 1, 1, func(r *graft.ReplicaState) { r.Applied-- })
			return c
		}, "shard 1: replica on n2 at applied index 9"},
		{"shard below its replication factor", CheckReplicationFactor, func(c ClusterState) ClusterState {
			for i := range c.Members {
				setReplica(c, i, 3, func(r *graft.ReplicaState) { r.Members = []uint64{1, 2} })
			}
			delete(c.Members[2].Replicas, 3)
			return c
		}, "shard 3: 2 voting replicas"},
		{"replica on no live member", CheckReplicationFactor, func(c ClusterState) ClusterState {
			delete(c.Members[1].Replicas, 1)
			return c
		}, "shard 1: replica 2 is on no live member"},
		{"view missing a member", CheckViews, func(c ClusterState) ClusterState {
			c.Members[0].Peers = []string{"n2"}
			return c
		}, "n1 sees [n1 n2]"},
		{"one member leads everything", CheckBalance, func(c ClusterState) ClusterState {
			for s := uint64(1); s <= 3; s++ {
				for i := range c.Members {
					setReplica(c, i, s, func(r *graft.ReplicaState) { r.Leader = i == 0 })
				}
			}
			return c
		}, "n1 leads 3 shards, its share is 1"},
		{"two leaders", CheckBalance, func(c ClusterState) ClusterState {
			setReplica(c, 1, 1, func(r *graft.ReplicaState) { r.Leader = true })
			return c
		}, "shard 1: 2 leaders [n1 n2]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.check(tc.plant(cluster(t)))
			require.False(t, r.Passed)
			require.NotEmpty(t, r.Violations)
			require.Contains(t, r.Violations[0], tc.want, "%v", r.Violations)
		})
	}
}
