package fakeconnectly

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: the fake's HTTP
// server and its webhook dispatcher and senders start their own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
