package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// testConfig returns a valid configuration for tests: one member, the
// given store, a registry and clock, and small resolved values.
func testConfig(store Store, reg *executor.Registry, clock Clock) Config {
	return Config{
		MemberID: "n1", Incarnation: "run-1", Registry: reg, Store: store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock,
		WorkerCount: 2, ClaimAhead: 64, MaxRetries: 3, RetryDelay: time.Second, MaxRetryDelay: 3 * time.Second,
		LeaseDuration: time.Minute, BlockedTimeout: 5 * time.Minute, BlockedRecheck: time.Second,
		Retention: time.Hour, PurgeInterval: time.Minute, DrainTimeout: 10 * time.Second,
	}
}

// New names the field of each invalid value, and fills in no defaults.
func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no member", func(c *Config) { c.MemberID = "" }, "MemberID is required"},
		{"no logger", func(c *Config) { c.Logger = nil }, "Logger is required"},
		{"no clock", func(c *Config) { c.Clock = nil }, "Clock is required"},
		{"zero workers", func(c *Config) { c.WorkerCount = 0 }, "WorkerCount (0) must be at least 1"},
		{"zero claim-ahead", func(c *Config) { c.ClaimAhead = 0 }, "ClaimAhead (0) must be at least 1"},
		{"negative retries", func(c *Config) { c.MaxRetries = -1 }, "MaxRetries (-1) must not be negative"},
		{"negative drain", func(c *Config) { c.DrainTimeout = -time.Second }, "DrainTimeout (-1s) must not be negative"},
		{"zero lease", func(c *Config) { c.LeaseDuration = 0 }, "LeaseDuration (0s) must be positive"},
		{"zero purge interval", func(c *Config) { c.PurgeInterval = 0 }, "PurgeInterval (0s) must be positive"},
		{"retry cap below base", func(c *Config) { c.MaxRetryDelay = c.RetryDelay / 2 },
			"MaxRetryDelay (500ms) must be equal or greater than RetryDelay (1s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(&recordingStore{}, executor.NewRegistry(), SystemClock{})
			cfg.skipStartup = true
			tt.mutate(&cfg)
			_, err := New(cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	cfg := testConfig(&recordingStore{}, executor.NewRegistry(), SystemClock{})
	cfg.skipStartup = true
	_, err := New(cfg)
	require.NoError(t, err)
}

// memStore is a fake Store: the real workflow state machine (wf.Logic) of
// one shard over an in-memory key space, committing each command at once
// and handing the committed changes to the engine, as a shard's replica
// does on its leader. A test may close off Apply with a gate.
type memStore struct {
	mu     sync.Mutex
	kv     *memKV
	logic  *wf.Logic
	index  uint64
	cmds   []wf.Command
	change []wf.Change // changes of the command being applied

	engine  atomic.Pointer[Engine] // receives committed changes
	gate    chan struct{}          // when set, Apply waits until it is closed (or ctx ends)
	waiting atomic.Int64           // Apply calls waiting at the gate
	// afterApply, when set, runs after a command committed and the engine
	// got its changes, before Apply answers: what may happen to the engine
	// while a committed command's answer is on its way.
	afterApply func(*wf.Command)
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	s := &memStore{kv: newMemKV()}
	s.logic = wf.NewLogic(1, func(_ uint64, cs []wf.Change) { s.change = append(s.change, cs...) })
	return s
}

func (s *memStore) Apply(ctx context.Context, shard uint64, c *wf.Command) (wf.Result, error) {
	if s.gate != nil {
		s.waiting.Add(1)
		select {
		case <-s.gate:
			s.waiting.Add(-1)
		case <-ctx.Done():
			s.waiting.Add(-1)
			return wf.Result{}, ctx.Err()
		}
	}
	raw, err := wf.EncodeCommand(c)
	if err != nil {
		return wf.Result{}, err
	}
	s.mu.Lock()
	s.cmds = append(s.cmds, *c)
	s.index++
	out, err := s.logic.Apply(s.kv, s.index, raw)
	if err == nil {
		s.logic.Applied(s.index)
	}
	changes := s.change
	s.change = nil
	s.mu.Unlock()
	if err != nil {
		return wf.Result{}, err
	}
	if e := s.engine.Load(); e != nil && len(changes) > 0 {
		e.OnChanges(shard, changes)
	}
	if s.afterApply != nil {
		s.afterApply(c)
	}
	return wf.DecodeResult(out)
}

func (s *memStore) Active(uint64) ([]wf.View, error) { return s.logic.Active(), nil }

// commands returns the committed commands of op, in order.
func (s *memStore) commands(op wf.Op) []wf.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wf.Command
	for _, c := range s.cmds {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// status returns a workflow's committed record.
func (s *memStore) status(t *testing.T, id string) wf.StatusAnswer {
	t.Helper()
	s.mu.Lock()
	out, err := s.logic.Lookup(s.kv, wf.EncodeQuery(wf.Query{Op: wf.QueryStatus, WF: id}))
	s.mu.Unlock()
	require.NoError(t, err)
	var a wf.StatusAnswer
	require.NoError(t, json.Unmarshal(out, &a))
	require.True(t, a.Found, "workflow %q not found", id)
	return a
}

// memKV is an in-memory shards.Writer.
type memKV struct{ m map[string][]byte }

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

func (kv *memKV) Get(k []byte) ([]byte, bool, error) {
	v, ok := kv.m[string(k)]
	return bytes.Clone(v), ok, nil
}

func (kv *memKV) Scan(start, end []byte, fn func(k, v []byte) bool) error {
	keys := make([]string, 0, len(kv.m))
	for k := range kv.m {
		if bytes.Compare([]byte(k), start) >= 0 && (end == nil || bytes.Compare([]byte(k), end) < 0) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn([]byte(k), kv.m[k]) {
			return nil
		}
	}
	return nil
}

func (kv *memKV) Set(k, v []byte) error { kv.m[string(k)] = bytes.Clone(v); return nil }
func (kv *memKV) Delete(k []byte) error { delete(kv.m, string(k)); return nil }

// testBundle is an engine on a memStore, a fake clock and a registry.
type testBundle struct {
	e     *Engine
	store *memStore
	clock *fakeClock
	reg   *executor.Registry
}

// setup builds an engine without its goroutines (unless mutate clears
// skipStartup), stopped when the test ends.
func setup(t *testing.T, mutate ...func(*Config)) *testBundle {
	t.Helper()
	b := &testBundle{store: newMemStore(), clock: newFakeClock(), reg: executor.NewRegistry()}
	cfg := testConfig(b.store, b.reg, b.clock)
	cfg.skipStartup = true
	for _, m := range mutate {
		m(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	b.e = e
	b.store.engine.Store(e)
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	return b
}

// register registers nodes on the bundle's member.
func (b *testBundle) register(t *testing.T, nodes ...any) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, b.reg.Register(n))
	}
}

// lead makes the engine lead the shard.
func (b *testBundle) lead(t *testing.T) {
	t.Helper()
	require.NoError(t, b.e.SetLeader(1, true))
}

// start starts workflow id with an empty state and the given tasks.
func (b *testBundle) start(t *testing.T, id string, tasks ...wf.NewTask) {
	t.Helper()
	res, err := b.store.Apply(context.Background(), 1, &wf.Command{Op: wf.OpStart, WF: id,
		Now: b.clock.Now().UnixNano(), State: json.RawMessage(`{}`), Tasks: tasks})
	require.NoError(t, err)
	require.Equal(t, wf.OK, res.Code, res.Message)
}

// dispatch does the dispatcher's work by hand: it claims ready tasks, in
// the dispatcher's order, until none is ready or ClaimAhead are claimed.
// It returns how many it took.
func (b *testBundle) dispatch() int {
	e := b.e
	n := 0
	for {
		e.mu.Lock()
		if e.stopping || !e.dispatchableLocked() {
			e.mu.Unlock()
			return n
		}
		it, snap := e.takeReadyLocked()
		e.mu.Unlock()
		e.claim(it, snap)
		n++
	}
}

// work does the workers' work by hand: it runs claimed steps, highest
// priority first, and commits each outcome, until none is claimed. It
// returns how many it ran.
func (b *testBundle) work() int {
	e := b.e
	n := 0
	for {
		e.mu.Lock()
		if e.claimed.Len() == 0 {
			e.mu.Unlock()
			return n
		}
		if commit := e.runClaimedLocked(); commit != nil {
			commit()
			e.wg.Done() // as goAdded does
		}
		n++
	}
}

// advance moves the clock by d and fires the timers that became due.
func (b *testBundle) advance(d time.Duration) {
	b.clock.Advance(d)
	b.e.fireTimers()
}

// fnNode is a node whose Execute (and, if set, CanStart) are functions.
type fnNode struct {
	name     string
	exec     func(ctx context.Context) (*executor.NodeResult, error)
	canStart func() bool
}

func (n *fnNode) GetName() string { return n.name }

func (n *fnNode) Execute(ctx context.Context, _ map[string]any, _ map[string]any) (*executor.NodeResult, error) {
	return n.exec(ctx)
}

// gatedNode is a node that can refuse to start: CanStart returns what
// allow says.
type gatedNode struct {
	name  string
	allow *atomic.Bool
}

func (n *gatedNode) GetName() string { return n.name }

func (n *gatedNode) CanStart(map[string]any) bool { return n.allow.Load() }

func (n *gatedNode) Execute(map[string]any) (*executor.NodeResult, error) { return nil, nil }

// propose does the proposers' work by hand: it proposes every queued
// proposal, including those queued meanwhile, and returns how many.
func (b *testBundle) propose() int {
	e := b.e
	n := 0
	for {
		e.mu.Lock()
		p, ok := e.nextProposalLocked()
		e.mu.Unlock()
		if !ok {
			return n
		}
		e.propose(p)
		n++
	}
}

// recorder is a node that records, in order, the "tag" of each config it
// runs with and the attempt it was, and changes nothing.
type recorder struct {
	name string
	mu   sync.Mutex
	tags []string
}

func (r *recorder) GetName() string { return r.name }

func (r *recorder) Execute(ctx context.Context, _ map[string]any, cfg map[string]any) (*executor.NodeResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tag, _ := cfg["tag"].(string)
	r.tags = append(r.tags, tag)
	return nil, nil
}

func (r *recorder) ran() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tags)
}

