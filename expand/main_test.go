package expand_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the expander's
// two-stage writer and the expansion server start their own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
