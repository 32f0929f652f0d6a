package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft/internal/logkeys"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Serf limits Graft configures (see MaxUserEventSize, MaxQuerySize and
// MaxQueryResponseSize for the user-visible ones).
const (
	// serfUserEventSizeLimit bounds a user event's name + payload as Serf
	// encodes it, inbound and outbound: MaxUserEventSize plus Graft's
	// envelope (sender ID) with room to spare.
	serfUserEventSizeLimit = 1024
	// serfQuerySizeLimit bounds an encoded query (name, payload, sender
	// name and address): MaxQuerySize plus Serf's encoding. Serf's default.
	serfQuerySizeLimit = 1024
	// serfQueryResponseSizeLimit bounds an encoded query reply:
	// MaxQueryResponseSize plus Graft's one-byte status and Serf's encoding.
	serfQueryResponseSizeLimit = 1200
	// serfMaxQueueDepth bounds Serf's outgoing broadcast queues (intents,
	// events, queries); beyond it the oldest are dropped. Serf's default.
	serfMaxQueueDepth = 4096
	// serfEventBuffer and serfQueryBuffer are how many Lamport times of
	// recent user events and queries Serf remembers for de-duplication
	// and sends in its push/pull state. Serf's defaults.
	serfEventBuffer = 512
	serfQueryBuffer = 512
	// memberlistHandoffQueueDepth bounds the gossip messages (alive,
	// suspect, dead, user) memberlist queues for its handler; beyond it
	// they are dropped. memberlist's default.
	memberlistHandoffQueueDepth = 1024
	// serfEventChSize is larger than Serf's internal relay buffer (1024), so
	// that Serf's relay goroutine never blocks on it once the event loop has
	// stopped reading.
	serfEventChSize = 2048
	dispatchQueue   = 256
)

type nodeState int

const (
	stateNew nodeState = iota
	stateStarted
	stateStopped
)

// Node is one cluster member. Create it with New, then Start it. All methods
// are safe for concurrent use.
type Node struct {
	cfg       Config
	logger    *slog.Logger
	admission *admission // nil unless Policy is Strict or Admit is set
	tagsMu    sync.Mutex // serialises SetTags

	events        chan Event
	droppedEvents atomic.Uint64
	droppedUser   atomic.Uint64
	droppedQuery  atomic.Uint64
	joinAttempts  atomic.Int64
	joined        atomic.Bool

	serfCh     chan serf.Event
	userQ      chan userEvent
	queryQ     chan *serf.Query
	stopEvents chan struct{}

	mu            sync.Mutex
	state         nodeState
	s             *serf.Serf
	cancel        context.CancelCauseFunc
	userHandlers  []func(name string, payload []byte, from string)
	queryHandler  func(name string, payload []byte, from string) ([]byte, error)
	dropWarned    bool
	leaveDone     chan struct{}
	leaveErr      error
	leaveStarted  bool
	closeOnce     sync.Once
	closeErr      error
	closeFinished chan struct{}
	unadvertise   []func() error // stop functions of Advertisers

	joinMu sync.Mutex // serialises Serf joins with Leave; see join

	wg sync.WaitGroup
}

// New validates cfg and returns a Node that is not started: nothing listens
// and no goroutine runs until Start.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	logger := c.Logger.With(logkeys.Component, "gossip", logkeys.Member, c.NodeID)
	n := &Node{
		cfg:           c,
		logger:        logger,
		events:        make(chan Event, DefaultEventBuffer),
		serfCh:        make(chan serf.Event, serfEventChSize),
		userQ:         make(chan userEvent, dispatchQueue),
		queryQ:        make(chan *serf.Query, dispatchQueue),
		stopEvents:    make(chan struct{}),
		leaveDone:     make(chan struct{}),
		closeFinished: make(chan struct{}),
	}
	if c.Policy == Strict || c.Admit != nil {
		n.admission = newAdmission(c.NodeID, c.Policy == Strict, c.AllowedNodes, c.Admit, logger)
	}
	return n, nil
}

