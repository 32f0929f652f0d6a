// Package disk is a member's free-space guard: it refuses new workflows
// before the data directory's file system gets below
// Expert.MinFreeDiskBytes and holds steps' writes above a hard floor,
// estimating what accepted commands will write. It imports internal/errs
// and internal/wf.
package disk

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wf"
)

// Free-space accounting. A free-space reading lags the writes of what was
// just accepted (proposals in flight, Pebble write buffers), so between
// readings the guard subtracts an estimate of what each accepted command
// will write: its encoded size times diskWriteAmplification.
const (
	// diskWriteAmplification is how many bytes a command writes per byte of
	// its encoding: the Raft log entry goes to the LogDB's Pebble WAL and,
	// on flush, to an SST (2x); the state machine's record goes to the
	// state database's WAL and SST (2x). A start that runs steps rewrites
	// its state once per step that changes it, and compactions rewrite
	// both again; measured on a 400 MB tmpfs, 300 starts of 100 KB grew the
	// data directory by 3x their encoded size, with transient peaks of
	// 3.5x.
	diskWriteAmplification = 4
	// diskProbeInterval is how old a reading may get before the next
	// command re-reads the free space.
	diskProbeInterval = 250 * time.Millisecond
	// diskForcedProbeSpacing is the least time between the extra reading a
	// command takes before it is refused; it spares the file system a
	// statfs per refused call under a burst.
	diskForcedProbeSpacing = 10 * time.Millisecond
	// MonitorInterval is how often a member re-reads the free space
	// when no command does, so that readiness recovers by itself.
	MonitorInterval = time.Second
)

// Class is the kind of write a command is, which decides the floor it
// may not cross.
type Class int

const (
	// Intake: a new workflow. Refused below Expert.MinFreeDiskBytes.
	Intake Class = iota
	// Step: a step's claim or result of a workflow already accepted.
	// Refused (and retried by the executor) only below the hard floor,
	// half of Expert.MinFreeDiskBytes.
	Step
)

// Guard refuses new workflows before the data directory's file system
// gets below Expert.MinFreeDiskBytes, and holds the writes of running
// workflows' steps before it gets below half of that (the hard floor), so
// that neither the Raft log nor Pebble ever fails a write for lack of space.
//
// It keeps the last free-space reading and two sums of estimated bytes
// (command size times diskWriteAmplification): inflight, for commands
// accepted and not yet answered, and landed, for commands answered since
// the reading (their bytes may not show in it yet). A reading clears landed
// only; inflight commands stay charged until they are answered. The
// estimate is reading - inflight - landed. A command is refused when the
// estimate minus its own charge would cross its floor, after one fresh
// reading. Readings are taken at most diskProbeInterval apart while
// commands flow, at once when landed exceeds half the headroom above the
// floor, and every MonitorInterval by the monitor.
//
// What a reading cannot see in advance, Pebble's next WAL file (it
// preallocates a memtable's worth, 4.4 MiB by default) and a memtable flush
// or compaction in each of the two databases, is what the floors are for:
// Expert.MinFreeDiskBytes should be well above that (the 64 MiB default
// leaves a 32 MiB hard floor).
//
// All methods are safe for concurrent use; a nil *Guard accepts
// everything.
type Guard struct {
	dir    string
	min    uint64 // intake floor: Expert.MinFreeDiskBytes
	hard   uint64 // step floor: min / 2
	free   func(dir string) (uint64, error)
	onFull func(full bool) // told when the intake floor is crossed, either way
	log    *slog.Logger

	reserve *Reserve // the emergency reserve, nil without one (SetReserve)

	mu       sync.Mutex
	readAt   time.Time // when reading was taken; zero before the first
	reading  uint64    // free bytes at readAt
	known    bool      // the last probe succeeded
	inflight uint64    // estimated bytes of accepted commands not yet answered
	landed   uint64    // estimated bytes of commands answered since readAt
	full     bool      // estimate below min at the last reading

	missing bool // the monitor said the disk has no room for the reserve; monitor goroutine only

	life    sync.Mutex    // guards started and stopped
	started bool          // the monitor was started
	stopped bool          // StopMonitor was called
	stop    chan struct{} // closed by StopMonitor
	done    chan struct{} // closed when the monitor has returned
}

