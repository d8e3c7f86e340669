package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/serve"
)

// testHTTP is the HTTP client of the package's tests, with a transport of its own: on
// http.DefaultTransport, a parallel test's httptest.Server.Close (which closes that transport's
// idle connections) can break a request mid-way ("CloseIdleConnections called").
var testHTTP = &http.Client{Transport: &http.Transport{}}

var update = flag.Bool("update", false, "rewrite golden files")

// herald runs the CLI in-process with env as its whole environment.
func herald(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env = ownRedis(t, env)
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

// heraldAt runs the CLI as herald does, with its clock stopped at now: commands that read
// state as of now (limits show, run show, recipient explain...) see what the test wrote for
// that instant however long the test took to get there.
func heraldAt(t *testing.T, now time.Time, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env = ownRedis(t, env)
	var out, errb bytes.Buffer
	a := &app{getenv: func(k string) string { return env[k] }, stdout: &out, stderr: &errb, now: func() time.Time { return now }}
	code = a.run(context.Background(), args)
	return code, out.String(), errb.String()
}

// ownRedis gives a command run without a Redis of its own (no HERALD_REDIS_URL in env; the
// tests' config files name none) a private miniredis, so that no test reads or writes the
// Redis on the default address: campaign plan, for one, reads the suppression list.
func ownRedis(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	if env["HERALD_REDIS_URL"] != "" {
		return env
	}
	out := map[string]string{"HERALD_REDIS_URL": "redis://" + miniredis.RunT(t).Addr() + "/0"}
	for k, v := range env {
		out[k] = v
	}
	return out
}

func TestDemoJSONReport(t *testing.T) {
	t.Parallel()
	d := demoJSON()
	code, out, errOut := d.code, d.out, d.errOut
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, errOut)
	}
	var rep struct {
		Recipients int              `json:"recipients"`
		States     map[string]int64 `json:"states"`
		Codes      map[string]int64 `json:"codes"`
		Throttled  int64            `json:"throttled"`
		Status     string           `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if rep.Recipients != 400 || rep.Status != "completed" {
		t.Fatalf("recipients %d status %s, want 400 completed", rep.Recipients, rep.Status)
	}
	var sum int64
	for _, n := range rep.States {
		sum += n
	}
	if sum != 400 {
		t.Errorf("states add up to %d, want 400: %v", sum, rep.States)
	}
	failedCodes := 0
	for k := range rep.Codes {
		if strings.HasPrefix(k, "failed:") {
			failedCodes++
		}
	}
	// Delivery webhooks move accepted recipients on to sent, delivered and read.
	reached := rep.States["accepted"] + rep.States["sent"] + rep.States["delivered"] + rep.States["read"]
	// The fake's 5xx leave their recipients unknown (at-most-once: never sent twice), and its
	// 429s are throttles, sent again without an attempt.
	if reached == 0 || rep.States["read"] == 0 || failedCodes < 2 || rep.States["unknown"] == 0 || rep.Throttled == 0 {
		t.Errorf("want accepted, >=2 failure codes, unknown recipients and throttles; got %+v", rep)
	}
	// The verbose log names every recipient, always masked.
	if m := regexp.MustCompile(`\+[0-9]{8,}`).FindString(errOut); m != "" {
		t.Errorf("log contains an unmasked phone number %q", m)
	}
	if !strings.Contains(errOut, `"recipient":"********`) {
		t.Errorf("verbose log has no masked recipient field")
	}
}

// miniEnv starts a miniredis and returns the environment pointing Herald at it.
func miniEnv(t *testing.T) (*miniredis.Miniredis, map[string]string) {
	t.Helper()
	m := miniredis.RunT(t)
	return m, map[string]string{"HERALD_REDIS_URL": "redis://" + m.Addr() + "/0", "HERALD_LOG_LEVEL": "warn"}
}

