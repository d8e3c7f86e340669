package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/demo"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
)

// dbs leases the package's integration tests their databases of the Redis HERALD_TEST_REDIS
// names (testredis.OffsetCLI and the CLIParallelDBs from OffsetCLIParallel on), so that those
// marked parallel, mostly waiting on a killed worker's leases, wait at the same time.
var dbs = func() *testredis.Pool {
	offsets := []int{testredis.OffsetCLI}
	for i := range testredis.CLIParallelDBs {
		offsets = append(offsets, testredis.OffsetCLIParallel+i)
	}
	return testredis.NewPool(offsets...)
}()

// integrationRedis returns a client on a database of the test's own (leased from dbs), flushed
// before and after the test, and its URL, or skips the test.
func integrationRedis(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	url := dbs.Lease(t)
	rdb, err := redisx.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb, url
}

// binDir is the folder buildHerald compiled the binary into, removed by TestMain.
var binDir string

// buildHerald compiles the herald binary once per test binary run.
var buildHerald = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "herald-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "herald")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// workerProc is a `herald worker` child process.
type workerProc struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan error
}

func startWorkerProc(t *testing.T, env []string) *workerProc {
	t.Helper()
	bin, err := buildHerald()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "worker")
	cmd.Env = append(os.Environ(), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &workerProc{cmd: cmd, logs: &logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *workerProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM; logs:\n%s", err, p.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not exit within 30s of SIGTERM; logs:\n%s", p.logs)
	}
}

// newFake starts a fake Connectly of cfg on 127.0.0.1, closed when the test ends, and
// returns it with its base URL.
func newFake(t *testing.T, cfg fakeconnectly.Config) (*fakeconnectly.Server, string) {
	t.Helper()
	fake, url := fakeconnectly.StartForTest(t, cfg)
	return fake, url
}

// sessionsReceived counts the session messages the fake has received.
func sessionsReceived(fake *fakeconnectly.Server) int {
	k := 0
	for _, r := range fake.Received() {
		if r.Kind == fakeconnectly.KindSession {
			k++
		}
	}
	return k
}

