package rebalance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/eleven-am/graft/events"
	"github.com/eleven-am/graft/internal/logkeys"
)

// DefaultConfirmTTL is how long a confirmation holds when
// Config.ConfirmTTL is zero.
const DefaultConfirmTTL = 30 * time.Second

// ErrNotHeld is returned (wrapped) by Peers.Confirm when the member does
// not hold the replica its shard's membership gives it.
var ErrNotHeld = errors.New("the member does not hold the replica")

// Shards changes the Raft membership of the shards this member leads: the
// local Raft host. Methods are called from one goroutine at a time but
// must be safe for concurrent use with the host's other callers. Each
// honours ctx.
type Shards interface {
	// Membership reads shard's committed membership (linearizable).
	Membership(ctx context.Context, shard uint64) (Membership, error)
	// AddReplica adds replica at raftAddr to shard, refused if the
	// membership is no longer at configChangeID.
	AddReplica(ctx context.Context, shard, replica uint64, raftAddr string, configChangeID uint64) error
	// RemoveReplica removes replica from shard, refused if the membership
	// is no longer at configChangeID.
	RemoveReplica(ctx context.Context, shard, replica, configChangeID uint64) error
	// TransferLeader asks shard's leadership to move to replica. It
	// returns at once; the transfer may not happen.
	TransferLeader(shard, replica uint64) error
}

// Peers reaches the members holding a shard's replicas, for one pass.
// Methods may block until ctx ends.
type Peers interface {
	// Confirm asks member to confirm that its replica of shard runs and
	// has caught up, starting it first when isNew (the leader has just
	// added it). It returns an error wrapping ErrNotHeld if the member
	// does not hold the replica.
	Confirm(ctx context.Context, member string, shard, replica uint64, isNew bool) error
	// TellRemoved tells member that its replica of shard was removed, so
	// it deletes it. Best effort: a member that misses it finds out by
	// itself.
	TellRemoved(ctx context.Context, member string, shard, replica uint64)
}

// Publisher receives a Reconciler's observations. *events.Bus implements
// it; Publish must not block.
type Publisher interface {
	Publish(ev any)
}

// Config configures a Reconciler.
type Config struct {
	// Self is this member's node ID.
	Self string
	// Shards is the local Raft host. Required.
	Shards Shards
	// FailureGrace is how long a failed member keeps its replicas. Zero
	// means a failed member is gone for good at once.
	FailureGrace time.Duration
	// ConfirmTTL is how long a replica's confirmation holds. Zero means
	// DefaultConfirmTTL.
	ConfirmTTL time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives the changes made (info) and failed steps (debug).
	// Nil means slog.Default().
	Logger *slog.Logger
	// Events receives a *events.ShardMovedEvent for each replica added or
	// removed. Nil means none.
	Events Publisher
}

// replicaKey identifies a replica in the leader's bookkeeping.
type replicaKey struct{ shard, replica uint64 }

// Reconciler applies Plan's actions to the shards this member leads and
// keeps the leader's bookkeeping between passes. Its methods are safe for
// concurrent use; Reconcile is meant to run for one shard at a time.
type Reconciler struct {
	cfg Config

	mu           sync.Mutex
	failedSince  map[string]time.Time     // member ID -> when first seen failed
	unknownSince map[string]time.Time     // Raft target -> when first seen owned by no member
	confirmed    map[replicaKey]time.Time // when replicas confirmed they caught up
	added        map[replicaKey]bool      // replicas added here, not confirmed yet
}

// NewReconciler returns a Reconciler. It starts nothing.
func NewReconciler(cfg Config) *Reconciler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ConfirmTTL == 0 {
		cfg.ConfirmTTL = DefaultConfirmTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Reconciler{cfg: cfg, failedSince: map[string]time.Time{}, unknownSince: map[string]time.Time{},
		confirmed: map[replicaKey]time.Time{}, added: map[replicaKey]bool{}}
}

// Now returns the time on the Reconciler's clock.
func (r *Reconciler) Now() time.Time { return r.cfg.Now() }

// Observe records the members as gossip reports them now and returns them
// by ID with FailedSince set, for Plan and Eligible. A member first seen
// failed starts its grace period now. A member seen failed before and
// alive again may have come back without its data, so every confirmation
// is dropped and each replica is confirmed again.
func (r *Reconciler) Observe(members []Member) map[string]Member {
	now := r.cfg.Now()
	out := make(map[string]Member, len(members))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range members {
		switch m.Status {
		case Alive:
			if _, back := r.failedSince[m.ID]; back {
				clear(r.confirmed)
				delete(r.failedSince, m.ID)
			}
		case Failed:
			since, ok := r.failedSince[m.ID]
			if !ok {
				since = now
				r.failedSince[m.ID] = now
			}
			m.FailedSince = since
		}
		out[m.ID] = m
	}
	return out
}

// Eligible returns, sorted, the members placement may use now; see the
// package function Eligible.
func (r *Reconciler) Eligible(members map[string]Member) []string {
	return Eligible(members, r.cfg.Now(), r.cfg.FailureGrace)
}

