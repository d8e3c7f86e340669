// Command sendbench measures end-to-end send throughput on a real Redis: Herald's worker
// (pacing, ledger claim and settle on every send) against a plain asynq worker posting the
// same request to the same local fake Connectly, in alternating rounds of one run.
//
//	go run ./bench/sendbench -redis redis://127.0.0.1:6379/15 -n 20000 -rounds 3
//
// The Redis database is flushed before every round. Traffic goes only to 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/worker"
)

const (
	businessID = "bench-business"
	apiKey     = "bench-key"
	sender     = "+14155550100"
)

func main() {
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/15", "Redis to use (its database is flushed)")
	n := flag.Int("n", 20000, "messages per round")
	rounds := flag.Int("rounds", 3, "rounds of each mode")
	concurrency := flag.Int("concurrency", 50, "worker concurrency")
	mode := flag.String("mode", "both", "plain, herald or both")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sendbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	modes = []string{"plain", "herald"}
	if *mode != "both" {
		modes = []string{*mode}
	}
	if err := run(*redisURL, *n, *rounds, *concurrency); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "sendbench:", err)
		os.Exit(1)
	}
}

var modes []string

func run(redisURL string, n, rounds, concurrency int) error {
	ctx := context.Background()
	rdb, err := redisx.Open(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := redisx.Ping(ctx, rdb, 3*time.Second); err != nil {
		return err
	}
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: businessID, APIKey: apiKey, RateLimit: -1, MaxReceived: 1})
	if err != nil {
		return err
	}
	base, err := fake.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer fake.Close()
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: base, BusinessID: businessID, APIKey: apiKey, MaxConns: concurrency})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sendbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	def, err := benchkit.WriteCampaign(dir, "bench", sender, n)
	if err != nil {
		return err
	}

	results := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, mode := range modes {
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				return err
			}
			fake.Reset()
			var rate float64
			if mode == "plain" {
				rate, err = plainRound(ctx, rdb, client, fake, def, n, concurrency)
			} else {
				rate, err = heraldRound(ctx, rdb, client, fake, def, n, concurrency)
			}
			if err != nil {
				return fmt.Errorf("%s round %d: %w", mode, r+1, err)
			}
			fmt.Printf("round %d %-6s %8.0f msg/s\n", r+1, mode, rate)
			results[mode] = append(results[mode], rate)
		}
	}
	if len(modes) == 1 {
		fmt.Printf("median %s %.0f msg/s\n", modes[0], benchkit.Median(results[modes[0]]))
		return rdb.FlushDB(ctx).Err()
	}
	p, h := benchkit.Median(results["plain"]), benchkit.Median(results["herald"])
	fmt.Printf("median plain %.0f msg/s, herald %.0f msg/s, ratio herald/plain %.2f (n=%d, concurrency=%d, rounds=%d)\n",
		p, h, h/p, n, concurrency, rounds)
	return rdb.FlushDB(ctx).Err()
}

// plainRound enqueues n tasks carrying the same request body Herald sends and runs a plain
// asynq server whose handler only posts it.
func plainRound(ctx context.Context, rdb redis.UniversalClient, client *connectly.Client, fake *fakeconnectly.Server,
	def *campaigns.Definition, n, concurrency int) (float64, error) {
	// Build the tasks with Herald's expander into a throwaway run so both modes send identical
	// payloads; then drop Herald's keys so the plain worker does no ledger work.
	if _, err := benchkit.Expand(ctx, rdb, def, sender); err != nil {
		return 0, err
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: concurrency, Queues: campaigns.Queues,
		LogLevel: asynq.ErrorLevel, TaskCheckInterval: 50 * time.Millisecond})
	mux := asynq.NewServeMux()
	mux.HandleFunc(campaigns.TypeSend, func(ctx context.Context, t *asynq.Task) error {
		var p campaigns.SendPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return err
		}
		_, err := client.SendTemplate(ctx, connectly.TemplateMessage{Number: p.To, TemplateName: p.Template,
			Language: p.Language, Parameters: p.Params, Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign})
		return err
	})
	start := time.Now()
	if err := srv.Start(mux); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	return waitAccepted(fake, n, start)
}

// heraldRound expands a run (not timed) and runs Herald's worker until every message is accepted.
func heraldRound(ctx context.Context, rdb redis.UniversalClient, client *connectly.Client, fake *fakeconnectly.Server,
	def *campaigns.Definition, n, concurrency int) (float64, error) {
	run, err := benchkit.Expand(ctx, rdb, def, sender)
	if err != nil {
		return 0, err
	}
	w := worker.New(worker.Config{Concurrency: concurrency, TaskCheckInterval: 50 * time.Millisecond,
		BusinessID: businessID, BusinessRate: 1e6, SenderRates: map[string]float64{sender: 1e6}},
		worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	start := time.Now()
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer func() { w.Stop(); w.Shutdown() }()
	if _, err := waitAccepted(fake, n, start); err != nil {
		return 0, err
	}
	// Herald's round ends when its run is completed: every settle has landed in the ledger.
	l := ledger.New(rdb, nil)
	for {
		r, err := l.GetRun(ctx, run.ID)
		if err != nil {
			return 0, err
		}
		if r.Status == ledger.RunCompleted {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return 0, fmt.Errorf("run %s not completed", run.ID)
		}
		time.Sleep(time.Millisecond)
	}
	rate := float64(n) / time.Since(start).Seconds()
	c, err := l.Counters(ctx, run.ID)
	if err != nil {
		return 0, err
	}
	if c.States[ledger.Accepted] != int64(n) {
		return 0, fmt.Errorf("ledger says %d accepted, want %d", c.States[ledger.Accepted], n)
	}
	return rate, nil
}

// waitAccepted polls the fake until n messages were accepted and returns the rate since start.
func waitAccepted(fake *fakeconnectly.Server, n int, start time.Time) (float64, error) {
	deadline := start.Add(10 * time.Minute)
	for fake.Stats().Accepted < n {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d accepted after 10 minutes", fake.Stats().Accepted, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
