// Command ratebench checks that the rate limits hold across worker processes: it starts
// several worker processes on one real Redis, lets them send a campaign to a local fake
// Connectly for a fixed time, and reads the achieved rate and the busiest one-second window
// from the fake's record of arrivals.
//
//	go build -o bin/ratebench ./bench/ratebench
//	bin/ratebench -redis redis://127.0.0.1:6379/12 -rate 80 -duration 60s -procs 2
//
// Two modes run in turn on the same audience size: "herald" (Herald's worker: limits shared in
// Redis) and "plain" (a plain asynq worker per process, each paced by its own in-process
// limiter at the same rate: what a hand-rolled asynq loop does). The Redis database is
// flushed before and after each mode. Traffic goes only to 127.0.0.1; the child processes
// are this program itself, stopped with SIGTERM by their PIDs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/worker"
)

const (
	businessID = "ratebench-business"
	apiKey     = "ratebench-key"
	sender     = "+14155550100"
)

type options struct {
	redisURL    string
	rate        float64
	bizRate     float64
	duration    time.Duration
	warmup      time.Duration
	procs       int
	concurrency int
	mode        string
	// child mode: the fake's base URL to send to.
	child, fakeURL string
}

func main() {
	var o options
	flag.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/12", "Redis to use (its database is flushed)")
	flag.Float64Var(&o.rate, "rate", 80, "the sender's configured rate, messages/s")
	flag.Float64Var(&o.bizRate, "business-rate", 200, "the business's request limit, requests/s")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "measured time")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "time after the first send before measuring")
	flag.IntVar(&o.procs, "procs", 2, "worker processes")
	flag.IntVar(&o.concurrency, "concurrency", 50, "sends in flight per process")
	flag.StringVar(&o.mode, "mode", "both", "herald, plain or both")
	flag.StringVar(&o.child, "child", "", "internal: run as a worker process of this mode")
	flag.StringVar(&o.fakeURL, "fake", "", "internal: the fake Connectly's base URL")
	flag.Parse()
	var err error
	if o.child != "" {
		err = runChild(o)
	} else {
		err = runParent(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratebench:", err)
		os.Exit(1)
	}
}

// result is one mode's measurement.
type result struct {
	Mode       string  `json:"mode"`
	Configured float64 `json:"configured_rate"`
	Sent       int     `json:"sent_in_window"`
	Achieved   float64 `json:"achieved_rate"`
	Ratio      float64 `json:"achieved_over_configured"`
	MaxWindow  int     `json:"max_1s_window"`
	MaxRatio   float64 `json:"max_1s_window_over_configured"`
}

func runParent(o options) error {
	ctx := context.Background()
	rdb, err := redisx.Open(o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := redisx.Ping(ctx, rdb, 3*time.Second); err != nil {
		return err
	}
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: businessID, APIKey: apiKey, RateLimit: -1})
	if err != nil {
		return err
	}
	base, err := fake.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer fake.Close()
	dir, err := os.MkdirTemp("", "ratebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Enough recipients that the workers never run dry within the measured time.
	n := int(o.rate*(o.warmup+o.duration).Seconds()*1.1) + 1000
	def, err := benchkit.WriteCampaign(dir, "ratebench", sender, n)
	if err != nil {
		return err
	}
	modes := []string{"herald", "plain"}
	if o.mode != "both" {
		modes = []string{o.mode}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("ratebench: %d processes x concurrency %d, sender rate %g/s, business %g/s, %s measured after %s warm-up; %d CPUs, %s\n",
		o.procs, o.concurrency, o.rate, o.bizRate, o.duration, o.warmup, runtime.NumCPU(), runtime.Version())
	var results []result
	for _, mode := range modes {
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			return err
		}
		fake.Reset()
		if _, err := benchkit.Expand(ctx, rdb, def, sender); err != nil {
			return err
		}
		r, err := measure(ctx, o, mode, self, base, fake)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		results = append(results, r)
		fmt.Printf("%-6s sent %d in %s: %.2f/s = %.3f x configured; busiest 1 s window %d = %.3f x configured\n",
			r.Mode, r.Sent, o.duration, r.Achieved, r.Ratio, r.MaxWindow, r.MaxRatio)
	}
	b, _ := json.Marshal(results)
	fmt.Printf("json %s\n", b)
	return rdb.FlushDB(ctx).Err()
}

// measure starts the worker processes, waits for the warm-up and the measured time, stops
// them, and reads the fake's record.
func measure(ctx context.Context, o options, mode, self, base string, fake *fakeconnectly.Server) (result, error) {
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	}
	for i := 0; i < o.procs; i++ {
		c := exec.CommandContext(ctx, self, "-child", mode, "-fake", base, "-redis", o.redisURL,
			"-rate", ftoa(o.rate), "-business-rate", ftoa(o.bizRate), "-concurrency", strconv.Itoa(o.concurrency))
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			stop()
			return result{}, err
		}
		cmds = append(cmds, c)
	}
	defer stop()
	// Wait for the first send, then for the warm-up and the measured time.
	deadline := time.Now().Add(30 * time.Second)
	for fake.Stats().Accepted == 0 {
		if time.Now().After(deadline) {
			return result{}, errors.New("no send within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	first := fake.Received()[0].At
	time.Sleep(time.Until(first.Add(o.warmup + o.duration + 500*time.Millisecond)))
	stop()
	cmds = nil

	from, to := first.Add(o.warmup), first.Add(o.warmup+o.duration)
	var at []time.Time
	for _, r := range fake.Received() {
		if !r.At.Before(from) && r.At.Before(to) {
			at = append(at, r.At)
		}
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	maxWin := 0
	j := 0
	for i := range at {
		for j < len(at) && at[j].Before(at[i].Add(time.Second)) {
			j++
		}
		maxWin = max(maxWin, j-i)
	}
	configured := min(o.rate, o.bizRate)
	achieved := float64(len(at)) / o.duration.Seconds()
	return result{Mode: mode, Configured: configured, Sent: len(at), Achieved: achieved, Ratio: achieved / configured,
		MaxWindow: maxWin, MaxRatio: float64(maxWin) / configured}, nil
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// runChild is one worker process: Herald's worker, or a plain asynq server whose handler
// waits for its own in-process limiter and posts the request.
func runChild(o options) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	rdb, err := redisx.Open(o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: o.fakeURL, BusinessID: businessID, APIKey: apiKey,
		MaxConns: o.concurrency})
	if err != nil {
		return err
	}
	if o.child == "herald" {
		w := worker.New(worker.Config{Concurrency: o.concurrency, BusinessID: businessID, BusinessRate: o.bizRate,
			SenderRates: map[string]float64{sender: o.rate}, PairInterval: -1},
			worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
		if err := w.Start(); err != nil {
			return err
		}
		<-ctx.Done()
		w.Stop()
		w.Shutdown()
		return nil
	}
	lim := rate.NewLimiter(rate.Limit(min(o.rate, o.bizRate)), 1)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: o.concurrency, Queues: campaigns.Queues,
		LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(campaigns.TypeSend, func(ctx context.Context, t *asynq.Task) error {
		var p campaigns.SendPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return err
		}
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		_, err := client.SendTemplate(ctx, connectly.TemplateMessage{Number: p.To, TemplateName: p.Template,
			Language: p.Language, Parameters: p.Params, Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign})
		return err
	})
	if err := srv.Start(mux); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}