// Start binds the gossip port, creates the Serf instance (binding the gossip port) and starts the
// background loops: the event loop, the user-event and query dispatchers,
// and the membership loop, which joins discovered peers (retrying with
// backoff until one join succeeds or discovery finds no peer) and then
// re-joins, every RejoinInterval, discovered peers and failed members that
// are not alive. Start returns once the port is bound; it does not wait for
// the join. ctx is used for values only: the loops run until Leave, Stop or
// Close. If binding the port (or opening SnapshotPath) fails, Start may be
// called again; if Serf itself fails to start, the Node is closed.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case stateStarted:
		return ErrAlreadyStarted
	case stateStopped:
		return ErrClosed
	}
	if err := checkSnapshotPath(n.cfg.SnapshotPath); err != nil {
		return fmt.Errorf("starting serf: %w", err)
	}
	sc, owned, err := n.serfConfig()
	if err != nil {
		return err
	}
	n.wg.Go(n.eventLoop)
	n.wg.Go(n.userDispatcher)
	n.wg.Go(n.queryDispatcher)
	s, err := serf.Create(sc)
	if err != nil {
		if owned != nil {
			_ = owned.Shutdown()
		}
		// Serf may have leaked state; this Node cannot be restarted.
		n.state = stateStopped
		close(n.stopEvents)
		n.wg.Wait()
		close(n.events)
		return fmt.Errorf("starting serf: %w", err)
	}
	n.s = s
	n.state = stateStarted
	loopCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	n.cancel = cancel
	local := s.LocalMember()
	for _, d := range n.cfg.Discovery {
		a, ok := d.(Advertiser)
		if !ok {
			continue
		}
		stop, err := a.Advertise(Self{NodeID: n.cfg.NodeID, Addr: local.Addr.String(), Port: int(local.Port), Logger: n.logger})
		if err != nil {
			n.logger.Warn("gossip: advertising this member failed; other members must find it another way", "error", err)
			continue
		}
		n.unadvertise = append(n.unadvertise, stop)
	}
	n.wg.Go(func() { n.membershipLoop(loopCtx, s) })
	n.logger.Info("gossip: started", "addr", joinHostPort(local.Addr.String(), int(local.Port)),
		"policy", n.cfg.Policy.String(), "encrypted", s.EncryptionEnabled())
	return nil
}

// serfConfig builds Serf's configuration. Unless Config.Transport is set it
// binds the network transport, returned as owned so that Start can release
// it if Serf fails to start.
func (n *Node) serfConfig() (_ *serf.Config, owned *guardTransport, _ error) {
	c := n.cfg
	mlc := memberlist.DefaultLANConfig()
	if c.MemberlistConfig != nil {
		c.MemberlistConfig(mlc)
	}
	mlc.Name = c.NodeID
	mlc.BindAddr = c.BindAddr
	mlc.BindPort = c.BindPort
	mlc.AdvertiseAddr = c.AdvertiseAddr
	mlc.AdvertisePort = c.AdvertisePort
	mlc.SecretKey = nil
	kr, err := keyring(c)
	if err != nil {
		return nil, nil, err
	}
	mlc.Keyring = kr
	if kr != nil {
		mlc.GossipVerifyIncoming = true
		mlc.GossipVerifyOutgoing = true
	}
	mlc.LogOutput = nil
	mlc.Logger = newStdLogger(n.logger.With("lib", "memberlist"))
	mlc.HandoffQueueDepth = memberlistHandoffQueueDepth
	mlc.Transport = c.Transport
	if c.Transport == nil {
		nt, err := newNetTransport(c.BindAddr, c.BindPort, mlc.Logger)
		if err != nil {
			return nil, nil, err
		}
		mlc.BindPort = nt.GetAutoBindPort()
		owned = newGuardTransport(nt, gossipLimits(mlc.TCPTimeout), len(c.Key) == 0, n.logger)
		mlc.Transport = owned
	}
	mlc.AdvertisePort = cmp.Or(c.AdvertisePort, mlc.BindPort)

	sc := serf.DefaultConfig()
	sc.NodeName = c.NodeID
	sc.Tags = maps.Clone(c.Tags)
	sc.EventCh = n.serfCh
	sc.MemberlistConfig = mlc
	sc.LogOutput = nil
	sc.Logger = newStdLogger(n.logger.With("lib", "serf"))
	sc.LeavePropagateDelay = c.LeavePropagateDelay
	sc.SnapshotPath = c.SnapshotPath
	sc.KeyringFile = c.KeyringFile
	// Serf's key manager asks every member with the default query timeout
	// (GossipInterval × QueryTimeoutMult × log(members)); Graft's own
	// queries set theirs. Key operations are rare and must reach every
	// member, so they get a generous one.
	sc.QueryTimeoutMult = 64
	// A member that left and restarts must come back: Graft always rejoins.
	sc.RejoinAfterLeave = true
	sc.UserEventSizeLimit = serfUserEventSizeLimit
	sc.QuerySizeLimit = serfQuerySizeLimit
	sc.QueryResponseSizeLimit = serfQueryResponseSizeLimit
	sc.MaxQueueDepth = serfMaxQueueDepth
	sc.MinQueueDepth = 0
	sc.EventBuffer = serfEventBuffer
	sc.QueryBuffer = serfQueryBuffer
	if c.broadcastTimeout > 0 {
		sc.BroadcastTimeout = c.broadcastTimeout
	}
	if n.admission != nil {
		sc.Merge = n.admission
	}
	return sc, owned, nil
}

