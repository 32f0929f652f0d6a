package engine

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/wf"
)

// wfKey identifies a workflow on a shard.
type wfKey struct {
	shard uint64
	id    string
}

// wfState is the engine's view of one active workflow on a shard this member
// leads. It is rebuilt from the replicated state on leadership gain and kept
// current from committed changes.
type wfState struct {
	key          wfKey
	rev          uint64
	status       wf.Status
	stateVersion uint64
	state        json.RawMessage
	meta         map[string]string
	created      int64
	blockedSince int64
	executing    int            // executions in the replicated view
	execs        []wf.Execution // those executions

	tasks   map[uint64]*item // pending tasks not yet claimed
	running map[string]*run  // claimed executions of this member, by execution ID

	blockProposed bool
	timeoutQueued bool
}

// busy reports whether an outcome of this workflow is being committed.
func (w *wfState) busy() bool {
	for _, r := range w.running {
		if r.committing {
			return true
		}
	}
	return false
}

// run is a claimed execution of this member.
type run struct {
	it      *item
	w       *wfState
	execID  string
	task    wf.Task                 // as claimed (Claims is the attempt number)
	state   json.RawMessage         // the state the step reads
	meta    map[string]string       // workflow metadata
	created int64                   // workflow start
	cancel  context.CancelCauseFunc // set once the step runs

	committing bool // the step finished; its outcome (and any claims it makes) is being committed
}

// newRun describes claimed execution c of the workflow res reports on.
func newRun(it *item, c wf.Claimed, res *wf.Result) *run {
	return &run{it: it, execID: c.ExecID, task: c.Task, state: res.State, meta: res.Meta, created: res.Created}
}

// Engine runs the steps of the workflows on the shards this member leads:
// it keeps their pending tasks in a priority queue and a timer queue, claims
// ready tasks through the store, runs them on a bounded worker pool and
// commits their results. Create it with New, drive it with SetLeader,
// OnChanges and NodesChanged, and stop it with Stop.
type Engine struct {
	cfg Config
	log *slog.Logger

	stepCtx    context.Context // parent of every step context; cancelled after the drain timeout
	cancelStep context.CancelCauseFunc
	storeCtx   context.Context // bounds proposals; cancelled last
	cancelStor context.CancelFunc
	stopCh     chan struct{}
	stopOnce   sync.Once
	stopped    chan struct{}  // closed when the first Stop returns
	wg         sync.WaitGroup // the engine's own goroutines: loops, proposers, commits
	nodeCode   *group         // goroutines that may be in node code: workers, claims (CanStart)

	mu           sync.Mutex
	dispatchCond *sync.Cond
	workCond     *sync.Cond
	stopping     bool
	led          map[uint64]bool
	wfs          map[wfKey]*wfState
	ready        itemHeap
	timers       itemHeap
	claimed      itemHeap
	runs         map[*item]*run
	live         map[string]*run // claimed executions of this member not yet done, by execution ID, whichever wfState holds them
	inflight     int
	seq          uint64
	timerWake    chan struct{}

	proposeCond *sync.Cond
	proposals   []proposal      // FIFO, drained by the proposers
	queuedExecs map[string]bool // executions with a re-queue queued or in flight
	closing     bool            // proposals are cancelled: no new proposal or commit runs

	stepping        int           // steps whose node code is running
	committing      int           // step outcomes being committed
	stepsIdle       chan struct{} // closed once stopping and no step runs
	quiet           chan struct{} // closed once stopping, no step runs and nothing is being committed
	stepsIdleClosed bool
	quietClosed     bool

	nonces atomic.Uint64
}

