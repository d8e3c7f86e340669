package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/testlog"
	"github.com/heraldmsg/herald/serve"
)

// Secrets of the leak test: unique, so finding one anywhere is a leak.
const (
	leakAPIKey = "leak-probe-api-key-5c9e1d83"
	leakSecret = "leak-probe-webhook-secret-7a2f44b0"
)

// TestUntrustedCampaignLeaksNoSecret runs hostile campaigns through every command and a
// worker, with the API key and the webhook secret in the environment and in the audience files
// (inside the campaigns root, so only the quoting of data can leak them), then looks for the
// secrets in the CLI's output, the worker's log, every key in Redis (asynq tasks' last
// errors included) and the dashboard's JSON API.
func TestUntrustedCampaignLeaksNoSecret(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	fake, baseURL := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: "biz", APIKey: leakAPIKey, RateLimit: -1})
	env["CONNECTLY_API_KEY"], env["CONNECTLY_WEBHOOK_SECRET"] = leakAPIKey, leakSecret
	env["CONNECTLY_BASE_URL"], env["CONNECTLY_BUSINESS_ID"] = baseURL, "biz"
	env["HERALD_LOG_LEVEL"], env["HERALD_LOG_FORMAT"] = "debug", "json"

	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	environ := "CONNECTLY_API_KEY=" + leakAPIKey + "\x00CONNECTLY_WEBHOOK_SECRET=" + leakSecret + "\x00HOME=/root\x00"
	dotenv := "CONNECTLY_API_KEY=" + leakAPIKey + "\nCONNECTLY_WEBHOOK_SECRET=" + leakSecret + "\n"
	// Sendable rows, and rows whose cells are the secrets (skipped as invalid), under a
	// header with a secret for a column name.
	var leaky strings.Builder
	leaky.WriteString("phone,name,CONNECTLY_API_KEY=" + leakAPIKey + "\n")
	for i := range 12 {
		fmt.Fprintf(&leaky, "+1415555%04d,n%d,x\n", 3100+i, i)
	}
	fmt.Fprintf(&leaky, "%s,cy,%s\n+1 %s,dan,x\n\"%s\",eve,\"%s\"\n", leakAPIKey, leakSecret, leakSecret, leakSecret, leakAPIKey)
	write("leaky.csv", leaky.String())
	write("environ.csv", environ)
	write("dotenv.csv", dotenv)
	write("long-header.csv", "phone_is_not_here_but_a_column_name_long_enough_to_be_cut_at_64_b_"+leakAPIKey+",n\nx,y\n")
	write("leaky.jsonl", `{"phone": "`+leakAPIKey+`", "n": "`+leakSecret+`"}`+"\n"+`{"phone": ["`+leakSecret+`"]}`+"\n"+leakAPIKey+"\n")
	campaign := func(id, audience string) string {
		return write(id+".yaml", "id: "+id+"\ntemplate: {name: t, language: en, category: utility}\n"+
			"parameters: {body_1: \"{{ .name }}\"}\naudience: {file: "+audience+", max_invalid_share: 0.5}\n")
	}
	good := campaign("leaky", "leaky.csv")
	// Each hostile campaign is refused by validate and submit, except the JSON Lines one: it
	// has no header, so only reading its rows (validate --rows, plan, send) finds them invalid.
	hostile := []struct {
		file     string
		headerOK bool
	}{
		{file: campaign("environ", "environ.csv")},
		{file: campaign("dotenv", "dotenv.csv")},
		{file: campaign("long-header", "long-header.csv")},
		{file: campaign("jsonl", "leaky.jsonl"), headerOK: true},
		{file: campaign("proc", "/proc/self/environ")},
		{file: campaign("dotdot", "../../../../../../proc/self/environ")},
	}
	var seen strings.Builder // everything Herald printed, logged, stored or served
	cli := func(wantOK bool, args ...string) string {
		t.Helper()
		code, out, errOut := herald(t, env, args...)
		seen.WriteString(out + errOut)
		if (code == 0) != wantOK {
			t.Fatalf("herald %s: exit %d, want ok=%v\n%s%s", strings.Join(args, " "), code, wantOK, out, errOut)
		}
		return out
	}
	cli(true, "campaign", "validate", good)
	cli(true, "campaign", "validate", "--rows", good)
	cli(true, "campaign", "plan", "--json", good)
	cli(true, "campaign", "plan", good)
	for _, h := range hostile {
		cli(h.headerOK, "campaign", "validate", h.file)
		cli(false, "campaign", "validate", "--rows", "--json", h.file)
		cli(false, "campaign", "plan", h.file)
		cli(false, "campaign", "plan", "--json", "--reveal", h.file)
		cli(false, "campaign", "send", h.file)
		cli(h.headerOK, "campaign", "submit", h.file)
	}

	// A worker (sends and expansion) on the same Redis.
	ctx, stop := context.WithCancel(context.Background())
	var wlog testlog.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, []string{"worker"}, func(k string) string { return env[k] }, &wlog, &wlog)
	}()
	defer func() {
		stop()
		<-done
	}()

	var started struct {
		Run string `json:"run"`
	}
	if err := json.Unmarshal([]byte(cli(true, "campaign", "send", "--json", good)), &started); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	l := ledger.New(rdb, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := l.GetRun(ctx, started.Run)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == ledger.RunCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after 30s; worker log:\n%s", r.ID, r.Status, wlog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := fake.Stats().Accepted; got != 12 {
		t.Fatalf("fake accepted %d sends, want the 12 valid rows", got)
	}

	// A submitted campaign whose audience turns hostile after submit: the worker's expansion
	// fails on it, and the error is kept in Redis as the task's last error.
	write("swap.csv", "phone,name\n+14155553200,ana\n")
	swap := campaign("swap", "swap.csv")
	cli(true, "campaign", "submit", swap)
	write("swap.csv", dotenv)
	cli(true, "campaign", "run", "swap")
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	var expandErr string
	for deadline = time.Now().Add(30 * time.Second); expandErr == ""; time.Sleep(20 * time.Millisecond) {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListRetryTasks, insp.ListArchivedTasks} {
			tasks, _ := list(campaigns.ExpandQueue)
			for _, ti := range tasks {
				expandErr += ti.LastErr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expansion of swap did not fail within 30s; worker log:\n%s", wlog.String())
		}
	}
	if !strings.Contains(expandErr, "swap.csv") || !strings.Contains(expandErr, "no \"phone\" column") {
		t.Errorf("expansion error %q does not say what is wrong with swap.csv", expandErr)
	}
	for _, q := range []string{campaigns.ExpandQueue, campaigns.QueueFor("utility")} {
		cli(true, "task", "ls", q, "--state", "retry")
		cli(true, "task", "ls", q, "--state", "archived", "--json")
		cli(true, "task", "ls", q, "--state", "completed", "--json", "--reveal")
	}
	cli(true, "run", "show", started.Run)
	cli(true, "run", "ls")

	// The dashboard's JSON API.
	opt, err := redisx.ConnOpt("redis://" + m.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	h := asynqmon.New(asynqmon.Options{RootPath: "/", RedisConnOpt: opt, ReadOnly: true, PayloadFormatter: serve.MaskedPayload})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.Write(b)
	}
	get("/api/queues")
	get("/api/servers")
	queues, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		for _, state := range []string{"pending", "active", "scheduled", "retry", "archived", "completed"} {
			get("/api/queues/" + q + "/" + state + "_tasks")
		}
	}

	stop()
	<-done
	seen.WriteString(wlog.String())
	seen.WriteString(redisText(t, rdb))
	text := seen.String()
	if !strings.Contains(text, "swap.csv") || !strings.Contains(text, "environ.csv") || !strings.Contains(text, "/proc/self/environ") {
		t.Fatal("the scan did not see the errors it should search")
	}
	for _, secret := range []string{leakAPIKey, leakSecret} {
		if i := strings.Index(text, secret); i >= 0 {
			t.Errorf("secret %q found: ...%s...", secret, text[max(0, i-300):min(len(text), i+100)])
		}
	}
}

