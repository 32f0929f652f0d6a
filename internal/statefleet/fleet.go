// Package statefleet runs a fleet of gossip+CRDT members in one process,
// without shards, to measure how the cluster state (internal/statesync
// over gossip) behaves at fleet scale: the fleet-scale test and
// graftbench's gossip-N scenario use it.
//
// Each member is a real gossip.Node (Serf over memberlist) and a real
// statesync.Syncer, as in a Graft member: the Syncer's deltas go out as
// the Node's Serf user events (Node.Broadcast) and come in through
// Node.OnUserEvent, and its peers are the Node's alive members. All
// Nodes run on one chaos.Network (in-memory packets and streams, no
// sockets), so partitions are exact and cheap. The one thing replaced is
// the member RPC hop of the anti-entropy exchange: Config.Exchange calls
// the chosen peer's Syncer in-process, decoding the request with
// statesync.DecodeRequest and answering with Syncer.Serve, the same
// decoder and handler the member RPC method (wire.MethodState) runs, and
// it fails when the chaos.Network cuts the two members apart.
//
// Bytes sent are counted per member: gossip bytes at the transport
// (every memberlist packet and stream write the chaos.Network delivers)
// and exchange bytes (the encoded request a member sends and the encoded
// reply it answers with).
package statefleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft/chaos"
	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/gossip/crdt"
	"github.com/eleven-am/graft/internal/statesync"
)

// Config configures a Fleet. Zero fields mean their defaults.
type Config struct {
	// Members is the number of members. At least 2.
	Members int
	// Seeds is how many of the first members the others join (gossip
	// Static discovery). Zero means 3 (or fewer members).
	Seeds int
	// Seed seeds the chaos.Network and the Syncers' choice of peers.
	Seed int64
	// PublishInterval and ExchangeInterval are the Syncers'; zero means
	// statesync's defaults (1 s and 2 s).
	PublishInterval, ExchangeInterval time.Duration
	// Late is how many of the last members Start creates but does not
	// start: StartLate starts them, one at a time, into the formed
	// fleet. Less than Members.
	Late int
	// Logger receives the members' logs (Nodes and Syncers). Nil means
	// they are discarded.
	Logger *slog.Logger
}

// Fleet is a running fleet of members. Its methods are safe for
// concurrent use; Stop ends it.
type Fleet struct {
	cfg     Config
	net     *chaos.Network
	members []*Member
	byID    map[string]*Member
	stopped atomic.Bool
	mu      sync.Mutex
	next    int // members[next:] have not started
	// began is when the first member started, started when the last
	// one's Start returned.
	began, started time.Time
}

// Member is one member of a Fleet: a gossip.Node and a statesync.Syncer.
type Member struct {
	// ID is the member's node ID (gossip and cluster state).
	ID   string
	node *gossip.Node
	sync *statesync.Syncer

	mu  sync.Mutex
	rec crdt.MemberRecord // what Local returns

	running       atomic.Bool
	gossipBytes   atomic.Uint64
	exchangeBytes atomic.Uint64
	events        atomic.Uint64 // state events received from others
}

// Traffic is the bytes members sent.
type Traffic struct {
	// Gossip counts memberlist packets and stream writes (Serf
	// membership, user events, push-pulls), at the transport.
	Gossip uint64
	// Exchange counts anti-entropy requests sent and replies answered.
	Exchange uint64
}

// Total is Gossip plus Exchange.
func (t Traffic) Total() uint64 { return t.Gossip + t.Exchange }

// Sub returns t minus an earlier reading u.
func (t Traffic) Sub(u Traffic) Traffic {
	return Traffic{Gossip: t.Gossip - u.Gossip, Exchange: t.Exchange - u.Exchange}
}

// memberName is member i's ID: "m000" and up, so that IDs sort by number.
func memberName(i int) string { return fmt.Sprintf("m%03d", i) }

