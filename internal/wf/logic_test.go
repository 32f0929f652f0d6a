package wf

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/stretchr/testify/require"
)

type bundle struct {
	l       *Logic
	kv      *memKV
	changes []Change
	index   uint64
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{kv: newMemKV()}
	b.l = NewLogic(7, func(shard uint64, cs []Change) {
		require.Equal(t, uint64(7), shard)
		b.changes = append(b.changes, cs...)
	})
	require.NoError(t, b.l.Open(b.kv))
	return b
}

func (b *bundle) do(t *testing.T, c Command) Result {
	t.Helper()
	raw, err := EncodeCommand(&c)
	require.NoError(t, err)
	b.index++
	out, err := b.l.Apply(b.kv, b.index, raw)
	require.NoError(t, err)
	b.l.Applied(b.index)
	r, err := DecodeResult(out)
	require.NoError(t, err)
	return r
}

func (b *bundle) status(t *testing.T, id string) StatusAnswer {
	t.Helper()
	out, err := b.l.Lookup(b.kv, EncodeQuery(Query{Op: QueryStatus, WF: id}))
	require.NoError(t, err)
	var a StatusAnswer
	require.NoError(t, json.Unmarshal(out, &a))
	return a
}

func start(id string, nodes ...string) Command {
	c := Command{Op: OpStart, WF: id, Now: 100, State: json.RawMessage(`{"n":0}`), Metadata: map[string]string{"k": "v"}}
	for _, n := range nodes {
		c.Tasks = append(c.Tasks, NewTask{Node: n})
	}
	return c
}

func claim(id string, task uint64, now int64) Command {
	return Command{Op: OpClaim, WF: id, TaskID: task, Member: "m1", Incarnation: "i1", Now: now, LeaseUntil: now + 1000}
}

func TestStartClaimCompleteLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, OK, b.do(t, start("wf", "A")).Code)
	require.Equal(t, Exists, b.do(t, start("wf", "A")).Code)

	r := b.do(t, claim("wf", 1, 110))
	require.Equal(t, OK, r.Code)
	require.JSONEq(t, `{"n":0}`, string(r.State))
	require.Equal(t, "wf/1.1", r.Claimed[0].ExecID)
	require.Equal(t, 1, r.Claimed[0].Task.Claims)
	require.Equal(t, "v", r.Meta["k"])

	r = b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120, StartedAt: 110,
		Patch: Patch{{Path: []string{"n"}, Value: json.RawMessage(`1`)}},
		Tasks: []NewTask{{Node: "B", Priority: 5}, {Node: "C"}}})
	require.Equal(t, OK, r.Code)
	a := b.status(t, "wf")
	require.Equal(t, StatusRunning, a.View.Status)
	require.Len(t, a.View.Pending, 2)
	require.Equal(t, uint64(2), a.View.StateVersion)
	require.Len(t, a.History, 1)
	require.Equal(t, []string{"B", "C"}, a.History[0].Next)
	require.Equal(t, int64(10), a.History[0].Duration)

	for i, task := range []uint64{2, 3} {
		exec := fmt.Sprintf("wf/%d.1", task)
		require.Equal(t, OK, b.do(t, claim("wf", task, 130)).Code)
		r = b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: task, ExecID: exec, Now: 140 + int64(i), StartedAt: 130})
		require.Equal(t, OK, r.Code)
	}
	require.Equal(t, StatusCompleted, r.Status)
	a = b.status(t, "wf")
	require.Equal(t, StatusCompleted, a.View.Status)
	require.JSONEq(t, `{"n":1}`, string(a.View.State))
	require.Len(t, a.History, 3)
	require.Equal(t, int64(141), a.View.EndedAt)

	kinds := []ChangeKind{}
	for _, c := range b.changes {
		kinds = append(kinds, c.Kind)
	}
	require.Equal(t, ChangeStarted, kinds[0])
	require.Equal(t, ChangeCompleted, kinds[len(kinds)-1])
	require.JSONEq(t, `{"n":1}`, string(b.changes[len(b.changes)-1].View.State))

	require.Equal(t, Rejected, b.do(t, claim("wf", 2, 150)).Code)
	require.Equal(t, NotFound, b.do(t, claim("nope", 1, 150)).Code)
	c := b.l.Counters()
	require.Equal(t, uint64(1), c.Completed)
	require.Equal(t, uint64(3), c.Steps)
	require.Equal(t, 0, c.Active)
}

func TestStaleExecutionIsRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, start("wf", "A"))
	require.Equal(t, OK, b.do(t, claim("wf", 1, 110)).Code)
	require.Equal(t, Stale, b.do(t, claim("wf", 1, 110)).Code, "a claimed task cannot be claimed twice")
	require.Equal(t, Stale, b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "other", Now: 120}).Code)
	require.Equal(t, OK, b.do(t, Command{Op: OpRequeue, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120}).Code)
	require.Equal(t, Stale, b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120}).Code,
		"a requeued execution cannot complete")
	r := b.do(t, claim("wf", 1, 130))
	require.Equal(t, OK, r.Code)
	require.Equal(t, 2, r.Claimed[0].Task.Claims)
}

func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := start("wf", "A")
	c.Tasks = append(c.Tasks, NewTask{Node: "Email", Key: "e1", HasKey: true}, NewTask{Node: "Email", Key: "e1", HasKey: true})
	b.do(t, c)
	a := b.status(t, "wf")
	require.Len(t, a.View.Pending, 2, "a key already pending is not enqueued twice")
	require.Equal(t, OK, b.do(t, claim("wf", 2, 110)).Code)
	require.Equal(t, OK, b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 2, ExecID: "wf/2.1", Now: 120}).Code)
	require.Equal(t, OK, b.do(t, claim("wf", 1, 110)).Code)
	r := b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 130,
		Tasks: []NewTask{{Node: "Email", Key: "e1", HasKey: true}}})
	require.Equal(t, StatusCompleted, r.Status, "a completed key is not run again")
	require.Len(t, b.status(t, "wf").History, 2)
}

func TestRetryThenPermanentFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, start("wf", "A"))
	b.do(t, claim("wf", 1, 110))
	r := b.do(t, Command{Op: OpFail, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120, StartedAt: 110, Error: "boom", Retry: true, RetryAt: 500})
	require.Equal(t, OK, r.Code)
	a := b.status(t, "wf")
	require.Equal(t, int64(500), a.View.Pending[0].NotBefore)
	require.Equal(t, 1, a.View.Pending[0].Failures)
	require.Equal(t, Stale, b.do(t, claim("wf", 1, 499)).Code, "not before its retry time")
	require.Equal(t, OK, b.do(t, claim("wf", 1, 500)).Code)
	r = b.do(t, Command{Op: OpFail, WF: "wf", TaskID: 1, ExecID: "wf/1.2", Now: 520, StartedAt: 500, Error: "boom again"})
	require.Equal(t, StatusFailed, r.Status)
	a = b.status(t, "wf")
	require.Equal(t, "boom again", a.View.LastError)
	require.Equal(t, "A", a.View.FailedNode)
	require.Equal(t, 2, a.View.FailedTry)
	require.Len(t, a.History, 2)
	require.Equal(t, "boom", a.History[0].Error)
}

func TestPauseResumeStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, start("wf", "A", "B"))
	b.do(t, claim("wf", 1, 110))
	require.Equal(t, OK, b.do(t, Command{Op: OpPause, WF: "wf", Now: 111}).Code)
	require.Equal(t, Rejected, b.do(t, claim("wf", 2, 112)).Code, "no new claims while paused")
	r := b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 113,
		Patch: Patch{{Path: []string{"a"}, Value: json.RawMessage(`true`)}}})
	require.Equal(t, OK, r.Code, "a running step's result is kept while paused")
	require.Equal(t, StatusPaused, r.Status)
	require.Equal(t, OK, b.do(t, Command{Op: OpResume, WF: "wf", Now: 114}).Code)
	require.Equal(t, OK, b.do(t, claim("wf", 2, 115)).Code)
	require.Equal(t, OK, b.do(t, Command{Op: OpStop, WF: "wf", Now: 116}).Code)
	require.Equal(t, Rejected, b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 2, ExecID: "wf/2.1", Now: 117}).Code)
	require.Equal(t, OK, b.do(t, Command{Op: OpStop, WF: "wf", Now: 118}).Code, "stop is idempotent")
	require.Equal(t, Rejected, b.do(t, Command{Op: OpResume, WF: "wf", Now: 118}).Code)
	a := b.status(t, "wf")
	require.Equal(t, StatusStopped, a.View.Status)
	require.Empty(t, a.View.Executing)
	require.JSONEq(t, `{"n":0,"a":true}`, string(a.View.State))
}

func TestBlockAndBlockedTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, start("wf", "A"))
	require.Equal(t, Stale, b.do(t, Command{Op: OpBlock, WF: "wf", Now: 110, StateVersion: 9}).Code)
	require.Equal(t, OK, b.do(t, Command{Op: OpBlock, WF: "wf", Now: 110, StateVersion: 1}).Code)
	require.Equal(t, int64(110), b.status(t, "wf").View.BlockedSince)
	r := b.do(t, Command{Op: OpFail, WF: "wf", Now: 200, StateVersion: 1, Error: "blocked for too long"})
	require.Equal(t, StatusFailed, r.Status)
	require.Equal(t, "blocked for too long", b.status(t, "wf").View.LastError)

	b.do(t, start("wf2", "A"))
	b.do(t, Command{Op: OpBlock, WF: "wf2", Now: 110, StateVersion: 1})
	b.do(t, claim("wf2", 1, 120))
	require.Zero(t, b.status(t, "wf2").View.BlockedSince, "a claim unblocks")
	require.Equal(t, Stale, b.do(t, Command{Op: OpFail, WF: "wf2", Now: 200, StateVersion: 1, Error: "blocked"}).Code)
}

func TestStateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, start("wf", "A"))
	b.do(t, claim("wf", 1, 110))
	r := b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120, MaxStateBytes: 20,
		Patch: Patch{{Path: []string{"big"}, Value: json.RawMessage(`"0123456789012345678901234567890"`)}}})
	require.Equal(t, StatusFailed, r.Status)
	require.Contains(t, b.status(t, "wf").View.LastError, "over the limit of 20")
	require.JSONEq(t, `{"n":0}`, string(b.status(t, "wf").View.State), "the oversized state is not kept")
}

func TestPurgeRemovesOnlyOldTerminal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i, end := range []int64{200, 300} {
		id := fmt.Sprintf("wf%d", i)
		b.do(t, start(id, "A"))
		b.do(t, claim(id, 1, 110))
		b.do(t, Command{Op: OpComplete, WF: id, TaskID: 1, ExecID: id + "/1.1", Now: end})
	}
	b.do(t, start("live", "A"))
	r := b.do(t, Command{Op: OpPurge, Now: 1000, Before: 250})
	require.Equal(t, 1, r.Purged)
	require.False(t, b.status(t, "wf0").Found)
	require.True(t, b.status(t, "wf1").Found)
	require.True(t, b.status(t, "live").Found)
	for k := range b.kv.m {
		require.NotContains(t, k, "wf0", "every key of a purged workflow is gone")
	}
	require.Equal(t, OK, b.do(t, start("wf0", "A")).Code, "a purged ID can be used again")
}

func TestOpenRestoresActiveWorkflows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, start("a", "A", "B"))
	b.do(t, claim("a", 1, 110))
	b.do(t, start("done", "A"))
	b.do(t, claim("done", 1, 110))
	b.do(t, Command{Op: OpComplete, WF: "done", TaskID: 1, ExecID: "done/1.1", Now: 120})

	l2 := NewLogic(7, nil)
	require.NoError(t, l2.Open(b.kv))
	act := l2.Active()
	require.Len(t, act, 1)
	require.Equal(t, "a", act[0].ID)
	require.Len(t, act[0].Pending, 1)
	require.Len(t, act[0].Executing, 1)
	require.JSONEq(t, `{"n":0}`, string(act[0].State))
	require.Equal(t, b.l.Counters().Counters, l2.Counters().Counters)
}

func TestDeterministicAcrossReplicas(t *testing.T) {
	t.Parallel()
	r1, r2 := setup(t), setup(t)
	cmds := []Command{
		start("w", "A", "B"),
		claim("w", 1, 110),
		claim("w", 2, 110),
		{Op: OpComplete, WF: "w", TaskID: 2, ExecID: "w/2.1", Now: 120, Patch: Patch{{Path: []string{"b"}, Value: json.RawMessage(`2`)}}},
		{Op: OpComplete, WF: "w", TaskID: 1, ExecID: "w/1.1", Now: 121, Patch: Patch{{Path: []string{"a"}, Value: json.RawMessage(`1`)}},
			Tasks: []NewTask{{Node: "C"}}},
	}
	for _, c := range cmds {
		require.Equal(t, r1.do(t, c), r2.do(t, c))
	}
	require.Equal(t, r1.kv.m, r2.kv.m)
	require.JSONEq(t, `{"n":0,"a":1,"b":2}`, string(r1.status(t, "w").View.State))
}

func TestMalformedCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out, err := b.l.Apply(b.kv, 1, []byte("not json"))
	require.NoError(t, err)
	r, err := DecodeResult(out)
	require.NoError(t, err)
	require.Equal(t, Invalid, r.Code)
	require.Equal(t, Invalid, b.do(t, Command{Op: OpStart, Now: 1}).Code)
	require.Equal(t, Invalid, b.do(t, Command{Op: OpStart, WF: "x", Now: 1}).Code, "no initial nodes")
	_, err = b.l.Lookup(b.kv, []byte(`{"o":"bogus"}`))
	require.ErrorContains(t, err, "unknown query")
}

func TestAutoClaimOnStartAndComplete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := start("wf", "A", "B")
	c.Tasks[0].Claim = true
	c.Member, c.Incarnation, c.LeaseUntil = "m1", "i1", 1000
	r := b.do(t, c)
	require.Len(t, r.Claimed, 1, "only the task that asked is claimed")
	require.Equal(t, "A", r.Claimed[0].Task.Node)
	require.JSONEq(t, `{"n":0}`, string(r.State))
	a := b.status(t, "wf")
	require.Len(t, a.View.Executing, 1)
	require.Equal(t, "m1", a.View.Executing[0].Member)
	require.Len(t, a.View.Pending, 1)

	r = b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: r.Claimed[0].ExecID, Now: 120, Member: "m1",
		Patch: Patch{{Path: []string{"n"}, Value: json.RawMessage(`1`)}},
		Tasks: []NewTask{{Node: "C", Claim: true}, {Node: "D", Claim: true, NotBefore: 500}}})
	require.Equal(t, OK, r.Code)
	require.Len(t, r.Claimed, 1, "a delayed task is not claimed early")
	require.Equal(t, "C", r.Claimed[0].Task.Node)
	require.JSONEq(t, `{"n":1}`, string(r.State), "claims read the merged state")

	b.do(t, Command{Op: OpPause, WF: "wf", Now: 130})
	r = b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: r.Claimed[0].Task.ID, ExecID: r.Claimed[0].ExecID, Now: 140,
		Member: "m1", Tasks: []NewTask{{Node: "E", Claim: true}}})
	require.Equal(t, OK, r.Code)
	require.Empty(t, r.Claimed, "nothing is claimed while paused")
}

func TestRetriedStartAndClaimAnswerAsTheFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := start("wf", "A")
	c.Nonce = "req-1"
	require.Equal(t, OK, b.do(t, c).Code)
	require.Equal(t, OK, b.do(t, c).Code, "the same start retried")
	other := start("wf", "A")
	other.Nonce = "req-2"
	require.Equal(t, Exists, b.do(t, other).Code, "another start of the same ID")
	require.Equal(t, Exists, b.do(t, start("wf", "A")).Code, "a start without nonce")

	cl := claim("wf", 1, 110)
	cl.Nonce = "claim-1"
	first := b.do(t, cl)
	require.Equal(t, OK, first.Code)
	again := b.do(t, cl)
	require.Equal(t, OK, again.Code, "the same claim retried")
	require.Equal(t, first.Claimed, again.Claimed)
	cl.Nonce = "claim-2"
	require.Equal(t, Stale, b.do(t, cl).Code, "another claim of a claimed task")

	b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: first.Claimed[0].ExecID, Now: 120})
	c.Now = 130
	require.Equal(t, OK, b.do(t, c).Code, "a retried start still answers after the workflow ended")
	require.Equal(t, StatusCompleted, b.status(t, "wf").View.Status)
}

// A completed workflow's change lists its executed nodes where they are
// published, and not where ListExecuted says they are not needed; the
// state written is the same either way.
func TestListExecuted(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, list *bool) *bundle {
		b := setup(t)
		if list != nil {
			b.l.ListExecuted(func() bool { return *list })
		}
		require.Equal(t, OK, b.do(t, start("wf", "A")).Code)
		require.Equal(t, OK, b.do(t, claim("wf", 1, 110)).Code)
		require.Equal(t, OK, b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120, StartedAt: 110,
			Tasks: []NewTask{{Node: "B"}}}).Code)
		require.Equal(t, OK, b.do(t, claim("wf", 2, 130)).Code)
		require.Equal(t, OK, b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 2, ExecID: "wf/2.1", Now: 140, StartedAt: 130}).Code)
		return b
	}
	completed := func(b *bundle) *Change {
		for i := range b.changes {
			if b.changes[i].Kind == ChangeCompleted {
				return &b.changes[i]
			}
		}
		return nil
	}
	yes, no := true, false
	always, leader, follower := run(t, nil), run(t, &yes), run(t, &no)
	require.Equal(t, []string{"A", "B"}, completed(always).View.Executed)
	require.Equal(t, []string{"A", "B"}, completed(leader).View.Executed)
	require.Nil(t, completed(follower).View.Executed)
	require.Equal(t, always.status(t, "wf"), follower.status(t, "wf"))
}

