package expand_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/worker"
)

// TestClusterRunEndToEnd sends one run end to end on a Redis Cluster
// (HERALD_TEST_REDIS_CLUSTER), as `herald campaign send` with a worker and an expansion
// server: the command expands the run up to its backlog and hands over to the expansion
// server, which tops the backlog up as the worker (every limit on, a daily tier and a
// frequency cap included) sends through the in-process fake Connectly. The run completes
// with every recipient accepted exactly once, by the fake's record and by the ledger. Every
// script's KEYS must lie in one slot. The campaign, run and business are the test's own; their
// keys, and the send and expansion queues once empty, are deleted afterwards. It is the only
// cluster test that consumes the queues.
func TestClusterRunEndToEnd(t *testing.T) {
	cc := testredis.Cluster(t)
	ctx := context.Background()
	const rows, backlog, sender = 150, 40, "+14155550100"
	biz, campaign := testredis.UniqueName("expand-cluster"), testredis.UniqueName("expand-cluster-campaign")
	runID := expand.NewRunID(campaign, time.Now())
	queue := campaigns.QueueFor("marketing")
	inspector := asynq.NewInspectorFromRedisClient(cc)
	// The deployment's task id key is written by the first expansion: the test's, unless the
	// Cluster had one.
	hadTaskIDKey := cc.Exists(ctx, rkeys.TaskIDKey()).Val() == 1
	t.Cleanup(func() {
		// Once empty, the queues go, and their stats with them (asynq refuses to delete a
		// queue that holds tasks).
		for _, q := range []string{queue, campaigns.ExpandQueue} {
			if err := inspector.DeleteQueue(q, false); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				t.Errorf("delete queue %s: %v", q, err)
				continue
			}
			if _, err := testredis.DeleteMatching(ctx, cc, rkeys.AsynqPrefix+"{"+q+"}:*"); err != nil {
				t.Errorf("delete the stats of queue %s: %v", q, err)
			}
		}
		inspector.Close()
		if !hadTaskIDKey {
			cc.Del(ctx, rkeys.TaskIDKey())
		}
	})
	testredis.DeleteAtCleanup(t, cc, biz)
	testredis.DeleteAtCleanup(t, cc, campaign) // the run's keys hold its campaign's id
	testredis.DeleteRunsAtCleanup(t, cc, campaign, runID)

	const apiKey = "cluster-key-0123456789"
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: biz, APIKey: apiKey, RateLimit: -1})
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: biz, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "audience.csv"), []byte(audienceCSV(rows)), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "campaign.yaml")
	yaml := "id: " + campaign + "\n" +
		"template: {name: spring_sale, language: en, category: marketing}\n" +
		"parameters:\n  body_1: \"{{.name}}\"\n" +
		"audience: {file: audience.csv}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}

	log := zerolog.Nop()
	excfg := expand.Config{MinBacklog: backlog, MaxBacklog: backlog, BatchSize: 25, TopUp: 20 * time.Millisecond,
		Task: campaigns.TaskOptions{MaxRetry: 10}}
	deps := expand.Deps{Redis: cc, Logger: log, Sender: func(*campaigns.Definition) (string, error) { return sender, nil }}
	srv := expand.NewServer(expand.ServerConfig{Concurrency: 2, ShutdownTimeout: 5 * time.Second,
		DelayedTaskCheckInterval: 50 * time.Millisecond, TaskCheckInterval: 20 * time.Millisecond, Expand: excfg}, deps)
	w := worker.New(worker.Config{Concurrency: 10, MaxAttempts: 5, ShutdownTimeout: 5 * time.Second,
		DelayedTaskCheckInterval: 50 * time.Millisecond, TaskCheckInterval: 20 * time.Millisecond,
		Limits: limits.Config{BusinessID: biz, SenderRates: map[string]float64{sender: 500}, BusinessRate: 500, DailyTier: 10 * rows,
			FrequencyCaps: map[string]limits.FrequencyCap{"marketing": {Max: 2, Period: time.Hour}}}},
		worker.Deps{Redis: cc, Sender: client, Logger: log})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			w.Stop()
			srv.Stop()
			w.Shutdown()
			srv.Shutdown()
		}
	}
	t.Cleanup(stop)

	runs := expand.NewRuns(excfg, deps)
	started, err := runs.StartRun(ctx, expand.StartParams{Def: def, Bounded: true, RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if started.RunID != runID || !started.Continues || started.Backlog != backlog {
		t.Fatalf("StartRun = run %s, continues %v, backlog %d; want %s handed over at a backlog of %d",
			started.RunID, started.Continues, started.Backlog, runID, backlog)
	}
	l := ledger.New(cc, nil)
	var last ledger.Counters
	testredis.WaitUntil(t, 60*time.Second, "the run to complete", func() bool {
		r, err := l.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		last, _ = l.Counters(ctx, runID)
		return r.Status == ledger.RunCompleted
	})
	stop()

	if got := last.States[ledger.Accepted]; got != rows {
		t.Errorf("counters %v, want %d accepted", last.States, rows)
	}
	accepted := fake.AcceptedCounts()
	if len(accepted) != rows {
		t.Errorf("the fake accepted messages to %d numbers, want %d", len(accepted), rows)
	}
	for i := range rows {
		to := fmt.Sprintf("+5511%09d", 900000000+i)
		if n := accepted[to]; n != 1 {
			t.Errorf("%s accepted %d times by the fake, want exactly once", to, n)
		}
	}
	if v, err := l.Verify(ctx, runID); err != nil || len(v.Mismatches) > 0 {
		t.Errorf("the run's counters disagree with its ledger: %+v, %v", v.Mismatches, err)
	}
}
