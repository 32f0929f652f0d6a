package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/chaos"
)

// Options configure a run. The zero value (plus a Seed) runs a small
// three-member cluster with the default workload for 10 seconds of faults.
type Options struct {
	// Members is how many members found the cluster ("n1".."nN"). Zero
	// means 3. Scenarios that join members add "n(N+1)" and so on.
	Members int
	// Seed draws the fault schedule, the workload and the network's random
	// drops. Same seed, same schedule and workload.
	Seed int64
	// Shards is the cluster's shard count. Zero means 4.
	Shards int
	// Duration is the fault phase: faults and workflow starts are
	// scheduled within it (starts in its first 80%), then every fault is
	// healed and every crashed member restarted. Time spent applying
	// faults (restarts) lengthens it. Zero means 10s.
	Duration time.Duration
	// Settle is the liveness bound: after the heal, every acknowledged
	// workflow must be terminal within it, and after that the replicas,
	// views and leaderships must converge within it again. Zero means 60s.
	Settle time.Duration
	// Workload says what the clients do.
	Workload Workload
	// Register registers the user's own node types on a member; it runs
	// on every member each time it starts (restarts included), after the
	// harness registered its own ("chaos.step", "chaos.join"). Process
	// mode refuses it: pass MemberOptions.Register to MemberMain instead.
	Register func(*graft.Manager) error
	// Config adjusts each member's configuration after the harness and
	// the scenario (Scenario.Config) set it (do not change NodeID,
	// BindAddr, DataDir, Discovery or Expert.Network). Process mode
	// refuses it: pass MemberOptions.Config to MemberMain instead.
	Config func(*graft.Config)
	// Dir receives the artefacts of a failed check (Dir/history.html when
	// the history is not linearizable). Empty means none are written.
	Dir string
	// DataDir holds the members' data directories (DataDir/<member>).
	// Empty means a temporary directory, removed at the end of the run.
	DataDir string
	// Logger receives the harness's own log (faults applied, phases).
	// nil means slog.Default().
	Logger *slog.Logger
	// MemberLogger returns the logger of a member; nil means members log
	// nowhere. A member process's log lines (warnings and errors) reach it
	// as the "line" attribute of a record.
	MemberLogger func(member string) *slog.Logger
	// Process, when set, runs every member in a child process of its own
	// on real loopback sockets instead of in this process (see
	// ProcessOptions for what that allows and what it does not).
	Process *ProcessOptions
}

