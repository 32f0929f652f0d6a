package statefleet

import (
	"context"
	"fmt"
	"time"

	"github.com/eleven-am/graft/gossip/crdt"
)

// pollInterval is how often the measurements look at the members.
const pollInterval = 20 * time.Millisecond

// Formation is what MeasureFormation saw, times measured from the first
// member's Start.
type Formation struct {
	// Members is the fleet's size.
	Members int
	// LastStart is when the last member's Start returned; LastJoin when
	// every member first saw another alive (its join done);
	// Membership when every member's Node first saw all members alive;
	// Converged when every member's state first held all members and
	// was equal everywhere.
	LastStart, LastJoin, Membership, Converged time.Duration
	// ConvergedAfterJoin is Converged - LastJoin: how long the state took
	// to converge once every member had joined.
	ConvergedAfterJoin time.Duration
	// StateBytes is the encoded size of the converged state.
	StateBytes int
	// Traffic is what the members sent from the first Start until
	// convergence.
	Traffic Traffic
	// Exchanges and Published sum the Syncers' counts at convergence;
	// Events the state events the Nodes delivered, DroppedEvents those
	// they dropped.
	Exchanges, Published, Events, DroppedEvents uint64
}

// MeasureFormation waits at most within for f (just started) to converge
// and reports when it joined, when membership and when the state
// converged.
func MeasureFormation(ctx context.Context, f *Fleet, within time.Duration) (Formation, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	ms := f.running()
	r := Formation{Members: len(ms), LastStart: f.started.Sub(f.began)}
	var joined, membership time.Time
	at, err := poll(ctx, func(now time.Time) bool {
		if joined.IsZero() && f.Joined() {
			joined = now
		}
		if membership.IsZero() && f.MembershipConverged() {
			membership = now
		}
		if joined.IsZero() {
			return false
		}
		ok, size := f.Converged()
		r.StateBytes = size
		return ok
	})
	if err != nil {
		return r, fmt.Errorf("%d members did not converge within %s (joined: %v, membership converged: %v): %w",
			len(ms), within, !joined.IsZero(), !membership.IsZero(), err)
	}
	r.Traffic = f.Traffic()
	r.LastJoin, r.Converged = joined.Sub(f.began), at.Sub(f.began)
	if !membership.IsZero() {
		r.Membership = membership.Sub(f.began)
	}
	r.ConvergedAfterJoin = at.Sub(joined)
	for _, m := range ms {
		st := m.Stats()
		r.Exchanges += st.Exchanges
		r.Published += st.Published
		r.Events += m.Events()
		r.DroppedEvents += m.Dropped()
	}
	return r, nil
}

