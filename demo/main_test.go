package demo_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the demo starts an
// in-process Redis with its clock, a receiver, a fake Connectly and a worker, and must stop
// them all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