// New validates cfg and returns an engine with its goroutines running.
func New(cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger.With(logkeys.Component, "executor"),
		stopCh:    make(chan struct{}),
		led:       map[uint64]bool{},
		wfs:       map[wfKey]*wfState{},
		ready:     itemHeap{less: byPriority},
		timers:    itemHeap{less: byDue},
		claimed:   itemHeap{less: byPriority},
		runs:      map[*item]*run{},
		live:      map[string]*run{},
		timerWake: make(chan struct{}, 1),
		stopped:   make(chan struct{}),
		nodeCode:  newGroup(),

		queuedExecs: map[string]bool{},
		stepsIdle:   make(chan struct{}),
		quiet:       make(chan struct{}),
	}
	e.stepCtx, e.cancelStep = context.WithCancelCause(context.Background())
	e.storeCtx, e.cancelStor = context.WithCancel(context.Background())
	e.dispatchCond = sync.NewCond(&e.mu)
	e.workCond = sync.NewCond(&e.mu)
	e.proposeCond = sync.NewCond(&e.mu)
	if !cfg.skipStartup {
		e.start()
	}
	return e, nil
}

// start starts the engine's goroutines: the dispatcher, the timer, purge
// and sweep loops, the proposers and the workers.
func (e *Engine) start() {
	e.wg.Go(e.dispatchLoop)
	e.wg.Go(e.timerLoop)
	e.wg.Go(e.purgeLoop)
	e.wg.Go(e.sweepLoop)
	for range proposers {
		e.wg.Go(e.proposeLoop)
	}
	for range e.cfg.WorkerCount {
		e.nodeCode.Go(e.workLoop)
	}
}

// goAdded runs f on a new goroutine that its caller already counted in
// e.wg, under e.mu while !e.closing, so that Stop's wait cannot miss it.
func (e *Engine) goAdded(f func()) {
	go func() {
		defer e.wg.Done()
		f()
	}()
}

func (e *Engine) now() time.Time { return e.cfg.Clock.Now() }

// SetLeader tells the engine whether this member leads shard. On gaining
// leadership it loads the shard's active workflows and re-queues executions
// that no live claim holds; on losing it, it forgets the shard's queued tasks
// (steps already running finish and try to commit).
func (e *Engine) SetLeader(shard uint64, leader bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping || e.led[shard] == leader {
		return nil
	}
	if !leader {
		delete(e.led, shard)
		for k, w := range e.wfs {
			if k.shard == shard {
				e.forgetLocked(w)
			}
		}
		return nil
	}
	views, err := e.cfg.Store.Active(shard)
	if err != nil {
		return fmt.Errorf("loading active workflows of shard %d: %w", shard, err)
	}
	e.led[shard] = true
	for i := range views {
		e.syncLocked(shard, &views[i], true)
	}
	e.log.Debug("leading shard", logkeys.Shard, shard, "active", len(views))
	return nil
}

// OnChanges applies committed changes of a shard. It never blocks on I/O.
func (e *Engine) OnChanges(shard uint64, changes []wf.Change) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping || !e.led[shard] {
		return
	}
	for i := range changes {
		e.syncLocked(shard, &changes[i].View, false)
	}
}

// NodesChanged re-examines tasks parked because their node was not
// registered on this member. Call it after registering a node.
func (e *Engine) NodesChanged() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.wfs {
		for _, it := range w.tasks {
			if it.state == itemParked {
				e.placeLocked(w, it)
			}
		}
	}
}