// poll calls cond every pollInterval with the time until it holds or
// ctx ends, and returns the time it held.
func poll(ctx context.Context, cond func(now time.Time) bool) (time.Time, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		now := time.Now()
		if cond(now) {
			return now, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// Join is what MeasureJoin saw.
type Join struct {
	// Member is the member that joined.
	Member string
	// Joined is when its Node first saw another member alive, from its
	// Start; Converged when every member's state first held it and was
	// equal everywhere, from its Start; ConvergedAfterJoin is Converged
	// - Joined.
	Joined, Converged, ConvergedAfterJoin time.Duration
	// StateBytes is the encoded size of the converged state.
	StateBytes int
}

// MeasureJoin starts the next member left out of f's Start
// (Config.Late) into the fleet, and waits at most within until every
// member's state holds it and is equal everywhere.
func MeasureJoin(ctx context.Context, f *Fleet, within time.Duration) (Join, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	t0 := time.Now()
	m, err := f.StartLate(ctx)
	if err != nil {
		return Join{}, err
	}
	r := Join{Member: m.ID}
	var joined time.Time
	at, err := poll(ctx, func(now time.Time) bool {
		if joined.IsZero() && m.Alive() > 1 {
			joined = now
		}
		if joined.IsZero() {
			return false
		}
		ok, size := f.Converged()
		r.StateBytes = size
		return ok
	})
	if err != nil {
		return r, fmt.Errorf("the fleet did not converge within %s of %s's start (joined: %v): %w", within, m.ID, !joined.IsZero(), err)
	}
	r.Joined, r.Converged, r.ConvergedAfterJoin = joined.Sub(t0), at.Sub(t0), at.Sub(joined)
	return r, nil
}

// Steady is what MeasureSteady saw.
type Steady struct {
	// Seconds is the length of the window.
	Seconds float64
	// Busy tells whether every member changed its load every second.
	Busy bool
	// Traffic is what the members sent in the window.
	Traffic Traffic
	// BytesPerMemberPerS is Traffic.Total() per member per second;
	// GossipPerMemberPerS and ExchangePerMemberPerS its parts.
	BytesPerMemberPerS, GossipPerMemberPerS, ExchangePerMemberPerS float64
}

// MeasureSteady counts the bytes the members send over d. If busy, every
// member changes its load (Executing) every second, so that each
// publishes once per PublishInterval, the most the rate limit allows at
// the default interval; otherwise nothing changes and only gossip's own
// traffic and the exchanges remain.
func MeasureSteady(ctx context.Context, f *Fleet, d time.Duration, busy bool) (Steady, error) {
	before, t0 := f.Traffic(), time.Now()
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var load uint64
loop:
	for {
		select {
		case <-ctx.Done():
			return Steady{}, ctx.Err()
		case <-end.C:
			break loop
		case <-tick.C:
			if !busy {
				continue
			}
			load++
			for _, m := range f.running() {
				m.Update(func(r *crdt.MemberRecord) { r.Executing = load % 5 })
			}
		}
	}
	secs := time.Since(t0).Seconds()
	tr := f.Traffic().Sub(before)
	per := func(b uint64) float64 { return float64(b) / float64(len(f.running())) / secs }
	return Steady{Seconds: secs, Busy: busy, Traffic: tr, BytesPerMemberPerS: per(tr.Total()),
		GossipPerMemberPerS: per(tr.Gossip), ExchangePerMemberPerS: per(tr.Exchange)}, nil
}

// PartitionPlan says how MeasurePartition splits the fleet.
type PartitionPlan struct {
	// Hold is how long the halves stay apart. Longer than the failure
	// detection (about 8 s at 100 members with memberlist's LAN
	// defaults), each half sees the other failed, and the heal waits for
	// gossip to rejoin (Node's RejoinInterval, 5 s).
	Hold time.Duration
	// Within bounds the wait for convergence after the heal.
	Within time.Duration
}

// Partition is what MeasurePartition saw.
type Partition struct {
	// Diverged tells whether the halves held different states at the
	// heal (each half's changes had not crossed).
	Diverged bool
	// HalvesConverged is when, after the split, each half had converged
	// on its own changes (zero if one had not by the heal).
	HalvesConverged time.Duration
	// MembershipAfterHeal is when every Node saw every member alive
	// again (zero if not before the states converged); ConvergedAfterHeal
	// when every member's state was equal and held both halves' changes.
	MembershipAfterHeal, ConvergedAfterHeal time.Duration
	// StateBytes is the encoded size of the converged state.
	StateBytes int
}

// MeasurePartition splits the started members of f (converged) into two
// halves (the first half by ID and the rest), makes different changes on
// each side at once (every member sets metadata side=a or side=b, and
// counts WorkflowsCompleted 1 on one side and 2 on the other), holds
// the split for plan.Hold, heals it and waits at most plan.Within until
// every member's state is equal and holds both sides' changes (every
// member's side and the total count).
func MeasurePartition(ctx context.Context, f *Fleet, plan PartitionPlan) (Partition, error) {
	var r Partition
	ms := f.running()
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	half := len(ids) / 2
	a, b := ids[:half], ids[half:]
	before := ms[0].Snapshot().Total(crdt.WorkflowsCompleted)
	f.net.Partition(a, b)
	split := time.Now()
	side := map[string]string{}
	for i, m := range ms {
		s, n := "a", uint64(1)
		if i >= half {
			s, n = "b", 2
		}
		side[m.ID] = s
		m.Update(func(rec *crdt.MemberRecord) {
			if rec.Metadata == nil {
				rec.Metadata = map[string]string{}
			}
			rec.Metadata["side"] = s
		})
		m.Count(crdt.WorkflowsCompleted, n)
	}
	want := before + uint64(half) + 2*uint64(len(ids)-half)
	var missing func(*crdt.State, []string) string
	// holds reports whether member id's state holds the changes of the
	// members of.
	holds := func(id string, of []string) bool {
		st := f.byID[id].Snapshot()
		return missing(st, of) == ""
	}
	// missing names the first member of whose change st lacks.
	missing = func(st *crdt.State, of []string) string {
		for _, o := range of {
			rec, ok := st.Record(o)
			if !ok || rec.Data.Metadata["side"] != side[o] {
				return fmt.Sprintf("%s (holds side=%q, version %v)", o, rec.Data.Metadata["side"], rec.Version)
			}
		}
		return ""
	}
	hold, cancelHold := context.WithTimeout(ctx, plan.Hold)
	at, err := poll(hold, func(time.Time) bool {
		return holds(a[0], a) && holds(b[0], b) && f.halfConverged(a) && f.halfConverged(b)
	})
	cancelHold()
	if err == nil {
		r.HalvesConverged = at.Sub(split)
		if err := sleep(ctx, plan.Hold-time.Since(split)); err != nil {
			return r, err
		}
	}
	r.Diverged = !ms[0].Snapshot().Equal(ms[len(ms)-1].Snapshot())
	f.net.Heal()
	healed := time.Now()
	ctx, cancel := context.WithTimeout(ctx, plan.Within)
	defer cancel()
	var membership time.Time
	at, err = poll(ctx, func(now time.Time) bool {
		if membership.IsZero() && f.MembershipConverged() {
			membership = now
		}
		ok, size := f.Converged()
		r.StateBytes = size
		return ok && holds(ids[0], ids) && ms[0].Snapshot().Total(crdt.WorkflowsCompleted) == want
	})
	if err != nil {
		ok, _ := f.Converged()
		return r, fmt.Errorf("the halves did not converge within %s of the heal (states equal: %v, %s lacks the change of %s, total completed %d of %d): %w",
			plan.Within, ok, ids[0], missing(ms[0].Snapshot(), ids), ms[0].Snapshot().Total(crdt.WorkflowsCompleted), want, err)
	}
	r.ConvergedAfterHeal = at.Sub(healed)
	if !membership.IsZero() {
		r.MembershipAfterHeal = membership.Sub(healed)
	}
	return r, nil
}

// halfConverged reports whether the members ids hold equal states.
func (f *Fleet) halfConverged(ids []string) bool {
	first := f.byID[ids[0]].Snapshot()
	for _, id := range ids[1:] {
		if !first.Equal(f.byID[id].Snapshot()) {
			return false
		}
	}
	return true
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
