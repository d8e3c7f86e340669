package reclaim_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/reclaim"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/worker"
)

// poll calls f until it returns true or within passes.
func poll(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stallLimit is how long the run may go without progress before the failover test fails:
// more than the reclaimer takes to put back the tasks a failover left in asynq's active list
// (about 10 s after their last lease extension), well under the 60-120 s that asynq's own
// recoverer would hold them.
const stallLimit = 25 * time.Second

// untilDone polls done until it holds, failing the test with what and why() when progress()
// has not moved for stallLimit, and returns the longest time progress stood still. It judges
// progress, not the time since the start: a loaded machine sends slower than the rate, which
// is no failure; a run whose tasks wait for asynq's recoverer stops moving for a minute or
// more, which is.
func untilDone(t *testing.T, what string, progress func() int64, done func() bool, why func() string) (longest time.Duration) {
	t.Helper()
	last, moved := progress(), time.Now()
	for !done() {
		if p := progress(); p != last {
			last, moved = p, time.Now()
		}
		still := time.Since(moved)
		longest = max(longest, still)
		if still > stallLimit {
			t.Fatalf("%s: no progress for %v (%d so far); %s", what, stallLimit, last, why())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return longest
}

// TestIntegrationSentinelFailover runs a campaign on two workers and an expansion server
// connected through Redis Sentinel (a master, a replica, one sentinel, on local ports), kills
// the master with SIGKILL mid-run and lets the sentinel promote the replica. The fake's record
// judges: nothing is sent twice, nothing is lost, and the run never stands still for long
// (its time against the unhurt n/rate is logged: on a quiet machine a few seconds more).
// Before Herald reclaimed the tasks of dead servers, the tasks the failover left in asynq's
// active list (taken from the old master, their answer or their acknowledgement lost with it)
// waited for asynq's recoverer: 60-120 s.
func TestIntegrationSentinelFailover(t *testing.T) {
	if os.Getenv("HERALD_TEST_REDIS") == "" {
		t.Skip("HERALD_TEST_REDIS not set")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	const (
		n      = 3000
		rate   = 200.0
		master = "herald"
	)
	// Each server on a port of its own, picked at random and checked to be the one that
	// answers there: runs of this test at once (other checkouts, CI) must not share a server.
	dir := t.TempDir()
	common := "bind 127.0.0.1\nsave \"\"\nappendonly no\ndir " + dir + "\n"
	msrv := testredis.StartServer(t, dir, "master", common)
	mPort, mproc := msrv.Port, msrv.Process
	rPort := testredis.StartServer(t, dir, "replica", common+fmt.Sprintf("replicaof 127.0.0.1 %d\n", mPort)).Port
	ctx := context.Background()
	direct := func(port int) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		return c
	}
	replica := direct(rPort)
	poll(t, 20*time.Second, "the replica to sync", func() bool {
		info, err := replica.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	sPort := testredis.StartServer(t, dir, "sentinel", fmt.Sprintf("bind 127.0.0.1\ndir %s\n"+
		"sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\n"+
		"sentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
		dir, master, mPort, master, master, master), "--sentinel").Port
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(sPort)})
	t.Cleanup(func() { sentinel.Close() })
	poll(t, 20*time.Second, "the sentinel to see the replica", func() bool {
		r, err := sentinel.Replicas(ctx, master).Result()
		return err == nil && len(r) == 1
	})

	url := fmt.Sprintf("redis-sentinel://127.0.0.1:%d?master=%s", sPort, master)
	open := func() redis.UniversalClient {
		c, err := redisx.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	rdb := open()
	if err := redisx.Ping(ctx, rdb, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	fake, base := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: "biz", APIKey: "key", RateLimit: -1})
	const sender = "+14155550100"
	adir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("name,phone\n")
	for i := range n {
		fmt.Fprintf(&csv, "u%d,+5511%09d\n", i, 900000000+i)
	}
	if err := os.WriteFile(filepath.Join(adir, "audience.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "id: failover\nsender: \"" + sender + "\"\ntemplate: {name: tpl, language: en, category: utility}\n" +
		"parameters:\n  body_1: \"{{ .name }}\"\naudience: {file: audience.csv, phone: phone}\n"
	path := filepath.Join(adir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}

	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	// Two worker processes' worth of Herald, each on its own connection pool, as deployed:
	// a worker, an expansion server and a reclaimer.
	for range 2 {
		c := open()
		client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: base, BusinessID: "biz", APIKey: "key", MaxConns: 50})
		if err != nil {
			t.Fatal(err)
		}
		w := worker.New(worker.Config{Concurrency: 50, Limits: limits.Config{BusinessID: "biz", SenderRates: map[string]float64{sender: rate}}},
			worker.Deps{Redis: c, Sender: client, Logger: log})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		exp := expand.NewServer(expand.ServerConfig{Concurrency: 2, Expand: expand.Config{
			MaxBacklog: 1000, Task: campaigns.TaskOptions{MaxRetry: 25, Timeout: time.Minute}}},
			expand.Deps{Redis: c, Logger: log, Sender: func(*campaigns.Definition) (string, error) { return sender, nil },
				SenderRate: func(string) float64 { return rate }})
		if err := exp.Start(); err != nil {
			t.Fatal(err)
		}
		rc := reclaim.New(c, reclaim.Config{Queues: append(w.Queues(), campaigns.ExpandQueue)}, log)
		rc.Start()
		t.Cleanup(func() { rc.Stop(); exp.Stop(); w.Stop(); exp.Shutdown(); w.Shutdown() })
	}

	store := defstore.New(rdb, nil)
	v, _, err := store.Submit(ctx, def.ID, def.Path, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	started, err := expand.NewRuns(expand.Config{}, expand.Deps{Redis: rdb}).StartRun(ctx,
		expand.StartParams{Campaign: def.ID, Version: v, Trigger: "manual", Retention: time.Hour})
	runID := started.RunID
	if err != nil {
		t.Fatal(err)
	}
	accepted := func() int64 { return int64(fake.Stats().Accepted) }
	poll(t, 30*time.Second, "the first send", func() bool { return accepted() > 0 })
	first := time.Now()
	untilDone(t, "waiting for a third of the sends", accepted, func() bool { return accepted() >= n/3 },
		func() string { return "" })

	killed := time.Now()
	if err := mproc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, nil)
	var promoted time.Duration
	poll(t, 30*time.Second, "the replica's promotion", func() bool {
		addr, err := sentinel.GetMasterAddrByName(ctx, master).Result()
		if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(rPort) {
			promoted = time.Since(killed)
			return true
		}
		return false
	})
	// Unhurt the run takes n/rate; a failover should cost seconds on top, not minutes. Every
	// recipient settled is progress.
	var settledSoFar int64
	settled := func() int64 {
		c, err := l.Counters(ctx, runID)
		if err != nil {
			return settledSoFar // a read that failed is no progress
		}
		settledSoFar = 0
		for st, v := range c.States {
			if st.Terminal() {
				settledSoFar += v
			}
		}
		return settledSoFar
	}
	var status ledger.RunStatus
	stood := untilDone(t, "waiting for the run to complete", settled, func() bool {
		r, err := l.GetRun(ctx, runID)
		status = r.Status
		return err == nil && r.Status == ledger.RunCompleted
	}, func() string {
		qi, _ := asynq.NewInspectorFromRedisClient(rdb).GetQueueInfo(campaigns.QueueFor("utility"))
		var live int64
		if qi != nil {
			live = int64(qi.Active)
		}
		return fmt.Sprintf("run %s %.1f s after the first send (unhurt %.1f s); send queue: %d active (tasks no live worker may hold), %+v",
			status, time.Since(first).Seconds(), float64(n)/rate, live, qi)
	})
	done := time.Since(first)

	recs := fake.Received()
	var resumed time.Duration = -1
	for _, r := range recs {
		if r.At.After(killed) {
			resumed = r.At.Sub(killed)
			break
		}
	}
	last := recs[len(recs)-1].At.Sub(killed)
	c, err := l.Counters(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	twice, once := 0, 0
	for _, k := range fake.AcceptedCounts() {
		once++
		if k > 1 {
			twice++
		}
	}
	t.Logf("failover: replica promoted %.1f s after the kill, sending resumed after %.1f s, last send %.1f s after the kill; "+
		"run %s in %.1f s (unhurt %.1f s), standing still %.1f s at most; %d of %d accepted, %d sent twice, %d unknown",
		promoted.Seconds(), resumed.Seconds(), last.Seconds(), status, done.Seconds(), float64(n)/rate, stood.Seconds(), once, n, twice,
		c.States[ledger.Unknown])
	if twice != 0 {
		t.Errorf("%d recipients sent twice", twice)
	}
	// A send whose answer was lost with the master may be unknown (at-most-once), never lost
	// in the fake's record: every recipient was accepted once.
	if once != n {
		t.Errorf("%d of %d recipients accepted: some were never sent", once, n)
	}
	if c.Sum() != n {
		t.Errorf("states add up to %d, want %d: %+v", c.Sum(), n, c.States)
	}
}
