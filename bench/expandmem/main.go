// Command expandmem measures Redis memory during a large run: a campaign of -n recipients is
// submitted, started, expanded by Herald's expansion server a window at a time, and sent by
// Herald's worker to an in-process fake Connectly at the configured rate, while INFO memory is
// sampled every second. It prints the samples and the peak.
//
//	go build -o ./bin/expandmem ./bench/expandmem && ./bin/expandmem -redis redis://127.0.0.1:6379/13 -n 1000000 -rate 1000
//
// used_memory is the whole Redis server's: the baseline (taken after flushing this benchmark's
// database) is printed so memory held by other databases can be told apart. The database
// named in the URL is flushed at the start and at the end (never any other database).
// Traffic goes only to 127.0.0.1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/worker"
)

const (
	businessID = "bench-business"
	apiKey     = "bench-key"
	sender     = "+14155550100"
)

type options struct {
	redisURL    string
	n           int
	rate        float64
	duration    time.Duration
	concurrency int
	window      time.Duration
	maxWindow   int
	every       time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/13", "Redis to use (its database is flushed)")
	flag.IntVar(&o.n, "n", 1000000, "recipients")
	flag.Float64Var(&o.rate, "rate", 1000, "the sender's configured rate, messages/s (also the business limit here)")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this long (0: when the run completes)")
	flag.IntVar(&o.concurrency, "concurrency", 50, "worker concurrency")
	flag.DurationVar(&o.window, "window", 2*time.Minute, "expansion window, in sending time at the rate")
	flag.IntVar(&o.maxWindow, "max-window", 5000, "expansion window bound, tasks")
	flag.DurationVar(&o.every, "print-every", 10*time.Second, "print a sample line this often (samples are taken every second)")
	flag.Parse()
	benchkit.Exit("expandmem", run(o))
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func run(o options) error {
	ctx := context.Background()
	env, err := benchkit.Open(ctx, benchkit.Config{RedisURL: o.redisURL, BusinessID: businessID, APIKey: apiKey,
		Prefix: "expandmem", MaxReceived: 1})
	if err != nil {
		return err
	}
	defer env.Close()
	rdb, fake := env.RDB, env.Fake
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	defer rdb.FlushDB(context.Background())
	base, err := benchkit.UsedMemory(ctx, rdb)
	if err != nil {
		return err
	}

	def, err := benchkit.WriteCampaign(env.Dir, "membench", sender, o.n)
	if err != nil {
		return err
	}

	client, err := env.Client(businessID, apiKey, o.concurrency)
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)

	// The deployment: an expansion server (as herald scheduler runs) and a worker, with the
	// default send task options of submitted campaigns (no retention of completed tasks).
	exp := expand.NewServer(expand.ServerConfig{Concurrency: 2, Expand: expand.Config{
		Backlog: o.window, MaxBacklog: o.maxWindow, Task: campaigns.TaskOptions{MaxRetry: 25, Timeout: 41 * time.Second}}},
		expand.Deps{Redis: rdb, Logger: log, Sender: func(*campaigns.Definition) (string, error) { return sender, nil },
			SenderRate: func(string) float64 { return o.rate }})
	window := exp.Handler().BacklogFor(o.rate)
	w := worker.New(worker.Config{Concurrency: o.concurrency, Limits: limits.Config{BusinessID: businessID, BusinessRate: o.rate,
		SenderRates: map[string]float64{sender: o.rate}}}, worker.Deps{Redis: rdb, Sender: client, Logger: log})
	if err := exp.Start(); err != nil {
		return err
	}
	defer func() { exp.Stop(); exp.Shutdown() }()
	if err := w.Start(); err != nil {
		return err
	}
	defer func() { w.Stop(); w.Shutdown() }()

	runID, err := benchkit.StartRun(ctx, rdb, def)
	if err != nil {
		return err
	}
	fmt.Printf("recipients %d, rate %.0f/s, window %d tasks, concurrency %d; baseline used_memory %.1f MB (whole server, this DB empty)\n",
		o.n, o.rate, window, o.concurrency, mb(base))
	fmt.Printf("%8s %12s %12s %10s %10s %10s %10s\n", "t", "used_MB", "delta_MB", "pending", "planned", "accepted", "msg/s")

	l := ledger.New(rdb, nil)
	start := time.Now()
	var peak, peakDelta int64
	lastPrint := time.Time{}
	lastAcc, lastT := 0, start
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range tick.C {
		used, err := benchkit.UsedMemory(ctx, rdb)
		if err != nil {
			return err
		}
		peak = max(peak, used)
		peakDelta = max(peakDelta, used-base)
		pending, _ := l.Pending(ctx, runID)
		r, rerr := l.GetRun(ctx, runID)
		acc := fake.Stats().Accepted
		now := time.Now()
		done := rerr == nil && r.Status == ledger.RunCompleted
		if now.Sub(lastPrint) >= o.every || done {
			rate := float64(acc-lastAcc) / now.Sub(lastT).Seconds()
			fmt.Printf("%8s %12.1f %12.1f %10d %10d %10d %10.0f\n", now.Sub(start).Round(time.Second), mb(used), mb(used-base),
				pending, r.PlannedTo, acc, rate)
			lastPrint, lastAcc, lastT = now, acc, now
		}
		if done || (o.duration > 0 && now.Sub(start) >= o.duration) {
			elapsed := now.Sub(start)
			c, _ := l.Counters(ctx, runID)
			fmt.Printf("stopped after %s: run %s, %d of %d rows planned, %d accepted (%.0f msg/s overall), states add up to %d\n",
				elapsed.Round(time.Second), r.Status, r.PlannedTo, o.n, acc, float64(acc)/elapsed.Seconds(), c.Sum())
			fmt.Printf("peak used_memory %.1f MB (whole server); peak above baseline %.1f MB\n", mb(peak), mb(peakDelta))
			return nil
		}
	}
	return nil
}
