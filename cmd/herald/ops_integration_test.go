package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// scrapeSends fetches /metrics and sums herald_sends_total by outcome.
func scrapeSends(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sums := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "herald_sends_total{") {
			continue
		}
		i := strings.Index(line, `outcome="`)
		j := strings.LastIndex(line, " ")
		if i < 0 || j < 0 {
			t.Fatalf("unexpected metric line %q", line)
		}
		outcome := line[i+9:]
		outcome = outcome[:strings.Index(outcome, `"`)]
		v, err := strconv.ParseFloat(line[j+1:], 64)
		if err != nil {
			t.Fatal(err)
		}
		sums[outcome] += v
	}
	return sums
}

// TestIntegrationMetricsMatchRunShow scrapes /metrics after a run with the demo's fault mix:
// the send counters add up to what the ledger (and so `herald run show`) reports.
func TestIntegrationMetricsMatchRunShow(t *testing.T) {
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	_, url := startFake(t, fakeconnectly.DemoRules())
	def := writeCampaign(t, t.TempDir(), "metrics", "at-most-once", 2000)
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: itBusiness, APIKey: itKey})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{Concurrency: 30, Backoff: backoff.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond},
		ThrottleDelay: 100 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 50 * time.Millisecond,
		Limits: limits.Config{BusinessID: itBusiness, BusinessRate: 20000, DefaultSenderRate: 20000, PairInterval: -1}},
		worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop(), Metrics: m})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(); w.Shutdown() })
	m.Register(metrics.NewRunCollector(ledger.New(rdb, nil)))
	ops := httptest.NewServer(m.Mux(func(context.Context) error { return nil }))
	defer ops.Close()

	l := ledger.New(rdb, nil)
	waitFor(t, 2*time.Minute, "the run to complete", func() bool { return runStatus(t, l, run.ID) == ledger.RunCompleted })
	c, err := l.Counters(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := scrapeSends(t, ops.URL)
	want := map[string]float64{
		metrics.OutcomeAccepted:  float64(c.States[ledger.Accepted]),
		metrics.OutcomeFailed:    float64(c.States[ledger.Failed]),
		metrics.OutcomeUnknown:   float64(c.States[ledger.Unknown]),
		metrics.OutcomeRetried:   float64(c.Retries),
		metrics.OutcomeThrottled: float64(c.Throttled),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("herald_sends_total{outcome=%q} = %v, ledger says %v", k, got[k], v)
		}
	}
	// The demo's 5xx leave recipients unknown under at-most-once (none is retried), its 429s
	// throttle.
	if want[metrics.OutcomeAccepted] == 0 || want[metrics.OutcomeFailed] == 0 || want[metrics.OutcomeUnknown] == 0 ||
		want[metrics.OutcomeThrottled] == 0 {
		t.Fatalf("fault mix too thin: %v", want)
	}
	t.Logf("scraped %v", got)
}

// TestIntegrationReadyzFollowsRedis runs `herald worker --metrics-listen` against a Redis
// server of its own, stops that server and starts it again: /readyz turns unready within 5
// seconds and ready again after Redis returns; /healthz stays 200 throughout.
func TestIntegrationReadyzFollowsRedis(t *testing.T) {
	if os.Getenv("HERALD_TEST_REDIS") == "" {
		t.Skip("integration test: set HERALD_TEST_REDIS=redis://127.0.0.1:6379/15 (it also needs redis-server on PATH)")
	}
	// The server is the test's own, on a port picked at random and checked to be answered by
	// it (testredis.StartServer): a run of this test at the same time as another (a second
	// checkout, CI) must not stop, or talk to, the other's server.
	dir := t.TempDir()
	srv := testredis.StartServer(t, dir, "redis", "bind 127.0.0.1\nsave \"\"\nappendonly no\ndir "+dir+"\n")
	port := srv.Port

	opsPort := freePort(t)
	cfg := writeConfig(t, "log: {level: error, format: json}\n")
	wbin, err := buildHerald()
	if err != nil {
		t.Fatal(err)
	}
	w := exec.Command(wbin, "worker", "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", opsPort))
	w.Env = append(os.Environ(), "HERALD_CONFIG="+cfg, fmt.Sprintf("HERALD_REDIS_URL=redis://127.0.0.1:%d/0", port),
		"CONNECTLY_BUSINESS_ID=b", "CONNECTLY_API_KEY=k", "CONNECTLY_BASE_URL=http://127.0.0.1:1")
	w.Stdout, w.Stderr = io.Discard, io.Discard
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.Process.Kill()
		_ = w.Wait()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	status := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 15*time.Second, "/readyz 200", func() bool { return status("/readyz") == 200 })

	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	waitFor(t, 5*time.Second, "/readyz 503 after Redis went away", func() bool { return status("/readyz") == 503 })
	t.Logf("unready %s after Redis went away", time.Since(gone).Round(time.Millisecond))
	if s := status("/healthz"); s != 200 {
		t.Fatalf("/healthz = %d while Redis is away, want 200", s)
	}
	restartRedis(t, srv, dir, "redis")
	waitFor(t, 15*time.Second, "/readyz 200 after Redis returned", func() bool { return status("/readyz") == 200 })
}

