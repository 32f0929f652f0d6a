package shards

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/eleven-am/graft/internal/backoff"
	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

const (
	// defaultRequestTimeout bounds one Dragonboat round trip when the
	// caller's ctx has no deadline; Read retries until ctx ends.
	defaultRequestTimeout = 10 * time.Second
	// leaderEventBuffer is how many leader events may wait for OnLeaderChange.
	leaderEventBuffer = 1024
	// proposalQueueLen is the per-shard queue of proposals waiting for the batcher.
	proposalQueueLen = 4096
)

// Host runs the shard replicas of one member: one Dragonboat NodeHost and one
// Pebble database shared by all of its shards. All methods are safe for
// concurrent use.
type Host struct {
	cfg Config
	log *slog.Logger
	db  *pebble.DB
	nh  *dragonboat.NodeHost

	stop    chan struct{}   // closed by Close
	stopCtx context.Context // cancelled by Close
	cancel  context.CancelCauseFunc
	wg      sync.WaitGroup // goroutines the Host started
	ops     sync.WaitGroup // caller operations using nh or db (see enter)

	mu     sync.RWMutex
	closed bool
	shards map[uint64]*shard

	events        chan raftio.LeaderInfo
	droppedEvents atomic.Uint64

	live  atomic.Pointer[dragonboat.NodeHost] // nh, once NewNodeHost returned; for the inbound filter
	reg   *nodeRegistry                       // replica addresses; consulted by the inbound filter
	stats *transportStats                     // inbound traffic refused

	closeOnce sync.Once
	closeErr  error
}

// shard is the Host's bookkeeping for one started replica.
type shard struct {
	id        uint64
	replicaID uint64
	session   *client.Session
	queue     chan *request
	inflight  chan struct{} // semaphore of MaxInflight proposals
	stop      chan struct{} // closed by DropShard
	stats     shardStats
}

// shardStats counts group-commit activity of a shard.
type shardStats struct {
	proposals atomic.Uint64 // proposals handed to Dragonboat
	entries   atomic.Uint64 // raft entries applied locally
	commands  atomic.Uint64 // commands applied locally
}

// NewHost validates cfg, opens the Pebble state database at DataDir/state
// and starts a Dragonboat NodeHost with its raft log at DataDir/raft. It does
// not modify cfg. Shards are started with StartShard.
func NewHost(cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	log := c.Logger.With(attrComponent, "shards", attrNode, c.NodeID)
	routeDragonboatLogs(log)

	h := &Host{
		cfg:    c,
		log:    log,
		stop:   make(chan struct{}),
		shards: make(map[uint64]*shard),
		events: make(chan raftio.LeaderInfo, leaderEventBuffer),
		stats:  &transportStats{},
	}
	h.reg = newNodeRegistry(log, h.stats, c.Directory, c.RaftAddress)
	in := &inbound{log: log, reg: h.reg, stats: h.stats, lastIndex: h.lastLogIndex, term: h.raftTerm}
	transport := c.TransportFactory
	if transport == nil {
		transport = &tcpFactory{log: log, limits: newFrameLimits(c.MaxBatchBytes), stats: h.stats, tls: c.TLS, resolve: h.reg.address}
	}
	h.stopCtx, h.cancel = context.WithCancelCause(context.Background())
	stateDir := filepath.Join(c.DataDir, "state")
	raftDir := filepath.Join(c.DataDir, "raft")
	if err := c.FS.MkdirAll(stateDir, 0o755); err != nil {
		h.cancel(ErrClosed)
		return nil, fmt.Errorf("graft: shards: creating %s: %w", stateDir, err)
	}
	if err := c.FS.MkdirAll(raftDir, 0o755); err != nil {
		h.cancel(ErrClosed)
		return nil, fmt.Errorf("graft: shards: creating %s: %w", raftDir, err)
	}
	db, err := pebble.Open(stateDir, &pebble.Options{
		FS:     c.FS,
		Logger: pebbleLogger{log.With("db", "state")},
	})
	if err != nil {
		h.cancel(ErrClosed)
		return nil, fmt.Errorf("graft: shards: opening state db: %w", err)
	}
	h.db = db

	nhc := config.NodeHostConfig{
		NodeHostDir:    raftDir,
		RTTMillisecond: c.RTTMillisecond,
		RaftAddress:    c.RaftAddress,
		Expert: config.ExpertConfig{
			LogDB:               c.LogDB,
			TransportFactory:    in.wrap(transport),
			NodeRegistryFactory: registryFactory{h.reg},
			Engine:              engineConfig(),
		},
	}
	if c.addressTargets {
		nhc.Expert.NodeRegistryFactory = nil
	} else if c.NodeID != "" {
		// A new data directory gets the NodeHost ID derived from the node
		// ID; an existing one keeps the ID Dragonboat recorded in it
		// (NodeHostDir/NODEHOST.ID, dragonboat internal/server
		// environment.go idFilename and PrepareNodeHostID: asking for
		// another would fail with ErrNodeHostIDChanged).
		if _, err := c.FS.Stat(filepath.Join(raftDir, nodeHostIDFile)); errors.Is(err, os.ErrNotExist) {
			nhc.NodeHostID = NodeHostIDOf(c.NodeID)
		}
	}
	if cfg.FS != nil {
		nhc.Expert.FS = dragonboatFS(cfg.FS)
	}
	if c.OnLeaderChange != nil {
		nhc.RaftEventListener = leaderListener{h}
		h.wg.Go(h.runLeaderEvents)
	}
	nh, err := newNodeHost(nhc)
	if err != nil {
		close(h.stop)
		h.cancel(ErrClosed)
		h.wg.Wait()
		return nil, errors.Join(fmt.Errorf("graft: shards: starting nodehost: %w", translate(err)), db.Close())
	}
	h.nh = nh
	h.live.Store(nh)
	log.Info("host started", "raft_address", c.RaftAddress, "nodehost_id", nh.ID(), "data_dir", c.DataDir)
	return h, nil
}

