package wf

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/eleven-am/graft/shards"
)

// ChangeKind says what a change notification reports.
type ChangeKind uint8

// Change kinds. Updated covers every change that is not a lifecycle event
// (tasks added, claimed, re-queued, state merged, blocked).
const (
	ChangeUpdated ChangeKind = iota + 1
	ChangeStarted
	ChangePaused
	ChangeResumed
	ChangeCompleted
	ChangeFailed
	ChangeStopped
)

// Change reports that a workflow's record changed. View is the record after
// the change, with its state.
type Change struct {
	Kind ChangeKind
	View View
	// Entry is the history entry the change recorded, if any.
	Entry *HistoryEntry
	// Proposer is the Command.Proposer of the command that made the change.
	Proposer string
}

// Listener receives the changes of each committed batch, in commit order. It
// runs on the replica's apply goroutine: it must not block.
type Listener func(shardID uint64, changes []Change)

// Counters are a shard's lifetime totals, persisted with its state.
type Counters struct {
	Started    uint64 `json:"started"`
	Completed  uint64 `json:"completed"`
	Failed     uint64 `json:"failed"`
	Stopped    uint64 `json:"stopped"`
	Steps      uint64 `json:"steps"`
	StepErrors uint64 `json:"step_errors"`
	Purged     uint64 `json:"purged"`
}

// Logic is one shard replica's workflow state machine. It implements
// shards.Logic. Apply and Applied run on one goroutine; Lookup may run
// concurrently with them.
type Logic struct {
	shardID  uint64
	listener Listener

	mu       sync.RWMutex
	active   map[string]*entry
	counters Counters
	// statuses are the retained workflows by list status (persisted under
	// keyStatusCount); like active, they run ahead of storage during a
	// batch.
	statuses StatusCounts

	changes []Change // accumulated by Apply, flushed by Applied

	listExecuted func() bool // see ListExecuted

	// buf is Apply's scratch buffer for encoding values handed to
	// shards.Writer.Set, which does not retain them.
	buf []byte
	// nodes is Apply's scratch buffer for a record's indexed nodes.
	nodes []string
}

// entry is an active workflow held in memory: its record and its state.
type entry struct {
	rec   Record
	state json.RawMessage
	ix    indexed // the record's index state as last written
}

var (
	_ shards.Logic    = (*Logic)(nil)
	_ shards.Upgrader = (*Logic)(nil)
)

// NewLogic returns the state machine of one shard replica. listener may be nil.
func NewLogic(shardID uint64, listener Listener) *Logic {
	return &Logic{shardID: shardID, listener: listener, active: map[string]*entry{}}
}

// ListExecuted sets when a completed workflow's change carries its executed
// node names (View.Executed), read from its history during the apply: only
// where they are published (the shard's leader), since the read costs a
// scan on every replica otherwise. It never changes state, so replicas
// stay identical. Nil (the default) means always. Set it before the Logic
// is used.
func (l *Logic) ListExecuted(fn func() bool) { l.listExecuted = fn }