// task returns a pending task of node with a tag in its config.
func task(node, tag string, priority int) wf.NewTask {
	return wf.NewTask{Node: node, Priority: priority, Config: json.RawMessage(`{"tag":"` + tag + `"}`)}
}

// Ready tasks run highest priority first and, within a priority, in the
// order they arrived, across workflows, whatever the claim-ahead window.
func TestReadyTasksRunByPriorityThenArrival(t *testing.T) {
	t.Parallel()
	for _, claimAhead := range []int{1, 2, 64} {
		t.Run(fmt.Sprintf("claim-ahead %d", claimAhead), func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *Config) { c.ClaimAhead = claimAhead })
			rec := &recorder{name: "Rec"}
			b.register(t, rec)
			b.lead(t)
			b.start(t, "w1", task("Rec", "a0", 0), task("Rec", "b5", 5), task("Rec", "c0", 0))
			b.start(t, "w2", task("Rec", "d5", 5), task("Rec", "e9", 9), task("Rec", "f-1", -1), task("Rec", "g0", 0))
			for b.dispatch()+b.work() > 0 {
			}
			require.Equal(t, []string{"e9", "b5", "d5", "a0", "c0", "g0", "f-1"}, rec.ran())
			require.Equal(t, wf.StatusCompleted, b.store.status(t, "w1").View.Status)
			require.Equal(t, wf.StatusCompleted, b.store.status(t, "w2").View.Status)
		})
	}
}