// Start creates the members and starts them one after another: each
// Node's Start (which binds its chaos transport and joins the seeds in
// the background), then its Syncer. It returns once every member has
// started, not when they have joined. On an error it stops what it
// started.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Members < 2 {
		return nil, fmt.Errorf("statefleet: Members (%d) must be at least 2", cfg.Members)
	}
	if cfg.Members > 999 {
		return nil, fmt.Errorf("statefleet: Members (%d) must be at most 999", cfg.Members)
	}
	if cfg.Late < 0 || cfg.Late >= cfg.Members {
		return nil, fmt.Errorf("statefleet: Late (%d) must be between 0 and Members-1 (%d)", cfg.Late, cfg.Members-1)
	}
	if cfg.Seeds <= 0 {
		cfg.Seeds = 3
	}
	cfg.Seeds = min(cfg.Seeds, cfg.Members-cfg.Late)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{cfg: cfg, net: chaos.NewNetwork(cfg.Seed), byID: map[string]*Member{}}
	for i := range cfg.Members {
		m := &Member{ID: memberName(i), rec: crdt.MemberRecord{
			NodeTypes: []string{"common", "type-" + memberName(i)}, WorkerCapacity: 4,
			SoftwareVersion: "statefleet", StartedAt: time.Unix(1_700_000_000, 0),
		}}
		f.members = append(f.members, m)
		f.byID[m.ID] = m
	}
	// byID is read-only from here on: the hook reads it without a lock.
	f.net.SetHooks(chaos.Hooks{PostSend: func(from, _ string, size int) {
		if m := f.byID[from]; m != nil {
			m.gossipBytes.Add(uint64(size))
		}
	}})
	var seeds []string
	for i := range cfg.Seeds {
		seeds = append(seeds, f.net.MemberlistAddr(memberName(i)))
	}
	// Every Node and Syncer exists before any starts: exchanges read
	// other members' Syncers without a lock.
	for i, m := range f.members {
		if err := f.newMember(i, m, seeds); err != nil {
			f.Stop()
			return nil, fmt.Errorf("statefleet: creating member %s: %w", m.ID, err)
		}
	}
	f.began = time.Now()
	for _, m := range f.members[:cfg.Members-cfg.Late] {
		if err := m.start(ctx); err != nil {
			f.Stop()
			return nil, err
		}
	}
	f.next = cfg.Members - cfg.Late
	f.started = time.Now()
	return f, nil
}

// start starts m's Node, then its Syncer. Both run until Fleet.Stop,
// whatever ctx does (it is used for values only, as by gossip.Node).
func (m *Member) start(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	if err := m.node.Start(ctx); err != nil {
		return fmt.Errorf("statefleet: starting member %s: %w", m.ID, err)
	}
	m.sync.Start(ctx)
	m.running.Store(true)
	return nil
}

// StartLate starts the next member Start left out (Config.Late) and
// returns it.
func (f *Fleet) StartLate(ctx context.Context) (*Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next >= len(f.members) {
		return nil, errors.New("statefleet: every member has started")
	}
	m := f.members[f.next]
	if err := m.start(ctx); err != nil {
		return nil, err
	}
	f.next++
	return m, nil
}

// running returns the members started so far.
func (f *Fleet) running() []*Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[:f.next]
}

// newMember creates member i's Node and Syncer, without starting them.
func (f *Fleet) newMember(i int, m *Member, seeds []string) error {
	var disc []gossip.Discoverer
	if i > 0 {
		disc = []gossip.Discoverer{gossip.Static(seeds...)}
	}
	log := f.cfg.Logger.With("member", m.ID)
	node, err := gossip.New(gossip.Config{
		NodeID: m.ID, BindAddr: "0.0.0.0", Discovery: disc,
		Transport: f.net.MemberlistTransport(m.ID), Logger: log,
	})
	if err != nil {
		return err
	}
	s, err := statesync.New(statesync.Config{
		Self: m.ID, Incarnation: 1, Local: m.record,
		Broadcast: node.Broadcast, MaxBroadcast: gossip.MaxUserEventSize,
		Exchange: func(ctx context.Context, peer string, req []byte) ([]byte, error) {
			return f.exchange(m, peer, req)
		},
		Peers: func() []string {
			var out []string
			for _, p := range node.Members() {
				if p.ID != m.ID {
					out = append(out, p.ID)
				}
			}
			return out
		},
		Unreachable: func() []string {
			var out []string
			for _, p := range node.AllMembers() {
				if p.ID != m.ID && p.Status == gossip.StatusFailed {
					out = append(out, p.ID)
				}
			}
			return out
		},
		PublishInterval: f.cfg.PublishInterval, ExchangeInterval: f.cfg.ExchangeInterval,
		Seed:   uint64(f.cfg.Seed)*1000 + uint64(i) + 1,
		Logger: log,
	})
	if err != nil {
		_ = node.Close()
		return err
	}
	node.OnUserEvent(func(name string, payload []byte, from string) {
		if name == statesync.EventName && from != m.ID {
			m.events.Add(1)
		}
		s.HandleEvent(name, payload, from)
	})
	m.node, m.sync = node, s
	return nil
}

// record is the member's current record (the Syncer's Local).
func (m *Member) record() crdt.MemberRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rec.Clone()
}

// errUnreachable is the exchange's error when the network cuts the two
// members apart.
var errUnreachable = errors.New("statefleet: peer unreachable")

