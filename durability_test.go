package graft_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// durCounter counts executions per workflow and node.
type durCounter struct {
	mu sync.Mutex
	n  map[string]int // "workflow node" → executions
}

func newDurCounter() *durCounter { return &durCounter{n: map[string]int{}} }

func (c *durCounter) inc(wf, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[wf+" "+node]++
}

func (c *durCounter) get(wf, node string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[wf+" "+node]
}

// durLogger is testLogger that goes quiet once the test's cleanups run.
// Dragonboat's logger is process-global and follows the most recently
// started member, so a member of another test may log through it after
// this test ended; t.Log then races the testing package.
func durLogger(t *testing.T, name string) *slog.Logger {
	g := &durLogGate{}
	t.Cleanup(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
	})
	return slog.New(durLogHandler{inner: testLogger(t, name).Handler(), gate: g})
}

type durLogGate struct {
	mu     sync.RWMutex
	closed bool
}

type durLogHandler struct {
	inner slog.Handler
	gate  *durLogGate
}

func (h durLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h durLogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.gate.mu.RLock()
	defer h.gate.mu.RUnlock()
	if h.gate.closed {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h durLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return durLogHandler{inner: h.inner.WithAttrs(as), gate: h.gate}
}

func (h durLogHandler) WithGroup(name string) slog.Handler {
	return durLogHandler{inner: h.inner.WithGroup(name), gate: h.gate}
}

// durConfig is the configuration of every run of one durable member: the
// same NodeID, BindAddr and DataDir, two shards, fast retries, a short drain.
func durConfig(t *testing.T, name, addr, dir string) *graft.Config {
	cfg := graft.DefaultConfig("n1", addr, dir)
	cfg.Logger = durLogger(t, name)
	cfg.Cluster.ShardCount = 2
	cfg.Engine.RetryDelay = 5 * time.Millisecond
	cfg.Engine.MaxRetryDelay = 20 * time.Millisecond
	cfg.Engine.DrainTimeout = 200 * time.Millisecond
	cfg.Engine.WorkerCount = 32
	return cfg
}

// durStart starts a member with cfg after register registered its nodes,
// and stops it when the test ends (Stop is idempotent, so tests may stop
// it earlier).
func durStart(t *testing.T, cfg *graft.Config, register func(*graft.Manager)) *graft.Manager {
	t.Helper()
	m := graft.NewWithConfig(cfg)
	register(m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	return m
}

// durNames lists the node names of a workflow's history, in order.
func durNames(s *graft.WorkflowStatus) []string {
	names := make([]string, 0, len(s.ExecutedNodes))
	for _, n := range s.ExecutedNodes {
		names = append(names, n.NodeName)
	}
	return names
}

// ---- graceful restart --------------------------------------------------

type durTrailState struct {
	Hold  bool     `json:"hold"`
	Trail []string `json:"trail"`
}

// durTrailNode appends its name to the trail and schedules next. With hold
// set, it blocks on workflows whose state asks for it until hold is closed
// or its context is cancelled, after announcing itself on holding.
type durTrailNode struct {
	name    string
	next    string
	counts  *durCounter
	hold    <-chan struct{}
	holding chan<- string
}

func (n *durTrailNode) GetName() string { return n.name }

func (n *durTrailNode) Execute(ctx context.Context, s *durTrailState, _ map[string]any) (*graft.NodeResult, error) {
	wc, ok := graft.GetWorkflowContext(ctx)
	if !ok {
		return nil, graft.Permanent(errors.New("no workflow context"))
	}
	n.counts.inc(wc.WorkflowID, n.name)
	if n.hold != nil && s.Hold {
		n.holding <- wc.WorkflowID
		select {
		case <-n.hold:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	s.Trail = append(s.Trail, n.name)
	r := &graft.NodeResult{GlobalState: s}
	if n.next != "" {
		r.NextNodes = []graft.NextNode{{NodeName: n.next}}
	}
	return r, nil
}

func durRegisterTrail(t *testing.T, m *graft.Manager, counts *durCounter, hold <-chan struct{}, holding chan<- string) {
	require.NoError(t, m.RegisterNode(&durTrailNode{name: "A", next: "B", counts: counts}))
	require.NoError(t, m.RegisterNode(&durTrailNode{name: "B", next: "C", counts: counts, hold: hold, holding: holding}))
	require.NoError(t, m.RegisterNode(&durTrailNode{name: "C", counts: counts}))
}

func TestGracefulRestartResumesWorkflows(t *testing.T) {
	t.Parallel()
	const nHeld, nDone = 20, 5
	dir, addr := t.TempDir(), freeAddr(t)
	before, after := newDurCounter(), newDurCounter()
	hold := make(chan struct{}) // never closed: Stop cancels the held steps
	holding := make(chan string, nHeld+nDone)

	m1 := durStart(t, durConfig(t, "run1", addr, dir), func(m *graft.Manager) {
		durRegisterTrail(t, m, before, hold, holding)
	})

	// Workflows that complete before the restart.
	doneBefore := map[string]*graft.WorkflowStatus{}
	for i := range nDone {
		id := fmt.Sprintf("done-%d", i)
		require.NoError(t, m1.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}},
			InitialState: durTrailState{Trail: []string{}}, Metadata: map[string]string{"kind": "done"},
		}))
	}
	for i := range nDone {
		id := fmt.Sprintf("done-%d", i)
		doneBefore[id] = waitStatus(t, m1, id, graft.WorkflowStateCompleted)
	}

	// Workflows whose B is running when the member stops.
	for i := range nHeld {
		require.NoError(t, m1.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: fmt.Sprintf("held-%d", i), InitialNodes: []graft.NodeConfig{{Name: "A"}},
			InitialState: durTrailState{Hold: true, Trail: []string{}},
		}))
	}
	deadline := time.After(20 * time.Second)
	for seen := map[string]bool{}; len(seen) < nHeld; {
		select {
		case id := <-holding:
			seen[id] = true
		case <-deadline:
			require.FailNow(t, "B never ran for every held workflow", "%d of %d running", len(seen), nHeld)
		}
	}
	for i := range nHeld {
		id := fmt.Sprintf("held-%d", i)
		s, err := m1.GetWorkflowStatus(id)
		require.NoError(t, err)
		require.Equal(t, graft.WorkflowStateRunning, s.Status, id)
		require.Equal(t, []string{"A"}, durNames(s), id)
		require.Len(t, s.ExecutingNodes, 1, id)
		require.Equal(t, "B", s.ExecutingNodes[0].NodeName, id)
	}

	require.NoError(t, m1.Stop())

	m2 := durStart(t, durConfig(t, "run2", addr, dir), func(m *graft.Manager) {
		durRegisterTrail(t, m, after, nil, nil)
	})
	for i := range nHeld {
		id := fmt.Sprintf("held-%d", i)
		s := waitStatus(t, m2, id, graft.WorkflowStateCompleted)
		require.Equal(t, []string{"A", "B", "C"}, durNames(s), id)
		var st durTrailState
		require.NoError(t, s.DecodeState(&st))
		require.Equal(t, []string{"A", "B", "C"}, st.Trail, id)

		require.Equal(t, 1, before.get(id, "A"), "%s: A before the restart", id)
		require.Equal(t, 0, after.get(id, "A"), "%s: A re-ran after the restart", id)
		require.Equal(t, 1, before.get(id, "B"), "%s: B before the restart", id)
		require.Equal(t, 1, after.get(id, "B"), "%s: B after the restart", id)
		require.Equal(t, 0, before.get(id, "C"), "%s: C before the restart", id)
		require.Equal(t, 1, after.get(id, "C"), "%s: C after the restart", id)
	}
	for id, was := range doneBefore {
		s, err := m2.GetWorkflowStatus(id)
		require.NoError(t, err, id)
		require.Equal(t, graft.WorkflowStateCompleted, s.Status, id)
		require.JSONEq(t, string(was.CurrentStateJSON), string(s.CurrentStateJSON), id)
		require.JSONEq(t, `{"hold":false,"trail":["A","B","C"]}`, string(s.CurrentStateJSON), id)
		require.Equal(t, "done", s.Metadata["kind"], id)
		require.Equal(t, was.ExecutedNodes, s.ExecutedNodes, id)
		require.True(t, was.CompletedAt.Equal(*s.CompletedAt), id)
		for _, node := range []string{"A", "B", "C"} {
			require.Equal(t, 1, before.get(id, node), "%s %s", id, node)
			require.Equal(t, 0, after.get(id, node), "%s %s re-ran after the restart", id, node)
		}
	}
}

