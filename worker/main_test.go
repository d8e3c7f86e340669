package worker

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the worker's sweep
// loop, its asynq server and the fakes the tests start run their own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
