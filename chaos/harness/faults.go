package harness

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/eleven-am/graft/chaos"
	"github.com/eleven-am/graft/internal/backoff"
)

// AppliedFault is a fault as the run applied it.
type AppliedFault struct {
	Fault
	// Applied is when it was applied, from the start of the run: later
	// than At by the time the faults before it took to apply (restarts
	// wait for a crashed member's stop and for their start).
	Applied Duration `json:"applied"`
	// Took is how long applying it took.
	Took Duration `json:"took"`
	// Detail says what it resolved to (e.g. the leader it isolated).
	Detail string `json:"detail,omitempty"`
	// Error is why it could not be applied, if it could not.
	Error string `json:"error,omitempty"`
	// NextStep is how long after it was applied the next step run
	// succeeded anywhere.
	NextStep Duration `json:"next_step,omitempty"`
	// Recovery is how the step throughput came back after the fault
	// ended; nil for a fault that ends others (heal, restart, disk-free,
	// fast-disk, disk-floor-off).
	Recovery *Recovery `json:"recovery,omitempty"`
}

// Recovery is the time a fault's throughput took to come back. The
// throughput is successful step runs per second (steps of every member,
// by when they ended).
type Recovery struct {
	// Ended is when the fault ended, from the start of the run: when the
	// fault that ends it was applied (the next heal for a network fault,
	// the member's restart for a crash or wipe, disk-free, fast-disk or
	// disk-floor-off for a disk fault), the end of the fault phase if
	// none did, or when it was done applying for join and leave.
	Ended Duration `json:"ended"`
	// EndedBy is the kind of the fault that ended it, or "end of fault
	// phase", or "itself" (join, leave).
	EndedBy string `json:"ended_by"`
	// RateBefore is the throughput over the two seconds before the fault
	// was applied.
	RateBefore float64 `json:"rate_before"`
	// Recovered reports whether the throughput came back to
	// RecoveryFraction of RateBefore: over some one-second window (slid by
	// 100ms) starting at Ended or later, before the run's last successful
	// step; After is then how long after Ended that window starts (zero:
	// the first second after the end already ran at that rate). Not
	// recovered also when there was no throughput before (RateBefore 0)
	// or the workload ran out of work: it starts workflows during the
	// first 80% of the fault phase only, so a fault ending late finds less
	// to run (compare RateBefore with Report.Throughput).
	Recovered bool     `json:"recovered"`
	After     Duration `json:"after,omitempty"`
}

// RecoveryFraction is the fraction of the pre-fault throughput a fault's
// Recovery waits for.
const RecoveryFraction = 0.8

// endsOthers reports whether faults of kind k end earlier faults rather
// than disturb anything of their own.
func endsOthers(k FaultKind) bool {
	switch k {
	case FaultHeal, FaultRestart, FaultDiskFree, FaultFastDisk, FaultDiskFloorOff:
		return true
	}
	return false
}

// endOf returns when faults[i] ended and what ended it (see
// Recovery.Ended).
func endOf(faults []AppliedFault, i int, faultsEnd Duration) (Duration, string) {
	f := faults[i]
	var enders []FaultKind
	switch f.Kind {
	case FaultPartition, FaultIsolate, FaultIsolateLeader, FaultDrop, FaultDelay:
		enders = []FaultKind{FaultHeal}
	case FaultCrash, FaultWipe:
		enders = []FaultKind{FaultRestart, FaultDiskFree}
	case FaultDiskFull:
		enders = []FaultKind{FaultDiskFree, FaultRestart}
	case FaultSlowDisk:
		enders = []FaultKind{FaultFastDisk}
	case FaultDiskFloor:
		enders = []FaultKind{FaultDiskFloorOff}
	default:
		return f.Applied + f.Took, "itself"
	}
	for _, g := range faults[i+1:] {
		if !slices.Contains(enders, g.Kind) {
			continue
		}
		if g.Kind == FaultHeal || (len(g.Members) > 0 && len(f.Members) > 0 && g.Members[0] == f.Members[0]) {
			return g.Applied + g.Took, string(g.Kind)
		}
	}
	return faultsEnd, "end of fault phase"
}

