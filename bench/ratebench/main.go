// Command ratebench checks that the rate limits hold across worker processes: it starts
// several worker processes on one real Redis, lets them send a campaign to a local fake
// Connectly for a fixed time, and reads the achieved rate and the busiest sliding one-second
// window (every window [t, t+1s) that starts at an arrival) from the fake's record of arrival
// times. To tell the limiter from the transport it also reports the busiest window of the
// times the workers started their requests, the request latency, and how late a probe timer
// fires in each worker process (the machine's scheduling delay).
//
//	go build -o bin/ratebench ./bench/ratebench
//	bin/ratebench -redis redis://127.0.0.1:6379/12 -rate 80 -duration 60s -procs 2 -runs 3
//
// -runs repeats every mode and prints the medians; -dump writes every arrival and request
// start as CSV for a closer look.
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
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/metrics"
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
	runs        int
	dump        string
	// child mode: the fake's base URL to send to, and where to write the trace.
	child, fakeURL, trace string
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
	flag.StringVar(&o.dump, "dump", "", "a directory to write every mode and run's arrival and request start times to (CSV)")
	flag.IntVar(&o.runs, "runs", 1, "rounds of every mode (the medians are printed when more than one)")
	flag.StringVar(&o.fakeURL, "fake", "", "internal: the fake Connectly's base URL")
	flag.StringVar(&o.trace, "trace", "", "internal: where a worker process writes its trace")
	flag.Parse()
	benchkit.Main("ratebench", o.child != "", func() error { return runParent(o) }, func() error { return runChild(o) })
}

// result is one mode's measurement.
type result struct {
	Mode       string  `json:"mode"`
	Run        int     `json:"run"`
	Configured float64 `json:"configured_rate"`
	Sent       int     `json:"sent_in_window"`
	Achieved   float64 `json:"achieved_rate"`
	Ratio      float64 `json:"achieved_over_configured"`
	// MaxWindow is the busiest sliding one-second window of the fake's arrival times within
	// the measured time: every window [t, t+1s) that starts at an arrival.
	MaxWindow int     `json:"max_1s_window"`
	MaxRatio  float64 `json:"max_1s_window_over_configured"`
	// MaxWindowAll is the same over every arrival from the first, warm-up included.
	MaxWindowAll int `json:"max_1s_window_from_first_send"`
	// OverShare is the share of the measured windows (one per arrival) holding more than the
	// configured rate.
	OverShare float64 `json:"windows_over_rate_share"`
	// MaxStartWindow is the busiest sliding one-second window of the times the workers
	// started the requests (their clocks, before the HTTP request): what the limiter let
	// through, without the transport.
	MaxStartWindow int `json:"max_1s_window_of_request_starts"`
	// Latency is from the worker starting a request to the fake recording its arrival, in
	// ms: p50, p99 and max.
	Latency [3]float64 `json:"request_latency_ms"`
	// TimerLate is how late a probe timer in each worker process fired (asked 1–13 ms), in
	// ms: p50, p99 and max; the scheduling delay every paced send's sleep also has.
	TimerLate [3]float64 `json:"timer_late_ms"`
	// LetGo is how many booked slots Herald's workers let go unused because the send came to
	// them too late (herald_limit_waits_total{reason="late"}), over the whole run.
	LetGo int `json:"late_slots_let_go"`
}

