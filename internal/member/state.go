package member

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/gossip/crdt"
	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/eleven-am/graft/internal/statesync"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
)

// The member's entry in the cluster's CRDT state (gossip/crdt, spread by
// internal/statesync): its record, built from its parts at every publish
// tick (localRecord), and its counters, counted where the event happens.
//
// Counting: each event is counted once in the cluster, by the member whose
// replica proposed the command that recorded it. Every command proposed
// through a member's replica carries the replica's stamp
// (wf.Command.Proposer: member ID, replica ID and the member's
// incarnation, stamped by internal/route: by the member itself, or by the
// shard member a call was forwarded to, ApplyHere); every replica applies
// the command, and only the one with that stamp counts the changes it made
// (countChanges, on the apply goroutine, before the change is visible to
// reads and events):
//
//   - WorkflowsStarted: the start, at the member that proposed it (the
//     shard's leader for a start sent there, or the starting member); a
//     retried start that had committed changes nothing and is not counted;
//   - StepsExecuted, StepErrors: a step's outcome (complete, or fail of a
//     task), at the shard leader whose engine committed it, whichever
//     member ran the node code;
//   - WorkflowsCompleted, WorkflowsFailed, WorkflowsStopped: the change
//     that moved the workflow to that status (a step's outcome, a blocked
//     timeout, a stop), at the member that proposed the command.
//
// A replica that applies an entry again (after a restart) or for the first
// time later (a new replica catching up from the log) has another stamp,
// so a change is counted at most once; one the proposer's replica applied
// only after its member restarted is not counted.

// stateFile is the member's persisted entry: DataDir/member.json.
const stateFile = "member.json"

// maxStateFile bounds the persisted file read at start.
const maxStateFile = 1 << 20