// A delayed task waits in the timer queue until its not-before time, while
// tasks without a delay run at once.
func TestDelayedTaskWaitsUntilNotBefore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &recorder{name: "Rec"}
	b.register(t, rec)
	b.lead(t)
	later := task("Rec", "later", 9)
	later.NotBefore = b.clock.Now().Add(10 * time.Second).UnixNano()
	b.start(t, "w", later, task("Rec", "now", 0))

	require.Equal(t, 1, b.dispatch())
	require.Equal(t, 1, b.work())
	require.Equal(t, []string{"now"}, rec.ran())
	require.Equal(t, 10*time.Second, b.e.fireTimers(), "the timer loop would sleep until the delayed task is due")

	b.advance(10*time.Second - time.Nanosecond)
	require.Zero(t, b.dispatch(), "a task ran before its not-before time")
	b.advance(time.Nanosecond)
	require.Equal(t, 1, b.dispatch())
	require.Equal(t, 1, b.work())
	require.Equal(t, []string{"now", "later"}, rec.ran())
	require.Equal(t, wf.StatusCompleted, b.store.status(t, "w").View.Status)
	require.Equal(t, time.Duration(-1), b.e.fireTimers(), "a timer is left")
}

// An execution whose claim nobody holds any more goes back to the pending
// tasks, and this member runs it: another member's once its lease lapses
// (or at once when that member is not alive), and one of an earlier run of
// this member at once.
func TestAbandonedExecutionsAreRequeued(t *testing.T) {
	t.Parallel()
	const lease = time.Minute
	tests := []struct {
		name       string
		member     string
		inc        string
		alive      bool
		current    string        // the member's incarnation now, "" for unknown
		leadFirst  bool          // lead before the claim, so only the sweep finds it
		requeuedAt time.Duration // after the claim
	}{
		{name: "lease lapses", member: "n2", inc: "run-9", alive: true, requeuedAt: lease},
		{name: "lease lapses, found by the sweep", member: "n2", inc: "run-9", alive: true, leadFirst: true, requeuedAt: lease},
		{name: "member not alive", member: "n2", inc: "run-9", alive: false},
		{name: "an earlier run of this member", member: "n1", inc: "run-0", alive: true},
		{name: "member restarted since its claim", member: "n2", inc: "run-9", alive: true, current: "run-10"},
		{name: "member restarted since its claim, found by the sweep", member: "n2", inc: "run-9", alive: true, current: "run-10", leadFirst: true},
		{name: "member alive in the same run", member: "n2", inc: "run-9", alive: true, current: "run-9", requeuedAt: lease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *Config) {
				c.Alive = func(_, inc string) bool { return tt.alive && (tt.current == "" || inc == tt.current) }
			})
			rec := &recorder{name: "Rec"}
			b.register(t, rec)
			if tt.leadFirst {
				b.lead(t)
			}
			// Claimed in the start command by tt.member.
			res, err := b.store.Apply(context.Background(), 1, &wf.Command{Op: wf.OpStart, WF: "w",
				Now: b.clock.Now().UnixNano(), State: json.RawMessage(`{}`),
				Tasks: []wf.NewTask{{Node: "Rec", Claim: true}}, Member: tt.member, Incarnation: tt.inc,
				LeaseUntil: b.clock.Now().Add(lease).UnixNano()})
			require.NoError(t, err)
			require.Len(t, res.Claimed, 1)
			if !tt.leadFirst {
				b.lead(t)
			}
			step := func(d time.Duration) {
				b.advance(d)
				if tt.leadFirst {
					b.e.sweep()
				}
				b.propose()
			}

			if tt.requeuedAt > 0 {
				step(tt.requeuedAt - time.Nanosecond)
				require.Empty(t, b.store.commands(wf.OpRequeue), "re-queued before its lease lapsed")
				require.Len(t, b.store.status(t, "w").View.Executing, 1)
			}
			step(time.Nanosecond)
			require.Len(t, b.store.commands(wf.OpRequeue), 1)
			v := b.store.status(t, "w").View
			require.Empty(t, v.Executing)
			require.Len(t, v.Pending, 1)

			require.Equal(t, 1, b.dispatch())
			require.Equal(t, 1, b.work())
			require.Len(t, rec.ran(), 1)
			require.Equal(t, wf.StatusCompleted, b.store.status(t, "w").View.Status)
		})
	}
}

