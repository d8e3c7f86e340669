package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/testclock"
	"github.com/heraldmsg/herald/internal/testredis"
)

// refusingRedis is a loopback server speaking just enough RESP to pass for a Redis that
// answers PING and reads but refuses every write with refusal, as a Redis at maxmemory with
// noeviction ("OOM ...") or a read-only replica ("READONLY ...") does.
func refusingRedis(t *testing.T, refusal string) (addr string, writes *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writes = new(atomic.Int64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					var reply string
					switch strings.ToUpper(args[0]) {
					case "PING":
						reply = "+PONG\r\n"
					case "SET", "DEL", "EXPIRE", "HSET", "LPUSH", "ZADD", "INCR":
						writes.Add(1)
						reply = "-" + refusal + "\r\n"
					case "GET":
						reply = "$-1\r\n"
					case "CLIENT", "SELECT":
						reply = "+OK\r\n"
					default: // HELLO among others: go-redis then speaks RESP2
						reply = fmt.Sprintf("-ERR unknown command '%s'\r\n", args[0])
					}
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), writes
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad array length %q", line)
	}
	args := make([]string, n)
	for i := range args {
		if line, err = r.ReadString('\n'); err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

func TestReadinessRefusedWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, refusal string }{
		{"MaxmemoryNoeviction", "OOM command not allowed when used memory > 'maxmemory'."},
		{"ReadOnlyReplica", "READONLY You can't write against a read only replica."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, writes := refusingRedis(t, tc.refusal)
			rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			t.Cleanup(func() { rdb.Close() })
			ctx := context.Background()
			// The old answer: PING passes.
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatalf("the fake should answer PING: %v", err)
			}
			r := NewReadiness(ReadinessConfig{Redis: rdb, Keys: []string{"herald:ready:test"}})
			err := r.Check(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.refusal) {
				t.Fatalf("Check = %v, want the refusal %q", err, tc.refusal)
			}
			var rerr redis.Error
			if !errors.As(err, &rerr) {
				t.Errorf("Check's error %v does not wrap the Redis error", err)
			}
			if writes.Load() != 1 {
				t.Errorf("%d writes reached Redis, want 1", writes.Load())
			}

			srv := httptest.NewServer(New().Mux(r.Check))
			t.Cleanup(srv.Close)
			code, body := get(t, srv.URL+"/readyz")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, tc.refusal) {
				t.Errorf("/readyz = %d %q, want 503 with the refusal", code, body)
			}
			if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz = %d, want 200", code)
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	type testBundle struct {
		mr    *miniredis.Miniredis
		rdb   *redis.Client
		clock *testclock.Clock
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		return &testBundle{mr: mr, rdb: rdb, clock: testclock.New(time.Unix(1_700_000_000, 0))}
	}
	ctx := context.Background()

	t.Run("WritesEveryKeyWithTTL", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		keys := []string{"herald:ready:{q1}:p", "herald:ready:{q2}:p"}
		r := NewReadiness(ReadinessConfig{Redis: b.rdb, Keys: keys, KeyTTL: 7 * time.Second, Now: b.clock.Now})
		if err := r.Check(ctx); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if ttl := b.mr.TTL(k); ttl != 7*time.Second {
				t.Errorf("%s TTL %v, want 7s", k, ttl)
			}
		}
	})

	t.Run("CachesTheAnswerForCacheFor", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := NewReadiness(ReadinessConfig{Redis: b.rdb, Keys: []string{"k"}, Now: b.clock.Now})
		if err := r.Check(ctx); err != nil {
			t.Fatal(err)
		}
		b.mr.SetError("OOM command not allowed when used memory > 'maxmemory'.")
		b.clock.Add(999 * time.Millisecond)
		for range 100 {
			if err := r.Check(ctx); err != nil {
				t.Fatalf("within CacheFor: %v, want the cached nil", err)
			}
		}
		b.clock.Add(time.Millisecond)
		if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "OOM") {
			t.Fatalf("after CacheFor: %v, want OOM", err)
		}
		b.mr.SetError("")
		if err := r.Check(ctx); err == nil {
			t.Fatal("a failure is cached too, want the cached OOM")
		}
		b.clock.Add(time.Second)
		if err := r.Check(ctx); err != nil {
			t.Fatalf("Redis is back: %v", err)
		}
	})

	t.Run("ConcurrentCallersShareOneProbe", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var probes atomic.Int64
		release := make(chan struct{})
		entered := make(chan struct{}, 1)
		r := NewReadiness(ReadinessConfig{Redis: b.rdb, Keys: []string{"k"}, Now: b.clock.Now,
			Checks: []func(context.Context) error{func(context.Context) error {
				if probes.Add(1) == 1 {
					entered <- struct{}{}
				}
				<-release
				return errors.New("worker not running")
			}}})
		const callers = 50
		errs := make(chan error, callers)
		go func() { errs <- r.Check(ctx) }()
		<-entered // the probe is under way
		for range callers - 1 {
			go func() { errs <- r.Check(ctx) }()
		}
		close(release)
		// The clock stands still: callers arriving during the probe share it, those arriving
		// after it get its answer from the cache. Either way one probe.
		for range callers {
			if err := <-errs; err == nil || err.Error() != "worker not running" {
				t.Fatalf("Check = %v, want the check's error", err)
			}
		}
		if n := probes.Load(); n != 1 {
			t.Fatalf("%d probes for %d concurrent callers, want 1", n, callers)
		}
	})

	t.Run("CallerGivingUpKeepsTheProbe", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		release := make(chan struct{})
		var probes atomic.Int64
		r := NewReadiness(ReadinessConfig{Redis: b.rdb, Keys: []string{"k"}, Now: b.clock.Now,
			Checks: []func(context.Context) error{func(context.Context) error {
				probes.Add(1)
				<-release
				return nil
			}}})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := r.Check(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Check with an ended context = %v, want context.Canceled", err)
		}
		close(release)
		if err := r.Check(ctx); err != nil {
			t.Fatalf("the probe a gone caller started: %v", err)
		}
		if n := probes.Load(); n != 1 {
			t.Fatalf("%d probes, want 1", n)
		}
	})

	t.Run("ChecksComeFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := NewReadiness(ReadinessConfig{Redis: b.rdb, Keys: []string{"k"}, Now: b.clock.Now,
			Checks: []func(context.Context) error{func(context.Context) error { return errors.New("scheduler not running") }}})
		if err := r.Check(ctx); err == nil || err.Error() != "scheduler not running" {
			t.Fatalf("Check = %v", err)
		}
		if b.mr.Exists("k") {
			t.Error("the write probe ran after a failed check")
		}
	})
}