// syncLocked brings the engine's view of one workflow up to v.
func (e *Engine) syncLocked(shard uint64, v *wf.View, gained bool) {
	k := wfKey{shard, v.ID}
	w := e.wfs[k]
	if w != nil && v.Rev <= w.rev {
		return
	}
	if v.Status.Terminal() {
		if w != nil {
			cause := executor.ErrWorkflowStopped
			for _, r := range w.running {
				if r.cancel != nil {
					r.cancel(cause)
				}
			}
			e.forgetLocked(w)
		}
		return
	}
	if w == nil {
		w = &wfState{key: k, tasks: map[uint64]*item{}, running: map[string]*run{}}
		e.wfs[k] = w
	}
	stateChanged := v.StateVersion != w.stateVersion
	w.rev = v.Rev
	w.status = v.Status
	w.stateVersion = v.StateVersion
	w.state = v.State
	w.meta = v.Metadata
	w.created = v.CreatedAt
	w.blockedSince = v.BlockedSince
	w.executing = len(v.Executing)
	w.execs = v.Executing
	if v.BlockedSince == 0 {
		w.blockProposed = false
	}

	pending := make(map[uint64]bool, len(v.Pending))
	for _, t := range v.Pending {
		pending[t.ID] = true
		it := w.tasks[t.ID]
		if it == nil {
			e.seq++
			it = &item{kind: kindTask, shard: shard, wf: v.ID, task: t, seq: e.seq, index: -1}
			w.tasks[t.ID] = it
			e.placeLocked(w, it)
			continue
		}
		if it.state == itemClaiming {
			continue
		}
		moved := it.task.NotBefore != t.NotBefore
		it.task = t
		switch {
		case w.status != wf.StatusRunning:
			e.unqueueLocked(it)
		case it.state == itemParked, moved:
			e.unqueueLocked(it)
			e.placeLocked(w, it)
		case it.waitVersion != 0 && stateChanged:
			e.unqueueLocked(it)
			it.waitVersion = 0
			e.placeLocked(w, it)
		}
	}
	for id, it := range w.tasks {
		if !pending[id] && it.state != itemClaiming {
			e.unqueueLocked(it)
			delete(w.tasks, id)
		}
	}
	if gained {
		e.recoverExecutionsLocked(w, v)
	}
	if w.blockedSince != 0 && !w.timeoutQueued {
		e.queueBlockTimeoutLocked(w, time.Unix(0, w.blockedSince).Add(e.cfg.BlockedTimeout))
	}
}

// recoverExecutionsLocked re-queues executions that no live claim of this
// member holds: those of an earlier incarnation of this member at once, and
// other members' ones once their lease lapses, or at once when their run
// is not alive (the member is gone, or restarted since it claimed them).
func (e *Engine) recoverExecutionsLocked(w *wfState, v *wf.View) {
	now := e.now().UnixNano()
	for _, x := range v.Executing {
		if _, ok := w.running[x.ExecID]; ok {
			continue
		}
		if r, ok := e.live[x.ExecID]; ok {
			// Still running here, from before the shard was lost and
			// regained: it commits its outcome as usual, and re-queueing
			// it would run the step a second time meanwhile.
			e.holdRunLocked(w, r)
			continue
		}
		if x.Member == e.cfg.MemberID || x.LeaseUntil <= now || !e.alive(x.Member, x.Incarnation) {
			e.requeueLocked(w.key, x.ID, x.ExecID, false)
			continue
		}
		e.seq++
		it := &item{kind: kindLeaseCheck, shard: w.key.shard, wf: w.key.id, task: x.Task,
			execID: x.ExecID, seq: e.seq, due: x.LeaseUntil, index: -1}
		e.pushTimerLocked(it)
	}
}

// holdRunLocked records r as held by w (the engine's state of r's
// workflow, which a lost and regained shard replaces).
func (e *Engine) holdRunLocked(w *wfState, r *run) {
	if r.w != nil && r.w != w {
		delete(r.w.running, r.execID)
	}
	r.w = w
	w.running[r.execID] = r
	e.live[r.execID] = r
}

// dropRunLocked forgets r: it is done, or was given back.
func (e *Engine) dropRunLocked(r *run) {
	if r.w != nil && r.w.running[r.execID] == r {
		delete(r.w.running, r.execID)
	}
	if e.live[r.execID] == r {
		delete(e.live, r.execID)
	}
}

// placeLocked puts a task where it belongs: parked, delayed or ready.
func (e *Engine) placeLocked(w *wfState, it *item) {
	it.state = itemParked
	if w.status != wf.StatusRunning {
		return
	}
	if !e.runnable(it.task.Node) {
		e.log.Warn("pending node is registered on no member; it waits until it is",
			logkeys.Workflow, w.key.id, logkeys.Step, it.task.Node)
		return
	}
	if it.task.NotBefore > e.now().UnixNano() {
		it.due = it.task.NotBefore
		e.pushTimerLocked(it)
		return
	}
	it.state = itemReady
	heap.Push(&e.ready, it)
	e.dispatchCond.Signal()
}

