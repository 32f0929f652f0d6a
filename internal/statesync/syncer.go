package statesync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/eleven-am/graft/gossip/crdt"
)

// EventName is the Serf user event name of state deltas.
const EventName = "graft-state"

// Defaults for the zero fields of Config.
const (
	// DefaultPublishInterval is the least time between two broadcasts of
	// the member's own entry.
	DefaultPublishInterval = time.Second
	// DefaultExchangeInterval is the time between two anti-entropy
	// exchanges.
	DefaultExchangeInterval = time.Second
	// DefaultTombstoneHorizon is how long a tombstone is kept before it is
	// collected: Serf's TombstoneTimeout.
	DefaultTombstoneHorizon = 24 * time.Hour
	// DefaultPersistInterval is the least time between two saves of the
	// counters (each an fsync) while the Syncer runs; Stop saves at once.
	DefaultPersistInterval = 10 * time.Second
	// DefaultSyncTimeout is how long counts wait for the cluster's view of
	// the member's own entry before they are added anyway.
	DefaultSyncTimeout = 10 * time.Second
	// DefaultMaxReplyBytes bounds an exchange reply (crdt.State.Size of
	// the delta): under the member RPC's default message limit.
	DefaultMaxReplyBytes = 2 << 20
)

// maxLoggedPeers bounds the set of peers whose bad payloads were logged.
const maxLoggedPeers = 1024

// Config configures a Syncer. Zero durations and sizes mean their
// defaults; the functions may be nil where noted.
type Config struct {
	// Self is this member's ID. Required.
	Self string
	// Incarnation is this run's incarnation: persisted by the caller and
	// incremented on every start. At least 1.
	Incarnation uint64
	// Counters are the member's counters persisted by its previous run.
	Counters crdt.Counters
	// Local returns the member's current record. Required. It is called
	// from the Syncer's loop and from New, Refresh and Stop, without the
	// Syncer's lock; it must not call back into the Syncer.
	Local func() crdt.MemberRecord
	// Broadcast sends a Serf user event to every member (gossip.Node's
	// Broadcast). Nil means no broadcasts (a lone member).
	Broadcast func(name string, payload []byte) error
	// MaxBroadcast is the largest name plus payload Broadcast accepts
	// (gossip.MaxUserEventSize). Zero means 512.
	MaxBroadcast int
	// Exchange sends an encoded request to peer and returns its encoded
	// reply (the member RPC's wire.MethodState). Nil means no
	// anti-entropy.
	Exchange func(ctx context.Context, peer string, request []byte) ([]byte, error)
	// Peers lists the other alive members. Nil means none.
	Peers func() []string
	// Unreachable lists the members gossip sees failed (not left). One
	// exchange in four goes to one of them instead of an alive peer, as
	// memberlist gossips to dead members: when a partition heals, the two
	// sides' states meet at once instead of after gossip has merged their
	// views again (its rejoin loop and push-pulls take seconds). Nil means
	// none.
	Unreachable func() []string
	// OnNodeTypes, if set, is called from the loop (at most once per
	// publish or exchange tick) when the set of node types registered by
	// the members changed (a member registered one, joined or left).
	OnNodeTypes func()
	// Persist saves the incarnation and counters (atomically); it is
	// called from the loop when they changed, and from Stop. Nil means
	// nothing is saved.
	Persist func(incarnation uint64, counters crdt.Counters) error
	// PublishInterval, ExchangeInterval, PersistInterval,
	// TombstoneHorizon and SyncTimeout default to the Default* constants.
	PublishInterval  time.Duration
	ExchangeInterval time.Duration
	PersistInterval  time.Duration
	TombstoneHorizon time.Duration
	SyncTimeout      time.Duration
	// MaxReplyBytes bounds the delta one reply carries
	// (DefaultMaxReplyBytes).
	MaxReplyBytes int
	// Now is the Syncer's clock (tombstone times, intervals). Nil means
	// time.Now.
	Now func() time.Time
	// Seed seeds the choice of peers.
	Seed uint64
	// Logger receives the Syncer's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// Stats are a Syncer's counts since New.
type Stats struct {
	// Published counts broadcasts sent; TooLarge counts publish ticks
	// whose entry did not fit a user event (anti-entropy carries it).
	Published, TooLarge uint64
	// Exchanges counts exchanges that merged a reply; ExchangeErrors those
	// that failed in transport.
	Exchanges, ExchangeErrors uint64
	// Served counts requests answered.
	Served uint64
	// Dropped counts payloads from peers refused: undecodable, out of
	// bounds, or a push of another member's entry.
	Dropped uint64
}

// Syncer keeps this member's replica of the cluster state and spreads it.
// Its methods are safe for concurrent use.
type Syncer struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	state      *crdt.State
	inc        uint64
	synced     bool
	started    time.Time     // when Start ran, for SyncTimeout
	pending    crdt.Counters // counts held until synced
	lastRec    crdt.MemberRecord
	published  crdt.Version // own version last broadcast (or found too large)
	lastPub    time.Time
	persisted  persisted
	logged     map[string]bool // peers whose bad payload was logged
	stats      Stats
	gen        uint64               // bumped on every change of the state
	updated    map[string]time.Time // when each member's version last changed here
	rnd        *rand.Rand
	view       *View // decoded records, rebuilt when gen changed
	viewGen    uint64
	viewBuilt  time.Time
	nudge      chan struct{}
	nodeTypes  []string  // View().NodeTypes() when the loop last looked
	lastSave   time.Time // when the loop last called persist (the loop's own)
	persistErr bool      // the last Persist failed (logged once)
	stopped    bool      // Stop ran: nothing from peers is merged any more

	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
}

