package member

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/backoff"
	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/disk"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/statesync"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/shards"
	dbconfig "github.com/lni/dragonboat/v4/config"
)

// lifecycle states of a Member.
const (
	stateNew = iota
	stateStarting
	stateRunning
	stateStopped
)

// Watcher is told which workflows changed, for status subscriptions.
// Watching is called on every committed batch and must be cheap; Poke must
// never block (both run on the shards' apply goroutines).
type Watcher interface {
	// Watching reports whether any workflow is watched at all.
	Watching() bool
	// Poke hints the watchers of workflow id that it may have changed.
	Poke(id string)
}

// Member is one Graft member: it stores workflows in its shards, runs their
// steps, and delivers their events. graft.Manager is its facade. All
// methods are safe for concurrent use.
type Member struct {
	cfg      Config
	log      *slog.Logger
	registry *executor.Registry
	bus      *events.Bus
	watch    Watcher

	mu        sync.Mutex
	state     int
	host      *shards.Host
	engine    *engine.Engine
	logics    map[uint64]*wf.Logic
	commands  map[string]CommandHandler
	done      chan struct{}
	quit      chan struct{}  // closed when Stop begins: a Start in progress gives up
	starting  sync.WaitGroup // a Start in progress, which Stop waits for
	stopErr   error
	stopOnce  sync.Once
	leaderMu  sync.Mutex            // serialises leadership hand-offs to the engine
	leaders   map[uint64]leaderView // under leaderMu: each shard's leader as last applied
	incarnate string
	nshards   uint64
	disk      *disk.Guard
	cluster   *cluster.Cluster // nil on a lone member, and before Start (see net)
	alone     network          // lone{NodeID}, boxed once: net's answer without a cluster
	auth      *peerAuth        // nil without Config.TLS
	opGuard   *operator.Guard  // who may call operator methods, from Start on
	loneRPC   *rpc.Server      // a lone member's RPC port for operators; nil if none

	ready readinessState // what Readiness reports
	regMu sync.Mutex     // serialises RegisterNode's check of the entry

	remoteLoad remoteLoad // steps this member runs on others now

	// sync keeps the member's replica of the cluster's CRDT state (nil
	// before Start); startedAt is when Start began (under mu).
	sync      *statesync.Syncer
	startedAt time.Time
	runInc    uint64 // the incarnation of this run (in proposer stamps)
	// stateMu guards saved, the persisted entry (DataDir/member.json).
	stateMu sync.Mutex
	saved   savedState
}

// New returns a member for cfg (copied), not started. watch, if not nil,
// is told of committed workflow changes.
func New(cfg Config, watch Watcher) *Member {
	log := cfg.Logger.With(logkeys.Member, cfg.NodeID)
	return &Member{
		cfg:      cfg,
		log:      log,
		registry: executor.NewRegistry(),
		bus:      events.NewBus(events.Options{Logger: log, BufferSize: cfg.EventBufferSize}),
		watch:    watch,
		logics:   map[uint64]*wf.Logic{},
		leaders:  map[uint64]leaderView{},
		commands: map[string]CommandHandler{},
		done:     make(chan struct{}),
		quit:     make(chan struct{}),
		alone:    lone{cfg.NodeID},
	}
}

// Bus is the member's event bus.
func (m *Member) Bus() *events.Bus { return m.bus }

// Registry holds the nodes this member runs.
func (m *Member) Registry() *executor.Registry { return m.registry }

// NodeID is the member's node ID.
func (m *Member) NodeID() string { return m.cfg.NodeID }

// Stopped reports whether Stop was called.
func (m *Member) Stopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateStopped
}

