package scheduler_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the expander's
// writer, the cron loop and the expansion server all start their own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