// nodeHostIDFile is the file of NodeHostDir in which Dragonboat records
// the NodeHost's ID.
const nodeHostIDFile = "NODEHOST.ID"

// NodeHostID returns this Host's NodeHost ID: the Raft target that names
// its replicas in the memberships of shards it joins or founds, and the
// SourceAddress of the message batches it sends. Other members must be
// able to map it to this Host's Raft address (Config.Directory).
func (h *Host) NodeHostID() string { return h.nh.ID() }

// errNoNodeHost is newNodeHost's error when Dragonboat returned neither a
// NodeHost nor an error.
var errNoNodeHost = errors.New("dragonboat returned no NodeHost and no error (it recovers a panic while starting " +
	"that is not an error value, e.g. its LogDB's \"invalid fs\" for a file system it does not accept)")

// newNodeHost is dragonboat.NewNodeHost, except that it never returns a
// nil NodeHost with a nil error: Dragonboat does when a panic whose value
// is not an error (a string) happens while it starts, which it recovers and
// drops.
func newNodeHost(nhc config.NodeHostConfig) (*dragonboat.NodeHost, error) {
	return checkNodeHost(dragonboat.NewNodeHost(nhc))
}

// checkNodeHost turns a nil NodeHost with a nil error into errNoNodeHost.
func checkNodeHost(nh *dragonboat.NodeHost, err error) (*dragonboat.NodeHost, error) {
	if err == nil && nh == nil {
		return nil, errNoNodeHost
	}
	return nh, err
}

// engineConfig sizes Dragonboat's execution engine. One step worker saves
// the Raft state of every shard in one LogDB write and one fsync per cycle:
// measured with graftbench seq3 on 8 shards, 11k steps/s against 6.4k with
// Dragonboat's default 16 workers (each fsyncing its own shards). The
// shard-to-LogDB mapping derives from ExecShards, so it must never change
// for an existing data directory: it is a constant, not a setting.
func engineConfig() config.EngineConfig {
	e := config.GetDefaultEngineConfig()
	e.ExecShards = 1
	e.CommitShards = 2
	e.ApplyShards = 2
	return e
}