// RegisterNode registers a node (see graft.Manager.RegisterNode) and tells
// the engine and the other members.
func (m *Member) RegisterNode(node any) error {
	m.regMu.Lock()
	defer m.regMu.Unlock()
	before := m.registry.Names()
	if err := m.registry.Register(node); err != nil {
		return err
	}
	// The member's entry in the cluster state carries the names, and
	// gossip/crdt bounds it (names, their count, 64 KiB in all).
	rec := m.localRecord()
	if err := rec.Validate(); err != nil {
		for _, name := range m.registry.Names() {
			if !slices.Contains(before, name) {
				_ = m.registry.Unregister(name)
			}
		}
		return fmt.Errorf("%w: the member's node types would not fit its entry in the cluster state: %w", executor.ErrInvalidNode, err)
	}
	m.nodesChanged()
	return nil
}

// nodesChanged tells the engine and, through the cluster state, the
// other members.
func (m *Member) nodesChanged() {
	m.mu.Lock()
	e, s := m.engine, m.sync
	m.mu.Unlock()
	if e != nil {
		e.NodesChanged()
	}
	if s != nil {
		s.Refresh()
	}
}

// memberGone tombstones a member gossip reports as left or reaped.
func (m *Member) memberGone(id string) {
	if s := m.syncer(); s != nil {
		s.Left(id)
	}
}

// UnregisterNode removes a node and tells the engine and the other members.
func (m *Member) UnregisterNode(name string) error {
	if err := m.registry.Unregister(name); err != nil {
		return err
	}
	m.nodesChanged()
	return nil
}

// Start opens the member's storage under DataDir, starts its shards, its
// engine and, in a cluster, its gossip and member RPC on grpcPort (a lone
// member given a grpcPort above 0 serves the operator methods there), and
// returns once a workflow can be started (see graft.Manager.Start).
func (m *Member) Start(ctx context.Context, grpcPort int) error {
	m.mu.Lock()
	switch m.state {
	case stateStopped:
		m.mu.Unlock()
		return errs.ErrClosed
	case stateStarting, stateRunning:
		m.mu.Unlock()
		return errs.ErrAlreadyStarted
	}
	m.state = stateStarting
	m.ready.set(phaseStarting, false)
	m.starting.Add(1)
	m.mu.Unlock()
	defer m.starting.Done()

	// Stop ends a Start in progress (waiting for the cluster to form, say).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := m.start(ctx, grpcPort)
	m.mu.Lock()
	if err != nil {
		stopped := m.state == stateStopped
		if !stopped {
			m.state = stateNew
			m.ready.set(phaseStopped, false)
		}
		m.mu.Unlock()
		m.teardown()
		if stopped {
			return fmt.Errorf("%w: stopped while starting: %w", errs.ErrClosed, err)
		}
		return err
	}
	if m.state == stateStopped {
		// Stop began as start finished: Stop tears down what started.
		m.mu.Unlock()
		return errs.ErrClosed
	}
	m.state = stateRunning
	m.ready.set(phaseReady, false)
	m.mu.Unlock()
	return nil
}

