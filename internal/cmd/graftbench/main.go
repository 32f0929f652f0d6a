// Command graftbench measures the throughput and latency of a lone Graft
// member, of its storage substrate and of in-process clusters, and what
// members and shards cost (formation time, RSS, idle CPU).
//
// It runs each selected scenario on a fresh member (fresh data directory,
// free loopback port) and prints one JSON object per scenario on stdout:
//
//	scenario, members, workflows, steps, seconds, workflows_per_s,
//	steps_per_s, p50_ms, p99_ms, rss_mb
//
// plus extra keys (start latency, CPU seconds, RSS kind, ...). Progress goes
// to stderr. Scenarios:
//
//   - seq3: workflows A→B→C of no-op steps, started closed-loop by -starters
//     goroutines; latency is start→OnWorkflowCompleted.
//   - fanout3: workflows A→{B1,B2,B3}.
//   - seq3-half: seq3 started open-loop at half the workflows/s that seq3
//     reached in the same run (or -rate), the latency target.
//   - raw-propose: shards.Host.Propose of 100-byte commands on one shard from
//     256 goroutines, the substrate's ceiling.
//   - seq3-cluster: seq3 on three in-process members on loopback (RF 3),
//     started closed-loop by -cluster-starters goroutines: a commit there
//     waits for two fsyncs on two members (about 15 ms on this disk), so a
//     throughput figure needs more workflows in flight than seq3.
//   - list: -list-workflows (default 100,000) one-step workflows stored on
//     one member (one in 50 fails; metadata tenant=t0..t19), then the
//     latency of ListWorkflows pages of 50: Status=failed (p50_ms,
//     p99_ms), tenant=t7, both, no filter, every page of the failed ones
//     by token, and CountWorkflows (under "queries"). About 50 s, most of
//     it storing the workflows.
//   - fleet-N (not in the default list; e.g. fleet-3, fleet-10): N members
//     in this process on loopback (RF 3, 2N shards unless -shards, default
//     gossip timings) form, then run -fleet-workflows seq3 workflows from
//     -starters goroutines; reports the formation time and the RSS per
//     member. Run each size in its own process for RSS figures that do not
//     inherit an earlier scenario's heap.
//   - shard-cost-N (not in the default list; e.g. shard-cost-64):
//     -cost-members members (default 1) with ShardCount N form and stay
//     idle for -idle; reports the formation time, the RSS and the idle CPU,
//     in total and per replica.
//   - gossip-N (not in the default list; e.g. gossip-100, about a minute):
//     N gossip+CRDT members without shards on an in-memory network
//     (internal/statefleet): N-1 start at once and converge, the N-th
//     joins, the fleet idles and then changes every load every second
//     (-idle each), then it is split 50/50 for 10 s with different
//     changes on each side and healed. Reports the convergence time
//     after the last join (both joins) and after the heal, the bytes
//     sent per member per second (gossip at the transport plus
//     anti-entropy requests and replies) and the encoded state size.
//
// It exits non-zero if any scenario fails.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/eleven-am/graft/internal/loopback"
)

// options are the command-line settings shared by every scenario.
type options struct {
	// ports hands out the members' loopback addresses, none twice in a run.
	ports     loopback.Ports
	workflows int
	starters  int
	// clusterStarters is seq3-cluster's closed-loop concurrency.
	clusterStarters int
	// fleetWorkflows is the number of workflows fleet-N runs.
	fleetWorkflows int
	// costMembers is the number of members shard-cost-N starts.
	costMembers int
	// listWorkflows is the number of workflows the list scenario stores.
	listWorkflows int
	// idle is how long shard-cost-N leaves its members idle.
	idle    time.Duration
	shards  int
	workers int
	rate    float64
	timeout time.Duration
	logger  *slog.Logger
}

// scenarioFunc runs one scenario in dir and returns its result.
type scenarioFunc func(ctx context.Context, o *options, dir string, prev map[string]*result) (*result, error)