func (e *Engine) pushTimerLocked(it *item) {
	if it.kind == kindTask {
		it.state = itemDelayed
	}
	heap.Push(&e.timers, it)
	if e.timers.peek() == it {
		select {
		case e.timerWake <- struct{}{}:
		default:
		}
	}
}

// unqueueLocked takes a task out of whatever queue holds it.
func (e *Engine) unqueueLocked(it *item) {
	switch it.state {
	case itemReady:
		removeFrom(&e.ready, it)
	case itemDelayed:
		removeFrom(&e.timers, it)
	}
	it.state = itemParked
}

// forgetLocked drops a workflow's queued tasks and timers.
func (e *Engine) forgetLocked(w *wfState) {
	for _, it := range w.tasks {
		e.unqueueLocked(it)
	}
	for i := len(e.timers.items) - 1; i >= 0; i-- {
		if it := e.timers.items[i]; it.kind != kindTask && it.shard == w.key.shard && it.wf == w.key.id {
			heap.Remove(&e.timers, i)
		}
	}
	delete(e.wfs, w.key)
}

// dispatchLoop hands ready tasks to claim goroutines, at most ClaimAhead at
// once. Claims evaluate CanStart, which is node code, so they run in the
// nodeCode group; ClaimAhead bounds them.
func (e *Engine) dispatchLoop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		for !e.stopping && !e.dispatchableLocked() {
			e.dispatchCond.Wait()
		}
		if e.stopping {
			return
		}
		it, snap := e.takeReadyLocked()
		// Not after Stop began (checked above, under e.mu), so never
		// after the group is closed.
		e.nodeCode.Go(func() { e.claim(it, snap) })
	}
}

// dispatchableLocked reports whether a ready task may be claimed now.
func (e *Engine) dispatchableLocked() bool {
	return e.ready.Len() > 0 && e.inflight < e.cfg.ClaimAhead
}

// takeReadyLocked takes the first ready task for claiming (see
// dispatchableLocked) and copies what its claim needs of the workflow.
func (e *Engine) takeReadyLocked() (*item, claimSnapshot) {
	it := heap.Pop(&e.ready).(*item)
	it.state = itemClaiming
	e.inflight++
	w := e.wfs[wfKey{it.shard, it.wf}]
	return it, claimSnapshot{state: w.state, version: w.stateVersion, meta: w.meta, created: w.created}
}

// claimSnapshot is what a claim goroutine needs of the workflow, copied
// under the lock.
type claimSnapshot struct {
	state   json.RawMessage
	version uint64
	meta    map[string]string
	created int64
}

// claim evaluates CanStart and claims the task through the store.
func (e *Engine) claim(it *item, snap claimSnapshot) {
	node, ok := e.cfg.Registry.Get(it.task.Node)
	if !ok && !e.runnable(it.task.Node) {
		e.settleClaim(it, nil, claimPark)
		return
	}
	if ok && node.HasCanStart() {
		wc := e.workflowContext(it, snap, e.now())
		ok, err := node.CanStart(executor.WithWorkflowContext(e.storeCtx, wc), snap.state, it.task.Config)
		if err != nil {
			e.log.Warn("CanStart failed; treating as refused", logkeys.Workflow, it.wf,
				logkeys.Step, it.task.Node, "error", err)
		}
		if !ok {
			it.waitVersion = snap.version
			e.settleClaim(it, nil, claimRefused)
			return
		}
	}
	now := e.now()
	lease := e.cfg.LeaseDuration + e.cfg.StepTimeout
	res, err := e.cfg.Store.Apply(e.storeCtx, it.shard, &wf.Command{
		Op: wf.OpClaim, WF: it.wf, Now: now.UnixNano(), TaskID: it.task.ID,
		Member: e.cfg.MemberID, Incarnation: e.cfg.Incarnation, LeaseUntil: now.Add(lease).UnixNano(),
		Nonce: e.cfg.Incarnation + "." + strconv.FormatUint(e.nonces.Add(1), 36),
	})
	switch {
	case err != nil:
		e.log.Debug("claim not committed; retrying", logkeys.Workflow, it.wf, "error", err)
		e.settleClaim(it, nil, claimRetry)
	case res.Code != wf.OK || len(res.Claimed) == 0:
		e.settleClaim(it, nil, claimRetry)
	default:
		e.settleClaim(it, newRun(it, res.Claimed[0], &res), claimOK)
	}
}

