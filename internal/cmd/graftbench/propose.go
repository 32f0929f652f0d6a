package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/shards"
)

// Limits of the raw-propose scenario.
const (
	proposers       = 256
	proposalBytes   = 100
	proposeDuration = 5 * time.Second
	maxProposals    = 200_000
)

// nopLogic is a shards.Logic that applies every command as a no-op.
type nopLogic struct{}

// Open does nothing.
func (nopLogic) Open(shards.Reader) error { return nil }

// Apply ignores the command and returns no result.
func (nopLogic) Apply(shards.Writer, uint64, []byte) ([]byte, error) { return nil, nil }

// Applied does nothing.
func (nopLogic) Applied(uint64) {}

// Lookup answers nothing.
func (nopLogic) Lookup(shards.Reader, []byte) ([]byte, error) { return nil, nil }

// runRawPropose measures the substrate alone: a shards.Host configured as
// Graft configures it, one shard with a no-op Logic, and proposers
// goroutines proposing proposalBytes-byte commands for proposeDuration or
// until maxProposals were issued.
func runRawPropose(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
	addr, err := o.ports.Addr()
	if err != nil {
		return nil, err
	}
	def := graft.DefaultConfig("bench", addr, dir)
	h, err := shards.NewHost(shards.Config{
		NodeID: def.NodeID, RaftAddress: def.BindAddr, DataDir: def.DataDir,
		RTTMillisecond: def.Expert.RTTMillisecond, SnapshotEntries: def.Expert.SnapshotEntries,
		Logger:   o.logger,
		NewLogic: func(uint64) shards.Logic { return nopLogic{} },
	})
	if err != nil {
		return nil, fmt.Errorf("opening host: %w", err)
	}
	defer h.Close()
	const shardID = 1
	if err := h.StartShard(shardID, 1, map[uint64]string{1: h.NodeHostID()}, false); err != nil {
		return nil, err
	}
	if err := awaitLeader(ctx, h, shardID); err != nil {
		return nil, err
	}

	var (
		issued   atomic.Int64
		done     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		lats     = make([][]time.Duration, proposers)
	)
	cmd := make([]byte, proposalBytes)
	base := time.Now()
	for g := range proposers {
		wg.Go(func() {
			for time.Since(base) < proposeDuration && issued.Add(1) <= maxProposals {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				t := time.Now()
				_, err := h.Propose(pctx, shardID, cmd)
				d := time.Since(t)
				cancel()
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				lats[g] = append(lats[g], d)
				done.Add(1)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-tick.C:
			progress("  %d proposals completed", done.Load())
		}
	}
	elapsed := time.Since(base)
	if firstErr != nil {
		return nil, fmt.Errorf("propose failed after %d proposals completed in %s: %w",
			done.Load(), elapsed.Round(time.Millisecond), firstErr)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	res := &result{Members: 1, Steps: len(all), Seconds: elapsed.Seconds(), Concurrency: proposers, Shards: 1}
	res.setRates()
	res.P50Ms, res.P99Ms, res.MaxMs = percentiles(all)
	if err := h.Close(); err != nil {
		return nil, fmt.Errorf("closing host: %w", err)
	}
	return res, nil
}

// awaitLeader waits up to a minute for shardID to elect a leader.
func awaitLeader(ctx context.Context, h *shards.Host, shardID uint64) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if _, ok := h.LeaderID(shardID); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("shard %d elected no leader: %w", shardID, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
