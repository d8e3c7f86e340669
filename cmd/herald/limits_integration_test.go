package main

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// startLimitedWorker runs Herald's worker in this process with the limits of cfg (the
// business, timings and logger filled in).
func startLimitedWorker(t *testing.T, rdb redis.UniversalClient, baseURL string, cfg worker.Config) *worker.Worker {
	t.Helper()
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: baseURL, BusinessID: itBusiness, APIKey: itKey, MaxConns: cfg.Concurrency})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.BusinessID = itBusiness
	cfg.Backoff = backoff.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond}
	cfg.DelayedTaskCheckInterval, cfg.TaskCheckInterval = 100*time.Millisecond, 50*time.Millisecond
	w := worker.New(cfg, worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(); w.Shutdown() })
	return w
}

// TestIntegrationPairIntervalAcrossCampaigns runs two campaigns with the same audience on two
// workers at once: nobody gets their two messages closer together than the pair interval.
func TestIntegrationPairIntervalAcrossCampaigns(t *testing.T) {
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	fake, url := startFake(t, nil)
	dir := t.TempDir()
	a := writeCampaign(t, filepath.Join(dir, "a"), "pair-a", "at-most-once", 150)
	b := writeCampaign(t, filepath.Join(dir, "b"), "pair-b", "at-most-once", 150) // the same people
	const interval = time.Second
	cfg := worker.Config{Concurrency: 40, Limits: limits.Config{BusinessRate: 5000, DefaultSenderRate: 5000, PairInterval: interval,
		MaxWait: 300 * time.Millisecond}}
	startLimitedWorker(t, rdb, url, cfg)
	startLimitedWorker(t, rdb, url, cfg)
	var runs []ledger.Run
	for _, def := range []*campaigns.Definition{a, b} {
		run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	l := ledger.New(rdb, nil)
	waitFor(t, 2*time.Minute, "both runs to complete", func() bool {
		return runStatus(t, l, runs[0].ID) == ledger.RunCompleted && runStatus(t, l, runs[1].ID) == ledger.RunCompleted
	})
	arrivals := map[string][]time.Time{}
	for _, r := range fake.Received() {
		if r.MessageID != "" {
			arrivals[r.Number] = append(arrivals[r.Number], r.At)
		}
	}
	if len(arrivals) != 150 {
		t.Fatalf("%d people reached, want 150", len(arrivals))
	}
	closest := time.Hour
	for n, at := range arrivals {
		if len(at) != 2 {
			t.Fatalf("%s got %d messages, want 2 (one per campaign)", n, len(at))
		}
		sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
		closest = min(closest, at[1].Sub(at[0]))
	}
	// Pair slots are booked the interval plus a margin apart on Redis's clock
	// (limits.Config.PairMargin); arrivals differ from the slots by each send's dispatch delay
	// (its answer from Redis, its claim, its request on 127.0.0.1), which the margin absorbs.
	// Under a saturated CPU the first of two sends was once held 125 ms more than the second,
	// so without the margin two messages arrived 875 ms apart. Nothing may arrive closer than
	// the interval itself.
	if closest < interval {
		t.Fatalf("two messages reached one person %v apart, want at least the pair interval %v", closest, interval)
	}
	t.Logf("closest pair of messages to one person: %v apart (interval %v)", closest, interval)
}

// TestIntegrationThrottleStorm sends faster than the fake allows: Connectly answers 429 to
// the excess and to a tenth of first attempts. The sender's rate backs off, every recipient
// is accepted exactly once, nothing fails and no 429 uses an attempt.
func TestIntegrationThrottleStorm(t *testing.T) {
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	rules := []fakeconnectly.Rule{{Percent: 10, Salt: "storm", Status: 429, Times: 1}}
	fake, url := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, Rules: rules, RateLimit: 150})
	const n = 1000
	def := writeCampaign(t, t.TempDir(), "storm", "at-most-once", n)
	policy := limits.Policy{Min: 0.2, Period: time.Second, Every: 300 * time.Millisecond, Step: 0.2}
	cfg := worker.Config{Concurrency: 50, Limits: limits.Config{BusinessRate: 2000, DefaultSenderRate: 600, PairInterval: -1,
		Adaptive: policy}, ThrottleDelay: 200 * time.Millisecond}
	startLimitedWorker(t, rdb, url, cfg)
	startLimitedWorker(t, rdb, url, cfg)
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, nil)
	lim := limits.New(rdb)
	lowest := 1.0
	waitFor(t, 3*time.Minute, "the run to complete", func() bool {
		if b, err := lim.BackoffOf(ctx, limits.SenderControl(itBusiness, def.Sender, 600, policy), time.Now()); err == nil {
			lowest = min(lowest, b.Factor)
		}
		return runStatus(t, l, run.ID) == ledger.RunCompleted
	})
	c, err := l.Counters(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.States[ledger.Accepted] != n || c.States[ledger.Failed] != 0 || c.States[ledger.Unknown] != 0 {
		t.Fatalf("states %v, want all %d accepted", c.States, n)
	}
	if c.Attempts != n || c.Retries != 0 {
		t.Fatalf("attempts %d retries %d, want %d and 0: a 429 used an attempt", c.Attempts, c.Retries, n)
	}
	st := fake.Stats()
	if c.Throttled == 0 || st.Throttled == 0 {
		t.Fatalf("no throttles (ledger %d, fake %d): the storm did not happen", c.Throttled, st.Throttled)
	}
	if twice, distinct := acceptedTwice(fake); len(twice) > 0 || distinct != n {
		t.Fatalf("accepted twice %v, distinct %d", twice, distinct)
	}
	if lowest >= 1 {
		t.Fatal("the sender's rate never backed off")
	}
	t.Logf("%d throttled sends, none used an attempt; lowest sender factor %.2f", c.Throttled, lowest)
}