func main() {
	var (
		workflows  = flag.Int("workflows", 20000, "workflows per workflow scenario")
		starters   = flag.Int("starters", 16, "goroutines starting workflows")
		cstarters  = flag.Int("cluster-starters", 256, "goroutines starting workflows in seq3-cluster")
		fleetWfs   = flag.Int("fleet-workflows", 1000, "workflows per fleet-N scenario")
		costN      = flag.Int("cost-members", 1, "members started by shard-cost-N")
		listWfs    = flag.Int("list-workflows", 100000, "workflows stored by the list scenario")
		idle       = flag.Duration("idle", 10*time.Second, "how long shard-cost-N measures idle CPU, and gossip-N each traffic window")
		scenarios  = flag.String("scenarios", "seq3,fanout3,raw-propose,seq3-half,seq3-cluster,list", "comma-separated scenarios to run, in order")
		dir        = flag.String("dir", "", "parent of the scenarios' data directories (default: a temporary directory, removed at the end)")
		shardCount = flag.Int("shards", 0, "Cluster.ShardCount (0: the Graft default)")
		workers    = flag.Int("workers", 0, "Engine.WorkerCount (0: the Graft default)")
		rate       = flag.Float64("rate", 3000, "seq3-half start rate in workflows/s when seq3 did not run first")
		timeout    = flag.Duration("timeout", 10*time.Minute, "per-scenario limit for all workflows to complete")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		tracefile  = flag.String("trace", "", "write an execution trace of the whole run to this file (go tool trace)")
	)
	flag.Parse()
	o := &options{
		workflows: *workflows, starters: *starters, clusterStarters: *cstarters, shards: *shardCount, workers: *workers,
		fleetWorkflows: *fleetWfs, costMembers: *costN, idle: *idle, listWorkflows: *listWfs,
		rate: *rate, timeout: *timeout,
		logger: slog.New(quietDragonboat{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}),
	}
	if err := run(o, *scenarios, *dir, *cpuprofile, *tracefile); err != nil {
		fmt.Fprintln(os.Stderr, "graftbench:", err)
		os.Exit(1)
	}
}

// run validates the settings, runs the comma-separated scenarios of list in
// order, each in a fresh directory under dir (or under a temporary
// directory if dir is empty), and prints their results. It keeps going
// after a failed scenario and reports every failure.
func run(o *options, list, dir, cpuprofile, tracefile string) error {
	all := map[string]scenarioFunc{
		"seq3":         runSeq3,
		"fanout3":      runFanout3,
		"seq3-half":    runSeq3Half,
		"raw-propose":  runRawPropose,
		"seq3-cluster": runSeq3Cluster,
		// Not in the default list: it runs 5×workflows over about a minute.
		"retention-soak": runRetentionSoak,
		"list":           runList,
	}
	var names []string
	for n := range strings.SplitSeq(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if all[n] == nil {
			fn := parameterised(n)
			if fn == nil {
				return fmt.Errorf("unknown scenario %q (known: seq3, fanout3, seq3-half, raw-propose, seq3-cluster, retention-soak, list, fleet-N for 1 to %d members, gossip-N for 2 to %d members, shard-cost-N for 1 to %d shards)",
					n, maxFleet, maxGossip, maxShardCost)
			}
			all[n] = fn
		}
		names = append(names, n)
	}
	switch {
	case len(names) == 0:
		return errors.New("no scenarios selected")
	case o.workflows < 1 || o.starters < 1 || o.clusterStarters < 1 || o.fleetWorkflows < 1 || o.listWorkflows < 1:
		return errors.New("-workflows, -starters, -cluster-starters, -fleet-workflows and -list-workflows must be at least 1")
	case o.costMembers < 1 || o.costMembers > maxFleet:
		return fmt.Errorf("-cost-members must be between 1 and %d", maxFleet)
	case o.idle <= 0:
		return errors.New("-idle must be positive")
	case o.shards < 0 || o.workers < 0:
		return errors.New("-shards and -workers must not be negative")
	case o.rate <= 0:
		return errors.New("-rate must be positive")
	}

	if dir == "" {
		tmp, err := os.MkdirTemp("", "graftbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if tracefile != "" {
		f, err := os.Create(tracefile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}

	prev := map[string]*result{}
	enc := json.NewEncoder(os.Stdout)
	var failed []string
	for i, name := range names {
		sdir := filepath.Join(dir, fmt.Sprintf("%02d-%s", i, name))
		progress("%s: starting (data dir %s)", name, sdir)
		res, err := runOne(all[name], o, sdir, prev)
		if err != nil {
			progress("%s: FAILED: %v", name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		res.Scenario = name
		prev[name] = res
		if err := enc.Encode(res.rounded()); err != nil {
			return err
		}
		progress("%s: done in %.1fs", name, res.Seconds)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d scenario(s) failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

// runOne runs one scenario in a fresh dir, measuring CPU time and peak RSS
// around it, and removes dir afterwards.
func runOne(fn scenarioFunc, o *options, dir string, prev map[string]*result) (*result, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rssKind := resetPeakRSS()
	cpu0 := cpuSeconds()
	res, err := fn(context.Background(), o, dir, prev)
	if err != nil {
		return nil, err
	}
	res.CPUSeconds = cpuSeconds() - cpu0
	res.RSSKind = rssKind
	res.RSSMB = readRSSMB(rssKind)
	res.RSSEndMB = readRSSMB("VmRSS")
	return res, nil
}

// progress prints a timestamped progress line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s graftbench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
