package graft_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// Manager a test starts must end all of its goroutines in Stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
