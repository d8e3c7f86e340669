package webhooks

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the receiver
// starts its own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
