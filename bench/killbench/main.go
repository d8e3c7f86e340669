// Command killbench measures what a killed worker costs the living: it runs a submitted
// campaign on several worker processes (each a send worker and an expansion server, as
// `herald worker` runs them) against a real Redis and a local fake Connectly, once unhurt and
// once while one worker process is killed with SIGKILL every few seconds (and restarted at
// once), and reports the extra time the killed run took per kill.
//
//	go build -o bin/killbench ./bench/killbench
//	bin/killbench -redis redis://127.0.0.1:6379/6 -n 10000 -rate 150 -kill-every 10s
//
// Both runs happen in one invocation, on the same audience, the database flushed before each.
// A run's time is from its first send to the ledger marking it completed; the loss per kill is
// (killed − unhurt) / kills. The fake's record also says whether any recipient was sent twice
// or never. Traffic goes only to 127.0.0.1; the child processes are this program itself, killed
// and stopped by their PIDs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/reclaim"
	"github.com/heraldmsg/herald/worker"
)

const (
	businessID = "killbench-business"
	apiKey     = "killbench-key"
	sender     = "+14155550100"
)

type options struct {
	redisURL    string
	n           int
	rate        float64
	procs       int
	concurrency int
	expand      int
	killEvery   time.Duration
	firstKill   time.Duration
	mode        string
	timeout     time.Duration
	timeline    bool
	reclaim     bool
	// child mode: the fake's base URL to send to.
	child   bool
	fakeURL string
}

func main() {
	var o options
	flag.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/6", "Redis to use (its database is flushed)")
	flag.IntVar(&o.n, "n", 10000, "recipients")
	flag.Float64Var(&o.rate, "rate", 150, "the sender's rate, messages/s (the business limit is 200/s)")
	flag.IntVar(&o.procs, "procs", 2, "worker processes")
	flag.IntVar(&o.concurrency, "concurrency", 50, "sends in flight per process")
	flag.IntVar(&o.expand, "expand-concurrency", 4, "expansion server concurrency per process (scheduler.expand_concurrency)")
	flag.DurationVar(&o.killEvery, "kill-every", 10*time.Second, "time between kills in the killed run")
	flag.DurationVar(&o.firstKill, "first-kill", 5*time.Second, "time after the first send of the first kill")
	flag.StringVar(&o.mode, "mode", "both", "unhurt, killed or both")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run after this long")
	flag.BoolVar(&o.timeline, "timeline", false, "print a line a second: sends, pending entries, expansion and send tasks by state")
	flag.BoolVar(&o.reclaim, "reclaim", true, "run Herald's reclaimer of dead workers' tasks in each worker process (as herald worker does)")
	flag.BoolVar(&o.child, "child", false, "internal: run as a worker process")
	flag.StringVar(&o.fakeURL, "fake", "", "internal: the fake Connectly's base URL")
	flag.Parse()
	benchkit.Main("killbench", o.child, func() error { return runParent(o) }, func() error { return runChild(o) })
}

// result is one run's measurement.
type result struct {
	Mode      string  `json:"mode"`
	Seconds   float64 `json:"seconds"`
	Kills     int     `json:"kills"`
	Accepted  int     `json:"accepted"`
	Twice     int     `json:"sent_twice"`
	Never     int     `json:"never_sent"`
	Unknown   int64   `json:"unknown"`
	LongGap   float64 `json:"longest_gap_seconds"`
	SlowSecs  int     `json:"seconds_under_half_rate"`
	RunStatus string  `json:"run_status"`
}