// gossipLimits returns the limits the guard applies to inbound plaintext
// gossip on the network transport Graft binds (memberlist v0.7.0's own
// limits are fixed and larger; see guardLimits). A Graft member's gossip is
// small: its tags encode to at most 512 bytes (memberlist.MetaMaxSize), its
// ID to at most MaxNodeIDLen, user events to at most serfUserEventSizeLimit
// and queries to serfQuerySizeLimit, so a member's node state is under
// 1 KiB.
func gossipLimits(readTimeout time.Duration) guardLimits {
	return guardLimits{
		// 16,384 members: memberlist allocates 112 bytes per announced
		// node before reading any, so a header costs at most 1.75 MiB.
		MaxPushPullNodes: 16 << 10,
		// Serf's push/pull state: one Lamport time per member (ID up to
		// 128 bytes) and up to serfEventBuffer recent user events of up
		// to 1 KiB each: about 2.2 MiB + 0.5 MiB for 16,384 members.
		MaxPushPullUserState: 4 << 20,
		// Serf sends its messages (at most a few KiB) by UDP; a user
		// message over TCP is never near this.
		MaxStreamUserMsg: 64 << 10,
		// A compressed push/pull: at most ~730 bytes per member (ID, address,
		// 512 bytes of tags, versions, msgpack field names) plus the user
		// state, so 8 MiB covers about 8,000 members with full tags, and
		// about 30,000 with tags of 100 bytes.
		MaxStreamInflate: 8 << 20,
		// memberlist never builds a packet larger than UDPBufferSize
		// (1400 bytes) before compressing it; 64 KiB is a UDP datagram.
		MaxPacketInflate: 64 << 10,
		// Push/pulls are one per member per PushPullInterval (30s by
		// default, scaled up in large clusters) plus joins, each over in
		// milliseconds. 16 at once bounds what the guard and memberlist
		// hold for them to about 16 × (2 × 8 MiB) under attack.
		MaxStateStreams: 16,
		ReadTimeout:     readTimeout,
	}
}

// serf returns the started Serf instance or ErrNotStarted/ErrClosed.
func (n *Node) serf() (*serf.Serf, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case stateNew:
		return nil, ErrNotStarted
	case stateStopped:
		return nil, ErrClosed
	}
	return n.s, nil
}

// LocalMember returns this member as others see it (its advertised address
// and the port actually bound when BindPort was 0). ok is false before Start.
func (n *Node) LocalMember() (m Member, ok bool) {
	n.mu.Lock()
	s := n.s
	n.mu.Unlock()
	if s == nil {
		return Member{}, false
	}
	return memberFromSerf(s.LocalMember()), true
}

// Members returns the alive members in this member's view, itself included,
// sorted by ID. It returns nil before Start and after Stop.
func (n *Node) Members() []Member {
	s, err := n.serf()
	if err != nil {
		return nil
	}
	var out []Member
	for _, m := range s.Members() {
		if m.Status == serf.StatusAlive {
			out = append(out, memberFromSerf(m))
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmpString(a.ID, b.ID) })
	return out
}