// persisted is what Persist saved last.
type persisted struct {
	inc      uint64
	counters crdt.Counters
}

// New returns a Syncer holding only this member's entry (its record from
// Local and its persisted counters), without goroutines.
func New(cfg Config) (*Syncer, error) {
	if cfg.Self == "" || cfg.Local == nil || cfg.Incarnation == 0 {
		return nil, errors.New("statesync: Self, Local and a positive Incarnation are required")
	}
	cfg.PublishInterval = cmp.Or(cfg.PublishInterval, DefaultPublishInterval)
	cfg.ExchangeInterval = cmp.Or(cfg.ExchangeInterval, DefaultExchangeInterval)
	cfg.PersistInterval = cmp.Or(cfg.PersistInterval, DefaultPersistInterval)
	cfg.TombstoneHorizon = cmp.Or(cfg.TombstoneHorizon, DefaultTombstoneHorizon)
	cfg.SyncTimeout = cmp.Or(cfg.SyncTimeout, DefaultSyncTimeout)
	cfg.MaxReplyBytes = cmp.Or(cfg.MaxReplyBytes, DefaultMaxReplyBytes)
	cfg.MaxBroadcast = cmp.Or(cfg.MaxBroadcast, 512)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Syncer{cfg: cfg, log: cfg.Logger, state: crdt.NewState(), inc: cfg.Incarnation,
		logged: map[string]bool{}, updated: map[string]time.Time{}, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		nudge: make(chan struct{}, 1), persisted: persisted{inc: cfg.Incarnation, counters: cfg.Counters}}
	rec := cfg.Local()
	if _, err := s.state.SetRecord(cfg.Self, s.inc, rec); err != nil {
		return nil, fmt.Errorf("statesync: %w", err)
	}
	s.lastRec = rec.Clone()
	s.updated[cfg.Self] = cfg.Now()
	for c, n := range cfg.Counters {
		if n > 0 {
			if _, err := s.state.Add(cfg.Self, s.inc, crdt.Counter(c), n); err != nil {
				return nil, fmt.Errorf("statesync: %w", err)
			}
		}
	}
	return s, nil
}