// A workflow whose every pending node CanStart refuses, with nothing
// running, is marked blocked; it fails once it has been blocked for
// BlockedTimeout, unless a node accepts meanwhile (then it runs on).
func TestBlockedWorkflowFailsAfterBlockedTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		acceptAt  time.Duration // 0: never
		want      wf.Status
		wantError string
	}{
		{name: "never accepted", want: wf.StatusFailed,
			wantError: "blocked: CanStart refused every pending node [Gated] for 5m0s with nothing running"},
		{name: "accepted before the timeout", acceptAt: 3 * time.Minute, want: wf.StatusCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			allow := new(atomic.Bool)
			b.register(t, &gatedNode{name: "Gated", allow: allow})
			b.lead(t)
			b.start(t, "w", wf.NewTask{Node: "Gated"})
			blockedAt := b.clock.Now()

			require.Equal(t, 1, b.dispatch(), "the claim was not attempted")
			require.Equal(t, 1, b.propose(), "the block was not proposed")
			require.Equal(t, blockedAt.UnixNano(), b.store.status(t, "w").View.BlockedSince)

			// Refused nodes are re-evaluated every BlockedRecheck.
			timeout := b.e.cfg.BlockedTimeout
			for elapsed := time.Duration(0); elapsed < timeout-time.Second; elapsed += time.Second {
				if tt.acceptAt != 0 && elapsed == tt.acceptAt {
					allow.Store(true)
				}
				b.advance(time.Second)
				b.dispatch()
				b.work()
				b.propose()
			}
			if tt.acceptAt == 0 {
				require.Equal(t, wf.StatusRunning, b.store.status(t, "w").View.Status, "failed before BlockedTimeout")
				require.Empty(t, b.store.commands(wf.OpFail))
			}
			b.advance(time.Second)
			b.propose()

			v := b.store.status(t, "w").View
			require.Equal(t, tt.want, v.Status)
			require.Equal(t, tt.wantError, v.LastError)
		})
	}
}

