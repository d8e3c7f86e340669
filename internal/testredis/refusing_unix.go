//go:build unix

package testredis

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// RefusingAddr returns an address of 127.0.0.1 where every connection is refused
// (ECONNREFUSED) until the test ends, for a Redis that is down in a process the test starts,
// which takes only a URL. A listener closed to free its port will not do: another test
// process may take the port before the dial. This is a TCP socket bound to a port and never
// listening: a connection to it is refused, and as it is bound without SO_REUSEADDR no other
// socket can bind the port (nor is it given to an outgoing connection) while it is open.
func RefusingAddr(tb testing.TB) string {
	tb.Helper()
	// As the net package opens a socket where SOCK_CLOEXEC is not to be had: not inherited
	// by a process started meanwhile (the test's own command, which would hold the port).
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		tb.Fatalf("socket: %v", err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatalf("getsockname: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		tb.Fatalf("getsockname: a %T", sa)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port))
}
