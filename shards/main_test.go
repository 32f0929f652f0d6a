package shards

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. Dragonboat's NodeHost.Close and
// Pebble's Close stop all of their goroutines, so no ignores are needed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