// AllMembers returns every member in this member's view whatever its
// Status (alive, leaving, left or failed), itself included, sorted by ID.
// Failed members stay listed until Serf reaps them (ReconnectTimeout), left
// ones until their tombstone expires. It returns nil before Start and after
// Stop.
func (n *Node) AllMembers() []Member {
	s, err := n.serf()
	if err != nil {
		return nil
	}
	ms := s.Members()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberFromSerf(m))
	}
	slices.SortFunc(out, func(a, b Member) int { return cmpString(a.ID, b.ID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Coordinator returns the cluster's advisory coordinator: the alive member
// with the lowest ID in this member's view. Every member computes it from
// its own view, so members agree once gossip has converged, but views may
// differ briefly (during joins, failures and partitions). Use it only for
// things that are safe if two members act as coordinator at once, or none
// does; never for safety. ok is false when not started.
func (n *Node) Coordinator() (Member, bool) {
	ms := n.Members()
	if len(ms) == 0 {
		return Member{}, false
	}
	return ms[0], true
}

// SetTags replaces this member's tags and gossips them; the others see an
// EventUpdate. It blocks until the update is broadcast or Serf's
// BroadcastTimeout (5s) passed; in the latter case the tags are applied
// and their broadcast goes on, so it returns nil (and logs a warning).
// Concurrent calls apply one at a time (Serf's SetTags is not safe for
// concurrent use).
func (n *Node) SetTags(tags map[string]string) error {
	s, err := n.serf()
	if err != nil {
		return err
	}
	n.tagsMu.Lock()
	defer n.tagsMu.Unlock()
	t := maps.Clone(tags)
	if t == nil {
		t = map[string]string{}
	}
	if err := s.SetTags(t); err != nil {
		// Serf applies the tags before it waits for their broadcast: when
		// the wait times out they are applied and still queued, and reach
		// the others by gossip (or push-pull at the latest). Only tags
		// refused (too large) are an error.
		if maps.Equal(s.LocalMember().Tags, t) {
			n.logger.Warn("tag update not broadcast yet; it goes on in the background", "error", err)
			return nil
		}
		return fmt.Errorf("setting tags: %w", err)
	}
	return nil
}

// Events returns the channel of membership events. It is buffered
// (DefaultEventBuffer); when it is full new events are dropped and counted
// (DroppedEvents), so a slow reader never blocks gossip. It is closed when
// the Node stops. Every member sees its own EventJoin at Start.
func (n *Node) Events() <-chan Event { return n.events }

// DroppedEvents returns how many membership events were dropped because the
// Events channel was full, and how many user events and queries were dropped
// because their handler queue was full.
func (n *Node) DroppedEvents() (membership, user, query uint64) {
	return n.droppedEvents.Load(), n.droppedUser.Load(), n.droppedQuery.Load()
}

// Leave leaves the cluster gracefully: the others see an EventLeave instead
// of EventFailed. The join and rejoin loops stop. It waits for the leave to
// be broadcast (bounded by Serf's BroadcastTimeout plus
// LeavePropagateDelay) or for ctx, whichever comes first; the leave carries
// on in the background if ctx ends first. Leave does not release the port:
// call Stop. Calling it again returns the first result.
func (n *Node) Leave(ctx context.Context) error {
	s, err := n.serf()
	if err != nil {
		return err
	}
	done := n.startLeave(s)
	select {
	case <-done:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.leaveErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) startLeave(s *serf.Serf) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leaveStarted {
		return n.leaveDone
	}
	n.leaveStarted = true
	n.cancel(ErrClosed)
	n.wg.Go(func() {
		n.joinMu.Lock()
		err := s.Leave()
		n.joinMu.Unlock()
		if err != nil {
			err = fmt.Errorf("leaving: %w", err)
		}
		n.mu.Lock()
		n.leaveErr = err
		n.mu.Unlock()
		close(n.leaveDone)
	})
	return n.leaveDone
}

// Stop leaves the cluster gracefully (unless Leave already did), shuts Serf
// down, releases the port and waits for every goroutine of the Node. It is
// idempotent: later calls (and Close) return the first result.
func (n *Node) Stop() error { return n.close(true) }

// Close shuts down without a graceful leave, as a crash would: the others
// detect this member as failed. It is idempotent and may follow Stop (and
// the reverse); later calls return the first result.
func (n *Node) Close() error { return n.close(false) }

func (n *Node) close(graceful bool) error {
	n.closeOnce.Do(func() {
		defer close(n.closeFinished)
		n.mu.Lock()
		st, s := n.state, n.s
		n.state = stateStopped
		n.mu.Unlock()
		switch st {
		case stateNew:
			close(n.stopEvents)
			close(n.events)
			return
		case stateStopped: // Start failed and cleaned up
			return
		}
		var errs []error
		n.mu.Lock()
		unadvertise := n.unadvertise
		n.unadvertise = nil
		n.mu.Unlock()
		for _, stop := range unadvertise {
			if err := stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping advertisement: %w", err))
			}
		}
		if graceful {
			<-n.startLeave(s)
			n.mu.Lock()
			errs = append(errs, n.leaveErr)
			n.mu.Unlock()
		}
		n.cancel(ErrClosed)
		if err := s.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("shutting down serf: %w", err))
		}
		close(n.stopEvents)
		n.wg.Wait()
		close(n.events)
		n.closeErr = errors.Join(errs...)
		n.logger.Info("gossip: stopped", "graceful", graceful)
	})
	<-n.closeFinished
	return n.closeErr
}