// New returns a guard of dir's file system with intake floor min
// (Expert.MinFreeDiskBytes) reading free space with free. onFull, if not
// nil, is called (with the guard's lock held; it must not call back) each
// time the estimate crosses min, with true when it went below.
func New(dir string, min uint64, free func(string) (uint64, error), onFull func(bool), log *slog.Logger) *Guard {
	if log == nil {
		log = slog.Default()
	}
	return &Guard{dir: dir, min: min, hard: min / 2, free: free, onFull: onFull, log: log,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// CommandBytes is the estimated bytes a command writes to this
// member's disk: its encoded size (raw) times diskWriteAmplification. A
// purge deletes (and in time frees space), so it is charged nothing and
// never refused.
func CommandBytes(op wf.Op, raw []byte) uint64 {
	if op == wf.OpPurge {
		return 0
	}
	return uint64(len(raw)) * diskWriteAmplification
}

// Reserve charges n estimated bytes against class's floor at time now. It
// returns a release function to call once the command is answered
// (committed, refused or failed), or an error that errors.Is
// errs.ErrStorageFull when the estimate minus n would cross the floor. A failed
// probe refuses nothing (the free space is unknown).
func (g *Guard) Reserve(now time.Time, n uint64, class Class) (release func(), err error) {
	if g == nil || g.min == 0 || n == 0 {
		return func() {}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stale(now) {
		g.probeLocked(now)
	}
	floor := g.min
	if class == Step {
		floor = g.hard
	}
	if g.known && g.estimateLocked() < floor+n && now.Sub(g.readAt) >= diskForcedProbeSpacing {
		g.probeLocked(now) // refuse only on a fresh reading
	}
	if est := g.estimateLocked(); g.known && est < floor+n {
		what := "below Expert.MinFreeDiskBytes"
		if class == Step {
			what = "below the hard floor for steps (half of Expert.MinFreeDiskBytes)"
		}
		return nil, fmt.Errorf("%w: %d bytes free under %s, %d of them promised to commands in flight or not yet on disk; "+
			"%d more would leave %s, %s (%d)", errs.ErrStorageFull, g.reading, g.dir, g.reading-est, n,
			sizeLeft(est, n), what, floor)
	}
	g.inflight += n
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.inflight -= n
			g.landed += n
		})
	}, nil
}

// sizeLeft formats est - n, which may be negative.
func sizeLeft(est, n uint64) string {
	if n > est {
		return fmt.Sprintf("-%d bytes", n-est)
	}
	return fmt.Sprintf("%d bytes", est-n)
}

// stale reports whether the reading should be renewed at now: it is older
// than diskProbeInterval, or (and it is older than diskForcedProbeSpacing)
// what landed since uses up half the headroom above the intake floor.
func (g *Guard) stale(now time.Time) bool {
	if g.readAt.IsZero() || now.Sub(g.readAt) >= diskProbeInterval {
		return true
	}
	return g.known && g.landed > 0 && g.landed >= (g.reading-min(g.reading, g.min))/2 &&
		now.Sub(g.readAt) >= diskForcedProbeSpacing
}

// estimateLocked is the free space left once every charged command's
// bytes are written: reading - inflight - landed, at least zero.
func (g *Guard) estimateLocked() uint64 {
	used := g.inflight + g.landed
	if used >= g.reading {
		return 0
	}
	return g.reading - used
}

// probeLocked takes a new reading at now and tells onFull when the
// estimate crossed the intake floor.
func (g *Guard) probeLocked(now time.Time) {
	g.readAt = now
	free, err := g.free(g.dir)
	if err != nil {
		if g.known {
			g.log.Warn("reading free disk space failed; not refusing work meanwhile", "dir", g.dir, "error", err)
		}
		g.known = false
		g.setFullLocked(false)
		return
	}
	g.known, g.reading, g.landed = true, free, 0
	g.setFullLocked(g.estimateLocked() < g.min)
}

func (g *Guard) setFullLocked(full bool) {
	if full == g.full {
		return
	}
	g.full = full
	if full {
		g.log.Warn("disk below Expert.MinFreeDiskBytes; refusing new workflows until space is freed",
			"dir", g.dir, "free_bytes", g.reading, "min_free_bytes", g.min)
	} else {
		g.log.Info("disk space available again; accepting new workflows", "dir", g.dir, "free_bytes", g.reading)
	}
	if g.onFull != nil {
		g.onFull(full)
	}
}