// StartShard starts this member's replica of shardID. For a new shard pass
// the full initialMembers (replicaID -> the member's NodeHost ID, see
// NodeHostID) and join=false on every
// initial member; a replica added by a membership change passes join=true
// and no members. It is restart-safe: when the raft log already holds this
// replica, initialMembers and join are ignored and the replica restarts from
// its own data.
func (h *Host) StartShard(shardID, replicaID uint64, initialMembers map[uint64]string, join bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if _, ok := h.shards[shardID]; ok {
		return fmt.Errorf("graft: shards: shard %d already started on this host", shardID)
	}
	var members map[uint64]dragonboat.Target
	if h.nh.HasNodeInfo(shardID, replicaID) {
		join = false
	} else {
		// A new replica: whatever state an earlier replica of this shard
		// left in the database (one removed from the shard before this
		// member was added again) is not this replica's and must not be
		// reported as applied.
		if err := h.wipeState(shardID); err != nil {
			return err
		}
		members = make(map[uint64]dragonboat.Target, len(initialMembers))
		for id, target := range initialMembers {
			members[id] = target
			h.reg.Add(shardID, id, target)
		}
	}
	s := &shard{
		id:        shardID,
		replicaID: replicaID,
		session:   h.nh.GetNoOPSession(shardID),
		queue:     make(chan *request, proposalQueueLen),
		inflight:  make(chan struct{}, h.cfg.MaxInflight),
		stop:      make(chan struct{}),
	}
	log := h.log.With(attrShard, shardID, attrReplica, replicaID)
	create := func(shardID, replicaID uint64) sm.IOnDiskStateMachine {
		return &stateMachine{
			db:        h.db,
			shardID:   shardID,
			replicaID: replicaID,
			logic:     h.cfg.NewLogic(shardID),
			log:       log,
			stats:     &s.stats,
		}
	}
	rc := config.Config{
		ShardID:     shardID,
		ReplicaID:   replicaID,
		CheckQuorum: true,
		PreVote:     true,
		// A membership change proposed with a stale ConfigChangeID is
		// rejected, so concurrent changes cannot both apply.
		OrderedConfigChange: true,
		ElectionRTT:         h.cfg.ElectionRTT,
		HeartbeatRTT:        h.cfg.HeartbeatRTT,
		SnapshotEntries:     h.cfg.SnapshotEntries,
		CompactionOverhead:  h.cfg.CompactionOverhead,
	}
	// Inbound traffic for the shard is accepted from the moment Dragonboat
	// may expect it.
	h.reg.setLocal(shardID, replicaID)
	if err := h.nh.StartOnDiskReplica(members, join, create, rc); err != nil {
		h.reg.clearLocal(shardID)
		return fmt.Errorf("graft: shards: starting shard %d replica %d: %w", shardID, replicaID, translate(err))
	}
	h.shards[shardID] = s
	h.wg.Go(func() { h.runBatcher(s) })
	log.Info("shard started", "restart", members == nil, "join", join)
	return nil
}

// shard returns the started shard, ErrClosed or ErrShardNotFound.
func (h *Host) shard(shardID uint64) (*shard, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, ErrClosed
	}
	s, ok := h.shards[shardID]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrShardNotFound, shardID)
	}
	return s, nil
}

// enter is shard plus registration of a caller operation that uses the
// NodeHost or the Pebble database: Close waits for it before closing them.
// On success the caller must call h.ops.Done.
func (h *Host) enter(shardID uint64) (*shard, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, ErrClosed
	}
	s, ok := h.shards[shardID]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrShardNotFound, shardID)
	}
	h.ops.Add(1)
	return s, nil
}

// Read runs query through the shard's Logic.Lookup after a ReadIndex round
// trip, so it observes every proposal that completed before Read was called
// (linearizable). While the shard has no leader it retries with backoff until
// ctx ends. A ctx without deadline is allowed.
func (h *Host) Read(ctx context.Context, shardID uint64, query []byte) ([]byte, error) {
	if _, err := h.enter(shardID); err != nil {
		return nil, err
	}
	defer h.ops.Done()
	bo := newBackoff()
	for {
		v, err := h.syncRead(ctx, shardID, query)
		if err == nil {
			b, _ := v.([]byte)
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		if h.stopCtx.Err() != nil {
			return nil, ErrClosed
		}
		if errors.Is(err, dragonboat.ErrTimeoutTooSmall) {
			return nil, fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		terr := translate(err)
		if !IsRetryable(terr) {
			return nil, terr
		}
		if err := h.sleep(ctx, bo.Next()); err != nil {
			return nil, err
		}
	}
}

// syncRead is one SyncRead attempt, cancelled when the Host closes and
// bounded by attemptTimeout: a ReadIndex that Dragonboat drops (no leader
// yet, as on a replica that has just joined) is only completed at its
// deadline, so a long one would stall the caller's retries.
func (h *Host) syncRead(ctx context.Context, shardID uint64, query []byte) (any, error) {
	ctx, cancel := h.bound(ctx)
	defer cancel()
	ctx, cancelAttempt := context.WithTimeout(ctx, h.attemptTimeout())
	defer cancelAttempt()
	return h.nh.SyncRead(ctx, shardID, query)
}

// LocalRead runs query through this replica's Logic.Lookup against its
// applied state, without a raft round trip. The result may be stale.
func (h *Host) LocalRead(shardID uint64, query []byte) ([]byte, error) {
	if _, err := h.enter(shardID); err != nil {
		return nil, err
	}
	defer h.ops.Done()
	v, err := h.nh.StaleRead(shardID, query)
	if err != nil {
		return nil, translate(err)
	}
	b, _ := v.([]byte)
	return b, nil
}

// IsLeader reports whether this member's replica currently leads shardID, as
// far as this member knows.
func (h *Host) IsLeader(shardID uint64) bool {
	s, err := h.shard(shardID)
	if err != nil {
		return false
	}
	id, ok := h.LeaderID(shardID)
	return ok && id == s.replicaID
}

// LeaderID returns the replica ID of shardID's leader as known by this
// member; ok is false when no leader is known or the shard is not started.
func (h *Host) LeaderID(shardID uint64) (leaderReplicaID uint64, ok bool) {
	if _, err := h.enter(shardID); err != nil {
		return 0, false
	}
	defer h.ops.Done()
	id, _, valid, err := h.nh.GetLeaderID(shardID)
	if err != nil || !valid || id == 0 {
		return 0, false
	}
	return id, true
}

// Leader returns the replica ID of shardID's leader as known by this member
// (0 if none is known) together with the Raft term that knowledge is from,
// both from one read, so a caller can order it against leader events;
// ok is false when the shard is not started here.
func (h *Host) Leader(shardID uint64) (leaderReplicaID, term uint64, ok bool) {
	if _, err := h.enter(shardID); err != nil {
		return 0, 0, false
	}
	defer h.ops.Done()
	id, term, valid, err := h.nh.GetLeaderID(shardID)
	if err != nil {
		return 0, 0, false
	}
	if !valid {
		id = 0
	}
	return id, term, true
}

// StateHash returns a hash of shardID's Logic keys and values on this member
// together with the applied index they reflect, both read from one
// consistent view. Replicas at the same applied index must have equal hashes.
func (h *Host) StateHash(shardID uint64) (hash, appliedIndex uint64, err error) {
	if _, err := h.enter(shardID); err != nil {
		return 0, 0, err
	}
	defer h.ops.Done()
	snap := h.db.NewSnapshot()
	defer snap.Close()
	return stateHash(snap, shardID)
}

// Close stops every goroutine the Host started, fails pending calls with
// ErrClosed, closes the NodeHost and then the Pebble database. It is
// idempotent: later calls return the first call's result.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.stop)
		h.cancel(ErrClosed)
		h.ops.Wait()
		h.wg.Wait()
		nhErr := closeNodeHost(h.nh)
		if err := h.db.Close(); err != nil {
			nhErr = errors.Join(nhErr, fmt.Errorf("graft: shards: closing state db: %w", err))
		}
		h.closeErr = nhErr
		if n := h.droppedEvents.Load(); n > 0 {
			h.log.Warn("leader events dropped", "count", n)
		}
		h.log.Info("host closed")
	})
	return h.closeErr
}

