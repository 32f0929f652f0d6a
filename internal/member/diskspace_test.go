package member

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// fakeDisk is a file system whose free space the test sets; probes counts
// the readings.
type fakeDisk struct {
	mu     sync.Mutex
	free   uint64
	err    error
	probes int
}

func (d *fakeDisk) read(string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.probes++
	return d.free, d.err
}

func (d *fakeDisk) set(free uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free, d.err = free, err
}

type diskBundle struct {
	disk  *fakeDisk
	g     *diskGuard
	fulls []bool // onFull calls
	now   time.Time
}

func setupDisk(t *testing.T, free, min uint64) *diskBundle {
	t.Helper()
	b := &diskBundle{disk: &fakeDisk{free: free}, now: time.Unix(1000, 0)}
	b.g = newDiskGuard("/data", min, b.disk.read, func(full bool) { b.fulls = append(b.fulls, full) }, nil)
	return b
}

// A burst whose writes do not show in the readings yet (they sit in
// preallocated WAL space, or are still in flight) stops at the floor: each
// accepted command is charged until a reading can see it.
func TestDiskGuardBurstStopsAtFloor(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 1000, 400)
	accepted := 0
	var refusal error
	for range 100 {
		_, err := b.g.reserve(b.now, 100, diskIntake) // never released: still in flight
		if err != nil {
			refusal = err
			break
		}
		accepted++
	}
	require.Equal(t, 6, accepted, "1000 free - 6*100 = 400: the seventh would cross the floor")
	require.ErrorIs(t, refusal, errs.ErrStorageFull)
	require.ErrorContains(t, refusal, "1000 bytes free under /data, 600 of them promised")
	require.ErrorContains(t, refusal, "below Expert.MinFreeDiskBytes (400)")
	require.Equal(t, 1, b.disk.probes, "a refusal at the same instant trusts the reading it has")

	// Steps of accepted workflows go on down to the hard floor (200).
	for range 2 {
		_, err := b.g.reserve(b.now, 100, diskStep)
		require.NoError(t, err)
	}
	_, err := b.g.reserve(b.now.Add(time.Second), 100, diskStep)
	require.ErrorIs(t, err, errs.ErrStorageFull)
	require.ErrorContains(t, err, "hard floor for steps")
	require.Equal(t, []bool{true}, b.fulls, "the estimate went below the intake floor")
}

// Answered commands stay charged until the next reading, which then shows
// what they wrote; in-flight ones stay charged across readings.
func TestDiskGuardChargesUntilRead(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 10_000, 1_000)
	rel1, err := b.g.reserve(b.now, 3_000, diskIntake)
	require.NoError(t, err)
	rel2, err := b.g.reserve(b.now, 3_000, diskIntake)
	require.NoError(t, err)
	rel1()
	rel1() // twice is harmless
	_, err = b.g.reserve(b.now, 3_001, diskIntake)
	require.ErrorIs(t, err, errs.ErrStorageFull, "the released 3000 landed but no reading shows it")

	b.disk.set(7_000, nil) // the first command's bytes show now
	later := b.now.Add(diskProbeInterval)
	_, err = b.g.reserve(later, 3_001, diskIntake)
	require.ErrorIs(t, err, errs.ErrStorageFull, "7000 - 3000 (still in flight) - 3001 < 1000")
	rel, err := b.g.reserve(later, 3_000, diskIntake)
	require.NoError(t, err, "7000 - 3000 - 3000 = 1000: at the floor")
	rel()
	rel2()
	require.Empty(t, b.fulls)
}

// Landed bytes using up half the headroom trigger a reading before the
// interval is over.
func TestDiskGuardRereadsWhenEstimateRunsLow(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 2_000, 1_000)
	rel, err := b.g.reserve(b.now, 500, diskIntake)
	require.NoError(t, err)
	rel()
	require.Equal(t, 1, b.disk.probes)
	_, err = b.g.reserve(b.now.Add(diskForcedProbeSpacing), 1, diskIntake)
	require.NoError(t, err)
	require.Equal(t, 2, b.disk.probes, "500 landed of 1000 headroom: read again")
}