// Poll takes a reading at now if the last one is older than
// diskForcedProbeSpacing (the monitor's tick).
func (g *Guard) Poll(now time.Time) {
	if g == nil || g.min == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.readAt.IsZero() || now.Sub(g.readAt) >= diskForcedProbeSpacing {
		g.probeLocked(now)
	}
}

// StartMonitor starts the goroutine, owned by g and ended by StopMonitor,
// that polls every interval so that a member whose disk filled notices by
// itself when space returns. Later calls do nothing.
func (g *Guard) StartMonitor(interval time.Duration) {
	if g == nil || g.min == 0 {
		return
	}
	g.life.Lock()
	defer g.life.Unlock()
	if g.started || g.stopped {
		return
	}
	g.started = true
	go g.monitor(interval)
}

func (g *Guard) monitor(interval time.Duration) {
	defer close(g.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	g.Poll(time.Now())
	g.refill(time.Now())
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.Poll(now)
			g.refill(now)
		}
	}
}

// SetReserve gives the guard the member's emergency reserve: its monitor
// writes it whenever the disk has room for it (see refillFree), and
// DiskFull releases it. Call it before StartMonitor.
func (g *Guard) SetReserve(r *Reserve) {
	if g == nil {
		return
	}
	g.reserve = r
}

// refillFree is the free space the last reading must show for the monitor
// to write the reserve: the intake floor plus the reserve, so that writing
// it never takes the disk below the floor. (The reserve is released only
// by a write that found the disk full, far below the floor, so writing it
// back cannot cycle.)
func refillFree(min, reserve uint64) uint64 { return min + reserve }

// refill writes the reserve when it is missing and the last reading
// leaves room for it, then reads the free space again (the reserve took
// some). A member whose disk is too full to hold it says so once.
func (g *Guard) refill(now time.Time) {
	r := g.reserve
	if r == nil || r.Present() {
		return
	}
	g.mu.Lock()
	known, reading := g.known, g.reading
	g.mu.Unlock()
	if !known {
		return
	}
	if need := refillFree(g.min, r.Size()); reading < need {
		g.noteNoReserve(reading, need)
		return
	}
	if err := r.Fill(); err != nil {
		g.log.Warn("the emergency reserve could not be written; trying again later", "error", err)
		return
	}
	g.missing = false
	g.log.Info("emergency reserve in place", "path", r.path, "bytes", r.Size())
	g.mu.Lock()
	g.probeLocked(now)
	g.mu.Unlock()
}

// noteNoReserve logs, once until the reserve is written, that the disk has
// no room for it.
func (g *Guard) noteNoReserve(free, need uint64) {
	if g.missing {
		return
	}
	g.missing = true
	g.log.Warn("no emergency reserve: the disk has too little free space to write it; a disk filled by another program may end this member",
		"dir", g.dir, "free_bytes", free, "needs_free_bytes", need)
}

// DiskFull is what a member does when a write found the disk full
// (NoSpaceFS's callback): it
// releases the emergency reserve, so that the write can be retried into
// the space it gave back, and takes a fresh reading, which refuses new
// workflows and holds steps until space returns.
func (g *Guard) DiskFull() {
	if g == nil {
		return
	}
	released := g.reserve != nil && g.reserve.Release()
	g.mu.Lock()
	g.probeLocked(time.Now())
	free := g.reading
	g.mu.Unlock()
	if released {
		g.log.Error("the disk is full: released the emergency reserve for the writes in flight; refusing new workflows until space is freed",
			"dir", g.dir, "reserve_bytes", g.reserve.Size(), "free_bytes", free)
		return
	}
	g.log.Error("the disk is full and no emergency reserve is left: the write will fail", "dir", g.dir, "free_bytes", free)
}

// StopMonitor ends the monitor and waits for it; it may be called more
// than once, and without StartMonitor.
func (g *Guard) StopMonitor() {
	if g == nil || g.min == 0 {
		return
	}
	g.life.Lock()
	if !g.stopped {
		g.stopped = true
		close(g.stop)
	}
	started := g.started
	g.life.Unlock()
	if started {
		<-g.done
	}
}