// fakeServers is a ServerLister with a fixed answer.
type fakeServers struct {
	servers []*asynq.ServerInfo
	err     error
}

func (f fakeServers) Servers() ([]*asynq.ServerInfo, error) { return f.servers, f.err }

func TestAsynqServerUp(t *testing.T) {
	t.Parallel()
	host, pid := hostname(), os.Getpid()
	ours := func(status string, queues ...string) *asynq.ServerInfo {
		qs := map[string]int{}
		for _, q := range queues {
			qs[q] = 1
		}
		return &asynq.ServerInfo{Host: host, PID: pid, Queues: qs, Status: status}
	}
	other := ours("active", "a", "b")
	other.PID++
	for _, tc := range []struct {
		name    string
		servers fakeServers
		wantErr string
	}{
		{"Active", fakeServers{servers: []*asynq.ServerInfo{ours("active", "a", "b", "c")}}, ""},
		{"NoHeartbeat", fakeServers{}, "no heartbeat in Redis"},
		{"AnotherProcess", fakeServers{servers: []*asynq.ServerInfo{other}}, "no heartbeat in Redis"},
		{"OtherQueues", fakeServers{servers: []*asynq.ServerInfo{ours("active", "herald:expand")}}, "no heartbeat in Redis"},
		{"Stopped", fakeServers{servers: []*asynq.ServerInfo{ours("stopped", "a", "b")}}, "is stopped"},
		{"StoppedAndActive", fakeServers{servers: []*asynq.ServerInfo{ours("stopped", "a", "b"), ours("active", "a", "b")}}, ""},
		{"ListFails", fakeServers{err: errors.New("LOADING Redis is loading the dataset in memory")}, "LOADING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := AsynqServerUp(tc.servers, "a", "b")(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want ready", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if strings.Contains(tc.wantErr, "heartbeat") && !errors.Is(err, ErrNoServer) {
				t.Errorf("%v does not wrap ErrNoServer", err)
			}
		})
	}
}

// TestAsynqServerUpOnARealServer runs an asynq server on miniredis: the check passes once its
// first heartbeat lands and fails once the server has stopped.
func TestAsynqServerUpOnARealServer(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{"probe:q": 1}, LogLevel: asynq.FatalLevel})
	check := AsynqServerUp(asynq.NewInspectorFromRedisClient(rdb), "probe:q")
	if err := check(context.Background()); !errors.Is(err, ErrNoServer) {
		t.Fatalf("before Start: %v, want ErrNoServer", err)
	}
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the first heartbeat", func() bool { return check(context.Background()) == nil })
	srv.Shutdown()
	if err := check(context.Background()); !errors.Is(err, ErrNoServer) {
		t.Fatalf("after Shutdown: %v, want ErrNoServer", err)
	}
}

// waitFor polls cond every 10ms until it is true or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An unreachable Redis is reported as taking no write, with the dial error, not as refusing
// writes: nothing answered to refuse them.
func TestReadinessRedisUnreachable(t *testing.T) {
	t.Parallel()
	// A dial refused: not a closed miniredis, whose freed port another test process's server
	// may take before the dial.
	rdb := redis.NewClient(&redis.Options{Dialer: testredis.Refuse, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	r := NewReadiness(ReadinessConfig{Redis: rdb, Keys: []string{"herald:ready:test"}})
	err := r.Check(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "redis takes no write: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Check = %v, want \"redis takes no write: \" and the dial error", err)
	}
}
