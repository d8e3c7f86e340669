// Command sendbench measures end-to-end send throughput on a real Redis: Herald's worker
// (pacing, ledger claim and settle on every send) against a plain asynq worker posting the
// same request to the same local fake Connectly, in alternating rounds of one run. The
// session mode runs the same Herald worker on a session campaign (a text message to
// recipients whose customer service windows are open, in Herald's tracker and in the fake),
// so the session send path can be compared with the template send path in the same run; the
// session-fallback mode sends the same session campaign with a fallback template, which the
// worker keeps before each request for a late window refusal (ledger.KeepFallback).
//
//	go run ./bench/sendbench -redis redis://127.0.0.1:6379/15 -n 20000 -rounds 3
//	go run ./bench/sendbench -redis redis://127.0.0.1:6379/15 -n 20000 -rounds 3 -mode plain,herald,session
//
// The Redis database is flushed before every round. Traffic goes only to 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/servicewindow"
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
	mode := flag.String("mode", "both", "modes in the order of a round, comma-separated: plain, herald, session, session-fallback; both is plain,herald")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		benchkit.Exit("sendbench", err)
		defer pprof.StopCPUProfile()
	}
	err := run(*redisURL, *n, *rounds, *concurrency, benchkit.Modes(*mode, "plain", "herald"))
	if err != nil {
		pprof.StopCPUProfile()
	}
	benchkit.Exit("sendbench", err)
}

// bench is one run's setup, shared by its rounds.
type bench struct {
	env         *benchkit.Env
	client      *connectly.Client
	n           int
	concurrency int
}

func run(redisURL string, n, rounds, concurrency int, modes []string) error {
	ctx := context.Background()
	env, err := benchkit.Open(ctx, benchkit.Config{RedisURL: redisURL, BusinessID: businessID, APIKey: apiKey,
		Prefix: "sendbench", MaxReceived: 1})
	if err != nil {
		return err
	}
	defer env.Close()
	b := &bench{env: env, n: n, concurrency: concurrency}
	if b.client, err = env.Client(businessID, apiKey, concurrency); err != nil {
		return err
	}
	defs := map[string]*campaigns.Definition{}
	for _, mode := range modes {
		var def *campaigns.Definition
		dir := filepath.Join(env.Dir, mode)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		switch mode {
		case "plain", "herald":
			def, err = benchkit.WriteCampaign(dir, "bench", sender, n)
		case "session":
			if def, err = benchkit.WriteSessionCampaign(dir, "bench-session", sender, n); err == nil {
				err = b.openFakeWindows()
			}
		case "session-fallback":
			if def, err = benchkit.WriteSessionFallbackCampaign(dir, "bench-session-fb", sender, n); err == nil {
				err = b.openFakeWindows()
			}
		default:
			err = fmt.Errorf("unknown mode %q", mode)
		}
		if err != nil {
			return err
		}
		defs[mode] = def
	}

	results := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, mode := range modes {
			if err := env.Reset(ctx); err != nil {
				return err
			}
			var rate float64
			switch mode {
			case "plain":
				rate, err = b.plainRound(ctx, defs[mode])
			case "herald":
				rate, err = b.heraldRound(ctx, defs[mode])
			case "session", "session-fallback":
				if err = b.openTrackerWindows(ctx); err == nil {
					rate, err = b.heraldRound(ctx, defs[mode])
				}
			}
			if err != nil {
				return fmt.Errorf("%s round %d: %w", mode, r+1, err)
			}
			if mode == "session" || mode == "session-fallback" {
				if st := env.Fake.Stats(); st.SessionsAccepted != n || st.OutsideWindow != 0 {
					return fmt.Errorf("session round %d: the fake accepted %d session messages (want %d), %d outside a window",
						r+1, st.SessionsAccepted, n, st.OutsideWindow)
				}
			}
			fmt.Printf("round %d %-16s %8.0f msg/s\n", r+1, mode, rate)
			results[mode] = append(results[mode], rate)
		}
	}
	var medians []string
	for _, mode := range modes {
		medians = append(medians, fmt.Sprintf("%s %.0f msg/s", mode, benchkit.Median(results[mode])))
	}
	fmt.Printf("median %s (n=%d, concurrency=%d, rounds=%d)\n", strings.Join(medians, ", "), n, concurrency, rounds)
	ratio := func(a, b string) {
		if len(results[a]) > 0 && len(results[b]) > 0 {
			fmt.Printf("ratio %s/%s %.2f\n", a, b, benchkit.Median(results[a])/benchkit.Median(results[b]))
		}
	}
	ratio("herald", "plain")
	ratio("session", "herald")
	ratio("session-fallback", "session")
	return env.RDB.FlushDB(ctx).Err()
}

// openFakeWindows opens every recipient's customer service window in the fake, which
// refuses session messages outside one. Reset keeps them.
func (b *bench) openFakeWindows() error {
	for i := 0; i < b.n; i++ {
		if err := b.env.Fake.OpenWindow(benchkit.Phone(i), time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// openTrackerWindows records an inbound message from every recipient in Herald's window
// tracker, as the webhook receiver does, so that the worker's window gate lets every
// session message go. It is not timed.
func (b *bench) openTrackerWindows(ctx context.Context) error {
	tr := servicewindow.New(b.env.RDB, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < b.n; i += 32 {
				if _, err := tr.Touch(ctx, businessID, []string{benchkit.Phone(i)}, time.Time{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// plainRound enqueues n tasks carrying the same request body Herald sends and runs a plain
// asynq server whose handler only posts it.
func (b *bench) plainRound(ctx context.Context, def *campaigns.Definition) (float64, error) {
	rdb, client, concurrency := b.env.RDB, b.client, b.concurrency
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
	return waitAccepted(b.env.Fake, b.n, start)
}

// heraldRound expands a run (not timed) and runs Herald's worker until every message is accepted.
// The session mode runs it on a session campaign, expanded as Herald expands one.
func (b *bench) heraldRound(ctx context.Context, def *campaigns.Definition) (float64, error) {
	rdb, client, concurrency, n := b.env.RDB, b.client, b.concurrency, b.n
	run, err := benchkit.Expand(ctx, rdb, def, sender)
	if err != nil {
		return 0, err
	}
	w := worker.New(worker.Config{Concurrency: concurrency, TaskCheckInterval: 50 * time.Millisecond,
		Limits: limits.Config{BusinessID: businessID, BusinessRate: 1e6, SenderRates: map[string]float64{sender: 1e6}}},
		worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	start := time.Now()
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer func() { w.Stop(); w.Shutdown() }()
	if _, err := waitAccepted(b.env.Fake, n, start); err != nil {
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