func TestCampaignSendThenRunShow(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	// At the default log level, --json prints the JSON and nothing else.
	defaultLevel := map[string]string{"HERALD_REDIS_URL": env["HERALD_REDIS_URL"]}
	code, out, errOut := herald(t, defaultLevel, "campaign", "send", "--json", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	if code != 0 || errOut != "" {
		t.Fatalf("campaign send exited %d, stderr %q", code, errOut)
	}
	var started struct {
		Run     string         `json:"run"`
		Rows    int            `json:"rows"`
		Planned int            `json:"planned"`
		Skipped map[string]int `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatal(err, out)
	}
	if started.Rows != 8 || started.Planned != 6 || started.Skipped["invalid_phone"] != 1 {
		t.Fatalf("got %+v, want 8 rows, 6 planned, 1 invalid_phone", started)
	}
	code, out, errOut = herald(t, env, "run", "show", "--json", started.Run)
	if code != 0 {
		t.Fatalf("run show exited %d: %s", code, errOut)
	}
	var rep report.Run
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Sum != 8 || rep.States["queued"] != 6 || rep.States["skipped"] != 2 || !rep.Expanded {
		t.Fatalf("run show: %+v", rep)
	}
}

func TestRunShowTableGolden(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	created := time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)
	l := ledger.New(rdb, func() time.Time { return created.Add(42 * time.Second) })
	if err := l.CreateRun(ctx, ledger.Run{ID: "nightly-1", Campaign: "nightly", Buckets: 1, Created: created, Delivery: ledger.AtMostOnce}); err != nil {
		t.Fatal(err)
	}
	entries := []ledger.PlanEntry{{Recipient: "+14155550101", Row: 1}, {Recipient: "+14155550102", Row: 2}, {Recipient: "+14155550101", Row: 3}}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "nightly-1", From: 0, To: 4, Skipped: map[string]int{"invalid_phone": 1}, Entries: entries}); err != nil {
		t.Fatal(err)
	}
	for i, o := range []ledger.Outcome{{State: ledger.Accepted, MessageID: "01JDEMO"}, {State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}} {
		if _, err := l.Claim(ctx, ledger.Address{Run: "nightly-1", Bucket: 0, Recipient: entries[i].Recipient}, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Finish(ctx, ledger.Address{Run: "nightly-1", Bucket: 0, Recipient: entries[i].Recipient}, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.FinishExpansion(ctx, "nightly-1", 4); err != nil {
		t.Fatal(err)
	}
	if got := rdb.HGet(ctx, rkeys.Run("nightly-1"), "status").Val(); got != "completed" {
		t.Fatalf("run status %q, want completed", got)
	}
	code, out, errOut := herald(t, env, "run", "show", "nightly-1")
	if code != 0 {
		t.Fatalf("run show exited %d: %s", code, errOut)
	}
	golden := filepath.Join("testdata", "run_show.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("run show output differs from %s (-want +got):\n--- want\n%s\n--- got\n%s", golden, want, out)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("senders:\n  - number: \"4155550100\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret.yaml")
	if err := os.WriteFile(secret, []byte("connectly:\n  api_key: abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		wantErr string
	}{
		{"UnknownCommand", nil, []string{"frobnicate"}, exitUsage, "unknown command"},
		{"MissingArgument", nil, []string{"run", "show"}, exitUsage, "herald: run show: needs RUN, got none (usage: herald run show RUN)\n"},
		{"OneArgumentShort", nil, []string{"recipient", "explain", "R1"}, exitUsage,
			"herald: recipient explain: needs RUN PHONE|bsuid:BSUID, got 1 argument (usage: herald recipient explain RUN PHONE|bsuid:BSUID)\n"},
		{"ArgumentsToACommandThatTakesNone", nil, []string{"campaign", "ls", "x", "y"}, exitUsage,
			"herald: campaign ls: takes no arguments, got 2 arguments (usage: herald campaign ls)\n"},
		{"BadFlag", nil, []string{"demo", "--recipients", "x"}, exitUsage, "invalid argument"},
		{"ConfigNamesTheKey", map[string]string{"HERALD_CONFIG": bad}, []string{"run", "show", "x"}, exitError, "senders[0].number"},
		{"SecretInConfigRejected", map[string]string{"HERALD_CONFIG": secret}, []string{"run", "show", "x"}, exitError, "CONNECTLY_API_KEY"},
		{"WorkerNeedsCredentials", nil, []string{"worker"}, exitError, "connectly.business_id"},
		{"BadRedisURL", map[string]string{"HERALD_REDIS_URL": "http://x"}, []string{"run", "show", "x"}, exitError, "redis.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := herald(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d stderr %q; want exit %d and %q", code, errOut, tt.code, tt.wantErr)
			}
		})
	}
}

func TestCampaignValidate(t *testing.T) {
	t.Parallel()
	good := filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")
	bad := filepath.Join("..", "..", "campaigns", "testdata", "broken", "bad-category.yaml")
	if code, out, errOut := herald(t, nil, "campaign", "validate", good); code != 0 || !strings.Contains(out, "ok  "+good) {
		t.Fatalf("valid file: exit %d out %q err %q", code, out, errOut)
	}
	code, out, _ := herald(t, nil, "campaign", "validate", "--json", good, bad)
	if code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	var res []validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err, out)
	}
	// The bad category does not hide the other problem of the file: its audience is missing.
	if len(res) != 2 || !res[0].OK || res[1].OK || len(res[1].Errors) != 2 ||
		!strings.HasPrefix(res[1].Errors[0], bad+":5:13: template.category") ||
		!strings.HasPrefix(res[1].Errors[1], bad+":7:9: audience.file: ") {
		t.Fatalf("results %+v", res)
	}
}

func TestAdminReadCommands(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	code, out, errOut := herald(t, env, "campaign", "send", "--json", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	if code != 0 {
		t.Fatalf("campaign send: %d %s", code, errOut)
	}
	var started struct{ Run string }
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = herald(t, env, "run", "ls", "--json", "--campaign", "welcome")
	var runs []report.Run
	if code != 0 || json.Unmarshal([]byte(out), &runs) != nil || len(runs) != 1 || runs[0].Run != started.Run {
		t.Fatalf("run ls: exit %d %q %q", code, out, errOut)
	}

	code, out, errOut = herald(t, env, "queue", "stats", "--json")
	var qs []report.QueueStat
	if code != 0 || json.Unmarshal([]byte(out), &qs) != nil {
		t.Fatalf("queue stats: exit %d %q %q", code, out, errOut)
	}
	pending, size := map[string]int{}, map[string]int{}
	for _, q := range qs {
		pending[q.Queue], size[q.Queue] = q.Pending, q.Size
	}
	// The expansion queue is there (campaign send enqueues the run's next expansion step
	// before it expands), and empty: the command expanded the run whole and withdrew the step.
	if pending["herald:utility"] != 6 || len(qs) != 4 || size["herald:expand"] != 0 {
		t.Fatalf("queue stats: %+v, want 6 pending on herald:utility and nothing on herald:expand", qs)
	}

	code, out, errOut = herald(t, env, "recipient", "explain", "--json", started.Run, "415-555-2673", "--region", "US")
	var x report.Explanation
	if code != 0 || json.Unmarshal([]byte(out), &x) != nil {
		t.Fatalf("recipient explain: exit %d %q %q", code, out, errOut)
	}
	if !x.InLedger || x.State != "queued" || x.Row != 3 || x.Recipient != "********2673" {
		t.Fatalf("explain: %+v", x)
	}
	code, out, _ = herald(t, env, "recipient", "explain", "--reveal", started.Run, "+14155552673")
	if code != 0 || !strings.Contains(out, "+14155552673 (audience row 3)") {
		t.Fatalf("explain --reveal: %d %q", code, out)
	}
	code, out, _ = herald(t, env, "recipient", "explain", started.Run, "+14155559999")
	if code != 0 || !strings.Contains(out, "is not a recipient") {
		t.Fatalf("explain of a stranger: %d %q", code, out)
	}
}

func TestCampaignPlanSamplesAreAccepted(t *testing.T) {
	t.Parallel()
	code, out, errOut := herald(t, nil, "campaign", "plan", "--json", "--reveal", "--sample", "10", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	if code != 0 {
		t.Fatalf("plan: exit %d %s", code, errOut)
	}
	var p planOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if p.Rows != 8 || p.Recipients != 6 || p.Skipped["duplicate"] != 1 || p.Skipped["invalid_phone"] != 1 ||
		len(p.Samples) != 6 || p.Languages["en"] != 6 || p.RatePerSecond != 80 {
		t.Fatalf("plan: %+v", p)
	}
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: "biz", APIKey: "key"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	postSamples(t, srv.URL, p.Samples)
	if got := fake.Stats().Accepted; got != 6 {
		t.Fatalf("fake accepted %d samples, want 6", got)
	}

	// Every example campaign validates, plans, and plans only requests the fake accepts.
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "campaigns", "*.yaml"))
	if len(files) < 4 {
		t.Fatalf("found %d example campaigns", len(files))
	}
	for _, f := range files {
		if code, _, errOut := herald(t, nil, "campaign", "validate", f); code != 0 {
			t.Errorf("validate %s: %s", f, errOut)
		}
		code, out, errOut := herald(t, nil, "campaign", "plan", "--json", "--reveal", "--sample", "100", f)
		var ep planOutput
		if code != 0 || json.Unmarshal([]byte(out), &ep) != nil || len(ep.Samples) == 0 {
			t.Errorf("plan %s: exit %d %s", f, code, errOut)
			continue
		}
		postSamples(t, srv.URL, ep.Samples)
	}
}

// postSamples sends plan samples to a fake Connectly and fails on any refusal.
func postSamples(t *testing.T, base string, samples []json.RawMessage) {
	t.Helper()
	for i, body := range samples {
		path := connectly.SendPath("biz")
		// A session campaign's sample goes to the session endpoint, in the recipient's window.
		var session struct {
			Recipient *struct {
				ID     string `json:"id"`
				UserID string `json:"userId"`
			} `json:"recipient"`
		}
		if json.Unmarshal(body, &session) == nil && session.Recipient != nil {
			path = connectly.SessionPath("biz")
			open, _ := json.Marshal(map[string]string{"number": session.Recipient.ID + session.Recipient.UserID})
			resp, err := http.Post(base+"/_fake/windows", "application/json", bytes.NewReader(open))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		req.Header.Set("X-API-Key", "key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := testHTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("sample %d refused: %d %s\n%s", i+1, resp.StatusCode, b, body)
		}
	}
}

func TestCampaignPlanCheckTemplates(t *testing.T) {
	t.Parallel()
	promo := filepath.Join("..", "..", "configs", "campaigns", "spring-promo.yaml")
	nightly := filepath.Join("..", "..", "configs", "campaigns", "nightly-orders.yaml")
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: "biz", APIKey: "key", Templates: []fakeconnectly.Template{
		{Name: "spring_promo", Language: "en_US", Header: "IMAGE", Body: "Hi {{1}}, take {{2}} off."},
		{Name: "order_status", Language: "en", Header: "TEXT", Body: "{{1}}: your order is {{2}}."},
		{Name: "order_status", Language: "pt_BR", Status: "MESSAGE_TEMPLATE_STATUS_PENDING", Header: "TEXT", Body: "{{1}}: {{2}}."},
		{Name: "order_status", Language: "es", Header: "IMAGE", Body: "{{1}} {{2}} {{3}}"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	env := map[string]string{"CONNECTLY_BASE_URL": srv.URL, "CONNECTLY_BUSINESS_ID": "biz", "CONNECTLY_API_KEY": "key"}

	code, out, errOut := herald(t, env, "campaign", "plan", "--check-templates", promo)
	if code != 0 || !strings.Contains(out, "Template       en_US: APPROVED, parameters match") {
		t.Fatalf("matching template: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = herald(t, env, "campaign", "plan", "--check-templates", "--json", nightly)
	if code != exitError || !strings.Contains(errOut, "3 template problems") {
		t.Fatalf("problems: exit %d %s", code, errOut)
	}
	var p planOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, ch := range p.Templates {
		got[ch.Language] = ch.Problems
	}
	if len(got["en"]) != 0 || len(got["pt_BR"]) != 1 || !strings.Contains(got["pt_BR"][0], "PENDING") ||
		len(got["es"]) != 2 || !strings.Contains(got["es"][0], "3 variables") || !strings.Contains(got["es"][1], "IMAGE") {
		t.Fatalf("checks: %+v", p.Templates)
	}
	// Without credentials the pre-flight says what is missing.
	if code, _, errOut := herald(t, nil, "campaign", "plan", "--check-templates", promo); code != exitError || !strings.Contains(errOut, "connectly.business_id") {
		t.Fatalf("no credentials: exit %d %s", code, errOut)
	}
}

// welcomeQueue is the queue of the example welcome campaign's tasks.
const welcomeQueue = "herald:utility"

// sendWelcome starts a run of the example welcome campaign with `campaign send` and returns
// its id and the tasks `task ls` then lists in its queue.
func sendWelcome(t *testing.T, env map[string]string) (string, []taskView) {
	t.Helper()
	welcome := filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")
	code, out, errOut := herald(t, env, "campaign", "send", "--json", welcome)
	if code != 0 {
		t.Fatalf("send: %s", errOut)
	}
	var started struct{ Run string }
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatal(err)
	}
	var tasks []taskView
	code, out, errOut = herald(t, env, "task", "ls", welcomeQueue, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &tasks) != nil {
		t.Fatalf("task ls: exit %d %q %s", code, out, errOut)
	}
	return started.Run, tasks
}

func TestTaskCommandsAndAudit(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	run, tasks := sendWelcome(t, env)
	const q = welcomeQueue
	if len(tasks) != 6 {
		t.Fatalf("task ls: %d tasks, want 6", len(tasks))
	}
	if tasks[0].Run != run || !strings.HasPrefix(tasks[0].Recipient, "********") {
		t.Fatalf("task ls shows %+v", tasks[0])
	}
	// The queue by its short name, as queue pause takes it.
	if code, out, errOut := herald(t, env, "task", "ls", "utility", "--json"); code != 0 || !strings.Contains(out, tasks[0].ID) {
		t.Fatalf("task ls utility: exit %d %q %s", code, out, errOut)
	}
	var v taskView
	code, out, _ := herald(t, env, "task", "show", q, tasks[0].ID, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Ledger != "queued" || v.State != "pending" {
		t.Fatalf("task show: %s", out)
	}
	if code, _, errOut := herald(t, env, "task", "archive", q, tasks[1].ID, "--actor", "ops-ana", "--reason", "check it"); code != 0 {
		t.Fatalf("archive: %s", errOut)
	}
	if code, out, _ := herald(t, env, "task", "ls", q, "--state", "archived", "--json"); code != 0 || !strings.Contains(out, tasks[1].ID) {
		t.Fatalf("archived list: %s", out)
	}
	if code, _, errOut := herald(t, env, "task", "retry", q, tasks[1].ID); code != 0 {
		t.Fatalf("retry: %s", errOut)
	}
	if code, out, errOut := herald(t, env, "task", "delete", q, tasks[0].ID); code != 0 || !strings.Contains(out, "1 recipient skipped(deleted)") {
		t.Fatalf("delete: %q %s", out, errOut)
	}
	if code, out, errOut := herald(t, env, "task", "delete", q, "--all", "--state", "pending"); code != 0 || !strings.Contains(out, "5 tasks; 5 recipients skipped(deleted)") {
		t.Fatalf("delete --all: %q %s", out, errOut)
	}
	// Every recipient is accounted for, so the run is complete.
	var rep report.Run
	if code, out, _ := herald(t, env, "run", "show", "--json", "--verify", run); code != 0 || json.Unmarshal([]byte(out), &rep) != nil ||
		rep.Status != "completed" || rep.Codes["skipped:deleted"] != 6 || rep.Sum != 8 {
		t.Fatalf("run after deletes: %s", out)
	}
	if code, _, errOut := herald(t, env, "task", "delete", q); code != exitUsage || !strings.Contains(errOut, "TASK_ID") {
		t.Fatalf("delete without id: %d %s", code, errOut)
	}
	var es []audit.Entry
	code, out, _ = herald(t, env, "audit", "ls", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &es) != nil || len(es) != 4 {
		t.Fatalf("audit ls: %s", out)
	}
	if e := es[3]; e.Action != "task archive" || e.Actor != "ops-ana" || e.Reason != "check it" || e.Target != q+"/"+tasks[1].ID {
		t.Fatalf("oldest audit entry: %+v", e)
	}
	if es[0].Action != "task delete" || !strings.Contains(es[0].Detail, "5 tasks") {
		t.Fatalf("newest audit entry: %+v", es[0])
	}
}

func TestDashboardServesQueuesReadOnlyAndMasked(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	// welcome.yaml has no send window, so every task is pending whatever the time of day.
	if code, _, errOut := herald(t, env, "campaign", "send", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")); code != 0 {
		t.Fatalf("send: %s", errOut)
	}
	opt, err := redisx.ConnOpt("redis://" + m.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	h := asynqmon.New(asynqmon.Options{RootPath: "/", RedisConnOpt: opt, ReadOnly: true, PayloadFormatter: serve.MaskedPayload})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	if body := get("/api/queues"); !strings.Contains(body, `"queue":"herald:utility"`) || !strings.Contains(body, `"pending":6`) {
		t.Fatalf("queues: %s", body)
	}
	tasks := get("/api/queues/herald:utility/pending_tasks")
	if !strings.Contains(tasks, `\"to\": \"********2671\"`) || strings.Contains(tasks, "4155552671") {
		t.Fatalf("payload not masked: %s", tasks)
	}
	// Read-only: actions are refused.
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/queues/herald:utility/pending_tasks:delete_all", nil)
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 || resp.StatusCode == 204 {
		t.Fatalf("delete_all answered %d on a read-only dashboard", resp.StatusCode)
	}
	if !strings.Contains(get("/"), "<html") && !strings.Contains(get("/"), "<!doctype html") {
		t.Fatal("no UI page at /")
	}
}

func TestRecipientExplainShowsEveryAttempt(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	l := ledger.New(rdb, func() time.Time { return time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC) })
	const rcpt = "+14155550101"
	if err := l.CreateRun(ctx, ledger.Run{ID: "r-explain", Campaign: "c", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "r-explain", From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: rcpt, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []ledger.Outcome{
		{State: ledger.Queued, Code: "ERROR_CODE_UNSPECIFIED", Mode: ledger.ReleaseRetry},
		{State: ledger.Queued, Code: "HTTP_429", Mode: ledger.ReleaseThrottle},
		{State: ledger.Queued, Code: "HTTP_503", Mode: ledger.ReleaseRetry},
		{State: ledger.Accepted, MessageID: "01JEXPLAIN"},
	} {
		if _, err := l.Claim(ctx, ledger.Address{Run: "r-explain", Bucket: 0, Recipient: rcpt}, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Finish(ctx, ledger.Address{Run: "r-explain", Bucket: 0, Recipient: rcpt}, o); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := herald(t, env, "recipient", "explain", "--json", "r-explain", rcpt)
	var x report.Explanation
	if code != 0 || json.Unmarshal([]byte(out), &x) != nil {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	if x.State != "accepted" || x.Attempts != 3 || x.MessageID != "01JEXPLAIN" || len(x.History) != 4 {
		t.Fatalf("explain: %+v", x)
	}
	want := []struct {
		outcome string
		attempt int
		class   string
	}{{"retry", 1, "transient"}, {"throttle", 1, "throttle"}, {"retry", 2, "transient"}, {"accepted", 3, ""}}
	for i, w := range want {
		if h := x.History[i]; h.Outcome != w.outcome || h.Attempt != w.attempt || h.Class != w.class {
			t.Errorf("event %d: %+v, want %+v", i, h, w)
		}
	}
	code, out, _ = herald(t, env, "recipient", "explain", "r-explain", rcpt)
	if code != 0 || !strings.Contains(out, "attempt 1: retry ERROR_CODE_UNSPECIFIED (transient)") || !strings.Contains(out, "attempt 3: accepted") {
		t.Fatalf("explain text:\n%s", out)
	}
}

func TestCampaignLsAndWatch(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	for _, f := range []string{"welcome.yaml", "spring-promo.yaml", "welcome.yaml"} {
		if code, _, errOut := herald(t, env, "campaign", "send", filepath.Join("..", "..", "configs", "campaigns", f)); code != 0 {
			t.Fatalf("send %s: %s", f, errOut)
		}
	}
	var cs []ledger.CampaignSummary
	code, out, errOut := herald(t, env, "campaign", "ls", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &cs) != nil || len(cs) != 2 {
		t.Fatalf("campaign ls: %d %s %s", code, out, errOut)
	}
	if cs[0].Campaign != "welcome" || cs[0].Runs != 2 || cs[1].Campaign != "spring-promo" || cs[1].Runs != 1 {
		t.Fatalf("campaigns: %+v", cs)
	}
	// Cancel the last run so it has ended: --watch prints it once and returns.
	if code, _, errOut := herald(t, env, "run", "cancel", cs[0].LastRun); code != 0 {
		t.Fatalf("cancel: %s", errOut)
	}
	code, out, errOut = herald(t, env, "run", "show", "--watch", "--interval", "50ms", cs[0].LastRun)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "8/8") {
		t.Fatalf("watch: %d %q %s", code, out, errOut)
	}
}

// TestTablesGolden pins the human tables of the read commands on a seeded, fixed-time state.
// Only values that are live by nature (queue latency, audit times) are normalised.
func TestTablesGolden(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	clock := func() time.Time { return time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC) }
	// Task ids are keyed with the deployment's random key: a fixed one keeps them pinned.
	if err := rdb.Set(ctx, rkeys.TaskIDKey(), strings.Repeat("5a", 32), 0).Err(); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exp := expand.NewExpander(expand.Options{Ledger: ledger.New(rdb, clock), Tasks: asynqbatch.New(rdb),
		Task: campaigns.TaskOptions{MaxRetry: 25}, Now: clock})
	run, err := exp.CreateRun(ctx, def, def.Sender, "welcome-golden")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exp.Expand(ctx, def, run); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := herald(t, env, "run", "pause", "welcome-golden", "--actor", "ops-ana", "--reason", "copy review"); code != 0 {
		t.Fatal(errOut)
	}
	for _, f := range []string{"welcome.yaml", "nightly-orders.yaml"} {
		if code, _, errOut := herald(t, env, "campaign", "submit", filepath.Join("..", "..", "configs", "campaigns", f)); code != 0 {
			t.Fatalf("submit %s: %s", f, errOut)
		}
	}
	var b strings.Builder
	for _, args := range [][]string{
		{"run", "ls"}, {"campaign", "ls"}, {"queue", "stats"}, {"task", "ls", "herald:utility"},
		{"recipient", "explain", "welcome-golden", "+14155552671"}, {"audit", "ls"},
	} {
		code, out, errOut := herald(t, env, args...)
		if code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
		fmt.Fprintf(&b, "$ herald %s\n%s\n", strings.Join(args, " "), out)
	}
	// Latency is live, and tabwriter pads it to its width: replace it with its padding.
	got := regexp.MustCompile(`(?m)[ \t]+\d+(\.\d+)?(ms|s)[ \t]*$`).ReplaceAllString(b.String(), "  LATENCY")
	got = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(\s+\S+\s+run pause)`).ReplaceAllString(got, "TIME$1")
	got = regexp.MustCompile(`(?m)(herald:\w+\s+\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+)[ \t]+\S+([ \t]*)$`).ReplaceAllString(got, "${1}  LATENCY$2")
	got = regexp.MustCompile(`(?m)^(nightly-orders.*America/New_York\s+)\S+`).ReplaceAllString(got, "${1}YYYY-MM-DDTHH:MM:SSZ")
	golden := filepath.Join("testdata", "tables.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("tables differ from %s (run with -update if intended):\n--- want\n%s\n--- got\n%s", golden, want, got)
	}
}

func TestLeversQueueResumeRetry(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()

	// queue pause / resume (on a queue that holds tasks)
	if code, _, errOut := herald(t, env, "campaign", "send", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut := herald(t, env, "queue", "pause", "herald:utility", "--reason", "maintenance"); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("queue pause: %s %s", out, errOut)
	}
	var qs []report.QueueStat
	_, out, _ := herald(t, env, "queue", "stats", "--json")
	if json.Unmarshal([]byte(out), &qs) != nil {
		t.Fatal(out)
	}
	for _, q := range qs {
		if q.Queue == "herald:utility" && !q.Paused {
			t.Fatalf("queue not paused: %+v", q)
		}
	}
	if code, _, errOut := herald(t, env, "queue", "resume", "herald:utility"); code != 0 {
		t.Fatal(errOut)
	}

	// A finished run whose two recipients failed: one transiently (attempts used up), one
	// permanently. retry picks exactly the transient one by default.
	welcome, _ := filepath.Abs(filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	l := ledger.New(rdb, nil)
	if err := l.CreateRun(ctx, ledger.Run{ID: "parent", Campaign: "welcome", Buckets: 1, Template: "welcome_v2", Language: "en",
		Definition: welcome, Sender: "+14155550100", Queue: "herald:utility"}); err != nil {
		t.Fatal(err)
	}
	es := []ledger.PlanEntry{{Recipient: "+14155552671", Row: 1}, {Recipient: "+14155552672", Row: 2}}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "parent", From: 0, To: 2, Entries: es}); err != nil {
		t.Fatal(err)
	}
	for i, code := range []string{"HTTP_503", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"} {
		if _, err := l.Claim(ctx, ledger.Address{Run: "parent", Bucket: 0, Recipient: es[i].Recipient}, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Finish(ctx, ledger.Address{Run: "parent", Bucket: 0, Recipient: es[i].Recipient}, ledger.Outcome{State: ledger.Failed, Code: code}); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := herald(t, env, "run", "retry", "parent"); code != exitError || !strings.Contains(errOut, "running") {
		t.Fatalf("retry of an unfinished run: %d %s", code, errOut)
	}
	if _, err := l.FinishExpansion(ctx, "parent", 2); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := herald(t, env, "run", "retry", "parent", "--json", "--reason", "provider outage")
	var res struct {
		Run        string
		Parent     string
		Recipients int
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Parent != "parent" || res.Recipients != 1 {
		t.Fatalf("retry: %d %s %s", code, out, errOut)
	}
	var child report.Run
	if _, out, _ := herald(t, env, "run", "show", "--json", res.Run); json.Unmarshal([]byte(out), &child) != nil ||
		child.Parent != "parent" || child.Recipients != 1 || child.States["queued"] != 1 {
		t.Fatalf("child run: %s", out)
	}
	if code, _, errOut := herald(t, env, "run", "retry", "parent", "--code", "NOPE"); code != exitError || !strings.Contains(errOut, "nothing to retry") {
		t.Fatalf("retry with no match: %d %s", code, errOut)
	}

	// pause / resume of the child
	if code, _, errOut := herald(t, env, "run", "pause", res.Run); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, _ := herald(t, env, "run", "resume", res.Run); code != 0 || !strings.Contains(out, "resumed") {
		t.Fatalf("resume: %s", out)
	}
	if code, _, errOut := herald(t, env, "run", "resume", res.Run); code != exitError || !strings.Contains(errOut, "not paused") {
		t.Fatalf("second resume: %d %s", code, errOut)
	}
	var es2 []audit.Entry
	_, out, _ = herald(t, env, "audit", "ls", "--json")
	if json.Unmarshal([]byte(out), &es2) != nil || len(es2) != 5 || es2[2].Action != "run retry" || es2[2].Reason != "provider outage" {
		t.Fatalf("audit: %s", out)
	}
}

// writeConfig writes text as a config file in the test's temporary directory and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