// ---- idempotency keys across a restart ---------------------------------

// durKeyNode runs the idempotency scenario: Entry schedules Keyed (key
// "once") and Gate; Gate blocks until its context ends when hold is set,
// else schedules Keyed with the same key again and Final.
type durKeyNode struct {
	name    string
	counts  *durCounter
	hold    bool
	holding chan<- string
}

func (n *durKeyNode) GetName() string { return n.name }

func (n *durKeyNode) Execute(ctx context.Context, _ map[string]any, _ map[string]any) (*graft.NodeResult, error) {
	wc, ok := graft.GetWorkflowContext(ctx)
	if !ok {
		return nil, graft.Permanent(errors.New("no workflow context"))
	}
	n.counts.inc(wc.WorkflowID, n.name)
	once := "once"
	switch n.name {
	case "Entry":
		return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: "Keyed", IdempotencyKey: &once}, {NodeName: "Gate"}}}, nil
	case "Gate":
		if n.hold {
			n.holding <- wc.WorkflowID
			<-ctx.Done()
			return nil, context.Cause(ctx)
		}
		return &graft.NodeResult{NextNodes: []graft.NextNode{{NodeName: "Keyed", IdempotencyKey: &once}, {NodeName: "Final"}}}, nil
	}
	return nil, nil
}

