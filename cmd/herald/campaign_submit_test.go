package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/serve"
)

// TestCampaignSubmitRunRm walks the submitted-campaign commands: submit (new version,
// unchanged, changed), run now (an expansion task that a scheduler's expansion server turns
// into a run keeping its version), ls, rm, and the errors of each.
func TestCampaignSubmitRunRm(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "nightly-orders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nightly-orders.csv"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "nightly-orders.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "nightly.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(string(yml))

	code, out, errOut := herald(t, env, "campaign", "submit", file)
	if code != 0 || !strings.Contains(out, "campaign nightly-orders submitted as version 1") || !strings.Contains(out, "next run 20") {
		t.Fatalf("submit: %d %q %s", code, out, errOut)
	}
	if code, out, _ = herald(t, env, "campaign", "submit", file); code != 0 || !strings.Contains(out, "unchanged: still version 1") {
		t.Fatalf("resubmit: %d %q", code, out)
	}
	write(strings.Replace(string(yml), "expire_after: 12h", "expire_after: 10h", 1))
	var res struct {
		Version int  `json:"version"`
		Changed bool `json:"changed"`
	}
	code, out, _ = herald(t, env, "campaign", "submit", "--json", file)
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Version != 2 || !res.Changed {
		t.Fatalf("changed submit: %d %q", code, out)
	}
	// An invalid file is refused with validate's errors.
	write("id: Bad Id\n")
	if code, _, errOut = herald(t, env, "campaign", "submit", file); code == 0 || !strings.Contains(errOut, "nightly.yaml:1:5: id:") {
		t.Fatalf("invalid submit: %d %s", code, errOut)
	}

	var run struct {
		Run     string `json:"run"`
		Version int    `json:"version"`
	}
	code, out, errOut = herald(t, env, "campaign", "run", "--json", "nightly-orders")
	if code != 0 || json.Unmarshal([]byte(out), &run) != nil || run.Version != 2 || !strings.HasPrefix(run.Run, "nightly-orders-") {
		t.Fatalf("run: %d %q %s", code, out, errOut)
	}
	if code, _, errOut = herald(t, env, "campaign", "run", "nope"); code == 0 || !strings.Contains(errOut, "not submitted") {
		t.Fatalf("run of an unknown campaign: %d %s", code, errOut)
	}

	// An expansion server (as herald scheduler runs) creates the run from version 2.
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	c := config.Default()
	c.Scheduler.ExpandConcurrency = 1
	mt := metrics.New()
	srv, err := serve.StartExpansion(c, rdb, zerolog.Nop(), 1, mt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop(); srv.Shutdown() }()
	l := ledger.New(rdb, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := l.GetRun(context.Background(), run.Run)
		if err == nil && r.Expanded {
			if r.Version != 2 || r.Total != 4 {
				t.Fatalf("run %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not expanded: %v", run.Run, err)
		}
		m.FastForward(100 * time.Millisecond)
		time.Sleep(20 * time.Millisecond)
	}
	// The expansion rate metric counts the send tasks written. The handler adds to it after
	// the expansion step that marked the run expanded returns, so it may lag the ledger.
	cn, err := l.Counters(context.Background(), run.Run)
	if err != nil {
		t.Fatal(err)
	}
	for want := float64(cn.Sum() - cn.States[ledger.Skipped]); ; {
		got := testutil.ToFloat64(mt.ExpandedTasks.WithLabelValues("nightly-orders"))
		if got == want && got != 0 {
			break
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("herald_expanded_tasks_total = %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Its send tasks carry the expiry of version 2 (10h after the run started).
	insp := asynq.NewInspectorFromRedisClient(rdb)
	tasks, err := insp.ListPendingTasks(campaigns.QueueFor("utility"))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("pending %d %v", len(tasks), err)
	}
	p, _ := campaigns.DecodeSend(tasks[0].Payload)
	r, _ := l.GetRun(context.Background(), run.Run)
	if p.Expires != r.Created.Add(10*time.Hour).Unix() {
		t.Fatalf("task expires %d, want 10h after %s", p.Expires, r.Created)
	}

	if code, out, _ = herald(t, env, "campaign", "ls"); code != 0 || !strings.Contains(out, "nightly-orders  2") {
		t.Fatalf("ls: %q", out)
	}
	if code, out, errOut = herald(t, env, "campaign", "rm", "nightly-orders", "--reason", "season over"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("rm: %d %q %s", code, out, errOut)
	}
	if code, _, errOut = herald(t, env, "campaign", "rm", "nightly-orders"); code == 0 || !strings.Contains(errOut, "not submitted") {
		t.Fatalf("second rm: %d %s", code, errOut)
	}
	if code, out, _ = herald(t, env, "audit", "ls"); code != 0 || !strings.Contains(out, "campaign rm") {
		t.Fatalf("audit: %q", out)
	}
	// The run that started keeps going; the campaign shows its runs but no version.
	if code, out, _ = herald(t, env, "campaign", "ls"); code != 0 || !strings.Contains(out, "nightly-orders  -") {
		t.Fatalf("ls after rm: %q", out)
	}
	// Submitting the removed campaign's file again brings it back at its version, and says so:
	// it is scheduled again, not left as it was.
	write(strings.Replace(string(yml), "expire_after: 12h", "expire_after: 10h", 1))
	code, out, errOut = herald(t, env, "campaign", "submit", file)
	if code != 0 || !strings.Contains(out, "campaign nightly-orders submitted again: version 2 (unchanged), scheduled again") ||
		strings.Contains(out, "still version") {
		t.Fatalf("submit after rm: %d %q %s", code, out, errOut)
	}
	if code, out, _ = herald(t, env, "campaign", "submit", file); code != 0 || !strings.Contains(out, "unchanged: still version 2") {
		t.Fatalf("submit once more: %d %q", code, out)
	}
	if code, _, errOut = herald(t, env, "campaign", "rm", "nightly-orders"); code != 0 {
		t.Fatalf("rm again: %d %s", code, errOut)
	}
	var again struct {
		Version  int  `json:"version"`
		Changed  bool `json:"changed"`
		Restored bool `json:"restored"`
	}
	code, out, _ = herald(t, env, "campaign", "submit", "--json", file)
	if code != 0 || json.Unmarshal([]byte(out), &again) != nil || again.Version != 2 || again.Changed || !again.Restored {
		t.Fatalf("submit --json after rm: %d %q", code, out)
	}
	// The text of campaign run says which processes create and expand a run: a worker as well
	// as a scheduler (before: "a scheduler creates and expands it"). Last, as it starts a
	// second run, which the counts above must not see.
	code, out, errOut = herald(t, env, "campaign", "run", "nightly-orders")
	if code != 0 || !strings.Contains(out, "enqueued: whichever process serves expansion tasks first (herald scheduler or herald worker) creates and expands it\n") {
		t.Fatalf("run: %d %q %s", code, out, errOut)
	}
}

// TestRunRetryUsesTheStoredVersion: a retry of a submitted campaign's run sends the version the
// run sent, even after the file changed its template.
func TestRunRetryUsesTheStoredVersion(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "welcome.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "welcome.csv"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "welcome.yaml")
	if err := os.WriteFile(path, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := herald(t, env, "campaign", "submit", path); code != 0 {
		t.Fatal(errOut)
	}
	// The file changes its template after the run.
	if err := os.WriteFile(path, []byte(strings.Replace(string(yml), "welcome_v2", "welcome_v3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, nil)
	if err := l.CreateRun(ctx, ledger.Run{ID: "v-parent", Campaign: "welcome", Version: 1, Buckets: 1, Template: "welcome_v2",
		Language: "en", Definition: path, Sender: "+14155550100", Queue: "herald:utility"}); err != nil {
		t.Fatal(err)
	}
	to := "+14155552671"
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "v-parent", From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: to, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, ledger.Address{Run: "v-parent", Bucket: 0, Recipient: to}, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, ledger.Address{Run: "v-parent", Bucket: 0, Recipient: to}, ledger.Outcome{State: ledger.Failed, Code: "HTTP_503"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.FinishExpansion(ctx, "v-parent", 1); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := herald(t, env, "run", "retry", "v-parent", "--json")
	if code != 0 {
		t.Fatalf("retry: %d %s %s", code, out, errOut)
	}
	var res struct{ Run string }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	child, err := l.GetRun(ctx, res.Run)
	if err != nil || child.Template != "welcome_v2" {
		t.Fatalf("child run %+v (%v), want the stored version's template welcome_v2", child, err)
	}
}
