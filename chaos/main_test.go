package chaos_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eleven-am/graft/chaos"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// memberlist, NodeHost, listener and Network a test starts must stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newNetwork returns a Network closed at the end of the test; the seed is
// printed if the test fails.
func newNetwork(t *testing.T, seed int64) *chaos.Network {
	t.Helper()
	n := chaos.NewNetwork(seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos seed: %d", n.Seed())
		}
		if err := n.Close(); err != nil {
			t.Errorf("Network.Close: %v", err)
		}
	})
	return n
}

// eventually retries f every tick until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		<-tick.C
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