func durRegisterKeyNodes(t *testing.T, m *graft.Manager, counts *durCounter, hold bool, holding chan<- string) {
	for _, name := range []string{"Entry", "Keyed", "Gate", "Final"} {
		require.NoError(t, m.RegisterNode(&durKeyNode{name: name, counts: counts, hold: hold, holding: holding}))
	}
}

func TestIdempotencyKeySurvivesRestart(t *testing.T) {
	t.Parallel()
	const n = 5
	dir, addr := t.TempDir(), freeAddr(t)
	before, after := newDurCounter(), newDurCounter()
	holding := make(chan string, n)

	m1 := durStart(t, durConfig(t, "run1", addr, dir), func(m *graft.Manager) {
		durRegisterKeyNodes(t, m, before, true, holding)
	})
	for i := range n {
		require.NoError(t, m1.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: fmt.Sprintf("key-%d", i), InitialNodes: []graft.NodeConfig{{Name: "Entry"}},
		}))
	}
	deadline := time.After(20 * time.Second)
	for seen := 0; seen < n; seen++ {
		select {
		case <-holding:
		case <-deadline:
			require.FailNow(t, "Gate never ran for every workflow", "%d of %d", seen, n)
		}
	}
	// Keyed has completed (its result is committed) in every workflow.
	for i := range n {
		id := fmt.Sprintf("key-%d", i)
		var last *graft.WorkflowStatus
		require.Eventually(t, func() bool {
			s, err := m1.GetWorkflowStatus(id)
			if err != nil {
				return false
			}
			last = s
			return len(s.ExecutedNodes) == 2
		}, 20*time.Second, 5*time.Millisecond, "%s: Keyed never completed (%s)", id, describe(last))
		require.ElementsMatch(t, []string{"Entry", "Keyed"}, durNames(last), id)
	}
	require.NoError(t, m1.Stop())

	m2 := durStart(t, durConfig(t, "run2", addr, dir), func(m *graft.Manager) {
		durRegisterKeyNodes(t, m, after, false, nil)
	})
	for i := range n {
		id := fmt.Sprintf("key-%d", i)
		s := waitStatus(t, m2, id, graft.WorkflowStateCompleted)
		require.ElementsMatch(t, []string{"Entry", "Keyed", "Gate", "Final"}, durNames(s), id)
		require.Equal(t, 1, before.get(id, "Keyed"), id)
		require.Equal(t, 0, after.get(id, "Keyed"), "%s: the keyed step ran again after the restart", id)
		require.Equal(t, 1, after.get(id, "Gate"), id)
		require.Equal(t, 1, after.get(id, "Final"), id)
		require.Equal(t, 1, before.get(id, "Entry")+after.get(id, "Entry"), id)
	}
}

// ---- SIGKILL -------------------------------------------------------------

const (
	killWorkflows = 30
	killSteps     = 3
	envChildDir   = "GRAFT_CHILD_DIR"
	envChildAddr  = "GRAFT_CHILD_ADDR"
	envChildLog   = "GRAFT_CHILD_STEPS"
)

type killState struct {
	Keyed bool `json:"keyed"`
}

type killConfig struct {
	Again bool `json:"again"`
}

// killStallAfter is how many steps the child member starts before its
// further steps stall until it is killed. The parent kills it once it
// logged killKillAt steps; without the stall a parent that does not run
// for a few hundred milliseconds (a loaded machine) would find every step
// done and the kill would test nothing.
const (
	killKillAt     = 35
	killStallAfter = 60
)

