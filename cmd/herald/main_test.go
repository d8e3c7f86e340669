package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the commands start
// servers, workers, schedulers and webhook receivers that must all stop with them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