// TestIntegrationAdaptiveFindsTheBusinessLimit: Connectly really allows the business 100
// sends a second while the sender is set to 200/s. The adaptive rate settles near 100/s with
// few 429s, and `herald limits show` and herald_sender_rate_factor show it slowed.
func TestIntegrationAdaptiveFindsTheBusinessLimit(t *testing.T) {
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	fake, url := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, RateLimit: 100})
	// Long enough that the first seconds (the fake's one-second burst lets the sender through
	// at full rate, then two decreases find the limit) weigh as they would in a real run.
	const n, rate = 4000, 200
	def := writeCampaign(t, t.TempDir(), "limited", "at-most-once", n)
	cfg := worker.Config{Concurrency: 50, Limits: limits.Config{BusinessRate: 2000, DefaultSenderRate: rate, PairInterval: -1},
		ThrottleDelay: 200 * time.Millisecond} // the default adaptive policy
	startLimitedWorker(t, rdb, url, cfg)
	startLimitedWorker(t, rdb, url, cfg)
	c := config.Default()
	c.Connectly.BusinessID = itBusiness
	c.Senders = []config.Sender{{Number: def.Sender, Rate: rate}}
	collector := serve.LimitsCollector(c, rdb)
	start := time.Now()
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(c), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, nil)
	var shown *report.SenderUse
	metricFactor := 1.0
	var settled fakeconnectly.Stats // the fake's counts when the sender first ran near the real limit
	waitFor(t, 3*time.Minute, "the run to complete", func() bool {
		if shown == nil {
			rep, err := report.ReadLimits(ctx, c, l, rdb, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Senders) == 1 && rep.Senders[0].Factor < 0.8 {
				shown = &rep.Senders[0]
				metricFactor = gaugeOf(t, collector, "herald_sender_rate_factor")
			}
		}
		if settled.Requests == 0 {
			if b, err := limits.New(rdb).BackoffOf(ctx, report.SenderControl(c, def.Sender), time.Now()); err == nil && b.Factor < 0.6 {
				settled = fake.Stats()
			}
		}
		return runStatus(t, l, run.ID) == ledger.RunCompleted
	})
	elapsed := time.Since(start)
	cs, err := l.Counters(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cs.States[ledger.Accepted] != n {
		t.Fatalf("states %v, want all %d accepted", cs.States, n)
	}
	st := fake.Stats()
	share := float64(st.Throttled) / float64(st.Requests)
	t.Logf("%d requests, %d throttled (%.1f%%), %d accepted in %v (%.1f/s)", st.Requests, st.Throttled, 100*share, n,
		elapsed.Round(time.Millisecond), n/elapsed.Seconds())
	if share >= 0.10 {
		t.Errorf("%.1f%% of requests throttled, want under 10%%", 100*share)
	}
	if settled.Requests == 0 {
		t.Fatal("the sender never ran near the real limit")
	}
	s := float64(st.Throttled-settled.Throttled) / float64(st.Requests-settled.Requests)
	t.Logf("once settled: %.1f%% throttled", 100*s)
	if s >= 0.07 {
		t.Errorf("%.1f%% of requests throttled once settled, want a few percent", 100*s)
	}
	if r := n / elapsed.Seconds(); r < 80 {
		t.Errorf("%.1f sends/s, want near the business's real limit of 100/s", r)
	}
	if shown == nil {
		t.Fatal("limits show never showed the sender slowed")
	}
	t.Logf("limits show: %s", shown.Control())
	if shown.Effective >= 0.8*rate || shown.Decision == limits.DecisionHold || shown.Window != "3s" {
		t.Errorf("limits show: %+v", *shown)
	}
	if metricFactor >= 0.8 {
		t.Errorf("herald_sender_rate_factor %v while limits show said %v", metricFactor, shown.Factor)
	}
}

// gaugeOf collects c and returns the value of the gauge named name (its only series).
func gaugeOf(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single %s in %v", name, mfs)
	return 0
}