// ClaimFields marks the tasks of a start or complete command that this
// member can claim in the same command (registered here, no CanStart, not
// delayed) and sets the command's claim fields, when this member leads the
// shard and has room in its claim-ahead window. Adopt then takes the
// executions the command claimed.
func (e *Engine) ClaimFields(shard uint64, c *wf.Command) {
	e.mu.Lock()
	ok := !e.stopping && e.led[shard] && e.inflight+len(c.Tasks) <= e.cfg.ClaimAhead
	e.mu.Unlock()
	if !ok {
		return
	}
	claim := false
	for i := range c.Tasks {
		t := &c.Tasks[i]
		if n, reg := e.cfg.Registry.Get(t.Node); reg && !n.HasCanStart() && t.NotBefore == 0 {
			t.Claim = true
			claim = true
		}
	}
	if claim {
		c.Member, c.Incarnation = e.cfg.MemberID, e.cfg.Incarnation
		c.LeaseUntil = time.Unix(0, c.Now).Add(e.cfg.LeaseDuration + e.cfg.StepTimeout).UnixNano()
		if c.Nonce == "" {
			// A retried complete finds its claims by it (a start has
			// its own nonce, the same across retries).
			c.Nonce = e.cfg.Incarnation + "." + strconv.FormatUint(e.nonces.Add(1), 36)
		}
	}
}

// Adopt queues for execution the tasks that committed command c claimed
// for this member (see ClaimFields); res is its result. Claims that c made
// for another member, or for an earlier run of this one, are not this
// engine's to run and are ignored.
func (e *Engine) Adopt(shard uint64, c *wf.Command, res *wf.Result) {
	if len(res.Claimed) == 0 || c.Member != e.cfg.MemberID || c.Incarnation != e.cfg.Incarnation {
		return
	}
	wfID := c.WF
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.wfs[wfKey{shard, wfID}]
	if e.stopping {
		return // left executing: the next leader (or this member restarted) re-runs them
	}
	if w == nil {
		// This member lost the shard's leadership while the command was in
		// flight: give the claims back so the shard's leader runs them now,
		// not when their lease lapses.
		for _, c := range res.Claimed {
			e.requeueLocked(wfKey{shard, wfID}, c.Task.ID, c.ExecID, true)
		}
		return
	}
	for _, c := range res.Claimed {
		if e.takenBackLocked(w, c.ExecID) {
			continue
		}
		e.seq++
		it := &item{kind: kindTask, shard: shard, wf: wfID, task: c.Task, seq: e.seq, index: -1, state: itemClaiming}
		r := newRun(it, c, res)
		e.holdRunLocked(w, r)
		e.runs[it] = r
		e.inflight++
		heap.Push(&e.claimed, it)
	}
	e.workCond.Broadcast()
}

// takenBackLocked reports whether execution execID, which a committed claim
// gave this member, was taken back before the claim's answer reached the
// engine: a re-queue of it is queued or in flight (this member lost and
// regained the shard meanwhile, and recoverExecutionsLocked found it
// running nowhere), or the workflow's replicated executions no longer list
// it (that re-queue committed). Running it then would run the step twice:
// the re-queued task runs again under a new claim. A claim wrongly judged
// taken back is not lost: its execution, running nowhere, is re-queued by
// the sweep after orphanGrace.
func (e *Engine) takenBackLocked(w *wfState, execID string) bool {
	if e.queuedExecs[execID] {
		return true
	}
	for _, x := range w.execs {
		if x.ExecID == execID {
			return false
		}
	}
	return true
}

type claimOutcome uint8

const (
	claimOK claimOutcome = iota
	claimRefused
	claimRetry
	claimPark
)

