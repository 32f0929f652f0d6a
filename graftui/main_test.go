package graftui_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: the
// members the tests start, and the browser sessions, must end theirs.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
