// Package alloctest checks that decoding bytes from a peer allocates at
// most a bound derived from the input's length, for the fuzz targets and
// decode tests of the member RPC and the layout file. It is used only by
// tests and imports the standard library and testify.
package alloctest

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// Bound is the most bytes one decode of an n-byte input may allocate: 16
// bytes per input byte, plus 256 KiB for decoder buffers and fixed-size
// structures (at most wire.MaxEventBatch events of an event batch).
func Bound(n int) uint64 { return 16*uint64(n) + 256<<10 }

// RequireBounded runs decode and fails t if it allocated more than
// Bound(n).
func RequireBounded(t testing.TB, n int, decode func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	decode()
	runtime.ReadMemStats(&after)
	got := after.TotalAlloc - before.TotalAlloc
	require.LessOrEqual(t, got, Bound(n), "decoding %d bytes allocated %d bytes", n, got)
}