// A start or complete that claimed tasks, retried because its answer was
// lost, answers with the claims its first application made, so the
// proposer runs them; a retry from another member or incarnation, or
// without the nonce, gets none.
func TestRetriedCommandsAnswerWithTheirClaims(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := start("wf", "A")
	c.Tasks[0].Claim = true
	c.Nonce, c.Member, c.Incarnation, c.LeaseUntil = "s-1", "m1", "i1", 1000
	first := b.do(t, c)
	require.Len(t, first.Claimed, 1)
	again := b.do(t, c)
	require.Equal(t, OK, again.Code)
	require.Equal(t, first.Claimed, again.Claimed, "the start retried")
	require.JSONEq(t, string(first.State), string(again.State))

	done := Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: first.Claimed[0].ExecID, Now: 120,
		Member: "m1", Incarnation: "i1", LeaseUntil: 2000, Nonce: "c-1",
		Patch: Patch{{Path: []string{"n"}, Value: json.RawMessage(`1`)}},
		Tasks: []NewTask{{Node: "B", Claim: true}}}
	r := b.do(t, done)
	require.Equal(t, OK, r.Code)
	require.Len(t, r.Claimed, 1)
	retry := b.do(t, done)
	require.Equal(t, Stale, retry.Code, "the step's outcome is recorded once")
	require.Equal(t, r.Claimed, retry.Claimed, "the complete retried")
	require.Equal(t, r.Version, retry.Version)
	require.JSONEq(t, `{"n":1}`, string(retry.State))

	for name, mutate := range map[string]func(*Command){
		"another member":      func(c *Command) { c.Member = "m2" },
		"another incarnation": func(c *Command) { c.Incarnation = "i2" },
		"another nonce":       func(c *Command) { c.Nonce = "c-2" },
		"no nonce":            func(c *Command) { c.Nonce = "" },
	} {
		other := done
		mutate(&other)
		res := b.do(t, other)
		require.Equal(t, Stale, res.Code, name)
		require.Empty(t, res.Claimed, name)
	}
	a := b.status(t, "wf")
	require.Len(t, a.View.Executing, 1, "retries claim nothing new")
}

// A status read while a batch is being applied sees the workflow as the
// last committed batch left it, record and history alike: the in-memory
// record runs ahead of storage until the batch commits, so a read mixing
// the two showed a record ahead of its history, and a workflow that ended
// in the batch as it was before the batch.
func TestStatusReadsOnlyCommittedState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := start("wf", "A")
	c.Tasks[0].Claim = true
	c.Member, c.Incarnation, c.LeaseUntil = "m1", "i1", 1000
	first := b.do(t, c)
	require.Len(t, first.Claimed, 1)
	before := b.status(t, "wf")
	require.Equal(t, StatusRunning, before.View.Status)
	require.Empty(t, before.History)

	// The next batch is applied to a copy, as Pebble's batch holds writes
	// until it commits; reads go to the committed store meanwhile.
	staged := &memKV{m: maps.Clone(b.kv.m)}
	raw, err := EncodeCommand(&Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: first.Claimed[0].ExecID, Now: 120, Member: "m1",
		Tasks: []NewTask{{Node: "B"}}})
	require.NoError(t, err)
	b.index++
	out, err := b.l.Apply(staged, b.index, raw)
	require.NoError(t, err)
	res, err := DecodeResult(out)
	require.NoError(t, err)
	require.Equal(t, OK, res.Code)

	during := b.status(t, "wf")
	require.Equal(t, before.View.Record, during.View.Record, "a read during the batch sees the committed record")
	require.Empty(t, during.History)

	b.kv.m = staged.m // the batch commits
	b.l.Applied(b.index)
	after := b.status(t, "wf")
	require.Equal(t, StatusRunning, after.View.Status)
	require.Len(t, after.History, 1)
	require.Len(t, after.View.Pending, 1)
	require.EqualValues(t, after.View.Steps, len(after.History))
}