// Open loads the active workflows and counters from committed state.
func (l *Logic) Open(r shards.Reader) error {
	active := map[string]*entry{}
	var ids []string
	err := r.Scan([]byte{prefixActive}, []byte{prefixActive + 1}, func(k, _ []byte) bool {
		ids = append(ids, string(k[1:]))
		return true
	})
	if err != nil {
		return fmt.Errorf("scanning active workflows: %w", err)
	}
	for _, id := range ids {
		raw, ok, err := r.Get(recordKey(id))
		if err != nil {
			return fmt.Errorf("reading workflow %q: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("workflow %q is indexed as active but has no record", id)
		}
		e := &entry{}
		if err := e.rec.decode(raw); err != nil {
			return fmt.Errorf("decoding workflow %q: %w", id, err)
		}
		st, _, err := r.Get(stateKey(id))
		if err != nil {
			return fmt.Errorf("reading state of workflow %q: %w", id, err)
		}
		e.state = st
		e.ix = indexedOf(&e.rec)
		active[id] = e
	}
	var counters Counters
	raw, ok, err := r.Get([]byte(keyCounters))
	if err != nil {
		return fmt.Errorf("reading counters: %w", err)
	}
	if ok {
		if err := json.Unmarshal(raw, &counters); err != nil {
			return fmt.Errorf("decoding counters: %w", err)
		}
	}
	statuses, err := readStatusCounts(r)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.active = active
	l.counters = counters
	l.statuses = statuses
	l.mu.Unlock()
	return nil
}

// Applied hands the changes of the committed batch to the listener.
func (l *Logic) Applied(uint64) {
	if len(l.changes) == 0 {
		return
	}
	changes := l.changes
	l.changes = nil
	if l.listener != nil {
		l.listener(l.shardID, changes)
	}
}

// Apply applies one command.
func (l *Logic) Apply(w shards.Writer, _ uint64, raw []byte) ([]byte, error) {
	var c Command
	if err := c.decode(raw); err != nil {
		return encodeResult(Result{Code: Invalid, Message: "undecodable command: " + err.Error()})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a := applier{l: l, w: w, c: &c, x: indexer{w: w, counts: &l.statuses, scratch: &l.nodes}}
	res, err := a.apply()
	if err == nil {
		err = a.x.flush()
	}
	if err != nil {
		return nil, fmt.Errorf("applying %s to workflow %q: %w", c.Op, c.WF, err)
	}
	if a.countersDirty {
		b, _ := json.Marshal(l.counters)
		if err := w.Set([]byte(keyCounters), b); err != nil {
			return nil, err
		}
	}
	return encodeResult(res)
}

// applier applies one command; it runs with l.mu held.
type applier struct {
	l             *Logic
	w             shards.Writer
	c             *Command
	x             indexer
	countersDirty bool
}

func (a *applier) apply() (Result, error) {
	c := a.c
	if c.Op == OpPurge {
		return a.purge()
	}
	if c.WF == "" {
		return Result{Code: Invalid, Message: c.Op.String() + ": empty workflow ID"}, nil
	}
	if c.Op == OpStart {
		return a.start()
	}
	e, ok := a.l.active[c.WF]
	if !ok {
		return a.inactive()
	}
	switch c.Op {
	case OpClaim:
		return a.claim(e)
	case OpComplete:
		return a.complete(e)
	case OpFail:
		return a.fail(e)
	case OpRequeue:
		return a.requeue(e)
	case OpPause:
		return a.pause(e)
	case OpResume:
		return a.resume(e)
	case OpStop:
		return a.stop(e)
	case OpBlock:
		return a.block(e)
	default:
		return Result{Code: Invalid, Message: "unknown command " + c.Op.String()}, nil
	}
}

// inactive answers a command for a workflow that is not active: either it
// does not exist, or it is terminal.
func (a *applier) inactive() (Result, error) {
	raw, ok, err := a.w.Get(recordKey(a.c.WF))
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{Code: NotFound, Message: fmt.Sprintf("workflow %q not found", a.c.WF)}, nil
	}
	var rec Record
	if err := rec.decode(raw); err != nil {
		return Result{}, fmt.Errorf("decoding record: %w", err)
	}
	if a.c.Op == OpStop && rec.Status == StatusStopped {
		return Result{Code: OK, Status: rec.Status}, nil
	}
	return Result{Code: Rejected, Status: rec.Status,
		Message: fmt.Sprintf("workflow %q is %s", a.c.WF, rec.Status)}, nil
}

func (a *applier) start() (Result, error) {
	c := a.c
	exists := Result{Code: Exists, Message: fmt.Sprintf("workflow %q already exists", c.WF)}
	if e, ok := a.l.active[c.WF]; ok {
		if c.Nonce != "" && e.rec.StartNonce == c.Nonce {
			res := Result{Code: OK, Status: e.rec.Status} // a retry of this start
			a.retriedClaims(e, &res)
			return res, nil
		}
		return exists, nil
	}
	raw, found, err := a.w.Get(recordKey(c.WF))
	if err != nil {
		return Result{}, err
	}
	if found {
		if c.Nonce != "" {
			var rec Record
			if err := rec.decode(raw); err != nil {
				return Result{}, fmt.Errorf("decoding record: %w", err)
			}
			if rec.StartNonce == c.Nonce {
				return Result{Code: OK, Status: rec.Status}, nil
			}
		}
		return exists, nil
	}
	if len(c.Tasks) == 0 {
		return Result{Code: Invalid, Message: "start: no initial nodes"}, nil
	}
	e := &entry{
		rec: Record{
			ID: c.WF, Status: StatusRunning, StateVersion: 1, Metadata: c.Metadata,
			CreatedAt: c.Now, UpdatedAt: c.Now, Starter: c.Starter, StateSize: len(c.State),
			StartNonce: c.Nonce,
		},
		state: c.State,
	}
	for _, t := range c.Tasks {
		e.rec.InitialNodes = append(e.rec.InitialNodes, t.Node)
	}
	added := addTasks(&e.rec, c.Tasks, c.Now)
	a.l.active[c.WF] = e
	a.l.counters.Started++
	a.countersDirty = true
	if err := a.w.Set(activeKey(c.WF), nil); err != nil {
		return Result{}, err
	}
	if err := a.w.Set(stateKey(c.WF), c.State); err != nil {
		return Result{}, err
	}
	res := Result{Code: OK, Status: StatusRunning}
	a.claimAdded(e, added, &res)
	if err := a.save(e, ChangeStarted, nil); err != nil {
		return Result{}, err
	}
	return res, nil
}

// addTasks enqueues tasks, skipping those whose idempotency key is already
// pending, executing or done. It returns the IDs of the added tasks that
// asked to be claimed.
func addTasks(rec *Record, tasks []NewTask, now int64) []uint64 {
	var claim []uint64
	for _, t := range tasks {
		if t.HasKey && rec.hasKey(t.Key) {
			continue
		}
		rec.NextSeq++
		rec.Pending = append(rec.Pending, Task{
			ID: rec.NextSeq, Node: t.Node, Config: t.Config, Priority: t.Priority,
			NotBefore: t.NotBefore, Key: t.Key, HasKey: t.HasKey, EnqueuedAt: now,
		})
		if t.Claim {
			claim = append(claim, rec.NextSeq)
		}
	}
	return claim
}

// claimAdded claims the given pending tasks for the command's member when
// the workflow is running and they are due, and reports them in res.
func (a *applier) claimAdded(e *entry, ids []uint64, res *Result) {
	if len(ids) == 0 || a.c.Member == "" || e.rec.Status != StatusRunning {
		return
	}
	for _, id := range ids {
		if x, ok := a.claimTask(e, id); ok {
			res.Claimed = append(res.Claimed, Claimed{Task: x.Task, ExecID: x.ExecID})
		}
	}
	if len(res.Claimed) > 0 {
		res.State, res.Version = e.state, e.rec.StateVersion
		res.Meta, res.Created = e.rec.Metadata, e.rec.CreatedAt
	}
}

// claimTask moves a due pending task to executing for the command's member.
// The execution ID is derived from the workflow, task and claim count, so
// every replica assigns the same one and it never repeats.
func (a *applier) claimTask(e *entry, taskID uint64) (Execution, bool) {
	rec := &e.rec
	i := rec.pendingIndex(taskID)
	if i < 0 || rec.Pending[i].NotBefore > a.c.Now {
		return Execution{}, false
	}
	t := rec.Pending[i]
	rec.Pending = append(rec.Pending[:i:i], rec.Pending[i+1:]...)
	t.Claims++
	x := Execution{
		Task: t, ExecID: fmt.Sprintf("%s/%d.%d", rec.ID, t.ID, t.Claims), Member: a.c.Member,
		Incarnation: a.c.Incarnation, StartedAt: a.c.Now, LeaseUntil: a.c.LeaseUntil, ClaimNonce: a.c.Nonce,
	}
	rec.Executing = append(rec.Executing, x)
	rec.BlockedSince = 0
	return x, true
}

// retriedClaims puts in res, for a retry of a start or complete command
// whose first application committed but whose answer was lost, the
// executions that first application claimed and that still run: those with
// the command's nonce, member and incarnation. Without them the proposer
// would never run those steps, and no other member would before their
// lease lapsed.
func (a *applier) retriedClaims(e *entry, res *Result) {
	c := a.c
	if c.Nonce == "" || c.Member == "" {
		return
	}
	for _, x := range e.rec.Executing {
		if x.ClaimNonce == c.Nonce && x.Member == c.Member && x.Incarnation == c.Incarnation {
			res.Claimed = append(res.Claimed, Claimed{Task: x.Task, ExecID: x.ExecID})
		}
	}
	if len(res.Claimed) > 0 {
		res.State, res.Version = e.state, e.rec.StateVersion
		res.Meta, res.Created = e.rec.Metadata, e.rec.CreatedAt
	}
}

func (a *applier) claim(e *entry) (Result, error) {
	c := a.c
	rec := &e.rec
	if rec.Status != StatusRunning {
		return Result{Code: Rejected, Status: rec.Status,
			Message: fmt.Sprintf("workflow %q is %s", c.WF, rec.Status)}, nil
	}
	if c.Member == "" {
		return Result{Code: Invalid, Message: "claim: no member"}, nil
	}
	res := Result{Code: OK, Status: rec.Status}
	if c.Nonce != "" {
		for _, x := range rec.Executing {
			if x.ID == c.TaskID && x.ClaimNonce == c.Nonce {
				// A retry of a claim that committed: answer as the first.
				res.Claimed = []Claimed{{Task: x.Task, ExecID: x.ExecID}}
				res.State, res.Version, res.Meta, res.Created = e.state, rec.StateVersion, rec.Metadata, rec.CreatedAt
				return res, nil
			}
		}
	}
	a.claimAdded(e, []uint64{c.TaskID}, &res)
	if len(res.Claimed) == 0 {
		return Result{Code: Stale, Status: rec.Status,
			Message: fmt.Sprintf("task %d of workflow %q is not pending and due", c.TaskID, c.WF)}, nil
	}
	if err := a.save(e, ChangeUpdated, nil); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (a *applier) takeExecution(e *entry) (Execution, bool) {
	rec := &e.rec
	i := rec.executingIndex(a.c.TaskID, a.c.ExecID)
	if i < 0 {
		return Execution{}, false
	}
	x := rec.Executing[i]
	rec.Executing = append(rec.Executing[:i:i], rec.Executing[i+1:]...)
	return x, true
}

func (a *applier) complete(e *entry) (Result, error) {
	c := a.c
	rec := &e.rec
	x, ok := a.takeExecution(e)
	if !ok {
		res := Result{Code: Stale, Status: rec.Status,
			Message: fmt.Sprintf("execution %s of task %d is not current in workflow %q", c.ExecID, c.TaskID, c.WF)}
		a.retriedClaims(e, &res)
		return res, nil
	}
	entry := &HistoryEntry{TaskID: x.ID, Node: x.Node, ExecID: x.ExecID, Member: x.Member,
		Attempt: x.Claims, StartedAt: c.StartedAt, Duration: c.Now - c.StartedAt}
	for _, t := range c.Tasks {
		entry.Next = append(entry.Next, t.Node)
	}
	if len(c.Patch) > 0 {
		st, err := ApplyPatch(e.state, c.Patch)
		if err != nil {
			return a.failWorkflow(e, x.Node, x.Claims, fmt.Sprintf("node %q: merging its state: %v", x.Node, err), entry)
		}
		if c.MaxStateBytes > 0 && len(st) > c.MaxStateBytes {
			return a.failWorkflow(e, x.Node, x.Claims, fmt.Sprintf(
				"node %q: state after the step is %d bytes, over the limit of %d", x.Node, len(st), c.MaxStateBytes), entry)
		}
		e.state = st
		rec.StateVersion++
		rec.StateSize = len(st)
		rec.BlockedSince = 0
		if err := a.w.Set(stateKey(c.WF), st); err != nil {
			return Result{}, err
		}
	}
	if x.HasKey {
		addDoneKey(rec, x.Key)
	}
	added := addTasks(rec, c.Tasks, c.Now)
	if len(c.Tasks) > 0 {
		rec.BlockedSince = 0
	}
	a.l.counters.Steps++
	a.countersDirty = true
	if len(rec.Pending) == 0 && len(rec.Executing) == 0 {
		return a.finish(e, StatusCompleted, ChangeCompleted, entry)
	}
	res := Result{Code: OK, Status: rec.Status}
	a.claimAdded(e, added, &res)
	if err := a.save(e, ChangeUpdated, entry); err != nil {
		return Result{}, err
	}
	return res, nil
}

func addDoneKey(rec *Record, key string) {
	i := sort.SearchStrings(rec.DoneKeys, key)
	if i < len(rec.DoneKeys) && rec.DoneKeys[i] == key {
		return
	}
	rec.DoneKeys = append(rec.DoneKeys, "")
	copy(rec.DoneKeys[i+1:], rec.DoneKeys[i:])
	rec.DoneKeys[i] = key
}

func (a *applier) fail(e *entry) (Result, error) {
	c := a.c
	rec := &e.rec
	if c.TaskID == 0 {
		// A workflow-level failure (blocked too long, invalid next node).
		if c.StateVersion != 0 && (rec.BlockedSince == 0 || rec.StateVersion != c.StateVersion) {
			return Result{Code: Stale, Status: rec.Status, Message: "workflow is no longer blocked"}, nil
		}
		return a.failWorkflow(e, "", 0, c.Error, nil)
	}
	x, ok := a.takeExecution(e)
	if !ok {
		return Result{Code: Stale, Status: rec.Status,
			Message: fmt.Sprintf("execution %s of task %d is not current in workflow %q", c.ExecID, c.TaskID, c.WF)}, nil
	}
	entry := &HistoryEntry{TaskID: x.ID, Node: x.Node, ExecID: x.ExecID, Member: x.Member,
		Attempt: x.Claims, StartedAt: c.StartedAt, Duration: c.Now - c.StartedAt, Error: c.Error}
	a.l.counters.StepErrors++
	a.countersDirty = true
	t := x.Task
	t.Failures++
	t.LastError = c.Error
	if !c.Retry {
		rec.Pending = append(rec.Pending, t)
		return a.failWorkflow(e, x.Node, x.Claims, c.Error, entry)
	}
	t.NotBefore = c.RetryAt
	rec.Pending = append(rec.Pending, t)
	if err := a.save(e, ChangeUpdated, entry); err != nil {
		return Result{}, err
	}
	return Result{Code: OK, Status: rec.Status}, nil
}

func (a *applier) failWorkflow(e *entry, node string, attempt int, msg string, h *HistoryEntry) (Result, error) {
	e.rec.LastError = msg
	e.rec.FailedNode = node
	e.rec.FailedTry = attempt
	return a.finish(e, StatusFailed, ChangeFailed, h)
}

// finish moves a workflow to a terminal status.
func (a *applier) finish(e *entry, s Status, kind ChangeKind, h *HistoryEntry) (Result, error) {
	rec := &e.rec
	rec.Status = s
	rec.EndedAt = a.c.Now
	rec.Executing = nil
	rec.BlockedSince = 0
	switch s {
	case StatusCompleted:
		a.l.counters.Completed++
	case StatusFailed:
		a.l.counters.Failed++
	case StatusStopped:
		a.l.counters.Stopped++
	}
	a.countersDirty = true
	delete(a.l.active, rec.ID)
	if err := a.w.Delete(activeKey(rec.ID)); err != nil {
		return Result{}, err
	}
	if err := a.w.Set(retentionKey(rec.EndedAt, rec.ID), nil); err != nil {
		return Result{}, err
	}
	if err := a.save(e, kind, h); err != nil {
		return Result{}, err
	}
	return Result{Code: OK, Status: s}, nil
}

func (a *applier) requeue(e *entry) (Result, error) {
	x, ok := a.takeExecution(e)
	if !ok {
		return Result{Code: Stale, Status: e.rec.Status, Message: "execution is not current"}, nil
	}
	t := x.Task
	if a.c.Unstarted && t.Claims > 0 {
		t.Claims--
	}
	e.rec.Pending = append(e.rec.Pending, t)
	if err := a.save(e, ChangeUpdated, nil); err != nil {
		return Result{}, err
	}
	return Result{Code: OK, Status: e.rec.Status}, nil
}

func (a *applier) pause(e *entry) (Result, error) {
	if e.rec.Status == StatusPaused {
		return Result{Code: OK, Status: StatusPaused}, nil
	}
	e.rec.Status = StatusPaused
	e.rec.BlockedSince = 0
	if err := a.save(e, ChangePaused, nil); err != nil {
		return Result{}, err
	}
	return Result{Code: OK, Status: StatusPaused}, nil
}

func (a *applier) resume(e *entry) (Result, error) {
	if e.rec.Status == StatusRunning {
		return Result{Code: OK, Status: StatusRunning}, nil
	}
	e.rec.Status = StatusRunning
	if err := a.save(e, ChangeResumed, nil); err != nil {
		return Result{}, err
	}
	return Result{Code: OK, Status: StatusRunning}, nil
}

func (a *applier) stop(e *entry) (Result, error) {
	return a.finish(e, StatusStopped, ChangeStopped, nil)
}

func (a *applier) block(e *entry) (Result, error) {
	rec := &e.rec
	if rec.Status != StatusRunning || len(rec.Executing) > 0 || len(rec.Pending) == 0 ||
		rec.StateVersion != a.c.StateVersion {
		return Result{Code: Stale, Status: rec.Status, Message: "workflow is not blocked"}, nil
	}
	if rec.BlockedSince != 0 {
		return Result{Code: OK, Status: rec.Status}, nil
	}
	rec.BlockedSince = a.c.Now
	if err := a.save(e, ChangeUpdated, nil); err != nil {
		return Result{}, err
	}
	return Result{Code: OK, Status: rec.Status}, nil
}

func (a *applier) purge() (Result, error) {
	limit := a.c.Limit
	if limit <= 0 {
		limit = 1000
	}
	type victim struct {
		key []byte
		id  string
	}
	var victims []victim
	err := a.w.Scan([]byte{prefixRetention}, retentionKey(a.c.Before, ""), func(k, _ []byte) bool {
		victims = append(victims, victim{key: append([]byte(nil), k...), id: string(k[9:])})
		return len(victims) < limit
	})
	if err != nil {
		return Result{}, err
	}
	for _, v := range victims {
		var hist [][]byte
		p := historyPrefix(v.id)
		if err := a.w.Scan(p, prefixEnd(p), func(k, _ []byte) bool {
			hist = append(hist, append([]byte(nil), k...))
			return true
		}); err != nil {
			return Result{}, err
		}
		raw, ok, err := a.w.Get(recordKey(v.id))
		if err != nil {
			return Result{}, err
		}
		if ok {
			var rec Record
			if err := rec.decode(raw); err != nil {
				return Result{}, fmt.Errorf("decoding record of workflow %q: %w", v.id, err)
			}
			if err := a.x.remove(&rec); err != nil {
				return Result{}, err
			}
		}
		for _, k := range append(hist, v.key, recordKey(v.id), stateKey(v.id)) {
			if err := a.w.Delete(k); err != nil {
				return Result{}, err
			}
		}
	}
	if len(victims) > 0 {
		a.l.counters.Purged += uint64(len(victims))
		a.countersDirty = true
	}
	return Result{Code: OK, Purged: len(victims)}, nil
}

// save writes the record (and a history entry) and queues the change.
func (a *applier) save(e *entry, kind ChangeKind, h *HistoryEntry) error {
	rec := &e.rec
	rec.UpdatedAt = a.c.Now
	rec.Rev++
	var err error
	if kind == ChangeStarted {
		e.ix, err = a.x.add(rec)
	} else {
		e.ix, err = a.x.update(rec, e.ix)
	}
	if err != nil {
		return err
	}
	if h != nil {
		rec.Steps++
		a.l.buf = h.appendTo(a.l.buf[:0])
		if err := a.w.Set(historyKey(rec.ID, rec.Steps), a.l.buf); err != nil {
			return err
		}
	}
	a.l.buf = rec.appendTo(a.l.buf[:0])
	if err := a.w.Set(recordKey(rec.ID), a.l.buf); err != nil {
		return err
	}
	if cap(a.l.buf) > maxPooledBuf {
		a.l.buf = nil // do not pin one huge record's buffer
	}
	v := View{Record: rec.view().Record, State: e.state}
	if kind == ChangeCompleted && (a.l.listExecuted == nil || a.l.listExecuted()) {
		names, err := executedNames(a.w, rec.ID)
		if err != nil {
			return err
		}
		v.Executed = names
	}
	a.l.changes = append(a.l.changes, Change{Kind: kind, View: v, Entry: h, Proposer: a.c.Proposer})
	return nil
}

// executedNames reads the node names of a workflow's history, in order
// (the batch's own writes included).
func executedNames(r shards.Reader, id string) ([]string, error) {
	var names []string
	var decodeErr error
	p := historyPrefix(id)
	err := r.Scan(p, prefixEnd(p), func(_, v []byte) bool {
		var h HistoryEntry
		if err := h.decode(v); err != nil {
			decodeErr = err
			return false
		}
		names = append(names, h.Node)
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("reading history of workflow %q: %w", id, err)
	}
	return names, nil
}