// killNode appends "<workflow> <node> <attempt>" to its log (fsynced) when
// it starts, then works for 20ms. S1 → S2 → S3; in keyed workflows S2 has
// the key "s2" and S3 schedules S2 with that key again (which must not
// run). execs, when set, records the execution IDs this process ran.
// started, when set, counts the steps this process started: past
// killStallAfter a step waits for its context, unlogged.
type killNode struct {
	name    string
	log     string
	execs   *sync.Map
	started *atomic.Int64
}

func (n *killNode) GetName() string { return n.name }

func (n *killNode) Execute(ctx context.Context, s killState, c killConfig) (*graft.NodeResult, error) {
	wc, ok := graft.GetWorkflowContext(ctx)
	if !ok {
		return nil, graft.Permanent(errors.New("no workflow context"))
	}
	if n.started != nil && n.started.Add(1) > killStallAfter {
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	if err := killAppend(n.log, fmt.Sprintf("%s %s %d\n", wc.WorkflowID, n.name, wc.Attempt)); err != nil {
		return nil, err
	}
	if n.execs != nil {
		n.execs.Store(wc.ExecutionID, true)
	}
	work := time.NewTimer(20 * time.Millisecond)
	defer work.Stop()
	select {
	case <-work.C:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	key := "s2"
	var next []graft.NextNode
	switch n.name {
	case "S1":
		nn := graft.NextNode{NodeName: "S2"}
		if s.Keyed {
			nn.IdempotencyKey = &key
		}
		next = append(next, nn)
	case "S2":
		if !c.Again {
			next = append(next, graft.NextNode{NodeName: "S3"})
		}
	case "S3":
		if s.Keyed {
			next = append(next, graft.NextNode{NodeName: "S2", IdempotencyKey: &key, Config: killConfig{Again: true}})
		}
	}
	return &graft.NodeResult{NextNodes: next}, nil
}

func killAppend(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// killReadLog counts the lines of a step log per "workflow node".
func killReadLog(t *testing.T, path string) (map[string]int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}, 0
	}
	require.NoError(t, err)
	counts := map[string]int{}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue // a torn last line cannot happen with O_APPEND, but be lenient
		}
		counts[f[0]+" "+f[1]]++
		lines++
	}
	return counts, lines
}

func killMemberConfig(addr, dir string, logger *slog.Logger) *graft.Config {
	cfg := graft.DefaultConfig("n1", addr, dir)
	cfg.Logger = logger
	cfg.Cluster.ShardCount = 2
	cfg.Engine.WorkerCount = 4
	cfg.Engine.RetryDelay = 5 * time.Millisecond
	cfg.Engine.MaxRetryDelay = 20 * time.Millisecond
	cfg.Engine.DrainTimeout = 200 * time.Millisecond
	return cfg
}

func registerKillNodes(t *testing.T, m *graft.Manager, log string, execs *sync.Map, started *atomic.Int64) {
	for _, name := range []string{"S1", "S2", "S3"} {
		require.NoError(t, m.RegisterNode(&killNode{name: name, log: log, execs: execs, started: started}))
	}
}

func killWorkflowID(i int) string { return fmt.Sprintf("kill-%02d", i) }