// Start runs the Syncer's loop until Stop or ctx ends. Calls after the
// first do nothing.
func (s *Syncer) Start(ctx context.Context) {
	s.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.cancel = cancel
		s.started = s.cfg.Now()
		s.mu.Unlock()
		s.wg.Go(func() { s.run(ctx) })
	})
}

// Stop ends the loop, stops merging what peers send (Serve still answers)
// and persists the counters a last time; Count still counts (see Save).
// Safe to call more than once, and without Start.
func (s *Syncer) Stop() {
	s.stopOnce.Do(func() {
		s.startOnce.Do(func() {}) // a later Start does nothing
		s.mu.Lock()
		cancel := s.cancel
		s.stopped = true // a leaving member must not refute its tombstone
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		s.wg.Wait()
		s.mu.Lock()
		s.foldPendingLocked()
		s.mu.Unlock()
		s.persist()
	})
}

func (s *Syncer) run(ctx context.Context) {
	pub := time.NewTicker(s.cfg.PublishInterval)
	defer pub.Stop()
	ex := time.NewTicker(s.cfg.ExchangeInterval)
	defer ex.Stop()
	s.exchange(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-pub.C:
			s.publish()
			if now := s.cfg.Now(); s.saveDue(now, s.lastSave) {
				s.lastSave = now
				s.persist()
			}
		case <-s.nudge:
			s.publish()
		case <-ex.C:
			s.exchange(ctx)
			s.collect()
		}
		s.checkNodeTypes()
	}
}

// checkNodeTypes calls OnNodeTypes if the members' node types changed
// since the loop last looked.
func (s *Syncer) checkNodeTypes() {
	if s.cfg.OnNodeTypes == nil {
		return
	}
	types := s.View().NodeTypes()
	if slices.Equal(types, s.nodeTypes) { // nodeTypes is the loop's own
		return
	}
	s.nodeTypes = types
	s.cfg.OnNodeTypes()
}

// Refresh asks the loop to read the member's record and publish it soon
// (within the publish interval's rate limit). It never blocks.
func (s *Syncer) Refresh() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// Incarnation returns the member's current incarnation.
func (s *Syncer) Incarnation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inc
}