// A shard lost and regained while one of its steps runs here keeps that
// step: the regained shard holds the running execution again instead of
// re-queueing it, which would run the step a second time meanwhile (and
// count an attempt that never failed). The step's outcome then commits.
func TestRegainedShardKeepsItsRunningStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started, release := make(chan struct{}, 2), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the engine's Stop, which waits for the step
	b.register(t, &fnNode{name: "Slow", exec: func(context.Context) (*executor.NodeResult, error) {
		started <- struct{}{}
		<-release
		return &executor.NodeResult{}, nil
	}})
	b.lead(t)
	b.start(t, "w", wf.NewTask{Node: "Slow"})
	require.Equal(t, 1, b.dispatch())
	worked := make(chan int)
	go func() { worked <- b.work() }()
	<-started

	require.NoError(t, b.e.SetLeader(1, false))
	require.NoError(t, b.e.SetLeader(1, true))
	b.e.sweep()
	b.propose()
	require.Empty(t, b.store.commands(wf.OpRequeue), "the running step was given back")

	unblock()
	select {
	case n := <-worked:
		require.Equal(t, 1, n)
	case <-time.After(10 * time.Second):
		t.Fatal("the step's outcome never committed")
	}
	s := b.store.status(t, "w")
	require.Equal(t, wf.StatusCompleted, s.View.Status)
	require.Len(t, s.History, 1)
	require.Equal(t, 1, s.History[0].Attempt)
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	require.Empty(t, b.e.live, "a finished run is forgotten")
}

// The engine loses and regains a shard while a claim it proposed is
// answered: the claim committed, and on regaining the shard the engine
// found the claimed execution running nowhere and re-queued it. The late
// answer must not run the step as well, or it runs twice (the re-queued
// task runs again under a new claim). Both for a claim of the dispatcher
// and for one made in a start command (Adopt).
func TestClaimAnsweredAfterTheShardWasRegainedRunsOnce(t *testing.T) {
	t.Parallel()
	for _, viaStart := range []bool{false, true} {
		t.Run(map[bool]string{false: "claim", true: "claim in start"}[viaStart], func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rec := &recorder{name: "A"}
			b.register(t, rec)
			b.lead(t)
			regain := func(c *wf.Command) {
				if c.Op == wf.OpClaim || c.Op == wf.OpStart {
					b.store.afterApply = nil
					require.NoError(t, b.e.SetLeader(1, false))
					require.NoError(t, b.e.SetLeader(1, true))
				}
			}
			if viaStart {
				c := &wf.Command{Op: wf.OpStart, WF: "w", Now: b.clock.Now().UnixNano(), State: json.RawMessage(`{}`),
					Tasks: []wf.NewTask{task("A", "a", 0)}}
				b.e.ClaimFields(1, c)
				require.True(t, c.Tasks[0].Claim, "the start claims its task")
				b.store.afterApply = regain
				res, err := b.store.Apply(context.Background(), 1, c)
				require.NoError(t, err)
				require.Len(t, res.Claimed, 1)
				b.e.Adopt(1, c, &res)
			} else {
				b.start(t, "w", task("A", "a", 0))
				b.store.afterApply = regain
				require.Equal(t, 1, b.dispatch())
			}
			require.Zero(t, b.work(), "the claim taken back on regaining the shard was run")
			require.Equal(t, 1, b.propose(), "the re-queue")
			require.Len(t, b.store.commands(wf.OpRequeue), 1)
			require.Equal(t, 1, b.dispatch())
			require.Equal(t, 1, b.work())
			require.Equal(t, []string{"a"}, rec.ran(), "the step ran once")
			require.Equal(t, wf.StatusCompleted, b.store.status(t, "w").View.Status)
		})
	}
}