func (m *Member) start(ctx context.Context, grpcPort int) error {
	if m.cfg.Invalid != nil {
		return m.cfg.Invalid
	}
	if grpcPort < 0 || grpcPort > 65535 {
		return fmt.Errorf("%w: grpcPort %d is not between 0 and 65535", errs.ErrInvalidConfig, grpcPort)
	}
	if err := os.MkdirAll(m.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("creating DataDir: %w", err)
	}
	shardCount, err := m.loadShardCount()
	if err != nil {
		return err
	}
	auth, err := m.loadTLS()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.auth = auth
	m.opGuard = m.newOperatorGuard(auth)
	m.mu.Unlock()
	m.mu.Lock()
	m.nshards = shardCount
	m.mu.Unlock()
	storageFS := m.cfg.Expert.FS // nil: Dragonboat's and Pebble's own default
	if floor := m.cfg.Expert.MinFreeDiskBytes; floor > 0 {
		g := disk.New(m.cfg.DataDir, uint64(floor), m.freeBytes(), m.ready.setFull, m.log)
		// The emergency reserve (see disk.Reserve): half the floor, at most
		// disk.MaxReserve, under everything the member stores, released by
		// the first write that finds the disk full.
		inner := cmp.Or[vfs.FS](m.cfg.Expert.FS, vfs.Default)
		size := min(uint64(floor)/2, disk.MaxReserve)
		g.SetReserve(disk.NewReserve(inner, filepath.Join(m.cfg.DataDir, disk.ReserveName), size, m.log))
		storageFS = disk.NoSpaceFS(inner, g.DiskFull, m.storageFailed)
		m.mu.Lock()
		m.disk = g
		m.mu.Unlock()
		g.StartMonitor(disk.MonitorInterval)
	} else if storageFS != nil {
		storageFS = disk.NoSpaceFS(storageFS, nil, m.storageFailed)
	}
	if err := m.openState(); err != nil {
		return err
	}
	inc := make([]byte, 8)
	_, _ = rand.Read(inc)
	m.incarnate = hex.EncodeToString(inc)

	ec := m.cfg.Engine
	ec.MemberID, ec.Incarnation, ec.Registry = m.cfg.NodeID, m.incarnate, m.registry
	ec.Store, ec.Events, ec.Logger, ec.Alive, ec.Remote, ec.Clock = (*store)(m), m.bus, m.log, m.memberAlive, remote{m}, engine.SystemClock{}
	eng, err := engine.New(ec)
	if err != nil {
		return fmt.Errorf("%w: %w", errs.ErrInvalidConfig, err)
	}
	m.mu.Lock()
	m.engine = eng
	m.mu.Unlock()

	host, err := shards.NewHost(shards.Config{
		NodeID: m.cfg.NodeID, RaftAddress: m.cfg.BindAddr, DataDir: m.cfg.DataDir,
		RTTMillisecond: m.cfg.Expert.RTTMillisecond, SnapshotEntries: m.cfg.Expert.SnapshotEntries,
		CompactionOverhead: m.cfg.Expert.CompactionOverhead,
		Logger:             m.cfg.Logger, // shards adds graft.node itself
		NewLogic:           m.newLogic,
		OnLeaderChange:     m.onLeaderChange,
		TransportFactory:   m.raftTransport(),
		TLS:                auth.raft(m.bindRaftPeer),
		FS:                 storageFS,
		Directory:          raftDirectory{m},
	})
	if err != nil {
		return fmt.Errorf("opening storage: %w", err)
	}
	m.mu.Lock()
	m.host = host
	m.mu.Unlock()

	if m.cfg.Clustered {
		if err := m.startCluster(ctx, grpcPort, shardCount); err != nil {
			return err
		}
		m.syncer().Start(context.Background())
		return nil
	}
	members := map[uint64]string{1: host.NodeHostID()}
	for s := uint64(1); s <= shardCount; s++ {
		if err := host.StartShard(s, 1, members, false); err != nil {
			return fmt.Errorf("starting shard %d: %w", s, err)
		}
	}
	for s := uint64(1); s <= shardCount; s++ {
		if err := m.awaitLeader(ctx, s); err != nil {
			return err
		}
	}
	if grpcPort > 0 {
		if err := m.serveOperators(grpcPort); err != nil {
			return err
		}
	}
	m.syncer().Start(context.Background())
	m.log.Info("graft member started", "data_dir", m.cfg.DataDir, "raft_addr", m.cfg.BindAddr, "shards", shardCount)
	return nil
}