func runParent(o options) error {
	cfg := benchkit.Config{RedisURL: o.redisURL, BusinessID: businessID, APIKey: apiKey, Prefix: "ratebench"}
	return benchkit.WithEnv(cfg, func(ctx context.Context, env *benchkit.Env) error {
		rdb := env.RDB
		// Enough recipients that the workers never run dry within the measured time.
		n := int(o.rate*(o.warmup+o.duration).Seconds()*1.1) + 1000
		def, err := benchkit.WriteCampaign(env.Dir, "ratebench", sender, n)
		if err != nil {
			return err
		}
		modes := benchkit.Modes(o.mode, "herald", "plain")
		fmt.Printf("ratebench: %d processes x concurrency %d, sender rate %g/s, business %g/s, %s measured after %s warm-up, %d run(s); %d CPUs, %s\n",
			o.procs, o.concurrency, o.rate, o.bizRate, o.duration, o.warmup, o.runs, runtime.NumCPU(), runtime.Version())
		var results []result
		for run := 1; run <= o.runs; run++ {
			for _, mode := range modes {
				if err := env.Reset(ctx); err != nil {
					return err
				}
				if _, err := benchkit.Expand(ctx, rdb, def, sender); err != nil {
					return err
				}
				r, err := measure(o, mode, env)
				if err != nil {
					return fmt.Errorf("%s: %w", mode, err)
				}
				r.Run = run
				results = append(results, r)
				fmt.Printf("%-6s sent %d in %s: %.2f/s = %.3f x configured; busiest sliding 1 s window %d = %.3f x configured "+
					"(from the first send %d; %.2f%% of windows over the rate; of request starts %d); "+
					"request latency p50/p99/max %.1f/%.1f/%.1f ms; timer late p50/p99/max %.1f/%.1f/%.1f ms; %d late slots let go\n",
					r.Mode, r.Sent, o.duration, r.Achieved, r.Ratio, r.MaxWindow, r.MaxRatio, r.MaxWindowAll, 100*r.OverShare,
					r.MaxStartWindow, r.Latency[0], r.Latency[1], r.Latency[2], r.TimerLate[0], r.TimerLate[1], r.TimerLate[2], r.LetGo)
			}
		}
		if o.runs > 1 {
			for _, mode := range modes {
				var ach, win []float64
				for _, r := range results {
					if r.Mode == mode {
						ach, win = append(ach, r.Ratio), append(win, r.MaxRatio)
					}
				}
				fmt.Printf("median %-6s over %d runs: achieved %.3f x configured, busiest sliding 1 s window %.3f x configured\n",
					mode, len(win), median(ach), median(win))
			}
		}
		b, _ := json.Marshal(results)
		fmt.Printf("json %s\n", b)
		return rdb.FlushDB(ctx).Err()
	})
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measure starts the worker processes, waits for the warm-up and the measured time, stops
// them, and reads the fake's record and the workers' traces.
func measure(o options, mode string, env *benchkit.Env) (result, error) {
	fake := env.Fake
	var cmds []*exec.Cmd
	var traces []string
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	}
	for i := 0; i < o.procs; i++ {
		trace := filepath.Join(env.Dir, fmt.Sprintf("trace-%s-%d.json", mode, i))
		_ = os.Remove(trace)
		traces = append(traces, trace)
		c, err := benchkit.StartChild("-child", mode, "-fake", env.Base, "-trace", trace)
		if err != nil {
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
	var all, at []time.Time
	arrived := map[string]time.Time{}
	for _, r := range fake.Received() {
		all = append(all, r.At)
		if !r.At.Before(from) && r.At.Before(to) {
			at = append(at, r.At)
		}
		if _, seen := arrived[r.Number]; !seen {
			arrived[r.Number] = r.At
		}
	}
	var starts []time.Time
	var lat, late []float64
	letGo := 0
	for _, path := range traces {
		t, err := readTrace(path)
		if err != nil {
			return result{}, err
		}
		for _, s := range t.Starts {
			st := time.Unix(0, s.At)
			if !st.Before(from) && st.Before(to) {
				starts = append(starts, st)
			}
			if a, ok := arrived[s.Number]; ok && !a.Before(from) && a.Before(to) {
				lat = append(lat, float64(a.Sub(st))/1e6)
			}
		}
		for _, l := range t.TimerLate {
			late = append(late, float64(l)/1e6)
		}
		letGo += t.LetGo
	}
	if o.dump != "" {
		if err := dumpTimes(o.dump, mode, fake.Received(), traces); err != nil {
			return result{}, err
		}
	}
	configured := min(o.rate, o.bizRate)
	achieved := float64(len(at)) / o.duration.Seconds()
	maxWin, over := slidingMax(at, configured)
	maxAll, _ := slidingMax(all, configured)
	maxStart, _ := slidingMax(starts, configured)
	return result{Mode: mode, Configured: configured, Sent: len(at), Achieved: achieved, Ratio: achieved / configured,
		MaxWindow: maxWin, MaxRatio: float64(maxWin) / configured, MaxWindowAll: maxAll,
		OverShare: over, MaxStartWindow: maxStart, Latency: quantiles(lat), TimerLate: quantiles(late), LetGo: letGo}, nil
}

// dumpTimes writes the fake's arrivals and the workers' request starts as CSV (kind, unix
// ns, number, process) into dir, one file per mode and run.
func dumpTimes(dir, mode string, received []fakeconnectly.Received, traces []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("kind,at_ns,number,process\n")
	for _, r := range received {
		fmt.Fprintf(&b, "arrival,%d,%s,\n", r.At.UnixNano(), r.Number)
	}
	for i, path := range traces {
		t, err := readTrace(path)
		if err != nil {
			return err
		}
		for _, s := range t.Starts {
			fmt.Fprintf(&b, "start,%d,%s,%d\n", s.At, s.Number, i)
		}
	}
	name := fmt.Sprintf("%s-%s.csv", mode, time.Now().Format("150405"))
	return os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644)
}

// slidingMax returns the most times in any window [t, t+1s) that starts at one of them, and
// the share of those windows holding more than limit.
func slidingMax(times []time.Time, limit float64) (most int, overShare float64) {
	sorted := slices.Clone(times)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	over, j := 0, 0
	for i := range sorted {
		for j < len(sorted) && sorted[j].Before(sorted[i].Add(time.Second)) {
			j++
		}
		most = max(most, j-i)
		if float64(j-i) > limit {
			over++
		}
	}
	if len(sorted) > 0 {
		overShare = float64(over) / float64(len(sorted))
	}
	return most, overShare
}

// quantiles returns the median, the 99th percentile and the maximum of v.
func quantiles(v []float64) [3]float64 {
	if len(v) == 0 {
		return [3]float64{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return [3]float64{s[len(s)/2], s[min(len(s)-1, len(s)*99/100)], s[len(s)-1]}
}

// trace is what a worker process records for the parent: when it started each request, and
// how late its probe timer fired.
type trace struct {
	Starts []struct {
		At     int64  `json:"at"`
		Number string `json:"n"`
	} `json:"starts"`
	TimerLate []int64 `json:"timer_late_ns"`
	LetGo     int     `json:"late_slots_let_go"`
}

func readTrace(path string) (trace, error) {
	var t trace
	b, err := os.ReadFile(path)
	if err != nil {
		return t, fmt.Errorf("worker trace: %w", err)
	}
	return t, json.Unmarshal(b, &t)
}

// tracer records a worker process's request starts and timer lateness.
type tracer struct {
	next worker.Sender
	mu   sync.Mutex
	t    trace
}

func (tr *tracer) SendTemplate(ctx context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
	now := time.Now()
	tr.mu.Lock()
	tr.t.Starts = append(tr.t.Starts, struct {
		At     int64  `json:"at"`
		Number string `json:"n"`
	}{now.UnixNano(), msg.Number})
	tr.mu.Unlock()
	return tr.next.SendTemplate(ctx, msg)
}

// probe sleeps 1–13 ms at a time on one timer until ctx ends and records how late the timer
// fired each time.
func (tr *tracer) probe(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d := time.Millisecond + rand.N(12*time.Millisecond)
		began := time.Now()
		t.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		late := time.Since(began) - d
		tr.mu.Lock()
		tr.t.TimerLate = append(tr.t.TimerLate, int64(late))
		tr.mu.Unlock()
	}
}

func (tr *tracer) write(path string) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	b, err := json.Marshal(tr.t)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// runChild is one worker process: Herald's worker, or a plain asynq server whose handler
// waits for its own in-process limiter and posts the request.
func runChild(o options) error {
	c := benchkit.ChildConfig{RedisURL: o.redisURL, FakeURL: o.fakeURL, BusinessID: businessID, APIKey: apiKey,
		Concurrency: o.concurrency}
	return benchkit.RunChild(c, func(ctx context.Context, ch benchkit.Child) error {
		tr := &tracer{next: ch.Client}
		go tr.probe(ctx)
		defer func() {
			if o.trace != "" {
				if err := tr.write(o.trace); err != nil {
					fmt.Fprintln(os.Stderr, "ratebench: trace:", err)
				}
			}
		}()
		if o.child == "herald" {
			m := metrics.New()
			defer func() {
				tr.mu.Lock()
				tr.t.LetGo = int(testutil.ToFloat64(m.LimitWaits.WithLabelValues("late")))
				tr.mu.Unlock()
			}()
			w := worker.New(worker.Config{Concurrency: o.concurrency, Limits: limits.Config{BusinessID: businessID, BusinessRate: o.bizRate,
				SenderRates: map[string]float64{sender: o.rate}, PairInterval: -1}},
				worker.Deps{Redis: ch.RDB, Sender: tr, Logger: zerolog.Nop(), Metrics: m})
			if err := w.Start(); err != nil {
				return err
			}
			<-ctx.Done()
			w.Stop()
			w.Shutdown()
			return nil
		}
		lim := rate.NewLimiter(rate.Limit(min(o.rate, o.bizRate)), 1)
		srv := asynq.NewServerFromRedisClient(ch.RDB, asynq.Config{Concurrency: o.concurrency, Queues: campaigns.Queues,
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
			_, err := tr.SendTemplate(ctx, connectly.TemplateMessage{Number: p.To, TemplateName: p.Template,
				Language: p.Language, Parameters: p.Params, Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign})
			return err
		})
		if err := srv.Start(mux); err != nil {
			return err
		}
		<-ctx.Done()
		srv.Shutdown()
		return nil
	})
}