func (o Options) withDefaults() Options {
	if o.Members <= 0 {
		o.Members = 3
	}
	if o.Shards <= 0 {
		o.Shards = 4
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Workload = o.Workload.withDefaults()
	return o
}

// memberState is where a member is in its life.
type memberState uint8

const (
	memberAbsent  memberState = iota // a spare not joined yet
	memberUp                         // started
	memberCrashed                    // cut off and stopped (or stopping)
	memberGone                       // left gracefully
)

// memberRun is one member of a run.
type memberRun struct {
	name    string
	dataDir string
	state   memberState
	m       member
	// stopped is closed when the crashed member has stopped (its
	// Manager's Stop returned, or its process exited).
	stopped chan struct{}
	// diskDied is set when a Raft log write of the member failed on a
	// full disk and the harness crashed it for that (see diskDeath).
	diskDied bool
	// diskFloor makes the member start with a free-space floor no disk
	// meets (FaultDiskFloor).
	diskFloor bool
}

// harness is one run in progress.
type harness struct {
	opts Options
	sc   Scenario
	// net is the network of the members in this process; nil in process
	// mode, whose members use real loopback sockets.
	net *chaos.Network
	// procs runs the member processes in process mode; nil otherwise.
	procs *processes
	rec   *recorder
	log   *slog.Logger
	topo  Topology
	names []string
	peers []graft.StaticPeer
	// fs is each member's file system, kept across restarts (FaultDiskFull,
	// FaultSlowDisk act on it); empty when the schedule has no such fault,
	// so that members run on the real file system, as in production.
	fs   map[string]*chaos.FaultFS
	data string
	rf   int // the members' replication factor

	stops sync.WaitGroup // crashed members' Stop calls

	mu      sync.Mutex
	members map[string]*memberRun
	applied []AppliedFault
}

// Run runs scenario sc: it starts Options.Members members in this process,
// each with its own data directory, whose gossip, Raft and RPC links go
// through one [chaos.Network] seeded with Options.Seed; runs the workload while
// applying the scenario's faults; heals every fault and restarts crashed
// members at the end of the fault phase; waits for the workflows to settle;
// and runs every checker. It returns the report, whose Passed says whether
// every check passed; the error is for a run that could not be carried out
// (the cluster did not start, ctx ended).
//
// What the seed fixes: the fault schedule (Scenario.Schedule), the
// workload's operations with their times, members and triggers, the step
// durations, and the network's drop decisions in the order they are asked
// for. What it cannot fix: goroutine scheduling, Raft elections and their
// timing, gossip timing, and so which member leads a shard when a fault
// strikes, which operations are in flight, and how the drop decisions
// interleave; two runs with one seed see the same faults at the same
// times under a workload issued the same way, not the same history.
func Run(ctx context.Context, sc Scenario, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	faults := sc.Schedule(opts.Seed, opts.Members, opts.Shards, opts.Duration)
	if opts.Process != nil {
		if err := checkProcessMode(sc, opts, faults); err != nil {
			return nil, err
		}
	}
	began := time.Now()
	h := &harness{opts: opts, sc: sc, rec: newRecorder(began),
		log: opts.Logger.With("scenario", sc.Name, "seed", opts.Seed), members: map[string]*memberRun{}}
	h.topo = topology(opts.Members, sc.Spares, opts.Shards, opts.Duration)
	h.names = append(slices.Clone(h.topo.Members), h.topo.Spares...)
	if opts.Process == nil {
		h.net = chaos.NewNetwork(opts.Seed)
		for _, n := range h.names {
			h.peers = append(h.peers, graft.StaticPeer{ID: n, Address: h.net.IP(n).String(), Port: 7000, GossipPort: chaos.MemberlistPort})
		}
	} else {
		procs, err := newProcesses(h)
		if err != nil {
			return nil, err
		}
		h.procs = procs
		h.peers = procs.peers
	}

	h.data = opts.DataDir
	if h.data == "" {
		tmp, err := os.MkdirTemp("", "graft-chaos-")
		if err != nil {
			return nil, fmt.Errorf("creating a data directory: %w", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		h.data = tmp
	}
	h.fs = make(map[string]*chaos.FaultFS, len(h.names))
	if slices.ContainsFunc(faults, isFileSystemFault) { // otherwise members keep the real file system
		for _, n := range h.names {
			fs := chaos.NewFaultFS(nil)
			dataDir := filepath.Join(h.data, n) + string(filepath.Separator)
			fs.SetOnFailure(func(op, path string) {
				if strings.HasPrefix(path, dataDir) {
					h.diskDeath(n, op, path)
				}
			})
			h.fs[n] = fs
		}
	}
	h.rf = cmp.Or(h.config(h.names[0]).Cluster.ReplicationFactor, 3)
	defer h.shutdown()

	h.log.Info("chaos: starting members", "members", opts.Members, "processes", opts.Process != nil)
	if err := h.startFounders(ctx); err != nil {
		return nil, err
	}
	started := h.rec.now()

	plan := planWorkload(opts.Seed, opts.Workload, len(h.names), opts.Duration*8/10)
	for i := range plan {
		plan[i].At += time.Duration(started)
	}
	for i := range faults {
		faults[i].At += started
	}

	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	var wg sync.WaitGroup
	wg.Go(func() { h.runWorkload(wctx, plan) })
	err := h.runFaults(ctx, faults, started+Duration(opts.Duration))
	faultsEnd := h.rec.now()
	if err == nil {
		h.log.Info("chaos: fault phase over: healing and restarting")
		err = h.recover(ctx)
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}

	h.log.Info("chaos: settling")
	if err := h.settle(ctx); err != nil {
		return nil, err
	}
	hist := h.rec.snapshot()
	cluster, conv, err := h.converge(ctx)
	if err != nil {
		return nil, err
	}

	checks := []CheckResult{CheckNotLost(hist), CheckTerminalAfterFaults(hist), CheckKeyed(hist), CheckNoRerun(hist),
		CheckLinearizability(hist.Ops, opts.Dir, time.Minute)}
	checks = append(checks, conv...)
	h.mu.Lock()
	applied := slices.Clone(h.applied)
	h.mu.Unlock()
	rep := newReport(sc.Name, opts, hist, applied, checks, cluster, started, faultsEnd, Duration(time.Since(began)))
	h.log.Info("chaos: run over", "passed", rep.Passed, "acknowledged", rep.Workflows.Acknowledged,
		"completed", rep.Workflows.Completed, "lost", rep.Workflows.Lost)
	return rep, nil
}

// spec describes member name as it starts now.
func (h *harness) spec(name string) memberSpec {
	h.mu.Lock()
	full := h.members[name] != nil && h.members[name].diskFloor
	h.mu.Unlock()
	spec := memberSpec{Name: name, DataDir: filepath.Join(h.data, name), Members: h.opts.Members, Shards: h.opts.Shards,
		Peers: h.peers, DiskFloor: full}
	if h.procs == nil {
		spec.BindAddr, spec.GossipPort = name+":7000", chaos.MemberlistPort
	} else {
		spec.BindAddr, spec.GossipPort = h.procs.addr(name), h.procs.gossipPort(name)
	}
	return spec
}

// config returns member name's configuration as it starts now. In process
// mode the member process builds the same from its spec (its logger and
// MemberOptions.Config aside).
func (h *harness) config(name string) *graft.Config {
	cfg := h.spec(name).config()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if h.opts.MemberLogger != nil {
		cfg.Logger = h.opts.MemberLogger(name)
	}
	if h.net != nil {
		cfg.Expert.Network = h.net
	}
	if fs := h.fs[name]; fs != nil {
		cfg.Expert.FS = fs
	}
	if h.sc.Config != nil {
		h.sc.Config(cfg)
	}
	if h.opts.Config != nil {
		h.opts.Config(cfg)
	}
	return cfg
}

// fullDisk is the free-space floor of a member whose disk looks full: more
// than any disk has.
const fullDisk = 1 << 62

// fastGossip shortens memberlist's timers, as on a LAN; the chaos network
// has no latency of its own.
func fastGossip(c *memberlist.Config) {
	l := memberlist.DefaultLocalConfig()
	c.ProbeInterval, c.ProbeTimeout = 200*time.Millisecond, 100*time.Millisecond
	c.SuspicionMult, c.GossipInterval, c.PushPullInterval = 2, 20*time.Millisecond, time.Second
	c.TCPTimeout, c.IndirectChecks = l.TCPTimeout, l.IndirectChecks
}

// startTimeout bounds one member's Start.
const startTimeout = 60 * time.Second

// launch starts member name (in this process or as a member process) and
// returns it once it is ready, with its data directory. A member that
// could not start is stopped again.
func (h *harness) launch(ctx context.Context, name string) (member, string, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if h.procs != nil {
		return h.procs.start(ctx, name)
	}
	cfg := h.config(name)
	m := graft.NewWithConfig(cfg)
	if err := registerNodes(m, name, h.rec); err != nil {
		return nil, "", fmt.Errorf("member %s: %w", name, err)
	}
	if h.opts.Register != nil {
		if err := h.opts.Register(m); err != nil {
			return nil, "", fmt.Errorf("member %s: Options.Register: %w", name, err)
		}
	}
	if err := m.Start(ctx, 0); err != nil {
		_ = m.Stop()
		return nil, "", fmt.Errorf("starting member %s: %w", name, err)
	}
	return localMember{m}, cfg.DataDir, nil
}

// startFounders starts the founding members together.
func (h *harness) startFounders(ctx context.Context) error {
	runs := make([]*memberRun, len(h.topo.Members))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, name := range h.topo.Members {
		wg.Go(func() {
			m, dir, err := h.launch(ctx, name)
			runs[i], errs[i] = &memberRun{name: name, dataDir: dir, m: m, state: memberUp}, err
		})
	}
	wg.Wait()
	h.mu.Lock()
	for i, r := range runs {
		if errs[i] == nil {
			h.members[r.name] = r
		} else {
			h.members[r.name] = &memberRun{name: r.name, state: memberGone}
		}
	}
	for _, n := range h.topo.Spares {
		h.members[n] = &memberRun{name: n, state: memberAbsent}
	}
	h.mu.Unlock()
	return errors.Join(errs...)
}

// startMember starts member name (a restart or a join) and waits until it
// is ready.
func (h *harness) startMember(ctx context.Context, name string) error {
	m, dir, err := h.launch(ctx, name)
	if err != nil {
		return err
	}
	h.mu.Lock()
	r := h.members[name]
	r.m, r.dataDir, r.stopped, r.diskDied = m, dir, nil, false
	r.state = memberUp
	h.mu.Unlock()
	return nil
}

// up returns member name if it is up.
func (h *harness) up(name string) member {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.members[name]; r != nil && r.state == memberUp {
		return r.m
	}
	return nil
}

// pick returns the member the plan's index i names, or the next one up.
func (h *harness) pick(i int) (string, member) {
	for j := range h.names {
		name := h.names[(i+j)%len(h.names)]
		if m := h.up(name); m != nil {
			return name, m
		}
	}
	return "", nil
}

// upMembers returns the names of the members up, sorted.
func (h *harness) upMembers() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for n, r := range h.members {
		if r.state == memberUp {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// shutdown stops every member still up, one after another (members
// stopping together each wait out their gossip leave and leadership
// hand-off against the others, about 6s; one after another, each finds
// the rest alive, or none), waits for crashed members' stops and closes
// the network.
func (h *harness) shutdown() {
	h.mu.Lock()
	var ms []*memberRun
	for _, r := range h.members {
		if r.state == memberUp {
			ms = append(ms, r)
			r.state = memberGone
		}
	}
	h.mu.Unlock()
	slices.SortFunc(ms, func(a, b *memberRun) int { return strings.Compare(a.name, b.name) })
	began := time.Now()
	for _, r := range ms {
		t := time.Now()
		if err := r.m.stop(); err != nil {
			h.log.Warn("chaos: stopping a member", "member", r.name, "error", err)
		}
		h.log.Debug("chaos: member stopped", "member", r.name, "took", time.Since(t))
	}
	h.log.Info("chaos: members stopped", "took", time.Since(began))
	h.stops.Wait()
	if h.net != nil {
		_ = h.net.Close()
	}
	if h.procs != nil {
		h.procs.close()
	}
}
