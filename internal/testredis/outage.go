package testredis

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Outage plays Redis going down, and coming back, for the clients of a miniredis without
// ever freeing a port. Closing the miniredis would free its port, and another test process's
// server (go test runs packages in parallel processes) may take it at once: the client's next
// command then reaches that server, and the test fails, or passes for the wrong reason.
//
// An Outage forwards connections, through a listener of its own on 127.0.0.1, to the Redis it
// stands before. Cut closes every connection it forwards, so a client's pooled connections
// fail as when the server goes away; from then on Dial refuses every new connection as a port
// nobody listens on does, and the listener, still bound, closes each connection it accepts.
// Restore ends the outage. The Redis behind keeps running, its data too, until its own
// cleanup.
type Outage struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	down   bool
	closed bool
	conns  map[net.Conn]struct{}

	wg sync.WaitGroup
}

// NewOutage starts an Outage before the Redis at upstream (host:port, e.g. a miniredis's
// Addr), up. It is closed when the test ends: create it after the miniredis and before the
// clients, so that the clients are closed first and the miniredis last.
func NewOutage(tb testing.TB, upstream string) *Outage {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o := &Outage{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	o.wg.Add(1)
	go o.accept()
	tb.Cleanup(o.close)
	return o
}

// MiniOutage is Mini with an Outage between the client and the miniredis: the client dials
// through the Outage (Dial), for a test of Redis going down (Cut) and maybe coming back.
func MiniOutage(tb testing.TB) (*miniredis.Miniredis, *redis.Client, *Outage) {
	tb.Helper()
	m := miniredis.RunT(tb)
	o := NewOutage(tb, m.Addr())
	rdb := redis.NewClient(&redis.Options{Dialer: o.Dial})
	tb.Cleanup(func() { rdb.Close() })
	return m, rdb, o
}

// Addr is the address of the Outage's listener, for a client built from an address or a URL
// only. Once cut, a client there connects, then reads EOF (not "connection refused"). A
// client whose options take a Dialer should take Dial instead.
func (o *Outage) Addr() string { return o.ln.Addr().String() }

// Dial is a go-redis Dialer (redis.Options.Dialer): while the Outage is up it connects to
// Addr, whatever address it is given; once cut, it refuses at once with the error a port
// nobody listens on gives, a *net.OpError (op "dial", ECONNREFUSED).
func (o *Outage) Dial(ctx context.Context, network, _ string) (net.Conn, error) {
	o.mu.Lock()
	down := o.down
	o.mu.Unlock()
	if down {
		return nil, refusal(network, o.Addr())
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", o.Addr())
}

// Cut starts the outage: every connection forwarded is closed (both its ends) before Cut
// returns, and every later one is refused (Dial) or closed at once (Addr). A connection being
// dialed as Cut is called may still be accepted, and then closed at once.
func (o *Outage) Cut() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = true
	for c := range o.conns {
		c.Close()
	}
	clear(o.conns)
}

// Restore ends the outage: new connections are forwarded to the Redis again.
func (o *Outage) Restore() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = false
}

// close stops listening, closes every connection and waits for the forwarding to end.
func (o *Outage) close() {
	o.mu.Lock()
	o.closed = true
	o.ln.Close()
	for c := range o.conns {
		c.Close()
	}
	clear(o.conns)
	o.mu.Unlock()
	o.wg.Wait()
}

func (o *Outage) accept() {
	defer o.wg.Done()
	for {
		c, err := o.ln.Accept()
		if err != nil {
			return
		}
		o.mu.Lock()
		down := o.down
		o.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		u, err := net.DialTimeout("tcp", o.upstream, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		o.mu.Lock()
		if o.down || o.closed { // cut while dialing upstream
			o.mu.Unlock()
			c.Close()
			u.Close()
			continue
		}
		o.conns[c], o.conns[u] = struct{}{}, struct{}{}
		o.wg.Add(2)
		o.mu.Unlock()
		go o.forward(c, u)
		go o.forward(u, c)
	}
}

// forward copies from src to dst until either ends, then closes both.
func (o *Outage) forward(src, dst net.Conn) {
	defer o.wg.Done()
	_, _ = io.Copy(dst, src)
	o.mu.Lock()
	delete(o.conns, src)
	delete(o.conns, dst)
	o.mu.Unlock()
	src.Close()
	dst.Close()
}

// Refuse is a go-redis Dialer (redis.Options.Dialer) that never connects: it refuses every
// dial with the error a port nobody listens on gives, a *net.OpError (op "dial",
// ECONNREFUSED), for a client of a Redis that is down from the start.
func Refuse(_ context.Context, network, addr string) (net.Conn, error) {
	return nil, refusal(network, addr)
}

// refusal is the error net.Dial returns for a connection to addr that was refused.
func refusal(network, addr string) error {
	err := &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if ap, perr := netip.ParseAddrPort(addr); perr == nil {
		err.Addr = net.TCPAddrFromAddrPort(ap)
	}
	return err
}
