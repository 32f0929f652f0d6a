package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/eleven-am/graft/internal/statefleet"
)

// Bounds of the parameterised scenario gossip-N.
const (
	gossipPrefix = "gossip-"
	maxGossip    = 500
	// gossipWithin bounds each wait for the fleet to converge.
	gossipWithin = 2 * time.Minute
	// gossipHold is how long gossip-N keeps its fleet split 50/50:
	// longer than memberlist's failure detection at 100 members (about
	// 8 s), so each half sees the other failed before the heal.
	gossipHold = 10 * time.Second
)

// runGossip runs n gossip+CRDT members without shards in this process on
// an in-memory network (internal/statefleet: real gossip.Nodes and
// statesync.Syncers; only the member RPC hop of the anti-entropy exchange
// is replaced by an in-process call of the peer's Syncer). n-1 members
// start at once and converge; then the n-th joins; then the fleet idles
// and then changes every member's load every second for o.idle each;
// then it is split 50/50 for gossipHold with different changes on each
// side, and healed. It reports each convergence time, the bytes sent per
// member per second (gossip at the transport plus exchange requests and
// replies) and the encoded state size.
func runGossip(ctx context.Context, o *options, n int) (*result, error) {
	t0 := time.Now()
	// A partition makes memberlist warn about every member of the other
	// half: only errors are shown, and none once the fleet stops (its
	// members then fail to reach each other).
	level := &slog.LevelVar{}
	level.Set(slog.LevelError)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	f, err := statefleet.Start(ctx, statefleet.Config{Members: n, Late: 1, Seed: 1, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer func() {
		level.Set(slog.LevelError + 1)
		f.Stop()
	}()
	form, err := statefleet.MeasureFormation(ctx, f, gossipWithin)
	if err != nil {
		return nil, err
	}
	progress("gossip-%d: %d members started at once converged %.2fs after the last join (%d state bytes)",
		n, form.Members, form.ConvergedAfterJoin.Seconds(), form.StateBytes)
	join, err := statefleet.MeasureJoin(ctx, f, gossipWithin)
	if err != nil {
		return nil, err
	}
	progress("gossip-%d: member %s converged %.2fs after its join", n, join.Member, join.ConvergedAfterJoin.Seconds())
	idle, err := statefleet.MeasureSteady(ctx, f, o.idle, false)
	if err != nil {
		return nil, err
	}
	busy, err := statefleet.MeasureSteady(ctx, f, o.idle, true)
	if err != nil {
		return nil, err
	}
	progress("gossip-%d: %.0f bytes/member/s idle, %.0f with every load changing every second", n,
		idle.BytesPerMemberPerS, busy.BytesPerMemberPerS)
	part, err := statefleet.MeasurePartition(ctx, f, statefleet.PartitionPlan{Hold: gossipHold, Within: gossipWithin})
	if err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	progress("gossip-%d: split %s, converged %.2fs after the heal", n, gossipHold, part.ConvergedAfterHeal.Seconds())
	formS := form.Converged.Seconds() - form.LastJoin.Seconds()
	return &result{
		Members: n, Seconds: time.Since(t0).Seconds(),
		GossipFormationJoinS: form.LastJoin.Seconds(), GossipFormationMembershipS: form.Membership.Seconds(),
		GossipFormationConvergedS: formS, GossipJoinConvergedS: join.ConvergedAfterJoin.Seconds(),
		GossipHealConvergedS: part.ConvergedAfterHeal.Seconds(), GossipHealMembershipS: part.MembershipAfterHeal.Seconds(),
		GossipPartitionHoldS: gossipHold.Seconds(), GossipDiverged: part.Diverged,
		StateBytes: join.StateBytes, StateBytesPerMember: float64(join.StateBytes) / float64(n),
		IdleBytesPerMemberPerS: idle.BytesPerMemberPerS, IdleGossipBytesPerMemberPerS: idle.GossipPerMemberPerS,
		IdleExchangeBytesPerMemberPerS: idle.ExchangePerMemberPerS,
		BusyBytesPerMemberPerS:         busy.BytesPerMemberPerS, BusyGossipBytesPerMemberPerS: busy.GossipPerMemberPerS,
		BusyExchangeBytesPerMemberPerS: busy.ExchangePerMemberPerS,
		FormationBytesPerMemberPerS:    float64(form.Traffic.Total()) / float64(form.Members) / form.Converged.Seconds(),
		FormationEventsDelivered:       form.Events,
	}, nil
}