// redisText returns every key of the Redis and its whole value, as text.
func redisText(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = rdb.SMembers(ctx, k).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, k, "-", "+").Result()
		default:
			v = typ
		}
		if err != nil {
			t.Fatalf("%s %s: %v", typ, k, err)
		}
		fmt.Fprintf(&b, "%s %v\n", k, v)
	}
	return b.String()
}

// TestProcEnvironCampaignRefused is the probe's campaign: validate, plan, send and submit each
// refuse it, naming the field and the campaigns root, and show nothing of the environment.
func TestProcEnvironCampaignRefused(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	env["CONNECTLY_API_KEY"], env["CONNECTLY_WEBHOOK_SECRET"] = leakAPIKey, leakSecret
	dir := t.TempDir()
	file := filepath.Join(dir, "environ.yaml")
	if err := os.WriteFile(file, []byte("id: environ\ntemplate: {name: t, language: en}\naudience:\n  file: /proc/self/environ\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := file + ":4:9: audience.file: /proc/self/environ: outside the campaigns root " + dir
	for _, args := range [][]string{{"validate"}, {"validate", "--rows"}, {"plan"}, {"send"}, {"submit"}} {
		code, out, errOut := herald(t, env, append(append([]string{"campaign"}, args...), file)...)
		if code != exitError || !strings.Contains(out+errOut, want) {
			t.Errorf("campaign %s: exit %d\n%s%s\nwant exit 1 and %q", args[0], code, out, errOut, want)
		}
		if strings.Contains(out+errOut, leakAPIKey) || strings.Contains(out+errOut, leakSecret) {
			t.Errorf("campaign %s shows a secret", args[0])
		}
	}
}

// TestCampaignsRootValidateAndReveal checks campaigns.root from the config, validate's
// file:line:col errors about the audience file and its note on rows, and plan's masking.
// Not parallel: the config's campaigns section applies process-wide.
func TestCampaignsRootValidateAndReveal(t *testing.T) {
	t.Cleanup(func() { campaigns.SetDefaultFileRules(campaigns.FileRules{}) })
	root := t.TempDir()
	write := func(path, s string) string {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write(filepath.Join(root, "shared", "vip.csv"), "phone,name\n+14155552671,ana\n")
	write(filepath.Join(root, "shared", "dup.csv"), "phone,name,phone\n")
	yaml := "id: vip\ntemplate: {name: t, language: en}\nparameters: {body_1: \"{{ .name }}\"}\naudience:\n  file: %s\n"
	vip := write(filepath.Join(root, "spring", "vip.yaml"), fmt.Sprintf(yaml, "../shared/vip.csv"))
	dup := write(filepath.Join(root, "spring", "dup.yaml"), fmt.Sprintf(yaml, "../shared/dup.csv"))
	cfg := write(filepath.Join(t.TempDir(), "herald.yaml"), "campaigns:\n  root: "+root+"\n")

	// Without the config the campaign file's folder is the root: ../shared is outside it.
	code, out, _ := herald(t, nil, "campaign", "validate", vip)
	if want := vip + ":5:9: audience.file: " + filepath.Join(root, "shared", "vip.csv") + ": outside the campaigns root " + filepath.Join(root, "spring"); code != exitError || !strings.Contains(out, want) {
		t.Fatalf("validate without root: exit %d %q, want %q", code, out, want)
	}
	code, out, _ = herald(t, nil, "--config", cfg, "campaign", "validate", vip)
	if code != 0 || !strings.Contains(out, "ok  "+vip+" (audience header checked; rows not read: use --rows or campaign plan)") {
		t.Fatalf("validate with root: exit %d %q", code, out)
	}
	code, out, _ = herald(t, nil, "--config", cfg, "campaign", "validate", "--rows", vip)
	if code != 0 || !strings.Contains(out, "ok  "+vip+" (audience: 1 row, none skipped)") {
		t.Fatalf("validate --rows: exit %d %q", code, out)
	}
	code, out, _ = herald(t, nil, "--config", cfg, "campaign", "validate", dup)
	if want := dup + `:5:9: audience.file: ` + filepath.Join(root, "shared", "dup.csv") + `:1: column "phone" appears twice (columns 1 and 3)`; code != exitError || !strings.Contains(out, want) {
		t.Fatalf("validate duplicate column: exit %d %q, want %q", code, out, want)
	}

	// plan masks the recipient unless --reveal, in text and JSON.
	for _, args := range [][]string{{"plan"}, {"plan", "--json"}} {
		code, out, errOut := herald(t, nil, append(append([]string{"--config", cfg, "campaign"}, args...), vip)...)
		if code != 0 || strings.Contains(out, "4155552671") || !strings.Contains(out, "*******2671") {
			t.Errorf("%v: exit %d, recipient not masked:\n%s%s", args, code, out, errOut)
		}
		code, out, _ = herald(t, nil, append(append([]string{"--config", cfg, "campaign"}, args...), "--reveal", vip)...)
		if code != 0 || !strings.Contains(out, `"+14155552671"`) {
			t.Errorf("%v --reveal: exit %d, recipient not shown:\n%s", args, code, out)
		}
	}
}