// Count adds n to the member's own counter c: at once if the Syncer has
// merged the cluster's view of the member's entry, otherwise once it has.
func (s *Syncer) Count(c crdt.Counter, n uint64) {
	if n == 0 || int(c) >= crdt.NumCounters {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced {
		s.pending[c] += n
		return
	}
	s.addLocked(c, n)
}

func (s *Syncer) addLocked(c crdt.Counter, n uint64) {
	if _, err := s.state.Add(s.cfg.Self, s.inc, c, n); err != nil {
		if !s.refuteLocked() {
			s.log.Error("counting in the cluster state", "counter", c.String(), "error", err)
			return
		}
		if _, err := s.state.Add(s.cfg.Self, s.inc, c, n); err != nil {
			s.log.Error("counting in the cluster state", "counter", c.String(), "error", err)
			return
		}
	}
	s.changedLocked(s.cfg.Self)
}

// changedLocked notes that member's entry changed.
func (s *Syncer) changedLocked(member string) {
	s.gen++
	s.updated[member] = s.cfg.Now()
}

// markSyncedLocked ends the wait for the cluster's view of the member's
// entry and adds the counts held meanwhile.
func (s *Syncer) markSyncedLocked() {
	if s.synced {
		return
	}
	s.synced = true
	s.foldPendingLocked()
}

func (s *Syncer) foldPendingLocked() {
	for c, n := range s.pending {
		if n > 0 {
			s.addLocked(crdt.Counter(c), n)
		}
	}
	s.pending = crdt.Counters{}
}

// refuteLocked restarts the member's record at a higher incarnation when
// the state holds it tombstoned or at a higher incarnation than its own.
// It reports whether it did.
func (s *Syncer) refuteLocked() bool {
	self := s.cfg.Self
	next := s.inc
	if v := s.state.Version(self); v.Incarnation >= next {
		next = v.Incarnation
	}
	t, left := s.state.Left(self)
	if left && t.Observed.Incarnation >= next {
		next = t.Observed.Incarnation
	}
	if next == s.inc && !left {
		return false
	}
	next++
	if _, err := s.state.SetRecord(self, next, s.lastRec); err != nil {
		s.log.Error("restarting this member's record at a higher incarnation", "incarnation", next, "error", err)
		return false
	}
	s.log.Info("this member's entry was tombstoned or overtaken; restarted at a higher incarnation",
		"from", s.inc, "to", next)
	s.inc = next
	s.changedLocked(self)
	return true
}

// publish reads the member's record, stores it if it changed, and
// broadcasts the member's entry if shouldPublish says so.
func (s *Syncer) publish() {
	rec := s.cfg.Local()
	now := s.cfg.Now()
	s.mu.Lock()
	if !sameRecord(&rec, &s.lastRec) {
		if _, err := s.state.SetRecord(s.cfg.Self, s.inc, rec); err != nil {
			if !errors.Is(err, crdt.ErrStaleIncarnation) || !s.refuteLocked() {
				s.mu.Unlock()
				s.log.Warn("storing this member's record", "error", err)
				return
			}
			if _, err := s.state.SetRecord(s.cfg.Self, s.inc, rec); err != nil {
				s.mu.Unlock()
				s.log.Warn("storing this member's record", "error", err)
				return
			}
		}
		s.lastRec = rec.Clone()
		s.changedLocked(s.cfg.Self)
	}
	if !s.synced && now.Sub(s.started) >= s.cfg.SyncTimeout && !s.started.IsZero() {
		s.log.Info("no peer answered with this member's entry; counting from the persisted counters")
		s.markSyncedLocked()
	}
	cur := s.state.Version(s.cfg.Self)
	if !shouldPublish(cur, s.published, now, s.lastPub, s.cfg.PublishInterval) || s.cfg.Broadcast == nil {
		s.mu.Unlock()
		return
	}
	payload := s.state.Subset(s.cfg.Self).Encode()
	s.published, s.lastPub = cur, now
	fits := len(EventName)+len(payload) <= s.cfg.MaxBroadcast
	if !fits {
		s.stats.TooLarge++
	}
	s.mu.Unlock()
	if !fits {
		return
	}
	if err := s.cfg.Broadcast(EventName, payload); err != nil {
		s.log.Debug("broadcasting this member's state", "error", err)
		return
	}
	s.mu.Lock()
	s.stats.Published++
	s.mu.Unlock()
}

// shouldPublish decides whether to broadcast the member's entry now: it
// changed since the last broadcast (its version cur differs from
// published) and at least interval has passed since then (last).
func shouldPublish(cur, published crdt.Version, now, last time.Time, interval time.Duration) bool {
	return cur != published && (last.IsZero() || now.Sub(last) >= interval)
}

// saveDue reports whether the loop saves now: PersistInterval passed
// since the last save (last), or the incarnation changed since (a
// refutation must never be lost, or a restart could reuse it).
func (s *Syncer) saveDue(now, last time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(last) >= s.cfg.PersistInterval || s.inc != s.persisted.inc
}

// Save hands the incarnation and counters to Config.Persist now if they
// changed since the last save: after Stop, for counts made since.
func (s *Syncer) Save() { s.persist() }

// persist hands the incarnation and counters to Config.Persist if they
// changed since the last save.
func (s *Syncer) persist() {
	if s.cfg.Persist == nil {
		return
	}
	s.mu.Lock()
	p := persisted{inc: s.inc, counters: s.state.Counters(s.cfg.Self)}
	for c, n := range s.pending {
		p.counters[c] += n
	}
	same := p == s.persisted
	s.mu.Unlock()
	if same {
		return
	}
	err := s.cfg.Persist(p.inc, p.counters)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if !s.persistErr {
			s.log.Warn("saving this member's counters", "error", err)
		}
		s.persistErr = true
		return
	}
	s.persistErr = false
	s.persisted = p
}