// loadShardCount returns the shard count recorded in DataDir, recording the
// configured one on first start. A different configured count is an error:
// workflow IDs would map to other shards.
func (m *Member) loadShardCount() (uint64, error) {
	path := filepath.Join(m.cfg.DataDir, "shards")
	want := cmp.Or(m.cfg.Cluster.ShardCount, m.cfg.Cluster.DefaultShardCount)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := cluster.WriteFileSync(path, fmt.Appendf(nil, "%d\n", want)); err != nil {
			return 0, fmt.Errorf("recording shard count: %w", err)
		}
		return want, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading shard count: %w", err)
	}
	var have uint64
	if _, err := fmt.Sscanf(string(b), "%d", &have); err != nil || have == 0 {
		return 0, fmt.Errorf("%s is corrupt: %q", path, b)
	}
	if have != want && m.cfg.Cluster.ShardCount != 0 {
		return 0, fmt.Errorf("%w: Cluster.ShardCount (%d) differs from the %d shards DataDir was created with",
			errs.ErrInvalidConfig, want, have)
	}
	return have, nil
}

// awaitLeader waits until shard s has a leader and, if it is this member,
// the executor has taken the shard over.
func (m *Member) awaitLeader(ctx context.Context, s uint64) error {
	for {
		if leader, term, ok := m.host.Leader(s); ok && leader != 0 {
			_, err := m.observeLeader(s, fromRead, leader, term)
			return err
		}
		if err := backoff.Sleep(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("%w: waiting for shard %d to elect a leader: %w", errs.ErrTimeout, s, err)
		}
	}
}

func (m *Member) newLogic(shardID uint64) shards.Logic {
	l := wf.NewLogic(shardID, m.onChanges)
	l.ListExecuted(func() bool { return m.leads(shardID) }) // completion events fire on the leader
	m.mu.Lock()
	m.logics[shardID] = l
	m.mu.Unlock()
	return l
}

// onLeaderChange hands a shard to the executor, or takes it away, as its
// leader changes, and publishes the change. An event older than what the
// member already applied (see leaderView) changes nothing.
func (m *Member) onLeaderChange(shardID, leaderReplicaID, term uint64) {
	current, err := m.observeLeader(shardID, fromEvent, leaderReplicaID, term)
	if err != nil {
		m.log.Error("taking over shard", logkeys.Shard, shardID, "error", err)
	}
	if !current {
		m.log.Debug("ignoring a late leader event", logkeys.Shard, shardID, "leader", leaderReplicaID, "term", term)
		return
	}
	mine, _ := m.replicaOf(shardID)
	m.bus.Publish(&events.ShardLeaderChangedEvent{ShardID: shardID, LeaderNodeID: m.replicaMember(shardID, leaderReplicaID, mine),
		LeaderReplicaID: leaderReplicaID, Term: term, ChangedAt: time.Now()})
}

// replicaMember returns the ID of the member holding replica rid of shard
// s (mine is this member's), or "" if it is 0 or unknown here.
func (m *Member) replicaMember(s, rid, mine uint64) string {
	if rid == 0 {
		return ""
	}
	if rid == mine {
		return m.cfg.NodeID
	}
	m.mu.Lock()
	h, n := m.host, m.netLocked()
	m.mu.Unlock()
	if h == nil {
		return ""
	}
	target, ok := h.ReplicaTarget(s, rid)
	if !ok {
		return ""
	}
	return n.MemberByTarget(target)
}

// letGo makes the engine let go of shard s, whose replica here is being
// dropped.
func (m *Member) letGo(s uint64) error {
	m.leaderMu.Lock()
	defer m.leaderMu.Unlock()
	m.mu.Lock()
	e := m.engine
	m.mu.Unlock()
	if e == nil {
		return nil
	}
	return e.SetLeader(s, false)
}

// observeLeader applies one observation of shard's leader to the member's
// view of it and, if the observation is current, tells the engine whether
// this member leads the shard. It reports whether it was current, and the
// engine's error taking the shard over.
func (m *Member) observeLeader(shard uint64, src leaderSource, leader, term uint64) (bool, error) {
	m.leaderMu.Lock()
	defer m.leaderMu.Unlock()
	v, current := m.leaders[shard].next(src, term, leader)
	if !current {
		return false, nil
	}
	m.leaders[shard] = v
	m.mu.Lock()
	e := m.engine
	m.mu.Unlock()
	if e == nil {
		return true, nil
	}
	mine, _ := m.replicaOf(shard)
	return true, e.SetLeader(shard, v.leader != 0 && v.leader == mine)
}