func TestDiskGuardRecovers(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 100, 500)
	_, err := b.g.reserve(b.now, 1, diskIntake)
	require.ErrorIs(t, err, errs.ErrStorageFull)
	require.Equal(t, []bool{true}, b.fulls)

	b.disk.set(10_000, nil)
	b.g.poll(b.now.Add(time.Millisecond)) // too soon after the last reading
	require.Equal(t, []bool{true}, b.fulls)
	b.g.poll(b.now.Add(time.Second))
	require.Equal(t, []bool{true, false}, b.fulls, "space freed: intake resumes")
	_, err = b.g.reserve(b.now.Add(time.Second), 1, diskIntake)
	require.NoError(t, err)
}

func TestDiskGuardUnknownFreeSpace(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 0, 500)
	b.disk.set(0, errors.New("statfs failed"))
	_, err := b.g.reserve(b.now, 100, diskIntake)
	require.NoError(t, err, "a failed probe does not refuse work")
	require.Empty(t, b.fulls)
}

func TestDiskGuardOff(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	for name, g := range map[string]*diskGuard{
		"nil":          nil,
		"zero minimum": newDiskGuard("/data", 0, func(string) (uint64, error) { return 0, nil }, nil, nil),
	} {
		t.Run(name, func(t *testing.T) {
			rel, err := g.reserve(now, 1<<40, diskIntake)
			require.NoError(t, err)
			rel()
			g.poll(now)
			g.startMonitor(time.Millisecond)
			g.stopMonitor()
		})
	}
}

func TestCommandDiskBytes(t *testing.T) {
	t.Parallel()
	start := &wf.Command{Op: wf.OpStart, WF: "w", State: []byte(`{"a":"` + string(make([]byte, 1000)) + `"}`)}
	raw, err := wf.EncodeCommand(start)
	require.NoError(t, err)
	require.Equal(t, uint64(len(raw))*diskWriteAmplification, commandDiskBytes(start.Op, raw))
	require.Zero(t, commandDiskBytes(wf.OpPurge, raw), "purges free space")
}

// The monitor reads on its own, so readiness recovers without traffic;
// stopping it twice, or before it started, is fine.
func TestDiskGuardMonitor(t *testing.T) {
	t.Parallel()
	fulls := make(chan bool, 4)
	disk := &fakeDisk{free: 10}
	g := newDiskGuard("/data", 100, disk.read, func(full bool) { fulls <- full }, nil)
	g.startMonitor(time.Millisecond)
	g.startMonitor(time.Millisecond)
	require.True(t, <-fulls)
	disk.set(1000, nil)
	require.False(t, <-fulls)
	g.stopMonitor()
	g.stopMonitor()

	idle := newDiskGuard("/data", 100, disk.read, nil, nil)
	idle.stopMonitor()
	idle.startMonitor(time.Millisecond) // after stop: never starts
	idle.stopMonitor()
}

func TestFreeBytesOfTempDir(t *testing.T) {
	t.Parallel()
	n, err := freeBytes(t.TempDir())
	require.NoError(t, err)
	require.Positive(t, n)
}

// Before refusing, a command takes a fresh reading if the last one is
// older than diskForcedProbeSpacing: space freed a moment ago counts.
func TestDiskGuardRereadsBeforeRefusing(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 1_000, 900)
	_, err := b.g.reserve(b.now, 200, diskIntake)
	require.ErrorIs(t, err, errs.ErrStorageFull)
	b.disk.set(5_000, nil)
	_, err = b.g.reserve(b.now.Add(diskForcedProbeSpacing), 200, diskIntake)
	require.NoError(t, err)
	require.Equal(t, 2, b.disk.probes)
}

// A full disk shows as "storage-full" only while the member is ready, and
// every change wakes WaitUntilReady's waiters.
func TestReadinessStorageFull(t *testing.T) {
	t.Parallel()
	var r readinessState
	r.setFull(true)
	p, _, changed := r.snapshot()
	require.Equal(t, Starting, p.String(), "not ready yet: starting wins")
	r.set(phaseReady, false)
	<-changed
	p, _, changed = r.snapshot()
	require.Equal(t, StorageFull, p.String())
	r.setFull(false)
	<-changed
	p, _, changed = r.snapshot()
	require.Equal(t, Ready, p.String())
	r.setFull(true)
	<-changed
	r.set(phaseStopped, true)
	p, sealed, _ := r.snapshot()
	require.True(t, sealed)
	require.Equal(t, Stopped, p.String())
}
