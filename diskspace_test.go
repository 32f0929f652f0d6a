package graft

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDiskGuard(t *testing.T) {
	t.Parallel()
	free, probeErr := uint64(100), error(nil)
	probes := 0
	g := &diskGuard{dir: "/data", min: 50, free: func(string) (uint64, error) {
		probes++
		return free, probeErr
	}}
	now := time.Unix(1000, 0)
	require.NoError(t, g.check(now))

	free = 10
	require.NoError(t, g.check(now.Add(500*time.Millisecond)), "cached for a second")
	require.Equal(t, 1, probes)
	err := g.check(now.Add(time.Second))
	require.ErrorIs(t, err, ErrStorageFull)
	require.ErrorContains(t, err, "10 bytes free under /data, below Expert.MinFreeDiskBytes (50)")

	probeErr = errors.New("statfs failed")
	require.NoError(t, g.check(now.Add(2*time.Second)), "a failed probe does not refuse work")

	var off *diskGuard
	require.NoError(t, off.check(now), "no guard configured")
	require.NoError(t, (&diskGuard{}).check(now), "zero minimum")
}

func TestFreeBytesOfTempDir(t *testing.T) {
	t.Parallel()
	n, err := freeBytes(t.TempDir())
	require.NoError(t, err)
	require.Positive(t, n)
}
