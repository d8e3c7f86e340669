// Package demo is `herald demo`: a real campaign end to end in one process, with nothing
// installed. Run starts an in-process Redis (miniredis, its clock advanced so asynq's locks
// and heartbeats behave as on a real server), a webhook receiver turning replies into the
// campaign's on_reply follow-ups, a fake Connectly with a realistic fault mix calling that
// receiver, and a worker sending through the fake. It writes a generated audience and two
// campaigns (a template promo with on_reply rules, then a session follow-up), runs both,
// waits for their webhooks and follow-ups, and returns the report: per state and code, the
// throughput, what the fake saw, the session step and the funnel. Report.Check says whether
// the demo passed.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/serve"
)

// Options are a demo's settings.
type Options struct {
	// Recipients is the number of audience rows to generate; at least 1.
	Recipients int
	// Rate is the sender's rate in messages/s (Connectly's business limit of 200/s also
	// applies).
	Rate float64
	// Concurrency is the worker's.
	Concurrency int
	// Timeout is how long each run may take before Run gives up.
	Timeout time.Duration
	// Log is the logger of the demo's parts.
	Log zerolog.Logger
	// Progress, when set, is called with each read of a run's report while Run waits for the
	// run to end (the last call has an ended report), and how long it has waited.
	Progress func(rep report.Run, elapsed time.Duration)
}

// Report is the demo's report (the JSON of `herald demo --json`).
type Report struct {
	report.Run
	// Wall is the template run's time, from its start to its end.
	Wall          time.Duration `json:"-"`
	WallSeconds   float64       `json:"wall_seconds"`
	MsgsPerSecond float64       `json:"msgs_per_second"`
	Fake          FakeStats     `json:"fake_connectly"`
	// Webhooks are the fake's webhook calls to the demo's receiver.
	Webhooks WebhookStats `json:"webhooks"`
	// SessionStep is the run of the session follow-up sent after the template campaign.
	SessionStep *report.Run `json:"session_step,omitempty"`
	// FakeFollowups counts, by on_reply rule, the follow-ups the fake answered 200 for (its
	// record of session messages whose callbackData names a follow-up of the run).
	FakeFollowups map[string]int64 `json:"fake_followups,omitempty"`
}

// Check reports whether the demo passed: its template run and its session step completed
// with every row accounted for.
func (r Report) Check() error {
	if r.SessionStep == nil {
		return fmt.Errorf("demo: run %s has no session step", r.Run.Run)
	}
	for _, rep := range []report.Run{r.Run, *r.SessionStep} {
		if rep.Status != string(ledger.RunCompleted) || rep.Sum != int64(rep.Recipients) {
			return fmt.Errorf("demo: run %s ended %s with %d of %d rows accounted for", rep.Run, rep.Status, rep.Sum, rep.Recipients)
		}
	}
	return nil
}

// Run runs the demo of o and returns its report; an error when the demo could not run to
// its end (see Report.Check for whether it passed). Everything it started is stopped, and
// the files it wrote are removed, when it returns.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Recipients < 1 {
		return Report{}, errors.New("demo: at least 1 recipient")
	}
	log := o.Log
	dir, err := os.MkdirTemp("", "herald-demo-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)
	campaignPath, err := WriteCampaign(dir, o.Recipients)
	if err != nil {
		return Report{}, err
	}
	def, err := campaigns.Load(campaignPath)
	if err != nil {
		return Report{}, err
	}
	d := newProcess(ctx, o, def, log)
	if err := d.g.Start(); err != nil {
		return Report{}, err
	}
	defer d.g.Stop()
	rdb, fake := d.rdb, d.fake

	start := time.Now()
	c := demoConfig()
	started, err := serve.Runs(c, rdb, log, serve.SendTaskOptions(c)).StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		return Report{}, err
	}
	run := started.Run
	if _, err := d.waitForRun(ctx, run.ID, o); err != nil {
		return Report{}, err
	}
	wall := time.Since(start)
	// The last delivery events trail the last sends by a few spacings: wait for them.
	if err := d.waitForWebhooks(ctx, 30*time.Second); err != nil {
		return Report{}, err
	}
	rep, err := report.ShowRun(ctx, ledger.New(rdb, nil), rdb, report.ShowParams{Run: run.ID, Now: time.Now()})
	if err != nil {
		return Report{}, err
	}
	out := Report{Run: rep, Wall: wall, WallSeconds: wall.Seconds(), Fake: FakeStats(fake.Stats()), Webhooks: WebhookStats(fake.WebhookStats())}
	accepted := rep.States[string(ledger.Accepted)] + rep.States[string(ledger.Sent)] + rep.States[string(ledger.Delivered)] + rep.States[string(ledger.Read)]
	if rep.Delivery != nil {
		accepted += rep.Delivery.DeliveryFailed
	}
	out.MsgsPerSecond = float64(accepted) / wall.Seconds()
	// Replies made follow-ups: wait until they are sent and their own webhooks are in.
	if out.Funnel, err = d.waitForFollowups(ctx, c, run, 30*time.Second); err != nil {
		return Report{}, err
	}
	callbacks, err := fake.AcceptedSessionCallbacks()
	if err != nil {
		return Report{}, err
	}
	out.FakeFollowups = report.CountFollowups(run.ID, callbacks)
	if out.SessionStep, err = d.runSession(ctx, def, o, log); err != nil {
		return Report{}, err
	}
	out.Fake = FakeStats(fake.Stats())
	return out, nil
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

// randomHex is 16 random bytes in hex, for the demo's secrets.
func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runSession is the demo's session step: once the template campaign's run is done and
// its webhooks are in (some recipients replied, which opened their customer service
// window), a session campaign follows up with the same audience. Those whose window is open
// get the session message; the others are skipped(window_closed), with no request.
func (d *process) runSession(ctx context.Context, tpl *campaigns.Definition, o Options, log zerolog.Logger) (*report.Run, error) {
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
	started, err := serve.Runs(c, d.rdb, log, serve.SendTaskOptions(c)).StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		return nil, err
	}
	rep, err := d.waitForRun(ctx, started.Run.ID, o)
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// WriteCampaign writes an audience of n rows and the demo's template campaign using it into
// dir; it returns the campaign file's path. About 1% of rows have an unusable phone number
// and 0.5% repeat an earlier recipient, as real exports do.
func WriteCampaign(dir string, n int) (string, error) {
	if err := writeAudience(filepath.Join(dir, "audience.csv"), n); err != nil {
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