// Reconcile makes at most one membership change to shard, which this
// member leads, towards placed (its replica set, preferred leader first),
// asking members (from Observe) to confirm replicas on the way. It returns
// the error of a change that failed; the next pass tries again.
func (r *Reconciler) Reconcile(ctx context.Context, shard uint64, placed []string, members map[string]Member, peers Peers) error {
	mem, err := r.cfg.Shards.Membership(ctx, shard)
	if err != nil {
		return err
	}
	answers := map[uint64]Answer{}
	// Each Confirm settles one placed replica for this pass, so the plan
	// changes membership or ends within len(placed)+1 rounds.
	for range len(placed) + 1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		a := Plan(r.input(shard, mem, placed, members, answers))
		if a.Kind != Confirm {
			return r.apply(ctx, a, peers)
		}
		err := r.confirm(ctx, peers, a.Member, shard, a.Replica)
		switch {
		case errors.Is(err, ErrNotHeld):
			answers[a.Replica] = NotHeld
		case err != nil:
			r.cfg.Logger.Debug("replica not confirmed yet", logkeys.Shard, shard, "replica", a.Replica, "member", a.Member, "error", err)
			answers[a.Replica] = NoAnswer
		}
	}
	return nil
}

// input assembles Plan's input from the bookkeeping, starting the clock of
// replica addresses no member has.
func (r *Reconciler) input(shard uint64, mem Membership, placed []string, members map[string]Member, answers map[uint64]Answer) Input {
	now := r.cfg.Now()
	known := map[string]bool{}
	for _, m := range members {
		known[m.Target] = true
		for _, a := range m.Aliases {
			known[a] = true
		}
	}
	in := Input{Shard: shard, Self: r.cfg.Self, Membership: mem, Placed: placed, Members: members,
		UnknownSince: map[string]time.Time{}, Confirmed: map[uint64]time.Time{}, Answers: maps.Clone(answers),
		Now: now, FailureGrace: r.cfg.FailureGrace, ConfirmTTL: r.cfg.ConfirmTTL}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, addr := range mem.Replicas {
		if known[addr] {
			continue
		}
		since, ok := r.unknownSince[addr]
		if !ok {
			since = now
			r.unknownSince[addr] = now
		}
		in.UnknownSince[addr] = since
	}
	for rid := range mem.Replicas {
		if at, ok := r.confirmed[replicaKey{shard, rid}]; ok {
			in.Confirmed[rid] = at
		}
	}
	return in
}

// apply carries out an action other than Confirm.
func (r *Reconciler) apply(ctx context.Context, a Action, peers Peers) error {
	log := r.cfg.Logger
	s := a.Shard
	switch a.Kind {
	case Nothing:
		return nil
	case TransferLeader:
		return r.cfg.Shards.TransferLeader(s, a.Replica)
	case Add:
		if err := r.cfg.Shards.AddReplica(ctx, s, a.Replica, a.Target, a.ConfigChangeID); err != nil {
			return fmt.Errorf("adding replica %d on %q: %w", a.Replica, a.Member, err)
		}
		log.Info("replica added", logkeys.Shard, s, "replica", a.Replica, "member", a.Member)
		r.mu.Lock()
		r.added[replicaKey{s, a.Replica}] = true
		r.mu.Unlock()
		r.publish(a, events.ReplicaAdded)
		if err := r.confirm(ctx, peers, a.Member, s, a.Replica); err != nil {
			log.Debug("new replica not confirmed yet", logkeys.Shard, s, "replica", a.Replica, "member", a.Member, "error", err)
		}
		return nil
	case RemoveUnplaced:
		if a.HandOffTo != 0 {
			log.Info("handing leadership away before leaving the shard", logkeys.Shard, s, "to", a.HandOffMember)
			return r.cfg.Shards.TransferLeader(s, a.HandOffTo)
		}
	case RemoveDeparted, RemoveLost:
	default:
		return fmt.Errorf("rebalance: unexpected action %s", a)
	}
	if err := r.cfg.Shards.RemoveReplica(ctx, s, a.Replica, a.ConfigChangeID); err != nil {
		return fmt.Errorf("removing replica %d on %q (%s): %w", a.Replica, a.Member, a.Reason, err)
	}
	switch a.Kind {
	case RemoveDeparted:
		log.Info("replica of a departed member removed", logkeys.Shard, s, "replica", a.Replica, "member", a.Member, "reason", a.Reason)
	case RemoveLost:
		log.Warn("replica lost by its member removed; a new one will replace it", logkeys.Shard, s, "replica", a.Replica, "member", a.Member)
	default:
		log.Info("replica moved off", logkeys.Shard, s, "replica", a.Replica, "member", a.Member)
	}
	r.forget(s, a.Replica)
	r.publish(a, events.ReplicaRemoved)
	if a.Kind == RemoveUnplaced {
		peers.TellRemoved(ctx, a.Member, s, a.Replica)
	}
	return nil
}

// confirm asks member to confirm its replica rid of shard, starting it
// first if this leader added it and has not heard from it since.
func (r *Reconciler) confirm(ctx context.Context, peers Peers, member string, shard, rid uint64) error {
	key := replicaKey{shard, rid}
	r.mu.Lock()
	isNew := r.added[key]
	r.mu.Unlock()
	if err := peers.Confirm(ctx, member, shard, rid, isNew); err != nil {
		return err
	}
	r.mu.Lock()
	r.confirmed[key] = r.cfg.Now()
	delete(r.added, key)
	r.mu.Unlock()
	return nil
}

// forget drops what the leader knows of a removed replica.
func (r *Reconciler) forget(shard, rid uint64) {
	r.mu.Lock()
	delete(r.confirmed, replicaKey{shard, rid})
	delete(r.added, replicaKey{shard, rid})
	r.mu.Unlock()
}

// publish reports a membership change made by a.
func (r *Reconciler) publish(a Action, move events.ShardMove) {
	if r.cfg.Events == nil {
		return
	}
	r.cfg.Events.Publish(&events.ShardMovedEvent{ShardID: a.Shard, ReplicaID: a.Replica, NodeID: a.Member,
		Move: move, Reason: a.Reason, ChangedAt: r.cfg.Now()})
}