func runParent(o options) error {
	cfg := benchkit.Config{RedisURL: o.redisURL, BusinessID: businessID, APIKey: apiKey, Prefix: "killbench"}
	return benchkit.WithEnv(cfg, func(ctx context.Context, env *benchkit.Env) error {
		def, err := benchkit.WriteCampaign(env.Dir, "killbench", sender, o.n)
		if err != nil {
			return err
		}
		modes := benchkit.Modes(o.mode, "unhurt", "killed")
		fmt.Printf("killbench: %d recipients, %d processes x concurrency %d (+ expansion %d), sender %g/s; a kill every %s from %s; reclaimer %v; %d CPUs, %s\n",
			o.n, o.procs, o.concurrency, o.expand, o.rate, o.killEvery, o.firstKill, o.reclaim, runtime.NumCPU(), runtime.Version())
		var results []result
		for _, mode := range modes {
			if err := env.Reset(ctx); err != nil {
				return err
			}
			r, err := measure(ctx, o, mode, env, def)
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			results = append(results, r)
			fmt.Printf("%-7s %6.1f s, %d kills, status %s: %d accepted, %d sent twice, %d never sent, %d unknown; longest gap %.1f s, %d s under half the rate\n",
				r.Mode, r.Seconds, r.Kills, r.RunStatus, r.Accepted, r.Twice, r.Never, r.Unknown, r.LongGap, r.SlowSecs)
		}
		if len(results) == 2 && results[1].Kills > 0 {
			lost := (results[1].Seconds - results[0].Seconds) / float64(results[1].Kills)
			fmt.Printf("lost per kill: %.2f s of the run's time ((%.1f - %.1f) / %d)\n", lost, results[1].Seconds, results[0].Seconds, results[1].Kills)
		}
		b, _ := json.Marshal(results)
		fmt.Printf("json %s\n", b)
		return env.RDB.FlushDB(ctx).Err()
	})
}

// child is one running worker process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startChild starts a worker process sending to the fake at base.
func startChild(base string) (*child, error) {
	c, err := benchkit.StartChild("-child", "-fake", base)
	if err != nil {
		return nil, err
	}
	ch := &child{cmd: c, done: make(chan struct{})}
	go func() { _ = c.Wait(); close(ch.done) }()
	return ch, nil
}