// closeNodeHost closes nh, returning a panic of its Close as an error.
// Dragonboat's NodeHost.Close panics when closing its LogDB fails, which it
// does for good once a raft log write has failed (Pebble's WAL error is
// sticky): seen after a write failed with ENOSPC (chaos scenario
// disk-full). Without Expert.FS that write has already ended the process;
// with it (Dragonboat's error injection mode, see dragonboatFS) the panic
// would otherwise end it here, on the caller's goroutine.
func closeNodeHost(nh *dragonboat.NodeHost) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graft: shards: closing nodehost: %v", r)
		}
	}()
	nh.Close()
	return nil
}

// sleep waits d, or returns early when ctx ends or the Host closes.
func (h *Host) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	case <-h.stop:
		return ErrClosed
	}
}

// ctxError converts an ended ctx into the error returned to callers: a
// deadline becomes ErrTimeout (also matching context.DeadlineExceeded), a
// cancellation is returned wrapped.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("graft: shards: %w", context.Cause(ctx))
}

// newBackoff returns the waits between retries of a call while its shard
// has no leader: from 1 ms doubling up to 50 ms.
func newBackoff() *backoff.Backoff {
	return &backoff.Backoff{Min: time.Millisecond, Max: 50 * time.Millisecond}
}

// leaderListener hands Dragonboat leader events to runLeaderEvents without
// ever blocking Dragonboat.
type leaderListener struct{ h *Host }

var _ raftio.IRaftEventListener = leaderListener{}

// LeaderUpdated queues the event, dropping it if the queue is full.
func (l leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	select {
	case l.h.events <- info:
	default:
		l.h.droppedEvents.Add(1)
	}
}

func (h *Host) runLeaderEvents() {
	for {
		select {
		case ev := <-h.events:
			h.cfg.OnLeaderChange(ev.ShardID, ev.LeaderID, ev.Term)
		case <-h.stop:
			return
		}
	}
}

// lastLogIndex returns the last index of shard's saved Raft log on this
// member, and whether it is known (the NodeHost is open and runs the
// shard).
func (h *Host) lastLogIndex(shardID uint64) (uint64, bool) {
	nh := h.live.Load()
	if nh == nil {
		return 0, false
	}
	r, err := nh.GetLogReader(shardID)
	if err != nil {
		return 0, false
	}
	_, last := r.GetRange()
	return last, true
}

// raftTerm returns the Raft term of this member's replica of shard as of
// its last leader update (0 before any), and whether the shard runs here.
func (h *Host) raftTerm(shardID uint64) (uint64, bool) {
	nh := h.live.Load()
	if nh == nil {
		return 0, false
	}
	_, term, _, err := nh.GetLeaderID(shardID)
	if err != nil {
		return 0, false
	}
	return term, true
}