// settleClaim records how a claim ended.
func (e *Engine) settleClaim(it *item, r *run, outcome claimOutcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.wfs[wfKey{it.shard, it.wf}]
	if outcome == claimOK && w != nil && e.takenBackLocked(w, r.execID) {
		// Taken back while the claim was answered: the re-queued task is
		// claimed again. This item no longer stands for a pending task.
		if w.tasks[it.task.ID] == it {
			delete(w.tasks, it.task.ID)
		}
		e.inflight--
		e.dispatchCond.Signal()
		return
	}
	if outcome == claimOK {
		if w != nil {
			delete(w.tasks, it.task.ID)
			e.holdRunLocked(w, r)
		}
		if e.stopping || w == nil {
			// Stopped, or no longer leading the shard: give the claim back
			// (when stopping, the next leader or the restart re-runs it).
			e.inflight--
			if !e.stopping {
				e.requeueLocked(wfKey{it.shard, it.wf}, it.task.ID, r.execID, true)
			}
			return
		}
		e.runs[it] = r
		heap.Push(&e.claimed, it)
		e.workCond.Signal()
		return
	}
	e.inflight--
	e.dispatchCond.Signal()
	if w == nil || w.tasks[it.task.ID] != it {
		return
	}
	it.state = itemParked
	switch outcome {
	case claimRefused:
		it.due = e.now().Add(e.cfg.BlockedRecheck).UnixNano()
		e.pushTimerLocked(it)
		e.checkBlockedLocked(w)
	case claimRetry:
		it.due = e.now().Add(50 * time.Millisecond).UnixNano()
		e.pushTimerLocked(it)
	}
}

// checkBlockedLocked proposes Block when every pending task of a running
// workflow was refused at its current state and nothing runs.
func (e *Engine) checkBlockedLocked(w *wfState) {
	if w.status != wf.StatusRunning || w.blockedSince != 0 || w.blockProposed ||
		len(w.running) > 0 || w.executing > 0 || len(w.tasks) == 0 {
		return
	}
	for _, it := range w.tasks {
		if it.waitVersion != w.stateVersion {
			return
		}
	}
	w.blockProposed = true
	e.proposeLocked(proposal{kind: proposeBlock, k: w.key, version: w.stateVersion})
}

func (e *Engine) queueBlockTimeoutLocked(w *wfState, at time.Time) {
	w.timeoutQueued = true
	e.seq++
	e.pushTimerLocked(&item{kind: kindBlockTimeout, shard: w.key.shard, wf: w.key.id,
		version: w.stateVersion, seq: e.seq, due: at.UnixNano(), index: -1})
}

// timerLoop moves due timer entries: tasks to the ready queue, checks to
// the proposers.
func (e *Engine) timerLoop() {
	var t Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		wait := e.fireTimers()
		var fire <-chan time.Time
		if t != nil {
			t.Stop()
			t = nil
		}
		if wait >= 0 {
			t = e.cfg.Clock.NewTimer(wait)
			fire = t.C()
		}
		select {
		case <-e.stopCh:
			return
		case <-e.timerWake:
		case <-fire:
		}
	}
}

// fireTimers fires the timer entries that are due and returns how long
// until the next one is, or -1 when none is queued.
func (e *Engine) fireTimers() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now().UnixNano()
	for e.timers.Len() > 0 && e.timers.peek().due <= now {
		it := heap.Pop(&e.timers).(*item)
		e.fireLocked(it)
	}
	if next := e.timers.peek(); next != nil {
		return time.Duration(next.due - now)
	}
	return -1
}

func (e *Engine) fireLocked(it *item) {
	w := e.wfs[wfKey{it.shard, it.wf}]
	if w == nil {
		return
	}
	switch it.kind {
	case kindTask:
		if w.tasks[it.task.ID] == it {
			it.state = itemParked
			e.placeLocked(w, it)
		}
	case kindBlockTimeout:
		w.timeoutQueued = false
		if w.blockedSince == 0 {
			return
		}
		names := make([]string, 0, len(w.tasks))
		for _, t := range w.tasks {
			names = append(names, t.task.Node)
		}
		msg := fmt.Sprintf("blocked: CanStart refused every pending node %v for %s with nothing running", names, e.cfg.BlockedTimeout)
		e.proposeLocked(proposal{kind: proposeFailBlocked, k: w.key, version: w.stateVersion, msg: msg})
	case kindLeaseCheck:
		if _, ok := w.running[it.execID]; !ok {
			e.requeueLocked(w.key, it.task.ID, it.execID, false)
		}
	}
}