// syncLeader tells the executor whether this member leads shard s now,
// which heals a leader event that arrived before the replica was recorded
// or was dropped.
func (m *Member) syncLeader(s uint64) {
	m.mu.Lock()
	h := m.host
	m.mu.Unlock()
	if h == nil {
		return
	}
	if leader, term, ok := h.Leader(s); ok {
		if _, err := m.observeLeader(s, fromRead, leader, term); err != nil {
			m.log.Error("taking over shard", logkeys.Shard, s, "error", err)
		}
	}
}

// onChanges receives each committed batch of workflow changes.
func (m *Member) onChanges(shardID uint64, changes []wf.Change) {
	m.mu.Lock()
	e := m.engine
	m.mu.Unlock()
	if e != nil {
		e.OnChanges(shardID, changes)
	}
	m.countChanges(shardID, changes)
	if m.watch != nil && m.watch.Watching() {
		for i := range changes {
			m.watch.Poke(changes[i].View.ID)
		}
	}
	if !m.leads(shardID) {
		return // the shard's leader publishes the lifecycle events
	}
	n := m.net()
	for i := range changes {
		ev := workflowEvent(&changes[i], m.cfg.NodeID)
		if ev == nil {
			continue
		}
		m.bus.Publish(ev)
		n.SendEvent(&changes[i])
	}
}

// Stop stops the member gracefully (see graft.Manager.Stop); stop, if not
// nil, runs once Start has given up and before the member's parts stop
// (the facade ends its subscriptions there). Safe to call more than once;
// later calls return the first call's result.
func (m *Member) Stop(stop func()) error {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.state = stateStopped
		m.ready.set(phaseStopped, true)
		m.mu.Unlock()
		close(m.quit)
		m.starting.Wait()
		if stop != nil {
			stop()
		}
		m.stopErr = m.teardown()
		close(m.done)
	})
	<-m.done
	return m.stopErr
}

// teardown stops the engine, the storage and the event bus, in that order,
// keeping the first error.
func (m *Member) teardown() error {
	// A lone member's operator port closes first: no call comes in while
	// the rest stops.
	m.stopOperators()
	m.mu.Lock()
	e, h := m.engine, m.host
	m.mu.Unlock()
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	// The engine drains with storage still open, so the results of steps
	// that finish during the drain are committed.
	if e != nil {
		keep(e.Stop(context.Background()))
	}
	m.mu.Lock()
	m.engine = nil
	n, s := m.netLocked(), m.sync
	m.mu.Unlock()
	// The Syncer stops after the engine and before the member leaves
	// gossip (it would otherwise refute its own tombstone); once storage
	// is closed it saves the counts of the last changes applied meanwhile.
	if s != nil {
		s.Stop()
	}
	keep(n.Close(h))
	if h != nil {
		keep(h.Close())
	}
	if s != nil {
		s.Save()
	}
	m.mu.Lock()
	m.host = nil
	m.cluster = nil
	guard := m.disk
	stopped := m.state == stateStopped
	m.mu.Unlock()
	guard.StopMonitor()
	m.ready.setFull(false)
	if stopped {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Engine.DrainTimeout)
		keep(m.bus.Close(ctx))
		cancel()
	}
	return first
}

// Done is closed when Stop has finished.
func (m *Member) Done() <-chan struct{} { return m.done }

// running returns the storage and engine, or an error if the Member is not
// running.
func (m *Member) running() (*shards.Host, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateRunning:
		return m.host, nil
	case stateStopped:
		if err := m.ready.failure(); err != nil {
			return nil, fmt.Errorf("%w: the member stopped after its storage failed: %w", errs.ErrClosed, err)
		}
		return nil, errs.ErrClosed
	default:
		return nil, errs.ErrNotStarted
	}
}

