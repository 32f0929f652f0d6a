package main

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft"
)

// runRetentionSoak streams 5×workflows one-step workflows through a member
// whose retention is one second, sampling the data directory's size and the
// process's RSS every second: with purging and Raft log compaction both
// should level off instead of growing with the number of workflows.
func runRetentionSoak(ctx context.Context, o *options, dir string, _ map[string]*result) (*result, error) {
	n := 5 * o.workflows
	addr, err := o.ports.Addr()
	if err != nil {
		return nil, err
	}
	cfg := &graft.Config{NodeID: "soak", BindAddr: addr, DataDir: dir, Logger: o.logger}
	cfg.Cluster.ShardCount = o.shards
	cfg.Engine.WorkerCount = o.workers
	cfg.Engine.Retention = time.Second
	cfg.Engine.PurgeInterval = 200 * time.Millisecond
	cfg.Expert.SnapshotEntries = 2000
	cfg.Expert.CompactionOverhead = 200
	m := graft.NewWithConfig(cfg)
	defer m.Stop()
	if err := m.RegisterNode(&step{name: "A"}); err != nil {
		return nil, err
	}
	var done atomic.Int64
	m.OnWorkflowCompleted(func(*graft.WorkflowCompletedEvent) { done.Add(1) })
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.Start(sctx, 0); err != nil {
		return nil, fmt.Errorf("starting member: %w", err)
	}

	r := &result{Scenario: "retention-soak", Members: 1, Workflows: n, Steps: n, Concurrency: o.starters}
	cpu0, t0 := cpuSeconds(), time.Now()
	quit := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				r.DirMBSamples = append(r.DirMBSamples, round1(float64(dirSize(dir))/(1<<20)))
				r.RSSMBSamples = append(r.RSSMBSamples, round1(readRSSMB("VmRSS")))
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, o.starters)
	for g := range o.starters {
		wg.Go(func() {
			for i := g; i < n; i += o.starters {
				err := m.StartWorkflowContext(ctx, graft.WorkflowTrigger{
					WorkflowID: fmt.Sprintf("soak-%d", i), InitialNodes: []graft.NodeConfig{{Name: "A"}},
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		close(quit)
		sampler.Wait()
		return nil, fmt.Errorf("starting workflows: %w", err)
	}
	deadline := time.Now().Add(o.timeout)
	for done.Load() < int64(n) || m.GetClusterInfo().Metrics.ActiveWorkflows > 0 {
		if time.Now().After(deadline) {
			close(quit)
			sampler.Wait()
			return nil, fmt.Errorf("%d of %d workflows completed before the timeout", done.Load(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Seconds = time.Since(t0).Seconds()
	time.Sleep(3 * time.Second) // let the last purges run
	close(quit)
	sampler.Wait()
	r.CPUSeconds = cpuSeconds() - cpu0
	r.RSSKind, r.RSSMB = "VmRSS", readRSSMB("VmRSS")
	r.RSSEndMB = r.RSSMB
	r.DirMBFinal = round1(float64(dirSize(dir)) / (1 << 20))
	r.setRates()
	return r, nil
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
