//go:build unix

package testredis

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// RefusingAddr refuses every connection, and its port cannot be bound by anyone else.
func TestRefusingAddr(t *testing.T) {
	t.Parallel()
	addr := RefusingAddr(t)
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	wantRefused(t, "a dial", err)
	for _, a := range []string{addr, "0.0.0.0:" + addr[len("127.0.0.1:"):]} {
		if ln, err := net.Listen("tcp", a); !errors.Is(err, syscall.EADDRINUSE) {
			if err == nil {
				ln.Close()
			}
			t.Errorf("listen on %s: %v, want EADDRINUSE", a, err)
		}
	}
}