// exchange carries one anti-entropy request from m to peer and its reply
// back, in-process: what the member RPC's wire.MethodState does, minus
// the RPC hop.
func (f *Fleet) exchange(m *Member, peer string, req []byte) ([]byte, error) {
	to := f.byID[peer]
	if to == nil || to.sync == nil {
		return nil, fmt.Errorf("statefleet: no member %q", peer)
	}
	if ok, _ := f.net.Allowed(m.ID, peer); !ok {
		return nil, errUnreachable
	}
	m.exchangeBytes.Add(uint64(len(req)))
	r, err := statesync.DecodeRequest(req)
	if err != nil {
		return nil, err
	}
	reply := to.sync.Serve(m.ID, r)
	if ok, _ := f.net.Allowed(peer, m.ID); !ok {
		return nil, errUnreachable
	}
	to.exchangeBytes.Add(uint64(len(reply)))
	return reply, nil
}

// Members returns the fleet's members, in ID order.
func (f *Fleet) Members() []*Member { return slices.Clone(f.members) }

// IDs returns the members' IDs, sorted.
func (f *Fleet) IDs() []string {
	out := make([]string, len(f.members))
	for i, m := range f.members {
		out[i] = m.ID
	}
	return out
}

// Network is the chaos.Network the members run on (Partition, Heal).
func (f *Fleet) Network() *chaos.Network { return f.net }

// Update changes member m's record with fn; the Syncer publishes it at
// its next publish tick.
func (m *Member) Update(fn func(*crdt.MemberRecord)) {
	m.mu.Lock()
	fn(&m.rec)
	m.mu.Unlock()
	m.sync.Refresh()
}

// Count adds n to member m's own counter c.
func (m *Member) Count(c crdt.Counter, n uint64) { m.sync.Count(c, n) }

// Snapshot returns a copy of member m's replica of the cluster state.
func (m *Member) Snapshot() *crdt.State { return m.sync.Snapshot() }

// Stats returns member m's Syncer counts.
func (m *Member) Stats() statesync.Stats { return m.sync.Stats() }

// Alive returns how many members m's gossip Node sees alive, itself
// included.
func (m *Member) Alive() int { return len(m.node.Members()) }

// Traffic returns the bytes m has sent so far.
func (m *Member) Traffic() Traffic {
	return Traffic{Gossip: m.gossipBytes.Load(), Exchange: m.exchangeBytes.Load()}
}

// Events returns how many state events (other members' deltas) m's
// Node delivered.
func (m *Member) Events() uint64 { return m.events.Load() }

// Dropped returns the user events m's Node dropped (its handler queue
// full).
func (m *Member) Dropped() uint64 {
	_, user, _ := m.node.DroppedEvents()
	return user
}

// Traffic returns the bytes all members have sent so far.
func (f *Fleet) Traffic() Traffic {
	var t Traffic
	for _, m := range f.members {
		u := m.Traffic()
		t.Gossip += u.Gossip
		t.Exchange += u.Exchange
	}
	return t
}

// Joined reports whether every member sees at least one other member
// alive (its join succeeded, or another member joined it).
func (f *Fleet) Joined() bool {
	for _, m := range f.running() {
		if m.Alive() < 2 {
			return false
		}
	}
	return true
}

// MembershipConverged reports whether every member's gossip Node sees
// every member alive.
func (f *Fleet) MembershipConverged() bool {
	ms := f.running()
	for _, m := range ms {
		if m.Alive() != len(ms) {
			return false
		}
	}
	return true
}

// Converged reports whether the members started so far hold equal
// states (equal encodings) that hold every one of them. It returns the
// encoded size of the state.
func (f *Fleet) Converged() (bool, int) {
	ms := f.running()
	first := ms[0].Snapshot()
	if len(first.Members()) != len(ms) {
		return false, 0
	}
	enc := first.Encode()
	for _, m := range ms[1:] {
		if !slices.Equal(enc, m.Snapshot().Encode()) {
			return false, 0
		}
	}
	return true, len(enc)
}

// Await polls cond every 10 ms until it holds or ctx ends, and returns
// when it first held.
func Await(ctx context.Context, cond func() bool) (time.Time, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// Member returns the member with ID id, or nil.
func (f *Fleet) Member(id string) *Member { return f.byID[id] }

// Stop stops every member (Syncer, then Node without a graceful leave:
// the fleet ends as one) and closes the network. It is idempotent.
func (f *Fleet) Stop() {
	if f.stopped.Swap(true) {
		return
	}
	var wg sync.WaitGroup
	for _, m := range f.members {
		if m.sync != nil {
			m.sync.Stop()
		}
	}
	for _, m := range f.members {
		if m.node != nil {
			wg.Go(func() { _ = m.node.Close() })
		}
	}
	wg.Wait()
	_ = f.net.Close()
}