// purgeLoop purges terminal workflows older than the retention period on
// the shards this member leads.
func (e *Engine) purgeLoop() {
	for {
		t := e.cfg.Clock.NewTimer(e.cfg.PurgeInterval)
		select {
		case <-e.stopCh:
			t.Stop()
			return
		case <-t.C():
		}
		e.purgeNow()
	}
}

// orphanGrace is how long an execution of this member may go unaccounted
// for (claimed, but its claim's answer never reached the engine: the claim
// was retried after an ambiguous timeout) before the sweep re-queues it.
const orphanGrace = 5 * time.Second

// sweepLoop periodically re-queues executions nobody is running: this
// member's orphans and other members' executions whose lease lapsed.
func (e *Engine) sweepLoop() {
	for {
		t := e.cfg.Clock.NewTimer(2 * time.Second)
		select {
		case <-e.stopCh:
			t.Stop()
			return
		case <-t.C():
		}
		e.sweep()
	}
}

// sweep re-queues abandoned executions on the shards this member leads.
func (e *Engine) sweep() {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return
	}
	for _, w := range e.wfs {
		if w.busy() {
			// An outcome being committed may claim executions this engine
			// adopts once the commit answers.
			continue
		}
		for _, x := range w.execs {
			if _, ok := w.running[x.ExecID]; ok {
				continue
			}
			if it := w.tasks[x.ID]; it != nil && it.state == itemClaiming {
				continue // a claim of it is in flight
			}
			switch {
			case x.Member == e.cfg.MemberID && x.Incarnation != e.cfg.Incarnation:
				e.requeueLocked(w.key, x.ID, x.ExecID, false)
			case x.Member == e.cfg.MemberID && now.Sub(time.Unix(0, x.StartedAt)) > orphanGrace:
				e.requeueLocked(w.key, x.ID, x.ExecID, true)
			case x.Member != e.cfg.MemberID && (x.LeaseUntil <= now.UnixNano() || !e.alive(x.Member, x.Incarnation)):
				e.requeueLocked(w.key, x.ID, x.ExecID, false)
			}
		}
	}
}

// runnable reports whether node is registered here or on another member.
func (e *Engine) runnable(node string) bool {
	if _, ok := e.cfg.Registry.Get(node); ok {
		return true
	}
	return e.cfg.Remote != nil && e.cfg.Remote.Has(node)
}

// alive reports whether member's run in incarnation may still be running,
// according to Config.Alive (always, without one).
func (e *Engine) alive(member, incarnation string) bool {
	return e.cfg.Alive == nil || e.cfg.Alive(member, incarnation)
}

// purgeNow purges, on every shard this member leads, the terminal workflows
// that ended more than the retention period ago.
func (e *Engine) purgeNow() {
	e.mu.Lock()
	shards := make([]uint64, 0, len(e.led))
	for s := range e.led {
		shards = append(shards, s)
	}
	e.mu.Unlock()
	const limit = 1000
	for _, s := range shards {
		for {
			now := e.now()
			res, err := e.cfg.Store.Apply(e.storeCtx, s, &wf.Command{Op: wf.OpPurge, Now: now.UnixNano(),
				Before: now.Add(-e.cfg.Retention).UnixNano(), Limit: limit})
			if err != nil {
				e.log.Debug("purge not committed", logkeys.Shard, s, "error", err)
				break
			}
			if res.Purged > 0 {
				e.log.Debug("purged expired workflows", logkeys.Shard, s, "count", res.Purged)
			}
			if res.Purged < limit {
				break
			}
		}
	}
}

// Load returns the steps running now (here or on another member) and the
// ready steps waiting for a worker (ready to claim, or claimed and not yet
// running). Delayed steps are not counted.
func (e *Engine) Load() (executing, queued int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stepping, e.ready.Len() + e.claimed.Len()
}