// TestChildMember is the member that TestKillNineRestartResumesWorkflows
// runs in a child process and kills. Without the child's environment it
// returns at once.
func TestChildMember(t *testing.T) {
	dir := os.Getenv(envChildDir)
	if dir == "" {
		return
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := graft.NewWithConfig(killMemberConfig(os.Getenv(envChildAddr), dir, logger))
	var started atomic.Int64
	registerKillNodes(t, m, os.Getenv(envChildLog), nil, &started)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	defer func() { _ = m.Stop() }()

	errs := make(chan error, killWorkflows)
	var wg sync.WaitGroup
	for i := range killWorkflows {
		wg.Go(func() {
			errs <- m.StartWorkflow(graft.WorkflowTrigger{
				WorkflowID: killWorkflowID(i), InitialNodes: []graft.NodeConfig{{Name: "S1"}},
				InitialState: killState{Keyed: i%2 == 0},
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	fmt.Println("STARTED")
	// The parent kills this process; this is only a safety net if it died.
	<-time.After(2 * time.Minute)
	t.Fatal("the parent never killed the child member")
}

// killWatcher receives the child's stdout, copies it to the child log
// and closes started when the child prints STARTED.
type killWatcher struct {
	mu      sync.Mutex
	buf     []byte
	out     *os.File
	started chan struct{}
	once    sync.Once
}

func (w *killWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, []byte("STARTED\n")) {
		w.once.Do(func() { close(w.started) })
	}
	return w.out.Write(p)
}

func TestKillNineRestartResumesWorkflows(t *testing.T) {
	t.Parallel()
	dir, addr, tmp := t.TempDir(), freeAddr(t), t.TempDir()
	childSteps := filepath.Join(tmp, "child-steps.log")
	parentSteps := filepath.Join(tmp, "parent-steps.log")
	childLogPath := filepath.Join(tmp, "child.log")
	childLog, err := os.OpenFile(childLogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	t.Cleanup(func() {
		childLog.Close()
		if t.Failed() {
			b, _ := os.ReadFile(childLogPath)
			t.Logf("child member output:\n%s", b)
			s, _ := os.ReadFile(childSteps)
			t.Logf("child step log:\n%s", s)
		}
	})

	cmd := exec.Command(os.Args[0], "-test.run=^TestChildMember$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envChildDir+"="+dir, envChildAddr+"="+addr, envChildLog+"="+childSteps)
	watcher := &killWatcher{out: childLog, started: make(chan struct{})}
	cmd.Stdout = watcher
	cmd.Stderr = childLog
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	select {
	case <-watcher.started:
	case <-exited:
		require.FailNow(t, "the child member exited before starting its workflows", "%v", waitErr)
	case <-time.After(60 * time.Second):
		require.FailNow(t, "the child member never started its workflows")
	}
	require.Eventually(t, func() bool {
		_, n := killReadLog(t, childSteps)
		return n >= killKillAt
	}, 30*time.Second, 2*time.Millisecond, "the child member ran no steps")
	require.NoError(t, cmd.Process.Kill())
	<-exited
	require.Error(t, waitErr, "the child member must have died of SIGKILL")
	require.False(t, cmd.ProcessState.Exited(), "the child member exited on its own: %v", waitErr)

	childCounts, childLines := killReadLog(t, childSteps)
	t.Logf("step executions started by the child before SIGKILL: %d (a complete run needs at least %d)",
		childLines, killWorkflows*killSteps)
	require.Less(t, childLines, killWorkflows*killSteps, "the child finished before the kill; nothing was tested")

	var execs sync.Map
	m := durStart(t, killMemberConfig(addr, dir, durLogger(t, "restarted")), func(m *graft.Manager) {
		registerKillNodes(t, m, parentSteps, &execs, nil)
	})
	statuses := make([]*graft.WorkflowStatus, killWorkflows)
	for i := range killWorkflows {
		statuses[i] = waitStatus(t, m, killWorkflowID(i), graft.WorkflowStateCompleted)
	}
	parentCounts, parentLines := killReadLog(t, parentSteps)
	t.Logf("step executions after the restart: %d", parentLines)
	require.Positive(t, parentLines, "nothing was left to run after the kill")

	committedBefore, rerun := 0, 0
	for i, s := range statuses {
		id := killWorkflowID(i)
		require.ElementsMatch(t, []string{"S1", "S2", "S3"}, durNames(s), "%s: history", id)
		for _, h := range s.ExecutedNodes {
			require.Empty(t, h.Error, "%s %s", id, h.NodeName)
			key := id + " " + h.NodeName
			c, p := childCounts[key], parentCounts[key]
			if _, ok := execs.Load(h.ExecutionID); ok {
				// Recorded after the restart: it may have been running at
				// the kill, so the child may have started it once.
				require.Equal(t, 1, p, "%s: executions after the restart", key)
				require.LessOrEqual(t, c, 1, "%s: executions in the child", key)
				if c == 1 {
					rerun++
				}
				continue
			}
			// Recorded before the kill: it must never run again.
			committedBefore++
			require.Equal(t, 1, c, "%s: executions in the child (execution %s)", key, h.ExecutionID)
			require.Equal(t, 0, p, "%s: completed before the kill but executed again after the restart", key)
		}
		if i%2 == 0 {
			// The keyed S2 ran once although S3 scheduled its key again.
			n := 0
			for _, h := range s.ExecutedNodes {
				if h.NodeName == "S2" {
					n++
				}
			}
			require.Equal(t, 1, n, "%s: key s2 in history", id)
			require.Zero(t, len(s.PendingNodes), id)
		}
	}
	t.Logf("steps recorded before the kill: %d; steps re-run after being interrupted: %d", committedBefore, rerun)
	require.Equal(t, killWorkflows*killSteps-committedBefore, parentLines,
		"after the restart, exactly the steps not recorded before the kill ran")
}
