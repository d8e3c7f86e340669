package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/heraldmsg/herald/internal/testlog"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// TestEveryProcessServesLintCleanMetrics runs `herald worker`, `herald scheduler` and
// `herald webhooks` with --metrics-listen on one miniredis, lets the worker send a campaign
// and the receiver take a webhook, waits for each /readyz to answer 200, and lints each
// /metrics scrape with the checks of `promtool check metrics` (and with promtool itself when it
// is on PATH). (`herald demo` and
// `herald dashboard` serve no metrics.)
func TestEveryProcessServesLintCleanMetrics(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	_, fakeURL := startFake(t, nil)
	const secret = "lint-webhook-secret"
	env["CONNECTLY_BUSINESS_ID"], env["CONNECTLY_API_KEY"], env["CONNECTLY_BASE_URL"] = itBusiness, itKey, fakeURL
	env["CONNECTLY_WEBHOOK_SECRET"] = secret
	if code, _, errOut := herald(t, env, "campaign", "send", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")); code != 0 {
		t.Fatalf("campaign send exited %d: %s", code, errOut)
	}

	ctx, stop := context.WithCancel(context.Background())
	hooksAddr := freeAddr(t)
	procs := map[string][]string{
		"worker":    {"worker", "--metrics-listen", freeAddr(t)},
		"scheduler": {"scheduler", "--metrics-listen", freeAddr(t)},
		"webhooks":  {"webhooks", "--listen", hooksAddr, "--metrics-listen", freeAddr(t)},
	}
	type exit struct {
		name string
		code int
	}
	exits := make(chan exit, len(procs))
	logs := map[string]*testlog.Buffer{}
	for name, args := range procs {
		log := &testlog.Buffer{}
		logs[name] = log
		go func() {
			exits <- exit{name, run(ctx, args, func(k string) string { return env[k] }, io.Discard, log)}
		}()
	}
	t.Cleanup(func() {
		stop()
		for range procs {
			if e := <-exits; e.code != 0 {
				t.Errorf("%s exited %d: %s", e.name, e.code, logs[e.name])
			}
		}
	})
	ops := func(name string) string { return "http://" + procs[name][len(procs[name])-1] }

	for name := range procs {
		waitFor(t, 15*time.Second, name+" /readyz 200", func() bool { code, _ := opsGet(ops(name) + "/readyz"); return code == 200 })
	}
	body := []byte("{}")
	req, _ := http.NewRequest(http.MethodPost, "http://"+hooksAddr+"/", bytes.NewReader(body))
	req.Header.Set(webhooks.SignatureHeader, webhooks.Sign(body, secret))
	req.Header.Set("Content-Type", "application/json")
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, 30*time.Second, "the worker to settle sends", func() bool {
		_, m := opsGet(ops("worker") + "/metrics")
		return strings.Contains(m, "herald_sends_total{")
	})

	want := map[string][]string{
		"worker":    {"herald_sends_total", "asynq_queue_tasks", "asynq_tasks_processed_total", "herald_daily_tier_limit"},
		"scheduler": {"asynq_queue_tasks", "asynq_queue_paused"},
		"webhooks":  {"herald_webhook_requests_total"},
	}
	// promtool itself, where installed (CI installs it), besides the same lint in Go.
	promtool, _ := exec.LookPath("promtool")
	if promtool == "" {
		t.Log("promtool is not on PATH: linting with promlint only")
	}
	for name := range procs {
		code, scrape := opsGet(ops(name) + "/metrics")
		if code != 200 {
			t.Fatalf("%s /metrics: %d", name, code)
		}
		for _, family := range want[name] {
			if !strings.Contains(scrape, "\n# TYPE "+family+" ") {
				t.Errorf("%s /metrics has no %s", name, family)
			}
		}
		problems, err := promlint.New(strings.NewReader(scrape)).Lint()
		if err != nil {
			t.Fatalf("%s /metrics: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s /metrics: promlint: %s: %s", name, p.Metric, p.Text)
		}
		if promtool != "" {
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = strings.NewReader(scrape)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s /metrics: promtool check metrics: %v\n%s", name, err, out)
			}
		}
	}
}