// storageFailed is told of a storage write or fsync that failed for good
// (disk.NoSpaceFS's onFailed). Both stores treat that as fatal: Pebble
// panics on its next commit after a failed WAL write, and Dragonboat's step
// worker stops for good (under a wrapped file system it runs in its error
// injection mode, see shards.Config.FS), which would leave every replica
// here frozen while gossip still shows the member alive. So the member
// stops, as a crash would stop it, but saying why: it reports
// "storage-failed" (neither live nor ready, the failure named), the failure
// is logged once, and Stop leaves the cluster, whose other members take
// over its shards. What was committed before the failure is on disk; a
// restart of the process on the repaired disk resumes it.
func (m *Member) storageFailed(op, path string, err error) {
	if !m.ready.setFailed(fmt.Errorf("%s %s: %w", op, path, err)) {
		return
	}
	m.log.Error("storage failed: the member stops; restart the process once the disk is repaired",
		"op", op, "path", path, "err", err)
	// Not on this goroutine: it is a store's, mid-write, and Stop waits
	// for the stores to close. Stop owns the goroutine's whole life.
	go func() { _ = m.Stop(nil) }()
}

// Storage returns the member's shards while they are open (for tests
// comparing replicas).
func (m *Member) Storage() (*shards.Host, error) { return m.storage() }

// storage returns the member's shards while they are open, from Start
// until Stop closes them: membership requests of other members are served
// while this member is still starting.
func (m *Member) storage() (*shards.Host, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.host == nil {
		return nil, fmt.Errorf("%w: storage is not open", errs.ErrNotReady)
	}
	return m.host, nil
}

// memberAlive reports whether member's run in incarnation may still be
// running (engine.Config.Alive): gossip sees the member alive, and the
// incarnation it publishes, where it publishes one, is that one. A member
// killed and restarted within a sweep is alive, but not in the run whose
// steps its claims name. Always true on a lone member.
func (m *Member) memberAlive(member, incarnation string) bool {
	n := m.net()
	return runAlive(n.Alive(member), n.Incarnation(member), incarnation)
}

// runAlive decides whether a run of a member, in incarnation claimed, may
// still be running, given whether gossip sees the member alive and the
// incarnation it publishes now (current; "" when it publishes none, as an
// older member does, or is not listed): only if alive and not restarted
// since.
func runAlive(alive bool, current, claimed string) bool {
	return alive && (current == "" || claimed == "" || current == claimed)
}

// endpoint is this member's name on Expert.Network: BindAddr's host.
func (m *Member) endpoint() string {
	host, _, _ := net.SplitHostPort(m.cfg.BindAddr)
	return host
}

// raftDirectory is the shards.Directory of the member's Raft layer: its
// network's view of the other members' NodeHost IDs.
type raftDirectory struct{ m *Member }

// RaftAddress returns the Raft address of the member whose NodeHost ID is
// nodeHostID, and whether it is known.
func (d raftDirectory) RaftAddress(nodeHostID string) (string, bool) {
	return d.m.net().RaftAddress(nodeHostID)
}

// raftTransport is Expert.Network's Raft transport, or nil for TCP.
func (m *Member) raftTransport() dbconfig.TransportFactory {
	if m.cfg.Expert.Network == nil {
		return nil
	}
	return m.cfg.Expert.Network.RaftTransportFactory(m.endpoint())
}

// leads reports whether this member leads shard s.
func (m *Member) leads(s uint64) bool {
	m.mu.Lock()
	h := m.host
	m.mu.Unlock()
	return h != nil && h.IsLeader(s)
}

// ShardCount is the member's shard count (1 before Start).
func (m *Member) ShardCount() uint64 { return m.shardCount() }

func (m *Member) shardCount() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.nshards, 1)
}

// Logger is the member's logger.
func (m *Member) Logger() *slog.Logger { return m.log }