// recoveryOf measures the recovery of a fault applied at applied and ended
// at ended, from the end times of the successful step runs.
func recoveryOf(ends []Duration, applied, ended Duration) (rateBefore float64, after Duration, ok bool) {
	const window, slide = Duration(time.Second), Duration(100 * time.Millisecond)
	count := func(from, to Duration) int {
		n := 0
		for _, e := range ends {
			if e > from && e <= to {
				n++
			}
		}
		return n
	}
	rateBefore = float64(count(applied-2*window, applied)) / 2
	if rateBefore == 0 || len(ends) == 0 {
		return rateBefore, 0, false
	}
	last := slices.Max(ends)
	for t := ended; t < last; t += slide {
		if float64(count(t, t+window)) >= RecoveryFraction*rateBefore {
			return rateBefore, t - ended, true
		}
	}
	return rateBefore, 0, false
}

// runFaults applies the faults at their times, one after another, then
// waits until end. The time a fault takes to apply (a restart waits for
// the crashed member's stop and for its start) pushes the rest of the
// schedule and the end back by as much, so the spacing between faults
// stays as scheduled.
func (h *harness) runFaults(ctx context.Context, faults []Fault, end Duration) error {
	var shift Duration
	for _, f := range faults {
		if err := h.sleepUntil(ctx, f.At+shift); err != nil {
			return err
		}
		a := AppliedFault{Fault: f, Applied: h.rec.now()}
		detail, err := h.apply(ctx, f)
		a.Took, a.Detail = h.rec.now()-a.Applied, detail
		shift += a.Took
		if err != nil {
			a.Error = err.Error()
			h.log.Warn("chaos: fault not applied", "fault", f.String(), "error", err)
		} else {
			h.log.Info("chaos: fault applied", "fault", f.String(), "applied", time.Duration(a.Applied), "detail", detail)
		}
		h.mu.Lock()
		h.applied = append(h.applied, a)
		h.mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return h.sleepUntil(ctx, end+shift)
}

// sleepUntil waits until the run's clock reaches at or ctx ends.
func (h *harness) sleepUntil(ctx context.Context, at Duration) error {
	d := time.Duration(at - h.rec.now())
	if d <= 0 {
		return ctx.Err()
	}
	return backoff.Sleep(ctx, d)
}

// apply applies one fault and says what it resolved to.
func (h *harness) apply(ctx context.Context, f Fault) (string, error) {
	switch f.Kind {
	case FaultPartition:
		h.net.Partition(f.Groups...)
	case FaultIsolate:
		for _, m := range f.Members {
			h.net.Isolate(m)
		}
	case FaultIsolateLeader:
		leader, err := h.leaderOf(ctx, f.Shard)
		if err != nil {
			return "", err
		}
		h.net.Isolate(leader)
		return "isolated " + leader, nil
	case FaultDrop:
		h.net.Drop(f.From, f.To, f.Pct)
	case FaultDelay:
		h.net.Delay(f.From, f.To, time.Duration(f.Delay))
	case FaultHeal:
		h.heal()
	case FaultCrash:
		return "", h.crash(one(f))
	case FaultRestart:
		return "", h.restart(ctx, one(f))
	case FaultWipe:
		return h.wipe(ctx, one(f))
	case FaultDiskFull:
		return h.diskFault(one(f), func(fs *chaos.FaultFS) string { fs.SetFull(true); return "writes fail with ENOSPC" })
	case FaultDiskFree:
		detail, err := h.diskFault(one(f), func(fs *chaos.FaultFS) string { fs.SetFull(false); return "writes succeed" })
		if err != nil || !h.diedOfDisk(one(f)) {
			return detail, err
		}
		return detail + "; restarted after a write of it failed", h.restart(ctx, one(f))
	case FaultSlowDisk:
		return h.diskFault(one(f), func(fs *chaos.FaultFS) string {
			fs.SetSyncDelay(time.Duration(f.Delay))
			return fmt.Sprint("syncs wait ", time.Duration(f.Delay))
		})
	case FaultFastDisk:
		return h.diskFault(one(f), func(fs *chaos.FaultFS) string { fs.SetSyncDelay(0); return "syncs run at once" })
	case FaultDiskFloor:
		return "restarted with a free-space floor no disk meets", h.setDisk(ctx, one(f), true)
	case FaultDiskFloorOff:
		return "restarted with its normal free-space floor", h.setDisk(ctx, one(f), false)
	case FaultJoin:
		return "", h.join(ctx, one(f))
	case FaultLeave:
		return "", h.leave(one(f))
	default:
		return "", fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	return "", nil
}

func one(f Fault) string {
	if len(f.Members) == 0 {
		return ""
	}
	return f.Members[0]
}

// heal clears the network faults; crashed members stay cut off.
func (h *harness) heal() {
	if h.net == nil {
		return
	}
	h.net.Heal()
	h.mu.Lock()
	defer h.mu.Unlock()
	for n, r := range h.members {
		if r.state == memberCrashed {
			h.net.Isolate(n)
		}
	}
}

// leaderOf returns the member up that leads shard s, waiting up to 10s for
// one (an election may be under way).
func (h *harness) leaderOf(ctx context.Context, s uint64) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, n := range h.upMembers() {
			if m := h.up(n); m != nil {
				if v, err := m.state(ctx); err == nil && slices.Contains(v.LeadShards, s) {
					return n, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no member up leads shard %d", s)
		}
		if err := backoff.Sleep(ctx, 50*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// crash kills member name: a member process gets SIGKILL; a member in
// this process is cut off and its Manager stopped in the background.
func (h *harness) crash(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.members[name]
	if r == nil || r.state != memberUp {
		return fmt.Errorf("member %q is not up", name)
	}
	r.state = memberCrashed
	r.stopped = make(chan struct{})
	m, done := r.m, r.stopped
	if p, ok := m.(*memberProcess); ok {
		p.kill()
		h.stops.Go(func() {
			defer close(done)
			<-p.exited
			h.log.Info("chaos: crashed member's process ended", "member", name, "exit", p.exitErr)
		})
		return nil
	}
	h.net.Isolate(name)
	h.stops.Go(func() {
		defer close(done)
		began := time.Now()
		err := m.stop()
		h.log.Info("chaos: crashed member's Manager stopped", "member", name, "took", time.Since(began), "error", err)
	})
	return nil
}

// waitStopped waits until crashed member name's Stop returned.
func (h *harness) waitStopped(ctx context.Context, name string) error {
	h.mu.Lock()
	r := h.members[name]
	var done chan struct{}
	if r != nil {
		done = r.stopped
	}
	h.mu.Unlock()
	if r == nil || r.state != memberCrashed || done == nil {
		return fmt.Errorf("member %q is not crashed", name)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// restart starts crashed member name again on its data directory.
func (h *harness) restart(ctx context.Context, name string) error {
	if err := h.waitStopped(ctx, name); err != nil {
		return err
	}
	if h.net != nil {
		h.net.Reconnect(name)
	}
	return h.startMember(ctx, name)
}

// wipe deletes member name's data directory, crashing it first if it is up.
func (h *harness) wipe(ctx context.Context, name string) (string, error) {
	detail := ""
	if h.up(name) != nil {
		if err := h.crash(name); err != nil {
			return "", err
		}
		detail = "crashed first; "
	}
	if err := h.waitStopped(ctx, name); err != nil {
		return "", err
	}
	h.mu.Lock()
	dir := h.members[name].dataDir
	h.mu.Unlock()
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("wiping %s: %w", dir, err)
	}
	return detail + "deleted " + dir, nil
}

// isFileSystemFault reports whether f acts on a member's chaos.FaultFS.
func isFileSystemFault(f Fault) bool {
	switch f.Kind {
	case FaultDiskFull, FaultDiskFree, FaultSlowDisk, FaultFastDisk:
		return true
	}
	return false
}

// diskFault applies set to member name's file system and says what the
// file system has done so far.
func (h *harness) diskFault(name string, set func(*chaos.FaultFS) string) (string, error) {
	fs := h.fs[name]
	if fs == nil {
		return "", fmt.Errorf("member %q runs on the real file system: the schedule has no disk-full or slow-disk fault", name)
	}
	detail := set(fs)
	st := fs.Stats()
	return fmt.Sprintf("%s (so far %d calls failed, %d syncs delayed)", detail, st.Failed, st.Slowed), nil
}

// diskDeath is called when a write or sync under member name's data
// directory failed on its full disk. Either store treats that as fatal:
// Dragonboat panics on a failed Raft log write, and Pebble panics on the
// commit after a failed WAL write (both end a process that runs without
// Graft's storage wrapper). Under the wrapper
// Dragonboat runs in its error injection mode, where its panic only stops
// the step worker, and the member stops itself on the failed write
// (graft.ReadinessStorageFailed). The harness crashes it as well, as the
// panic would have, and FaultDiskFree (or the end of the fault phase)
// restarts it on its data directory. What it cannot prevent: a Pebble
// commit on the member between the failed write and its stop panics and
// ends the whole run's process (not seen so far).
func (h *harness) diskDeath(name, op, path string) {
	h.mu.Lock()
	r := h.members[name]
	if r == nil || r.state != memberUp || r.diskDied {
		h.mu.Unlock()
		return
	}
	r.diskDied = true
	h.mu.Unlock()
	h.log.Warn("chaos: a write failed on a full disk; Dragonboat or Pebble would end the process: crashing the member",
		"member", name, "op", op, "path", path)
	a := AppliedFault{Fault: Fault{At: h.rec.now(), Kind: FaultCrash, Members: []string{name}}, Applied: h.rec.now(),
		Detail: fmt.Sprintf("%s %s failed with ENOSPC: Dragonboat and Pebble panic on a failed write", op, path)}
	if err := h.crash(name); err != nil {
		a.Error = err.Error()
	}
	h.mu.Lock()
	h.applied = append(h.applied, a)
	h.mu.Unlock()
}

// diedOfDisk reports whether member name was crashed by diskDeath and is
// still down.
func (h *harness) diedOfDisk(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.members[name]
	return r != nil && r.diskDied && r.state == memberCrashed
}

// setDisk restarts member name with a disk that looks full or not. A
// member up is stopped gracefully (links intact, so its leave and
// hand-off go through at once) rather than crashed; a crashed one is
// waited for.
func (h *harness) setDisk(ctx context.Context, name string, full bool) error {
	h.mu.Lock()
	r := h.members[name]
	if r == nil || (r.state != memberUp && r.state != memberCrashed) {
		h.mu.Unlock()
		return fmt.Errorf("member %q is neither up nor crashed", name)
	}
	wasUp, m := r.state == memberUp, r.m
	if wasUp {
		r.state = memberGone // no client picks it while it restarts
	}
	h.mu.Unlock()
	if wasUp {
		if err := m.stop(); err != nil {
			return fmt.Errorf("stopping %s: %w", name, err)
		}
	} else {
		if err := h.waitStopped(ctx, name); err != nil {
			return err
		}
		if h.net != nil {
			h.net.Reconnect(name)
		}
	}
	h.mu.Lock()
	h.members[name].diskFloor = full
	h.mu.Unlock()
	return h.startMember(ctx, name)
}

// join starts spare member name.
func (h *harness) join(ctx context.Context, name string) error {
	h.mu.Lock()
	r := h.members[name]
	h.mu.Unlock()
	if r == nil || r.state != memberAbsent {
		return fmt.Errorf("member %q is not a spare", name)
	}
	return h.startMember(ctx, name)
}

// leave stops member name gracefully for good.
func (h *harness) leave(name string) error {
	h.mu.Lock()
	r := h.members[name]
	if r == nil || r.state != memberUp {
		h.mu.Unlock()
		return fmt.Errorf("member %q is not up", name)
	}
	r.state = memberGone
	m := r.m
	h.mu.Unlock()
	if err := m.stop(); err != nil {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	return nil
}

// recover ends the fault phase: it heals the network and restarts every
// crashed member.
func (h *harness) recover(ctx context.Context) error {
	if h.net != nil {
		h.net.Heal()
	}
	for _, n := range h.names {
		if fs := h.fs[n]; fs != nil {
			fs.SetFull(false)
			fs.SetSyncDelay(0)
		}
	}
	var crashed []string
	h.mu.Lock()
	for n, r := range h.members {
		if r.state == memberCrashed {
			crashed = append(crashed, n)
			if h.net != nil {
				h.net.Isolate(n) // until its stop is over
			}
		}
	}
	h.mu.Unlock()
	slices.Sort(crashed)
	for _, n := range crashed {
		h.mu.Lock()
		h.members[n].diskFloor = false
		h.mu.Unlock()
		if err := h.endFault(FaultRestart, n, func() error { return h.restart(ctx, n) }); err != nil {
			return err
		}
	}
	h.mu.Lock()
	var full []string
	for n, r := range h.members {
		if r.state == memberUp && r.diskFloor {
			full = append(full, n)
		}
	}
	h.mu.Unlock()
	slices.Sort(full)
	for _, n := range full {
		if err := h.endFault(FaultDiskFloorOff, n, func() error { return h.setDisk(ctx, n, false) }); err != nil {
			return err
		}
	}
	return nil
}

// endFault applies kind to member n with apply at the end of the fault
// phase, and records it among the applied faults with its time and error.
func (h *harness) endFault(kind FaultKind, n string, apply func() error) error {
	a := AppliedFault{Fault: Fault{At: h.rec.now(), Kind: kind, Members: []string{n}}, Applied: h.rec.now(),
		Detail: "end of the fault phase"}
	err := apply()
	a.Took = h.rec.now() - a.Applied
	if err != nil {
		a.Error = err.Error()
	}
	h.mu.Lock()
	h.applied = append(h.applied, a)
	h.mu.Unlock()
	return err
}