// waitFor polls cond every 50ms until it is true or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForProgress polls state until done, failing once what it reports has not changed for idle
// (nothing moves) or max has passed in all; the failure says the last state, so a run that is
// slow on a loaded machine is told apart from one that is stuck, and either says where.
func waitForProgress(t *testing.T, idle, max time.Duration, what string, state func() (done bool, now string)) {
	t.Helper()
	start := time.Now()
	last, since := "", start
	for {
		done, now := state()
		if done {
			return
		}
		if now != last {
			last, since = now, time.Now()
		}
		switch {
		case time.Since(since) > idle:
			t.Fatalf("waiting for %s: nothing moved for %s (after %s); last: %s", what, idle, time.Since(start).Round(time.Second), last)
		case time.Since(start) > max:
			t.Fatalf("waiting for %s: still moving but not done after %s; last: %s", what, max, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runProgress is a waitForProgress state of run: done once it completed; its status and
// counters otherwise.
func runProgress(t *testing.T, l *ledger.Ledger, run string) func() (bool, string) {
	return func() (bool, string) {
		ctx := context.Background()
		r, err := l.GetRun(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		c, err := l.Counters(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status == ledger.RunCompleted, fmt.Sprintf("run %s, states %v", r.Status, c.States)
	}
}

// TestIntegrationWorkerSIGTERMResumes stops a real worker process with SIGTERM in the middle
// of a run, starts another, and checks against the fake Connectly's record that the run
// completes with nobody accepted twice and nobody missing.
func TestIntegrationWorkerSIGTERMResumes(t *testing.T) {
	t.Parallel() // beside the other long integration tests, on a database of its own (dbs)
	rdb, url := integrationRedis(t)
	ctx := context.Background()

	const businessID, apiKey, webhookSecret = "it-business", "it-key-0123456789", "it-webhook-secret-abcdef"
	rules := []fakeconnectly.Rule{
		{Percent: 2, Salt: "invalid", Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{Percent: 4, Salt: "5xx", Status: 503, Times: 1},
		{Percent: 3, Salt: "429", Status: 429, Times: 1},
		{Percent: 100, Salt: "slow", Latency: 30 * time.Millisecond},
	}
	fake, baseURL := newFake(t, fakeconnectly.Config{BusinessID: businessID, APIKey: apiKey, Rules: rules})

	dir := t.TempDir()
	const rows = 800
	campaignPath, err := demo.WriteCampaign(dir, rows)
	if err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(campaignPath)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte(`
senders:
  - number: "+14155550100"
    rate: 150
worker:
  concurrency: 20
retry:
  base: 100ms
  cap: 1s
  throttle_delay: 300ms
limits:
  # The fake answers 429 to 3% of first attempts at random, not to a rate: a sender slowed by
  # one recovers within a second here (the default takes a minute, for real throttles).
  adaptive:
    recover_every: 250ms
    recover_step: 0.25
log:
  level: info
  format: json
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"HERALD_CONFIG=" + cfgPath, "HERALD_REDIS_URL=" + url, "CONNECTLY_BASE_URL=" + baseURL,
		"CONNECTLY_BUSINESS_ID=" + businessID, "CONNECTLY_API_KEY=" + apiKey,
		"CONNECTLY_WEBHOOK_SECRET=" + webhookSecret,
	}

	c := config.Default()
	run, st, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(c), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, nil)
	accepted := func() int64 {
		cn, err := l.Counters(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cn.States[ledger.Accepted]
	}

	w1 := startWorkerProc(t, env)
	waitFor(t, 30*time.Second, "a quarter of the run accepted", func() bool { return accepted() >= rows/4 })
	w1.stop(t)
	mid := accepted()
	if mid >= int64(st.Planned) {
		t.Fatalf("the run finished before SIGTERM (%d accepted); the test proves nothing", mid)
	}

	w2 := startWorkerProc(t, env)
	waitForProgress(t, time.Minute, 5*time.Minute, "the run to complete", runProgress(t, l, run.ID))
	w2.stop(t)

	cn, err := l.Counters(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cn.Sum() != rows {
		t.Fatalf("states add up to %d, want %d: %v", cn.Sum(), rows, cn.States)
	}
	// The fake's record is the judge: nobody accepted twice, and every recipient the ledger
	// calls accepted was accepted exactly once by the fake.
	acceptedBy := map[string]int{}
	for _, r := range fake.Received() {
		if r.MessageID != "" {
			acceptedBy[r.Number]++
		}
	}
	for n, k := range acceptedBy {
		if k > 1 {
			t.Errorf("%s accepted %d times", n, k)
		}
	}
	if int64(len(acceptedBy)) != cn.States[ledger.Accepted] {
		t.Errorf("fake accepted %d distinct recipients, ledger says %d accepted", len(acceptedBy), cn.States[ledger.Accepted])
	}
	for _, s := range []ledger.State{ledger.Planned, ledger.Queued, ledger.Submitting} {
		if cn.States[s] != 0 {
			t.Errorf("%d recipients left in %s", cn.States[s], s)
		}
	}
	// The workers' own logs (info level, JSON) never carry a secret or a full phone number:
	// neither an E.164 shape nor the digits of any recipient the fake saw.
	numbers := map[string]bool{}
	for _, r := range fake.Received() {
		numbers[strings.TrimPrefix(r.Number, "+")] = true
	}
	for i, p := range []*workerProc{w1, w2} {
		logs := p.logs.String()
		if logs == "" {
			t.Fatalf("worker %d logged nothing; the scan would prove nothing", i+1)
		}
		for _, secret := range []string{apiKey, webhookSecret} {
			if strings.Contains(logs, secret) {
				t.Errorf("worker %d logged a secret", i+1)
			}
		}
		if loc := regexp.MustCompile(`\+[0-9]{8,}`).FindStringIndex(logs); loc != nil {
			t.Errorf("worker %d logged an unmasked number: %s", i+1, logs[max(0, loc[0]-150):min(len(logs), loc[1]+30)])
		}
		for n := range numbers {
			if strings.Contains(logs, n) {
				t.Errorf("worker %d logged recipient %s unmasked", i+1, n)
				break
			}
		}
	}
	t.Logf("SIGTERM at %d accepted; final %v", mid, cn.States)
}
