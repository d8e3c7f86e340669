package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audiencegen"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// process is the demo's parts: an in-process Redis, a webhook receiver, a fake Connectly
// that calls it, and a worker sending through the fake, started in that order and stopped in
// reverse.
type process struct {
	g    *lifecycle.Group
	rdb  redis.UniversalClient
	ws   *serve.Receiver
	fake *fakeconnectly.Server
}

// clockStep is how often, and by how much, the in-process Redis's clock is advanced.
const clockStep = 250 * time.Millisecond

func newProcess(ctx context.Context, o Options, def *campaigns.Definition, log zerolog.Logger) *process {
	d := &process{g: lifecycle.New()}
	// In-process Redis. miniredis never expires keys by itself: advance its clock so asynq's
	// locks and heartbeats behave as on a real server.
	mr := miniredis.NewMiniRedis()
	ffDone, ffStopped := make(chan struct{}), make(chan struct{})
	d.g.Add(lifecycle.Component{
		Name: "in-memory redis",
		Start: func() error {
			if err := mr.StartAddr("127.0.0.1:0"); err != nil {
				return fmt.Errorf("demo: start in-memory redis: %w", err)
			}
			go func() {
				defer close(ffStopped)
				t := time.NewTicker(clockStep)
				defer t.Stop()
				for {
					select {
					case <-ffDone:
						return
					case <-t.C:
						mr.FastForward(clockStep)
					}
				}
			}()
			d.rdb = redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: o.Concurrency + 20})
			return nil
		},
		Stop: func() error {
			err := d.rdb.Close()
			close(ffDone)
			<-ffStopped
			mr.Close()
			return err
		},
	})
	// A webhook receiver on the same Redis, with a random secret; the fake calls it.
	// It turns replies into the campaign's on_reply follow-ups, as `herald webhooks` does.
	secret := randomHex()
	c := demoConfig()
	d.g.Add(lifecycle.Component{
		Name: "webhook receiver",
		Start: func() (err error) {
			fu, err := serve.NewFollowups(c, d.rdb, log, nil)
			if err != nil {
				return err
			}
			d.ws, err = serve.StartReceiver(ctx, serve.ReceiverSetup{Config: webhooks.Config{Secrets: []string{secret},
				RetryEvery: 100 * time.Millisecond, Business: demoBusiness}, Listen: "127.0.0.1:0", Redis: d.rdb, Log: log, Followups: fu})
			return err
		},
		Stop: func() error { d.ws.Stop(); return nil },
	})
	// Fake Connectly with the demo fault mix and a random key.
	apiKey := randomHex()
	var baseURL string
	d.g.Add(lifecycle.Component{
		Name: "fake Connectly",
		Start: func() (err error) {
			d.fake, err = fakeconnectly.New(fakeconnectly.Config{BusinessID: demoBusiness, APIKey: apiKey, Rules: fakeconnectly.DemoRules(),
				Webhooks: fakeconnectly.DemoWebhooks("http://"+d.ws.Addr()+"/", secret, 100*time.Millisecond)})
			if err != nil {
				return err
			}
			baseURL, err = d.fake.Start("127.0.0.1:0")
			return err
		},
		Stop: func() error { return d.fake.Close() },
	})
	var w *worker.Worker
	d.g.Add(lifecycle.Component{
		Name: "worker",
		Start: func() error {
			client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: baseURL, BusinessID: demoBusiness, APIKey: apiKey, Timeout: 5 * time.Second, MaxConns: o.Concurrency})
			if err != nil {
				return err
			}
			w = worker.New(workerConfig(o, def), worker.Deps{Redis: d.rdb, Sender: client, Logger: log})
			// Sends are recorded for the join of plain-text replies, as `herald worker` does.
			w.OnSending(serve.SendRecorder(c, d.rdb, log))
			return w.Start()
		},
		Quiesce: func() { w.Stop() },
		Stop:    func() error { w.Shutdown(); return nil },
	})
	return d
}

