package serve_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: a process's parts (the
// receiver's sweep, the expansion server, the reclaimer) start their own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