// savedState is what stateFile holds: the incarnation of the member's last
// start, its counters by name, and the user's metadata.
type savedState struct {
	Incarnation uint64            `json:"incarnation"`
	Counters    map[string]uint64 `json:"counters,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func (s *savedState) counters() crdt.Counters {
	var c crdt.Counters
	for i := range c {
		c[i] = s.Counters[crdt.Counter(i).String()]
	}
	return c
}

func (s *savedState) setCounters(c crdt.Counters) {
	s.Counters = map[string]uint64{}
	for i, n := range c {
		if n > 0 {
			s.Counters[crdt.Counter(i).String()] = n
		}
	}
}

// loadState reads dir's stateFile; a missing file is a first start.
func loadState(dir string) (savedState, error) {
	var s savedState
	f, err := os.Open(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", stateFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", stateFile, err)
	}
	if len(b) > maxStateFile {
		return s, fmt.Errorf("%s is over %d bytes", filepath.Join(dir, stateFile), maxStateFile)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s is corrupt: %w", filepath.Join(dir, stateFile), err)
	}
	return s, nil
}

// saveState writes s to dir's stateFile atomically (temporary file, fsync,
// rename).
func saveState(dir string, s savedState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return cluster.WriteFileSync(filepath.Join(dir, stateFile), append(b, '\n'))
}

// openState loads the persisted entry, increments the incarnation and saves
// it at once (no two starts share one), and creates the member's Syncer.
func (m *Member) openState() error {
	saved, err := loadState(m.cfg.DataDir)
	if err != nil {
		return err
	}
	saved.Incarnation++
	if err := saveState(m.cfg.DataDir, saved); err != nil {
		return fmt.Errorf("recording the member's incarnation: %w", err)
	}
	m.stateMu.Lock()
	m.saved = saved
	m.stateMu.Unlock()
	m.mu.Lock()
	m.startedAt, m.runInc = time.Now(), saved.Incarnation
	m.mu.Unlock()
	sc := m.cfg.StateSync
	cfg := statesync.Config{
		Self: m.cfg.NodeID, Incarnation: saved.Incarnation, Counters: saved.counters(),
		Local: m.localRecord, MaxBroadcast: gossip.MaxUserEventSize,
		Persist: m.persistCounters, OnNodeTypes: m.remoteNodesChanged,
		PublishInterval: sc.PublishInterval, ExchangeInterval: sc.ExchangeInterval,
		TombstoneHorizon: sc.TombstoneHorizon, MaxReplyBytes: m.rpcConfig().MaxMessageBytes / 2,
		Seed:   uint64(time.Now().UnixNano()),
		Logger: m.log.With(logkeys.Component, "statesync"),
	}
	if m.cfg.Clustered {
		cfg.Broadcast, cfg.Exchange, cfg.Peers = m.broadcastState, m.exchangeState, m.statePeers
		cfg.Unreachable = m.unreachablePeers
	}
	s, err := statesync.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: member record: %w", errs.ErrInvalidConfig, err)
	}
	m.mu.Lock()
	m.sync = s
	m.mu.Unlock()
	return nil
}

// remoteNodesChanged tells the engine that the node types registered in
// the cluster changed: tasks parked for lack of their node may run now.
func (m *Member) remoteNodesChanged() {
	m.mu.Lock()
	e := m.engine
	m.mu.Unlock()
	if e != nil {
		e.NodesChanged()
	}
}

// syncer returns the member's Syncer, nil before Start.
func (m *Member) syncer() *statesync.Syncer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sync
}

// persistCounters saves the incarnation and counters with the metadata.
func (m *Member) persistCounters(inc uint64, c crdt.Counters) error {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	s := m.saved
	s.Incarnation = inc
	s.setCounters(c)
	if err := saveState(m.cfg.DataDir, s); err != nil {
		return err
	}
	m.saved = s
	return nil
}

// SetMetadata sets the user metadata key to value (an empty value removes
// the key) in the member's record, persists it and publishes it. The
// member must be running. It refuses (with an error naming the
// bound) a key or value out of crdt's bounds, or a record that would not
// fit MaxRecordSize, before changing anything.
func (m *Member) SetMetadata(key, value string) error {
	if _, err := m.running(); err != nil {
		return err
	}
	s := m.syncer()
	rec := m.localRecord()
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	md := maps.Clone(m.saved.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	if value == "" {
		delete(md, key)
	} else {
		md[key] = value
	}
	if key == "" {
		return fmt.Errorf("%w: the key is empty", errs.ErrInvalidMetadata)
	}
	rec.Metadata = md
	if err := rec.Validate(); err != nil {
		return fmt.Errorf("%w: key %q: %w", errs.ErrInvalidMetadata, quoteKey(key), err)
	}
	next := m.saved
	next.Metadata = md
	if err := saveState(m.cfg.DataDir, next); err != nil {
		return fmt.Errorf("saving member metadata: %w", err)
	}
	m.saved = next
	s.Refresh()
	return nil
}

func quoteKey(k string) string {
	if len(k) > 40 {
		return k[:40] + "..."
	}
	return k
}

// metadata returns a copy of the user metadata.
func (m *Member) metadata() map[string]string {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	return maps.Clone(m.saved.Metadata)
}

// localRecord is the member's record now.
func (m *Member) localRecord() crdt.MemberRecord {
	m.mu.Lock()
	e, h, started := m.engine, m.host, m.startedAt
	hosted := slices.Collect(maps.Keys(m.logics))
	m.mu.Unlock()
	rec := crdt.MemberRecord{
		NodeTypes: m.registry.Names(), WorkerCapacity: uint64(max(m.cfg.Engine.WorkerCount, 0)),
		SoftwareVersion: softwareVersion, StartedAt: started, DiskFull: m.ready.isFull(),
		Metadata: m.metadata(),
	}
	if e != nil {
		x, q := e.Load()
		rec.Executing, rec.Queued = uint64(x), uint64(q)
	}
	for _, s := range hosted {
		rec.ShardsHeld = append(rec.ShardsHeld, s)
		if h != nil && h.IsLeader(s) {
			rec.ShardsLed = append(rec.ShardsLed, s)
		}
	}
	return rec
}

// softwareVersion is Graft's module version as the build recorded it.
var softwareVersion = func() string {
	const path = "github.com/eleven-am/graft"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if bi.Main.Path == path && bi.Main.Version != "" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "(devel)"
}()

// broadcastState sends a state delta over gossip (none on a lone member).
func (m *Member) broadcastState(name string, payload []byte) error {
	g := m.net().Gossip()
	if g == nil {
		return nil
	}
	return g.Broadcast(name, payload)
}

// exchangeState runs one anti-entropy exchange with peer over the member
// RPC.
func (m *Member) exchangeState(ctx context.Context, peer string, req []byte) ([]byte, error) {
	n := m.net()
	addr := n.RPCAddrOf(peer)
	if addr == "" {
		addr = failedRPCAddr(n.Peers(), peer)
	}
	if addr == "" {
		return nil, fmt.Errorf("no RPC address known for member %q", peer)
	}
	return n.Call(ctx, addr, wire.MethodState, req)
}

// statePeers lists the other alive members of the cluster.
func (m *Member) statePeers() []string { return m.net().AlivePeers() }

// unreachablePeers lists the other members of the cluster that gossip sees
// failed: the Syncer tries them now and then, so a healed partition's
// sides exchange state before gossip sees them alive again.
func (m *Member) unreachablePeers() []string {
	var out []string
	for _, p := range m.net().Peers() {
		if p.Status == gossip.StatusFailed && p.ID != m.cfg.NodeID && p.RPCAddr != "" {
			out = append(out, p.ID)
		}
	}
	return out
}

// failedRPCAddr returns the RPC address of member id if peers lists it as
// failed, or "".
func failedRPCAddr(peers []cluster.Peer, id string) string {
	for _, p := range peers {
		if p.ID == id && p.Status == gossip.StatusFailed {
			return p.RPCAddr
		}
	}
	return ""
}

// onStateEvent passes a state delta broadcast by another member to the
// Syncer.
func (m *Member) onStateEvent(name string, payload []byte, from string) {
	if name != statesync.EventName {
		return
	}
	if s := m.syncer(); s != nil && !m.net().IsForeign(from) {
		s.HandleEvent(name, payload, from)
	}
}

// serveState answers another member's anti-entropy request.
func serveState(ctx context.Context, m *Member, _ rpcServing, req statesync.Request) ([]byte, error) {
	s := m.syncer()
	if s == nil {
		return nil, fmt.Errorf("%w: member %s has no cluster state yet", errs.ErrNotReady, m.cfg.NodeID)
	}
	peer, _ := m.callerID(ctx)
	if peer == "" {
		peer = m.pushSender(req)
	}
	return s.Serve(peer, req), nil
}

// pushSender is the member whose entry a request pushes: without TLS the
// caller is not authenticated by certificate, and the push names it.
func (m *Member) pushSender(req statesync.Request) string {
	if req.Push != nil {
		if ids := req.Push.IDs(); len(ids) == 1 {
			return ids[0]
		}
	}
	return ""
}

// proposerStamp is the wf.Command.Proposer of this member's replica of
// shard s in this run: member ID, replica ID and incarnation. A replica
// created later (replica IDs are never reused) or the same replica after a
// restart (which may apply again what it had applied) has another stamp,
// so it does not count the changes again.
func (m *Member) proposerStamp(s uint64) string {
	m.mu.Lock()
	h, inc := m.host, m.runInc
	m.mu.Unlock()
	var rid uint64
	if h != nil {
		rid, _ = h.ReplicaID(s)
	}
	return m.cfg.NodeID + "/" + strconv.FormatUint(rid, 10) + "/" + strconv.FormatUint(inc, 10)
}

// countChanges counts the changes of a committed batch of shard s whose
// command this replica proposed in this run (see the comment at the top of
// this file).
func (m *Member) countChanges(s uint64, changes []wf.Change) {
	sy := m.syncer()
	if sy == nil {
		return
	}
	stamp := ""
	for i := range changes {
		if changes[i].Proposer == "" {
			continue
		}
		if stamp == "" {
			stamp = m.proposerStamp(s)
		}
		if changes[i].Proposer != stamp {
			continue
		}
		for _, c := range changeCounts(&changes[i]) {
			sy.Count(c, 1)
		}
	}
}

// changeCounts returns the counters one change adds one to: its
// lifecycle transition, and the step outcome its history entry records (a
// step whose state could not be merged failed the workflow and is not a
// step executed, as in wf.Counters).
func changeCounts(ch *wf.Change) []crdt.Counter {
	var out []crdt.Counter
	switch ch.Kind {
	case wf.ChangeStarted:
		out = append(out, crdt.WorkflowsStarted)
	case wf.ChangeCompleted:
		out = append(out, crdt.WorkflowsCompleted)
	case wf.ChangeFailed:
		out = append(out, crdt.WorkflowsFailed)
	case wf.ChangeStopped:
		out = append(out, crdt.WorkflowsStopped)
	}
	if e := ch.Entry; e != nil {
		switch {
		case e.Error != "":
			out = append(out, crdt.StepErrors)
		case ch.Kind != wf.ChangeFailed:
			out = append(out, crdt.StepsExecuted)
		}
	}
	return out
}