// exchange runs one anti-entropy exchange with a random peer.
func (s *Syncer) exchange(ctx context.Context) {
	var peers, unreachable []string
	if s.cfg.Peers != nil {
		peers = slices.DeleteFunc(s.cfg.Peers(), func(p string) bool { return p == s.cfg.Self })
	}
	if s.cfg.Unreachable != nil {
		unreachable = slices.DeleteFunc(s.cfg.Unreachable(), func(p string) bool { return p == s.cfg.Self })
	}
	s.mu.Lock()
	if s.cfg.Exchange == nil || s.cfg.Peers == nil {
		s.markSyncedLocked() // a lone member: nobody to learn its entry from
		s.mu.Unlock()
		return
	}
	if len(peers) == 0 && len(unreachable) == 0 {
		// Peers may not be known yet: counts wait for a peer's view of
		// this member's entry, at most SyncTimeout.
		s.mu.Unlock()
		return
	}
	peer, dead := s.pickLocked(peers, unreachable)
	req := EncodeRequest(s.state.Digest(), s.state.Subset(s.cfg.Self))
	s.mu.Unlock()

	timeout := max(s.cfg.ExchangeInterval, 2*time.Second)
	if dead {
		// Most calls to a failed member fail; they must not hold up the
		// loop's publishing. A healed one answers well within this.
		timeout = unreachableTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := s.cfg.Exchange(ctx, peer, req)
	if err != nil {
		s.mu.Lock()
		s.stats.ExchangeErrors++
		s.mu.Unlock()
		s.log.Debug("state exchange failed", "peer", peer, "error", err)
		return
	}
	delta, err := crdt.Decode(reply)
	if err != nil {
		s.drop(peer, "state exchange reply", err)
		return
	}
	if s.merge(peer, delta, "state exchange reply") {
		s.mu.Lock()
		s.stats.Exchanges++
		s.markSyncedLocked()
		s.mu.Unlock()
	}
}

// pickLocked chooses the peer of the next exchange: an unreachable member
// (dead is true) one time in four, or whenever no peer is alive; otherwise
// an alive one, uniformly.
func (s *Syncer) pickLocked(peers, unreachable []string) (peer string, dead bool) {
	if len(unreachable) > 0 && (len(peers) == 0 || s.rnd.IntN(4) == 0) {
		return unreachable[s.rnd.IntN(len(unreachable))], true
	}
	return peers[s.rnd.IntN(len(peers))], false
}

// unreachableTimeout bounds an exchange with a member gossip sees failed.
const unreachableTimeout = 500 * time.Millisecond

// Serve answers a decoded exchange request from peer: it merges the
// pushed entry (if it is the sender's) and returns the encoded delta the
// sender lacks.
func (s *Syncer) Serve(peer string, req Request) []byte {
	if req.Push != nil && req.Push.Len() > 0 {
		if ids := req.Push.IDs(); len(ids) != 1 || ids[0] != peer {
			s.drop(peer, "state exchange request", fmt.Errorf("pushes the entry of %q", ids))
		} else {
			s.merge(peer, req.Push, "state exchange request")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Served++
	return s.state.DeltaFor(req.Digest, s.cfg.MaxReplyBytes).Encode()
}

// HandleEvent receives a Serf user event (gossip.Node.OnUserEvent): a
// delta broadcast by member from. Other events are ignored.
func (s *Syncer) HandleEvent(name string, payload []byte, from string) {
	if name != EventName || from == s.cfg.Self {
		return
	}
	delta, err := crdt.Decode(payload)
	if err != nil {
		s.drop(from, "state event", err)
		return
	}
	if ids := delta.IDs(); len(ids) != 1 || ids[0] != from {
		s.drop(from, "state event", fmt.Errorf("carries the entries of %q", ids))
		return
	}
	s.merge(from, delta, "state event")
}

// merge folds delta from peer into the state, refuting a tombstone or
// higher incarnation of this member. It reports whether the merge was
// accepted.
func (s *Syncer) merge(peer string, delta *crdt.State, what string) bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	ids := delta.IDs()
	before := make([]crdt.Version, len(ids))
	for i, id := range ids {
		before[i] = s.state.Version(id)
	}
	if err := s.state.Merge(delta); err != nil {
		s.mu.Unlock()
		s.drop(peer, what, err)
		return false
	}
	s.gen++
	for i, id := range ids {
		if s.state.Version(id) != before[i] {
			s.updated[id] = s.cfg.Now()
		}
	}
	if !s.state.Present(s.cfg.Self) || s.state.Version(s.cfg.Self).Incarnation > s.inc {
		s.refuteLocked()
	}
	s.mu.Unlock()
	return true
}

// drop counts a refused payload and logs the first from each peer.
func (s *Syncer) drop(peer, what string, err error) {
	s.mu.Lock()
	s.stats.Dropped++
	first := !s.logged[peer] && len(s.logged) < maxLoggedPeers
	if first {
		s.logged[peer] = true
	}
	s.mu.Unlock()
	if first {
		s.log.Warn("dropping a malformed cluster state payload (logged once per peer)", "peer", peer, "payload", what, "error", err)
	}
}

// Left tombstones member, which gossip reports as left or reaped. This
// member itself, and members the state does not hold, are ignored.
func (s *Syncer) Left(member string) {
	if member == s.cfg.Self {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.state.Present(member) {
		return
	}
	if _, err := s.state.Leave(member, s.cfg.Now()); err != nil {
		s.log.Warn("tombstoning a member that left", "peer", member, "error", err)
		return
	}
	s.changedLocked(member)
}

// collect removes tombstones older than the horizon.
func (s *Syncer) collect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gone := s.state.Collect(s.cfg.Now(), s.cfg.TombstoneHorizon); len(gone) > 0 {
		s.gen++
		for _, id := range gone {
			delete(s.updated, id)
		}
		s.log.Debug("collected the tombstones of members that left", "members", gone)
	}
}

// Snapshot returns a copy of the state.
func (s *Syncer) Snapshot() *crdt.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Clone()
}

// Totals returns the cluster's totals of every counter as this member
// sees them now (crdt.State.Total), this member's counts not yet merged
// included.
func (s *Syncer) Totals() crdt.Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t crdt.Counters
	for c := range t {
		t[c] = s.state.Total(crdt.Counter(c)) + s.pending[c]
	}
	return t
}