// workerConfig is the demo worker's: o's concurrency, def's sender at o's rate, and timings
// compressed so that retries, holds and adaptive decisions happen within the demo's seconds.
func workerConfig(o Options, def *campaigns.Definition) worker.Config {
	return worker.Config{
		Concurrency:   o.Concurrency,
		Backoff:       backoff.Backoff{Base: 100 * time.Millisecond, Cap: time.Second},
		ThrottleDelay: 300 * time.Millisecond, HoldDelay: time.Second, RequestTimeout: 5 * time.Second,
		ShutdownTimeout: 6 * time.Second, DelayedTaskCheckInterval: 200 * time.Millisecond,
		TaskCheckInterval: 100 * time.Millisecond, Limits: limits.Config{BusinessID: demoBusiness,
			SenderRates: map[string]float64{def.Sender: o.Rate},
			// The demo compresses time (100 ms retries); its pair interval is 1 s, not Meta's 6 s,
			// and a sender slowed by 429s decides over 2 s and recovers within a few seconds, not
			// half a minute (the fake's 3% of random 429s stay under the threshold: no decrease).
			PairInterval: time.Second,
			Adaptive:     limits.Policy{Period: 2 * time.Second, Every: 250 * time.Millisecond, Step: 0.05},
			// A send waits in place for its permits at most 200 ms: with a 1 s wait allowed, a
			// follow-up to a person messaged less than a second before (the demo's readers reply
			// at once) slept through its pair interval holding a worker, and the demo ran at a
			// quarter of its rate (docs/benchmarks.md). Longer waits are rescheduled.
			MaxWait: 200 * time.Millisecond,
		}}
}

// waitForWebhooks waits until the fake has no webhook call pending and the receiver no
// parked event, or dur passes.
func (d *process) waitForWebhooks(ctx context.Context, dur time.Duration) error {
	if err := d.fake.WaitForWebhooks(ctx, d.ws.Parked, dur); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// waitForFollowups waits until every follow-up of run is sent (none pending) and the fake
// has no webhook call pending, the receiver no parked event, twice in a row with the same
// follow-ups created (a last reply may create one more), or dur passes. It returns the run's
// funnel.
func (d *process) waitForFollowups(ctx context.Context, c config.Config, run ledger.Run, dur time.Duration) (*report.Funnel, error) {
	l, rules := ledger.New(d.rdb, nil), serve.RunRuleIDs(c, d.rdb)
	deadline := time.Now().Add(dur)
	for {
		f, err := report.RunFunnel(ctx, l, run, rules)
		if err != nil || f == nil {
			return f, err
		}
		if before, done := f.Settled(); done {
			if err := d.waitForWebhooks(ctx, time.Until(deadline)); err != nil {
				return nil, err
			}
			if f, err = report.RunFunnel(ctx, l, run, rules); err != nil {
				return nil, err
			}
			if after, done := f.Settled(); done && after == before {
				return f, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: follow-ups of run %s still pending after %s", run.ID, dur)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitForRun reads the run's report every 200 ms, passing it to o.Progress, until the run
// has ended, or o.Timeout passes (an error), or ctx is done. It returns the last report.
func (d *process) waitForRun(ctx context.Context, runID string, o Options) (report.Run, error) {
	l := ledger.New(d.rdb, nil)
	read := func(ctx context.Context, now time.Time) (report.Run, error) {
		return report.ReadRun(ctx, l, runID, now)
	}
	return report.PollRun(ctx, 200*time.Millisecond, read, func(rep report.Run, elapsed time.Duration) error {
		if o.Progress != nil {
			o.Progress(rep, elapsed)
		}
		if !rep.Ended() && elapsed > o.Timeout {
			return fmt.Errorf("demo: run %s not completed after %s (status %s)", runID, o.Timeout, rep.Status)
		}
		return nil
	})
}

// writeAudience writes an audience of n rows to path, with the invalid and repeated rows
// real exports have (see audiencegen).
func writeAudience(path string, n int) error {
	return audiencegen.WriteFile(path, n, validPhone)
}

// validPhone reports whether num is a phone number an audience may have.
func validPhone(num string) bool {
	_, err := campaigns.NormalizePhone(num, "")
	return err == nil
}
