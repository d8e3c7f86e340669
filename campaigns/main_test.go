package campaigns_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the plan's
// reader, resolvers and reorder stages and the row streams start their own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
