package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/audiencegen"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// waitForWebhooks waits until the fake has no webhook call pending and the receiver no
// parked event, or d passes.
func waitForWebhooks(ctx context.Context, fake *fakeconnectly.Server, ws *serve.Receiver, d time.Duration) error {
	if err := fake.WaitForWebhooks(ctx, ws.Parked, d); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

type demoOptions struct {
	recipients  int
	rate        float64
	concurrency int
	asJSON      bool
	verbose     bool
	timeout     time.Duration
}

func (a *app) demoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a real campaign end to end in one process: in-memory Redis, a fake Connectly, a worker",
		Long: `Run a real campaign end to end with nothing installed: an in-process Redis (miniredis),
a local fake of the Connectly API with a realistic fault mix (invalid numbers, opt-outs,
5xx answers, some after the message went out, 429s, lost answers), and a worker. The demo generates an audience,
expands it into the ledger and the queue, delivers it, and reports per state and code.
The fake's readers answer the template's buttons and type keywords; the campaign's on_reply
rules answer them once each, a session step follows, and the report ends with the funnel.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.recipients < 1 {
				return usageError{fmt.Errorf("--recipients must be at least 1")}
			}
			return a.runDemo(cmd.Context(), o)
		},
	}
	cmd.Flags().IntVar(&o.recipients, "recipients", 1000, "audience rows to generate")
	cmd.Flags().Float64Var(&o.rate, "rate", 200, "sender rate in messages/s (Connectly's business limit of 200/s also applies)")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", 50, "worker concurrency")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the report as one JSON object on stdout")
	cmd.Flags().BoolVar(&o.verbose, "verbose", false, "log every send (debug level; default: errors only)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when the run has not completed by then")
	return cmd
}

// demoReport is the demo's JSON report.
type demoReport struct {
	report.Run
	WallSeconds   float64             `json:"wall_seconds"`
	MsgsPerSecond float64             `json:"msgs_per_second"`
	Fake          fakeconnectly.Stats `json:"fake_connectly"`
	// Webhooks are the fake's webhook calls to the demo's receiver.
	Webhooks fakeconnectly.WebhookStats `json:"webhooks"`
	// SessionStep is the run of the session follow-up sent after the template campaign.
	SessionStep *report.Run `json:"session_step,omitempty"`
	// FakeFollowups counts, by on_reply rule, the follow-ups the fake answered 200 for (its
	// record of session messages whose callbackData names a follow-up of the run).
	FakeFollowups map[string]int64 `json:"fake_followups,omitempty"`
}

// demoConfig is the configuration the demo's parts share: the defaults, with the demo's
// business id (the key of windows and of the index of recent sends).
func demoConfig() config.Config {
	c := config.Default()
	c.Connectly.BusinessID = demoBusiness
	return c
}

// demoBusiness is the demo's business id, at the fake and in Redis.
const demoBusiness = "4f6c1a52-demo-4e21-9b7a-000000000001"

// demoProcess is the demo's parts: an in-process Redis, a webhook receiver, a fake
// Connectly that calls it, and a worker sending through the fake, started in that order and
// stopped in reverse.
type demoProcess struct {
	g    *lifecycle.Group
	rdb  redis.UniversalClient
	ws   *serve.Receiver
	fake *fakeconnectly.Server
}

func newDemoProcess(ctx context.Context, o demoOptions, def *campaigns.Definition, log zerolog.Logger) *demoProcess {
	d := &demoProcess{g: lifecycle.New()}
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
				t := time.NewTicker(250 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-ffDone:
						return
					case <-t.C:
						mr.FastForward(250 * time.Millisecond)
					}
				}
			}()
			d.rdb = redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: o.concurrency + 20})
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
			d.fake, err = fakeconnectly.New(fakeconnectly.Config{BusinessID: demoBusiness, APIKey: apiKey, Rules: demoRules(),
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
			client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: baseURL, BusinessID: demoBusiness, APIKey: apiKey, Timeout: 5 * time.Second, MaxConns: o.concurrency})
			if err != nil {
				return err
			}
			w = worker.New(worker.Config{
				Concurrency:   o.concurrency,
				Backoff:       backoff.Backoff{Base: 100 * time.Millisecond, Cap: time.Second},
				ThrottleDelay: 300 * time.Millisecond, HoldDelay: time.Second, RequestTimeout: 5 * time.Second,
				ShutdownTimeout: 6 * time.Second, DelayedTaskCheckInterval: 200 * time.Millisecond,
				TaskCheckInterval: 100 * time.Millisecond, Limits: limits.Config{BusinessID: demoBusiness,
					SenderRates: map[string]float64{def.Sender: o.rate},
					// The demo compresses time (100 ms retries); its pair interval is 1 s, not Meta's 6 s,
					// and a sender slowed by 429s decides over 2 s and recovers within a few seconds, not
					// half a minute (the fake's 3% of random 429s stay under the threshold: no decrease).
					PairInterval: time.Second,
					Adaptive:     limits.Policy{Window: 2 * time.Second, Every: 250 * time.Millisecond, Step: 0.05},
				}}, worker.Deps{Redis: d.rdb, Sender: client, Logger: log})
			// Sends are recorded for the join of plain-text replies, as `herald worker` does.
			w.OnSending(serve.SendRecorder(c, d.rdb, log))
			return w.Start()
		},
		Quiesce: func() { w.Stop() },
		Stop:    func() error { w.Shutdown(); return nil },
	})
	return d
}

// randomHex is 16 random bytes in hex, for the demo's secrets.
func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (a *app) runDemo(ctx context.Context, o demoOptions) error {
	level := "error"
	if o.verbose {
		level = "debug"
	}
	log, err := logx.New(a.stderr, logx.Options{Level: level})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "herald-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	campaignPath, err := writeDemoCampaign(dir, o.recipients)
	if err != nil {
		return err
	}
	def, err := campaigns.Load(campaignPath)
	if err != nil {
		return err
	}
	d := newDemoProcess(ctx, o, def, log)
	if err := d.g.Start(); err != nil {
		return err
	}
	defer d.g.Stop()
	rdb, ws, fake := d.rdb, d.ws, d.fake

	start := time.Now()
	c := demoConfig()
	started, err := runs(c, rdb, log, sendTaskOptions(c)).StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		return err
	}
	run := started.Run
	if _, err := a.waitForRun(ctx, rdb, run.ID, o); err != nil {
		return err
	}
	wall := time.Since(start)
	// The last delivery events trail the last sends by a few spacings: wait for them.
	if err := waitForWebhooks(ctx, fake, ws, 30*time.Second); err != nil {
		return err
	}
	rep, err := report.ShowRun(ctx, ledger.New(rdb, nil), rdb, report.ShowParams{Run: run.ID, Now: time.Now()})
	if err != nil {
		return err
	}
	out := demoReport{Run: rep, WallSeconds: wall.Seconds(), Fake: fake.Stats(), Webhooks: fake.WebhookStats()}
	accepted := rep.States[string(ledger.Accepted)] + rep.States[string(ledger.Sent)] + rep.States[string(ledger.Delivered)] + rep.States[string(ledger.Read)]
	if rep.Delivery != nil {
		accepted += rep.Delivery.DeliveryFailed
	}
	out.MsgsPerSecond = float64(accepted) / wall.Seconds()
	// Replies made follow-ups: wait until they are sent and their own webhooks are in.
	if rep.Funnel, err = waitForFollowups(ctx, c, d, run, 30*time.Second); err != nil {
		return err
	}
	out.Funnel = rep.Funnel
	callbacks, err := fake.AcceptedSessionCallbacks()
	if err != nil {
		return err
	}
	out.FakeFollowups = report.CountFollowups(run.ID, callbacks)
	if out.SessionStep, err = a.runDemoSession(ctx, d, def, o, log); err != nil {
		return err
	}
	out.Fake = fake.Stats()

	err = a.print(o.asJSON, out, func(w io.Writer) error {
		fmt.Fprintf(w, "Herald demo: %d recipients through a fake Connectly in %s (%.0f msg/s accepted)\n\n",
			rep.Recipients, wall.Round(time.Millisecond), out.MsgsPerSecond)
		report.PrintRun(w, rep)
		fmt.Fprintf(w, "\nfake Connectly saw %d requests: %d accepted, %d throttled (429), %d answers lost on purpose\n",
			out.Fake.Requests, out.Fake.Accepted, out.Fake.Throttled, out.Fake.Lost)
		fmt.Fprintf(w, "fake Connectly made %d signed webhook calls, duplicates and out-of-order ones included (%d sent, %d delivered, %d read, %d delivery_failed, %d replies)\n",
			out.Webhooks.Delivered, out.Webhooks.ByStatus["sent"], out.Webhooks.ByStatus["delivered"], out.Webhooks.ByStatus["read"],
			out.Webhooks.ByStatus["delivery_failed"], out.Webhooks.ByStatus["reply"])
		printDemoSession(w, out.SessionStep, out.Fake)
		printDemoFunnel(w, rep)
		fmt.Fprintf(w, "\nTry a recipient's story, a real Redis and worker, and more: see README.md\n")
		return nil
	})
	if err != nil {
		return err
	}
	for _, rep := range []report.Run{rep, *out.SessionStep} {
		if rep.Status != string(ledger.RunCompleted) || rep.Sum != int64(rep.Recipients) {
			return fmt.Errorf("demo: run %s ended %s with %d of %d rows accounted for", rep.Run, rep.Status, rep.Sum, rep.Recipients)
		}
	}
	return nil
}

// runDemoSession is the demo's session step: once the template campaign's run is done and
// its webhooks are in (some recipients replied, which opened their customer service
// window), a session campaign follows up with the same audience. Those whose window is open
// get the session message; the others are skipped(window_closed), with no request.
func (a *app) runDemoSession(ctx context.Context, d *demoProcess, tpl *campaigns.Definition, o demoOptions, log zerolog.Logger) (*report.Run, error) {
	path := filepath.Join(filepath.Dir(tpl.Path), "follow-up.yaml")
	yaml := `# Generated by herald demo: a session message to those who replied.
id: demo-spring-follow-up
name: Spring promo follow-up (demo)
sender: "` + tpl.Sender + `"
message:
  text: "Thanks for writing back, {{ .first_name | title }}! Your code {{ .coupon }} is ready at checkout."
  reply_buttons:
    buttons:
      - {id: use-now, text: "Use it now"}
      - {id: later, text: "Maybe later"}
audience:
  file: audience.csv
  phone: phone
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	def, err := campaigns.Load(path)
	if err != nil {
		return nil, err
	}
	c := demoConfig()
	started, err := runs(c, d.rdb, log, sendTaskOptions(c)).StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		return nil, err
	}
	rep, err := a.waitForRun(ctx, d.rdb, started.Run.ID, o)
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// waitForFollowups waits until every follow-up of run is sent (none pending) and the fake
// has no webhook call pending, the receiver no parked event, twice in a row with the same
// follow-ups created (a last reply may create one more), or d passes. It returns the run's
// funnel.
func waitForFollowups(ctx context.Context, c config.Config, d *demoProcess, run ledger.Run, dur time.Duration) (*report.Funnel, error) {
	l, rules := ledger.New(d.rdb, nil), runRuleIDs(c, d.rdb)
	deadline := time.Now().Add(dur)
	for {
		f, err := report.RunFunnel(ctx, l, run, rules)
		if err != nil || f == nil {
			return f, err
		}
		if before, done := f.Settled(); done {
			if err := waitForWebhooks(ctx, d.fake, d.ws, time.Until(deadline)); err != nil {
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

// printDemoFunnel renders the template run's replies and follow-ups (on_reply).
func printDemoFunnel(w io.Writer, rep report.Run) {
	if rep.Funnel == nil {
		return
	}
	report.PrintFunnel(w, rep.Funnel)
	fmt.Fprintf(w, "  (a \"Yes\" tap gets the collection, \"No thanks\" a confirmation and no more messages, \"price\" the prices;\n"+
		"   each at most once per recipient, however often Connectly repeats the webhook; herald run show %s shows the same)\n", rep.Run)
}

// printDemoSession renders the demo's session step.
func printDemoSession(w io.Writer, rep *report.Run, fake fakeconnectly.Stats) {
	if rep == nil {
		return
	}
	sc := cmp.Or(rep.Session, &report.SessionCounts{})
	fmt.Fprintf(w, "\nSession step: %s follows up with the same %d rows as a session message (no template)\n", rep.Campaign, rep.Recipients)
	fmt.Fprintf(w, "  %d replied to the promo, so their 24-hour window was open: sent the session message\n", sc.Sent)
	fmt.Fprintf(w, "  %d did not: skipped(window_closed), no request made; %d session requests refused by Connectly for a closed window\n",
		sc.WindowClosed, fake.WindowRefused)
	fmt.Fprintf(w, "  (herald run show %s shows the same counts)\n", rep.Run)
}

// waitForRun polls the run until it completes, showing progress on a terminal.
func (a *app) waitForRun(ctx context.Context, rdb redis.UniversalClient, runID string, o demoOptions) (report.Run, error) {
	deadline := time.Now().Add(o.timeout)
	showProgress := isTerminal(a.stderr)
	rep, err := pollRun(ctx, ledger.New(rdb, nil), runID, 200*time.Millisecond, func(rep report.Run, elapsed time.Duration) error {
		if showProgress {
			fmt.Fprint(a.stderr, "\r"+report.ProgressLine(rep, elapsed))
		}
		if !rep.Ended() && time.Now().After(deadline) {
			return fmt.Errorf("demo: run %s not completed after %s (status %s)", runID, o.timeout, rep.Status)
		}
		return nil
	})
	if showProgress && err == nil {
		fmt.Fprintln(a.stderr)
	}
	return rep, err
}

// writeDemoCampaign writes an audience of n rows and a campaign using it; it returns the
// campaign file's path. About 1% of rows have an unusable phone number and 0.5% repeat an
// earlier recipient, as real exports do.
func writeDemoCampaign(dir string, n int) (string, error) {
	if err := audiencegen.WriteFile(filepath.Join(dir, "audience.csv"), n, validPhone); err != nil {
		return "", err
	}
	yaml := `# Generated by herald demo.
id: demo-spring-promo
name: Spring promo (demo)
sender: "+14155550100"
template:
  name: spring_promo
  language: en
  category: marketing
parameters:
  header_image: "https://cdn.example.com/spring.png"
  body_1: "{{ .first_name | title }}"
  body_2: "{{ .coupon }}"
  button_1_url: "{{ .coupon | urlquery }}"
audience:
  file: audience.csv
  phone: phone
# Answers to the template's quick-reply buttons and to a typed question, at most once per
# recipient: the reply opened the customer's 24-hour window, so each is a session message.
on_reply:
  - name: interested
    button: "Yes, show me"
    tag: interested
    message:
      text: "Here is the spring collection, {{ .first_name | title }}: https://shop.example.com/spring?code={{ .coupon | urlquery }}"
  - name: no-thanks
    button: "No thanks"
    suppress: true
    message:
      text: "Understood, you will not hear from us again."
  - name: price
    keyword: price
    message:
      text: "Prices start at $9, and your code {{ .coupon }} takes 20% off at checkout."
`
	path := filepath.Join(dir, "campaign.yaml")
	return path, os.WriteFile(path, []byte(yaml), 0o644)
}

// validPhone reports whether num is a phone number an audience may have.
func validPhone(num string) bool {
	_, err := campaigns.NormalizePhone(num, "")
	return err == nil
}