// measure runs the campaign once: starts the children, starts the run, kills (in the killed
// mode) one child every killEvery until the run completes, and reads the fake's record.
func measure(ctx context.Context, o options, mode string, env *benchkit.Env, def *campaigns.Definition) (result, error) {
	rdb, fake := env.RDB, env.Fake
	kids := make([]*child, o.procs)
	defer func() {
		for _, k := range kids {
			if k != nil {
				_ = k.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, k := range kids {
			if k != nil {
				<-k.done
			}
		}
	}()
	for i := range kids {
		k, err := startChild(env.Base)
		if err != nil {
			return result{}, err
		}
		kids[i] = k
	}
	runID, err := benchkit.StartRun(ctx, rdb, def)
	if err != nil {
		return result{}, err
	}
	l := ledger.New(rdb, nil)
	deadline := time.Now().Add(o.timeout)
	for fake.Stats().Accepted == 0 {
		if time.Now().After(deadline) {
			return result{}, errors.New("no send in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	first := fake.Received()[0].At
	nextKill := first.Add(o.firstKill)
	kills, victim := 0, 0
	var status ledger.RunStatus
	insp := asynq.NewInspectorFromRedisClient(rdb)
	nextLine, lastAcc := first.Add(time.Second), 0
	for {
		if o.timeline && !time.Now().Before(nextLine) {
			acc := fake.Stats().Accepted
			pending, _ := l.Pending(ctx, runID)
			r, _ := l.GetRun(ctx, runID)
			eq, _ := insp.GetQueueInfo(campaigns.ExpandQueue)
			sq, _ := insp.GetQueueInfo(campaigns.QueueFor("utility"))
			line := fmt.Sprintf("t=%3.0f sent %4d entries pending %5d planned %6d", time.Since(first).Seconds(), acc-lastAcc, pending, r.PlannedTo)
			if eq != nil {
				line += fmt.Sprintf(" | expand act %d pend %d sched %d retry %d", eq.Active, eq.Pending, eq.Scheduled, eq.Retry)
			}
			if sq != nil {
				line += fmt.Sprintf(" | send act %d pend %d sched %d retry %d", sq.Active, sq.Pending, sq.Scheduled, sq.Retry)
			}
			fmt.Println(line)
			lastAcc = acc
			nextLine = nextLine.Add(time.Second)
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("run not completed within %s", o.timeout)
		}
		if r, err := l.GetRun(ctx, runID); err == nil {
			status = r.Status
			if r.Status == ledger.RunCompleted {
				break
			}
		}
		if mode == "killed" && !time.Now().Before(nextKill) {
			k := kids[victim]
			_ = k.cmd.Process.Signal(syscall.SIGKILL)
			<-k.done
			nk, err := startChild(env.Base)
			if err != nil {
				kids[victim] = nil
				return result{}, err
			}
			kids[victim] = nk
			kills++
			if o.timeline {
				fmt.Printf("t=%3.0f killed process %d\n", time.Since(first).Seconds(), victim)
			}
			victim = (victim + 1) % len(kids)
			nextKill = nextKill.Add(o.killEvery)
		}
		time.Sleep(20 * time.Millisecond)
	}
	end := time.Now()
	counts, err := l.Counters(ctx, runID)
	if err != nil {
		return result{}, err
	}
	res := result{Mode: mode, Seconds: end.Sub(first).Seconds(), Kills: kills, RunStatus: string(status),
		Unknown: counts.States[ledger.Unknown]}
	per := fake.AcceptedCounts()
	for _, c := range per {
		res.Accepted += min(c, 1)
		if c > 1 {
			res.Twice++
		}
	}
	res.Never = o.n - res.Accepted
	// Throughput over time, from the fake's arrival times: the longest time without a send,
	// and the seconds (after the first full second) that carried less than half the rate.
	var last time.Time
	perSec := map[int]int{}
	for _, r := range fake.Received() {
		if !last.IsZero() {
			res.LongGap = max(res.LongGap, r.At.Sub(last).Seconds())
		}
		last = r.At
		perSec[int(r.At.Sub(first).Seconds())]++
	}
	for s := 1; s < int(end.Sub(first).Seconds()); s++ {
		if float64(perSec[s]) < o.rate/2 {
			res.SlowSecs++
		}
	}
	return res, nil
}

// runChild is one worker process as `herald worker` runs it: a send worker and an expansion
// server on the same Redis, stopped gracefully on SIGTERM (SIGKILL stops it at once).
func runChild(o options) error {
	c := benchkit.ChildConfig{RedisURL: o.redisURL, FakeURL: o.fakeURL, BusinessID: businessID, APIKey: apiKey,
		Concurrency: o.concurrency}
	return benchkit.RunChild(c, func(ctx context.Context, ch benchkit.Child) error {
		log := zerolog.New(os.Stderr).Level(zerolog.ErrorLevel)
		w := worker.New(worker.Config{Concurrency: o.concurrency, Limits: limits.Config{BusinessID: businessID,
			SenderRates: map[string]float64{sender: o.rate}}}, worker.Deps{Redis: ch.RDB, Sender: ch.Client, Logger: log})
		if err := w.Start(); err != nil {
			return err
		}
		// The send task options of submitted campaigns (herald's expandTaskOptions with the
		// default config): budget 25, timeout request + pace wait + keep place + 30 s.
		exp := expand.NewServer(expand.ServerConfig{Concurrency: o.expand, Expand: expand.Config{
			Task: campaigns.TaskOptions{MaxRetry: 25, Timeout: 61 * time.Second}}},
			expand.Deps{Redis: ch.RDB, Logger: log, Sender: func(*campaigns.Definition) (string, error) { return sender, nil },
				SenderRate: func(string) float64 { return o.rate }})
		if err := exp.Start(); err != nil {
			w.Stop()
			w.Shutdown()
			return err
		}
		var rc *reclaim.Reclaimer
		if o.reclaim {
			rc = reclaim.New(ch.RDB, reclaim.Config{Queues: append(w.Queues(), campaigns.ExpandQueue)}, log)
			rc.Start()
		}
		<-ctx.Done()
		if rc != nil {
			rc.Stop()
		}
		exp.Stop()
		w.Stop()
		exp.Shutdown()
		w.Shutdown()
		return nil
	})
}