// Own returns this member's counters (its counts not yet merged
// included) and the version of its entry, as they are now.
func (s *Syncer) Own() (crdt.Counters, crdt.Version) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.state.Counters(s.cfg.Self)
	for i, n := range s.pending {
		c[i] += n
	}
	return c, s.state.Version(s.cfg.Self)
}

// Stats returns the Syncer's counts.
func (s *Syncer) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// sameRecord reports whether a and b are the same record (list order and
// duplicates aside).
func sameRecord(a, b *crdt.MemberRecord) bool {
	norm := func(r *crdt.MemberRecord) crdt.MemberRecord {
		c := r.Clone()
		slices.Sort(c.NodeTypes)
		c.NodeTypes = slices.Compact(c.NodeTypes)
		slices.Sort(c.ShardsHeld)
		c.ShardsHeld = slices.Compact(c.ShardsHeld)
		slices.Sort(c.ShardsLed)
		c.ShardsLed = slices.Compact(c.ShardsLed)
		return c
	}
	x, y := norm(a), norm(b)
	return slices.Equal(x.NodeTypes, y.NodeTypes) && slices.Equal(x.ShardsHeld, y.ShardsHeld) &&
		slices.Equal(x.ShardsLed, y.ShardsLed) && maps.Equal(x.Metadata, y.Metadata) &&
		x.WorkerCapacity == y.WorkerCapacity && x.Executing == y.Executing && x.Queued == y.Queued &&
		x.SoftwareVersion == y.SoftwareVersion && x.StartedAt.Equal(y.StartedAt) && x.DiskFull == y.DiskFull
}
