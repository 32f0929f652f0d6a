package disk

import (
	"errors"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/disk/disktest"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

type diskBundle struct {
	disk  *disktest.Disk
	g     *Guard
	fulls []bool // onFull calls
	now   time.Time
}

func setupDisk(t *testing.T, free, min uint64) *diskBundle {
	t.Helper()
	b := &diskBundle{disk: disktest.New(free), now: time.Unix(1000, 0)}
	b.g = New("/data", min, b.disk.Free, func(full bool) { b.fulls = append(b.fulls, full) }, nil)
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
		_, err := b.g.Reserve(b.now, 100, Intake) // never released: still in flight
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
	require.Equal(t, 1, b.disk.Probes(), "a refusal at the same instant trusts the reading it has")

	// Steps of accepted workflows go on down to the hard floor (200).
	for range 2 {
		_, err := b.g.Reserve(b.now, 100, Step)
		require.NoError(t, err)
	}
	_, err := b.g.Reserve(b.now.Add(time.Second), 100, Step)
	require.ErrorIs(t, err, errs.ErrStorageFull)
	require.ErrorContains(t, err, "hard floor for steps")
	require.Equal(t, []bool{true}, b.fulls, "the estimate went below the intake floor")
}

// Answered commands stay charged until the next reading, which then shows
// what they wrote; in-flight ones stay charged across readings.
func TestDiskGuardChargesUntilRead(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 10_000, 1_000)
	rel1, err := b.g.Reserve(b.now, 3_000, Intake)
	require.NoError(t, err)
	rel2, err := b.g.Reserve(b.now, 3_000, Intake)
	require.NoError(t, err)
	rel1()
	rel1() // twice is harmless
	_, err = b.g.Reserve(b.now, 3_001, Intake)
	require.ErrorIs(t, err, errs.ErrStorageFull, "the released 3000 landed but no reading shows it")

	b.disk.Set(7_000, nil) // the first command's bytes show now
	later := b.now.Add(diskProbeInterval)
	_, err = b.g.Reserve(later, 3_001, Intake)
	require.ErrorIs(t, err, errs.ErrStorageFull, "7000 - 3000 (still in flight) - 3001 < 1000")
	rel, err := b.g.Reserve(later, 3_000, Intake)
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
	rel, err := b.g.Reserve(b.now, 500, Intake)
	require.NoError(t, err)
	rel()
	require.Equal(t, 1, b.disk.Probes())
	_, err = b.g.Reserve(b.now.Add(diskForcedProbeSpacing), 1, Intake)
	require.NoError(t, err)
	require.Equal(t, 2, b.disk.Probes(), "500 landed of 1000 headroom: read again")
}

func TestDiskGuardRecovers(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 100, 500)
	_, err := b.g.Reserve(b.now, 1, Intake)
	require.ErrorIs(t, err, errs.ErrStorageFull)
	require.Equal(t, []bool{true}, b.fulls)

	b.disk.Set(10_000, nil)
	b.g.Poll(b.now.Add(time.Millisecond)) // too soon after the last reading
	require.Equal(t, []bool{true}, b.fulls)
	b.g.Poll(b.now.Add(time.Second))
	require.Equal(t, []bool{true, false}, b.fulls, "space freed: intake resumes")
	_, err = b.g.Reserve(b.now.Add(time.Second), 1, Intake)
	require.NoError(t, err)
}

func TestDiskGuardUnknownFreeSpace(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 0, 500)
	b.disk.Set(0, errors.New("statfs failed"))
	_, err := b.g.Reserve(b.now, 100, Intake)
	require.NoError(t, err, "a failed probe does not refuse work")
	require.Empty(t, b.fulls)
}

func TestDiskGuardOff(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	for name, g := range map[string]*Guard{
		"nil":          nil,
		"zero minimum": New("/data", 0, func(string) (uint64, error) { return 0, nil }, nil, nil),
	} {
		t.Run(name, func(t *testing.T) {
			rel, err := g.Reserve(now, 1<<40, Intake)
			require.NoError(t, err)
			rel()
			g.Poll(now)
			g.StartMonitor(time.Millisecond)
			g.StopMonitor()
		})
	}
}

func TestCommandDiskBytes(t *testing.T) {
	t.Parallel()
	start := &wf.Command{Op: wf.OpStart, WF: "w", State: []byte(`{"a":"` + string(make([]byte, 1000)) + `"}`)}
	raw, err := wf.EncodeCommand(start)
	require.NoError(t, err)
	require.Equal(t, uint64(len(raw))*diskWriteAmplification, CommandBytes(start.Op, raw))
	require.Zero(t, CommandBytes(wf.OpPurge, raw), "purges free space")
}

// The monitor reads on its own, so readiness recovers without traffic;
// stopping it twice, or before it started, is fine.
func TestDiskGuardMonitor(t *testing.T) {
	t.Parallel()
	fulls := make(chan bool, 4)
	disk := disktest.New(10)
	g := New("/data", 100, disk.Free, func(full bool) { fulls <- full }, nil)
	g.StartMonitor(time.Millisecond)
	g.StartMonitor(time.Millisecond)
	require.True(t, <-fulls)
	disk.Set(1000, nil)
	require.False(t, <-fulls)
	g.StopMonitor()
	g.StopMonitor()

	idle := New("/data", 100, disk.Free, nil, nil)
	idle.StopMonitor()
	idle.StartMonitor(time.Millisecond) // after stop: never starts
	idle.StopMonitor()
}

func TestFreeBytesOfTempDir(t *testing.T) {
	t.Parallel()
	n, err := FreeBytes(t.TempDir())
	require.NoError(t, err)
	require.Positive(t, n)
}

// Before refusing, a command takes a fresh reading if the last one is
// older than diskForcedProbeSpacing: space freed a moment ago counts.
func TestDiskGuardRereadsBeforeRefusing(t *testing.T) {
	t.Parallel()
	b := setupDisk(t, 1_000, 900)
	_, err := b.g.Reserve(b.now, 200, Intake)
	require.ErrorIs(t, err, errs.ErrStorageFull)
	b.disk.Set(5_000, nil)
	_, err = b.g.Reserve(b.now.Add(diskForcedProbeSpacing), 200, Intake)
	require.NoError(t, err)
	require.Equal(t, 2, b.disk.Probes())
}
