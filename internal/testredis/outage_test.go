package testredis

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// wantRefused fails the test unless err is a dial refused as a port nobody listens on refuses.
func wantRefused(t *testing.T, what string, err error) {
	t.Helper()
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%s: %v (%T), want a *net.OpError dial, connection refused", what, err, err)
	}
}

// An Outage forwards to the miniredis while up; once cut, the connections it made fail, new
// ones are refused (Dial) or closed (Addr), its port stays bound and the miniredis keeps its
// data; restored, both kinds of client reach the miniredis again.
func TestOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr := miniredis.RunT(t)
	o := NewOutage(t, mr.Addr())
	viaDial := redis.NewClient(&redis.Options{Dialer: o.Dial, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { viaDial.Close() })
	viaAddr := redis.NewClient(&redis.Options{Addr: o.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { viaAddr.Close() })
	if err := viaDial.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := viaAddr.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("Get through Addr = %q, %v", got, err)
	}
	// Connections made before the cut, held as a pool holds them.
	held := viaDial.Conn()
	t.Cleanup(func() { held.Close() })
	if err := held.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	o.Cut()
	if err := held.Ping(ctx).Err(); err == nil {
		t.Error("a connection made before the cut still answers")
	}
	wantRefused(t, "a command through Dial", viaDial.Ping(ctx).Err())
	if err := viaAddr.Ping(ctx).Err(); err == nil {
		t.Error("a command through Addr succeeded")
	}
	if ln, err := net.Listen("tcp", o.Addr()); err == nil {
		ln.Close()
		t.Error("the Outage's port was free during the outage")
	}
	if got, err := mr.Get("k"); err != nil || got != "v" {
		t.Errorf("the miniredis during the outage: %q, %v", got, err)
	}

	o.Restore()
	for name, c := range map[string]*redis.Client{"Dial": viaDial, "Addr": viaAddr} {
		if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
			t.Errorf("Get through %s after Restore = %q, %v", name, got, err)
		}
	}
}

// A cut while commands run: every command fails or succeeds, none hangs, and the Outage
// closes cleanly (run with -race).
func TestOutageCutUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr := miniredis.RunT(t)
	o := NewOutage(t, mr.Addr())
	rdb := redis.NewClient(&redis.Options{Dialer: o.Dial, MaxRetries: -1, DialerRetries: 1, PoolSize: 4})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					rdb.Incr(ctx, "n")
				}
			}
		}()
	}
	WaitUntil(t, 10*time.Second, "some commands to run", func() bool { n, _ := mr.Get("n"); return n != "" && n != "0" })
	o.Cut()
	wantRefused(t, "a command after the cut", rdb.Ping(ctx).Err())
	close(stop)
	wg.Wait()
}

// MiniOutage's client reaches its miniredis until the cut, then is refused.
func TestMiniOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr, rdb, o := MiniOutage(t)
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := mr.Get("k"); err != nil || got != "v" {
		t.Fatalf("the miniredis holds %q, %v", got, err)
	}
	o.Cut()
	if err := rdb.Get(ctx, "k").Err(); err == nil {
		t.Error("Get after the cut succeeded")
	}
}

// Refuse refuses every dial as a port nobody listens on does.
func TestRefuse(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6390", Dialer: Refuse, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	err := rdb.Ping(context.Background()).Err()
	wantRefused(t, "Ping", err)
	if want := "dial tcp 127.0.0.1:6390: connect: connection refused"; err == nil || err.Error() != want {
		t.Errorf("Ping = %v, want %q", err, want)
	}
}