// restartRedis starts redis-server again, for the test that killed s, with the configuration
// testredis.StartServer wrote for it (dir/name.conf, which names its port), and returns once
// the server answering on that port is the process it started; it is killed when the test
// ends. The port cannot change (the worker was given it), so unlike StartServer it cannot
// try another: when another process took the port meanwhile, the test fails saying so
// rather than use that process's server.
func restartRedis(t *testing.T, s *testredis.Server, dir, name string) {
	t.Helper()
	// The killed server must be gone (its port free) before another binds it.
	waitFor(t, 10*time.Second, "the killed redis-server to exit", func() bool {
		return errors.Is(s.Process.Signal(syscall.Signal(0)), os.ErrProcessDone)
	})
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join(dir, name+".conf"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	ctx := context.Background()
	waitFor(t, 30*time.Second, "redis-server to answer again on port "+strconv.Itoa(s.Port), func() bool {
		select {
		case <-done:
			t.Fatalf("redis-server did not start again on port %d (taken by another process meanwhile?): %s",
				s.Port, strings.TrimSpace(out.String()))
		default:
		}
		info, err := rdb.Info(ctx, "server").Result()
		if err != nil {
			return false
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
				if pid, _ := strconv.Atoi(v); pid != cmd.Process.Pid {
					t.Fatalf("another redis-server (process %s) answers on port %d", v, s.Port)
				}
				return true
			}
		}
		return false
	})
}

// opsGet fetches url and returns its status and body (status 0 when nothing answers).
func opsGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// freePort returns a loopback TCP port that was free a moment ago, given by the kernel (not
// found by a scan, so runs at the same time get different ones), for a listener of Herald's
// own (the worker's --metrics-listen). Should another process take it before Herald listens,
// Herald fails to start and the test fails; nothing else is at stake. A redis-server a test
// starts uses testredis.StartServer instead, which checks that the server answering is its
// own, since a test that talked to another's server would stop or fill it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestIntegrationReadyzRedisRefusesWrites runs `herald worker --metrics-listen` against a
// redis-server of its own (maxmemory with noeviction), fills that Redis until it refuses
// writes, and checks that /readyz turns 503 naming the refusal while PING still answers,
// then 200 once memory is freed; then it makes the same Redis a read-only replica (of a
// master that is not there) and back.
func TestIntegrationReadyzRedisRefusesWrites(t *testing.T) {
	if os.Getenv("HERALD_TEST_REDIS") == "" {
		t.Skip("integration test: set HERALD_TEST_REDIS=redis://127.0.0.1:6379/15 (it also needs redis-server on PATH)")
	}
	dir := t.TempDir()
	srv := testredis.StartServer(t, dir, "redis", "bind 127.0.0.1\nsave \"\"\nappendonly no\ndir "+dir+"\n"+
		"maxmemory 64mb\nmaxmemory-policy noeviction\n")
	port := srv.Port
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	waitFor(t, 10*time.Second, "redis-server to answer", func() bool { return rdb.Ping(ctx).Err() == nil })

	opsPort := freePort(t)
	cfg := writeConfig(t, "log: {level: error, format: json}\n")
	wbin, err := buildHerald()
	if err != nil {
		t.Fatal(err)
	}
	w := exec.Command(wbin, "worker", "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", opsPort))
	w.Env = append(os.Environ(), "HERALD_CONFIG="+cfg, fmt.Sprintf("HERALD_REDIS_URL=redis://127.0.0.1:%d/0", port),
		"CONNECTLY_BUSINESS_ID=b", "CONNECTLY_API_KEY=k", "CONNECTLY_BASE_URL=http://127.0.0.1:1")
	w.Stdout, w.Stderr = io.Discard, io.Discard
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.Process.Kill()
		_ = w.Wait()
	})
	readyz := func() (int, string) { return opsGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", opsPort)) }
	waitFor(t, 15*time.Second, "/readyz 200", func() bool { code, _ := readyz(); return code == 200 })

	// Fill Redis: 4 MB of ballast, then a maxmemory 1 MB below what it holds, so the margin
	// outlasts asynq's heartbeat keys expiring. (Filling up to a fixed maxmemory leaves Redis
	// hovering at the limit: a large write is refused for its own query buffer, and small
	// writes then pass until the next one.)
	const ballast = "fill:ballast"
	for i := range 4 {
		if err := rdb.SetRange(ctx, fmt.Sprintf("%s:%d", ballast, i), 1<<20-1, "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	used, err := usedMemory(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used-1<<20, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "fill:probe", "1", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("a write to the full Redis: %v, want OOM", err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING on a full Redis: %v", err)
	}
	var body string
	waitFor(t, 5*time.Second, "/readyz 503 on a full Redis", func() bool {
		var code int
		code, body = readyz()
		return code == 503
	})
	if !strings.Contains(body, "OOM command not allowed") {
		t.Errorf("/readyz body %q does not name the refusal", body)
	}
	if code, _ := opsGet(fmt.Sprintf("http://127.0.0.1:%d/healthz", opsPort)); code != 200 {
		t.Errorf("/healthz = %d on a full Redis, want 200", code)
	}
	if err := rdb.Del(ctx, ballast+":0", ballast+":1", ballast+":2", ballast+":3").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "/readyz 200 after memory was freed", func() bool { code, _ := readyz(); return code == 200 })

	// A read-only replica: its master is a port the test holds and that never answers, so no
	// other process's server can be taken for the master (and synced from) while the test runs.
	master, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := rdb.ReplicaOf(ctx, "127.0.0.1", strconv.Itoa(master.Addr().(*net.TCPAddr).Port)).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "/readyz 503 on a read-only replica", func() bool {
		var code int
		code, body = readyz()
		return code == 503
	})
	if !strings.Contains(body, "READONLY") {
		t.Errorf("/readyz body %q does not name the refusal", body)
	}
	if err := rdb.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "/readyz 200 after the replica was promoted", func() bool { code, _ := readyz(); return code == 200 })
}

// usedMemory reads used_memory from INFO memory.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}
