package serve_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
)

// testHTTP is the HTTP client of the package's tests, with a transport of its own: on
// http.DefaultTransport, a parallel test's httptest.Server.Close (which closes that transport's
// idle connections) can break a request mid-way ("CloseIdleConnections called").
var testHTTP = &http.Client{Transport: &http.Transport{}}

// recipient explain reports what it cannot read: a table of codes that does not build is the
// config's error (it used to be dropped, leaving codes without their class), and a run that
// cannot be read is an error, not a story without follow-ups.
func TestExplainRecipientReportsErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr, rdb := testredis.Mini(t)
	sent := send(t, config.Default(), rdb, 2)
	p := serve.ExplainParams{Run: sent.RunID, Recipient: "+12015550001", Shown: "****0001", Now: time.Now()}

	x, err := serve.ExplainRecipient(ctx, config.Default(), rdb, p)
	if err != nil || !x.InLedger || x.State != string(ledger.Queued) {
		t.Fatalf("ExplainRecipient = %+v, %v; want the queued recipient", x, err)
	}
	bad := config.Default()
	bad.Errors = map[string]string{"HTTP_503": "sometimes"}
	var ce *config.Error
	if _, err := serve.ExplainRecipient(ctx, bad, rdb, p); !errors.As(err, &ce) || ce.Key != "errors.HTTP_503" {
		t.Errorf("a broken table of codes: %v, want a config.Error on errors.HTTP_503", err)
	}
	if _, err := serve.ExplainRecipient(ctx, config.Default(), rdb, serve.ExplainParams{Run: "no-such-run", Recipient: p.Recipient}); !errors.Is(err, ledger.ErrRunNotFound) {
		t.Errorf("no such run: %v, want ErrRunNotFound", err)
	}
	mr.SetError("LOADING Redis is loading the dataset in memory")
	defer mr.SetError("")
	if _, err := serve.ExplainRecipient(ctx, config.Default(), rdb, p); err == nil {
		t.Error("a run that cannot be read: no error")
	}
}

// The one client builder takes the request timeout from the config (connectly.timeout): a
// provider that does not answer fails the request after that long, not after a default.
func TestConnectlyClientTakesTheConfigTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := config.Default()
	c.Connectly.BaseURL, c.Connectly.BusinessID, c.APIKey = srv.URL, "b1", "k"
	c.Connectly.Timeout = config.Duration(50 * time.Millisecond)
	if _, err := serve.ConnectlyClient(config.Default(), 0); err == nil {
		t.Error("a config without business and key: no error")
	}
	client, err := serve.ConnectlyClient(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.ListTemplates(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("ListTemplates from a provider that does not answer: %v (test deadline: %v); want the client's timeout", err, ctx.Err())
	}
}

// The fake's options: its faults (none, the demo's, a JSON file) and its webhook mix (signed,
// so a mix without a secret is refused, as is one it does not know).
func TestFakeConfig(t *testing.T) {
	t.Parallel()
	base := serve.FakeParams{BusinessID: "b1", APIKey: "k", Rate: fakeconnectly.DefaultRateLimit}
	with := func(f func(*serve.FakeParams)) serve.FakeParams { p := base; f(&p); return p }

	cfg, err := serve.FakeConfig(with(func(p *serve.FakeParams) { p.Faults = "demo"; p.Webhooks = "demo"; p.WebhookSecret = "s" }))
	if err != nil || len(cfg.Rules) != len(fakeconnectly.DemoRules()) || cfg.Webhooks.Secret != "s" || cfg.Webhooks.Delay <= 0 ||
		len(cfg.Webhooks.Fates) == 0 || cfg.RateLimit != fakeconnectly.DefaultRateLimit {
		t.Fatalf("demo faults and webhooks: %+v, %v", cfg, err)
	}
	cfg, err = serve.FakeConfig(with(func(p *serve.FakeParams) { p.Webhooks = "all-read"; p.WebhookSecret = "s" }))
	if err != nil || len(cfg.Rules) != 0 || len(cfg.Webhooks.Fates) != 0 || cfg.Webhooks.Delay <= 0 {
		t.Fatalf("all-read webhooks: %+v, %v", cfg, err)
	}
	file := filepath.Join(t.TempDir(), "faults.json")
	if err := os.WriteFile(file, []byte(`[{"percent": 10, "salt": "x", "code": "ERROR_CODE_UNSPECIFIED"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err := serve.FakeConfig(with(func(p *serve.FakeParams) { p.Faults = file })); err != nil || len(cfg.Rules) != 1 || cfg.Rules[0].Percent != 10 {
		t.Fatalf("faults file: %+v, %v", cfg.Rules, err)
	}
	if err := os.WriteFile(file, []byte(`{`), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]serve.FakeParams{
		"BadFaultsFile": with(func(p *serve.FakeParams) { p.Faults = file }),
		"NoFaultsFile":  with(func(p *serve.FakeParams) { p.Faults = file + ".none" }),
	} {
		if _, err := serve.FakeConfig(p); err == nil || errors.As(err, new(serve.FakeOptionError)) {
			t.Errorf("%s: %v, want an error that is not a FakeOptionError", name, err)
		}
	}
	for name, p := range map[string]serve.FakeParams{
		"NoSecret":   with(func(p *serve.FakeParams) { p.Webhooks = "demo" }),
		"UnknownMix": with(func(p *serve.FakeParams) { p.Webhooks = "some"; p.WebhookSecret = "s" }),
	} {
		if _, err := serve.FakeConfig(p); !errors.As(err, new(serve.FakeOptionError)) {
			t.Errorf("%s: %v, want a FakeOptionError", name, err)
		}
	}
}

// The contract's open choices given as options reach the fake's config.
func TestFakeConfigContractChoices(t *testing.T) {
	t.Parallel()
	cfg, err := serve.FakeConfig(serve.FakeParams{BusinessID: "b1", APIKey: "k", DefaultLanguage: "en", DedupeMessageID: true,
		CampaignFlowMessages: 2, InboundBusinessNumber: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultLanguage != "en" || !cfg.DedupeMessageID || cfg.CampaignFlowMessages != 2 || !cfg.Webhooks.NameBusinessNumber {
		t.Fatalf("config %+v: the options did not reach it", cfg)
	}
}

// startDashboard runs the dashboard on the Redis at redisAddr until ctx ends, and returns
// where it listens and the channel RunDashboard's result comes on.
func startDashboard(ctx context.Context, t *testing.T, redisAddr string) (net.Addr, <-chan error) {
	t.Helper()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.RunDashboard(ctx, serve.DashboardParams{RedisURL: "redis://" + redisAddr, Listen: "127.0.0.1:0",
			Listening: func(a net.Addr) { addrs <- a }})
	}()
	select {
	case addr := <-addrs:
		return addr, done
	case err := <-done:
		t.Fatalf("RunDashboard: %v", err)
		return nil, nil
	}
}

// The dashboard serves asynqmon until its context ends, then stops cleanly.
func TestRunDashboard(t *testing.T) {
	t.Parallel()
	mr, _ := testredis.Mini(t)
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := startDashboard(ctx, t, mr.Addr())
	resp, err := http.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("GET / = %d %.80q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunDashboard after its context ended: %v", err)
	}
	if err := serve.RunDashboard(context.Background(), serve.DashboardParams{RedisURL: "http://nope", Listen: "127.0.0.1:0"}); err == nil ||
		!strings.Contains(err.Error(), "redis.url") {
		t.Errorf("a bad redis.url: %v", err)
	}
}

// A probe of the dashboard's port checks the dashboard: /healthz and /readyz are answered by
// Herald (asynqmon answers every path it does not know with its web page and 200), and
// /readyz says 503 once Redis does not answer.
func TestDashboardProbes(t *testing.T) {
	t.Parallel()
	mr, _ := testredis.Mini(t)
	// The dashboard takes a URL only: it reaches the miniredis through an Outage's listener,
	// which stays bound when cut. Closing the miniredis would free its port, which another test
	// process's server may take before the next probe.
	outage := testredis.NewOutage(t, mr.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := startDashboard(ctx, t, outage.Addr())
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %.80q, want 200 ok", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("GET /readyz = %d %.80q, want 200 ready", code, body)
	}
	outage.Cut()
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Errorf("GET /readyz with Redis gone = %d %.80q, want 503", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunDashboard after its context ended: %v", err)
	}
}

// message send chooses its sender before anything else: with several configured and none
// given, it says so and connects to nothing. A dry run needs no credentials and renders the
// request for the customer's window.
func TestSendMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	two := config.Default()
	two.Senders = []config.Sender{{Number: "+14155550100"}, {Number: "+14155550101"}}
	_, err := serve.SendMessage(ctx, serve.MessageParams{Config: two, To: "+12015550001", DryRun: true,
		Content: connectly.SessionContent{Text: "hi"},
		Connect: func(context.Context) (redis.UniversalClient, error) {
			t.Error("connected to Redis")
			return nil, errors.New("no Redis here")
		}})
	if !errors.As(err, new(*config.SenderRequiredError)) {
		t.Fatalf("two senders and none named: %v, want a SenderRequiredError", err)
	}
	_, rdb := testredis.Mini(t)
	res, err := serve.SendMessage(ctx, serve.MessageParams{Config: config.Default(), Connect: connectTo(rdb), To: "+12015550001",
		Sender: "+14155550100", Content: connectly.SessionContent{Text: "hi"}, DryRun: true, Actor: "ana"})
	if !errors.Is(err, conversation.ErrWindowClosed) || !res.DryRun || res.Kind == "" || res.Window.Open ||
		!strings.HasSuffix(res.To, "0001") || strings.Contains(res.To, "201555") {
		t.Fatalf("dry run to a customer who never wrote = %+v, %v; want the masked request and ErrWindowClosed", res, err)
	}
}

// campaign plan reads the file under the config's rules, tells its progress against the
// file's size (every 65,536 rows), and says when the limits could not be previewed for want
// of Redis.
func TestPlanCampaign(t *testing.T) {
	t.Parallel()
	const n = 1 << 16
	path := campaignFile(t, 1)
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range n {
		fmt.Fprintf(&csv, "+1201%03d%04d,name\n", 200+i/10000, i%10000)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "audience.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Limits.MessagingTier = 1000
	var rows, about int
	done := false
	out, err := serve.PlanCampaign(context.Background(), serve.PlanParams{Path: path, Config: c, Samples: 1,
		Connect:      func(context.Context) (redis.UniversalClient, error) { return nil, errors.New("redis down") },
		Progress:     func(r, a int) { rows, about = r, a },
		ProgressDone: func() { done = true }})
	if err != nil {
		t.Fatal(err)
	}
	if out.Rows != n || len(out.Samples) != 1 {
		t.Fatalf("plan of %d rows, %d samples", out.Rows, len(out.Samples))
	}
	if rows != n || about < n || about > n+2 || !done {
		t.Errorf("progress: %d rows of about %d, done %v; want %d of about as many as the file has lines, done", rows, about, done, n)
	}
	if out.Limits == nil || !strings.Contains(out.Limits.Note, "not checked: redis down") {
		t.Errorf("limits %+v: want a note that Redis could not be reached", out.Limits)
	}
	if _, err := serve.PlanCampaign(context.Background(), serve.PlanParams{Path: filepath.Join(t.TempDir(), "none.yaml"), Config: c}); err == nil {
		t.Error("a missing file: no error")
	}
}

// The contract's open choices reach the fake from the command's options: a Retry-After on the
// rate limit's 429, the window answer, the senders and the strict refusals; a value the fake
// does not know is an option error, and nothing listens.
// --fake-config FILE gives the fake its whole Config; the business id, API key and webhook
// secret of the command, when set, win over the file's, so the fake answers the clients that
// use them. A file that cannot be read or parsed is an error naming it.
func TestFakeConfigFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fake.json")
	if err := os.WriteFile(path, []byte(`{"businessId": "file-biz", "apiKey": "file-key", "rateLimit": -1,
  "rules": [{"endpoint": "templates", "status": 503, "times": 1}],
  "webhooks": {"secret": "file-secret", "delay": "250ms"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := serve.FakeConfig(serve.FakeParams{ConfigFile: path})
	if err != nil || cfg.BusinessID != "file-biz" || cfg.APIKey != "file-key" || cfg.Webhooks.Secret != "file-secret" ||
		cfg.RateLimit != -1 || len(cfg.Rules) != 1 || cfg.Rules[0].Endpoint != fakeconnectly.EndpointTemplates {
		t.Fatalf("config from the file: %+v, %v", cfg, err)
	}
	cfg, err = serve.FakeConfig(serve.FakeParams{ConfigFile: path, BusinessID: "b1", APIKey: "k1", WebhookSecret: "s1"})
	if err != nil || cfg.BusinessID != "b1" || cfg.APIKey != "k1" || cfg.Webhooks.Secret != "s1" || cfg.Webhooks.Delay != 250*time.Millisecond {
		t.Fatalf("the command's id, key and secret over the file's: %+v, %v", cfg, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rateLimits": 5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing.json")} {
		if _, err := serve.FakeConfig(serve.FakeParams{ConfigFile: f}); err == nil || !strings.Contains(err.Error(), "--fake-config") {
			t.Errorf("%s: %v, want an error naming --fake-config", f, err)
		}
	}
}

func TestFakeContractOptions(t *testing.T) {
	t.Parallel()
	base := serve.FakeParams{BusinessID: "b1", APIKey: "k", Rate: fakeconnectly.DefaultRateLimit, Listen: "127.0.0.1:0"}
	with := func(f func(*serve.FakeParams)) serve.FakeParams { p := base; f(&p); return p }

	cfg, err := serve.FakeConfig(with(func(p *serve.FakeParams) { p.Strict = "https-media, channel-type" }))
	if want := (fakeconnectly.Strict{HTTPSMedia: true, ChannelType: true}); err != nil || cfg.Strict != want {
		t.Fatalf("strict https-media, channel-type: %+v, %v; want %+v", cfg.Strict, err, want)
	}
	// Inbound webhooks name no business number by default (reference 5.4's shape); the option
	// names it.
	cfg, err = serve.FakeConfig(with(func(p *serve.FakeParams) { p.Webhooks = "demo"; p.WebhookSecret = "s" }))
	if err != nil || cfg.Webhooks.NameBusinessNumber {
		t.Fatalf("default: %+v, %v; want inbound webhooks naming no business number", cfg.Webhooks, err)
	}
	cfg, err = serve.FakeConfig(with(func(p *serve.FakeParams) {
		p.Webhooks, p.WebhookSecret, p.InboundBusinessNumber = "demo", "s", true
	}))
	if err != nil || !cfg.Webhooks.NameBusinessNumber {
		t.Fatalf("inbound business number: %+v, %v", cfg.Webhooks, err)
	}
	cfg, err = serve.FakeConfig(with(func(p *serve.FakeParams) { p.Strict = "all" }))
	if want := (fakeconnectly.Strict{TextWhitespace: true, HTTPSMedia: true, DuplicateParams: true, ChannelType: true}); err != nil || cfg.Strict != want {
		t.Fatalf("strict all: %+v, %v; want %+v", cfg.Strict, err, want)
	}
	for name, p := range map[string]serve.FakeParams{
		"UnknownStrict":       with(func(p *serve.FakeParams) { p.Strict = "https-media,loose" }),
		"UnknownWindowAnswer": with(func(p *serve.FakeParams) { p.WindowAnswer = "maybe" }),
		"UnknownPunctuation":  with(func(p *serve.FakeParams) { p.NumberPunctuation = "keep" }),
		"SenderNotE164":       with(func(p *serve.FakeParams) { p.Senders = []string{"4155550100"} }),
	} {
		p.Listening = func(string, int) { t.Errorf("%s: the fake listens", name) }
		if err := serve.RunFakeConnectly(context.Background(), p); !errors.As(err, new(serve.FakeOptionError)) {
			t.Errorf("%s: %v, want a FakeOptionError", name, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	urls, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- serve.RunFakeConnectly(ctx, with(func(p *serve.FakeParams) {
			p.Rate, p.RetryAfter, p.WindowAnswer = 1, true, fakeconnectly.WindowAnswerOutsideWindow
			p.Senders = []string{"+14155550100", "+14155550101"}
			p.Listening = func(url string, _ int) { urls <- url }
		}))
	}()
	var base0 string
	select {
	case base0 = <-urls:
	case err := <-done:
		t.Fatalf("the fake did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the fake's end: %v", err)
		}
	})
	send := func() (*http.Response, string) {
		body := `{"sender": {"id": "+14155550101", "channelType": "whatsapp"}, "recipient": {"id": "+14155550123", "channelType": "whatsapp"}, "message": {"text": "hi"}}`
		req, _ := http.NewRequest(http.MethodPost, base0+"/v1/businesses/b1/send/messages", strings.NewReader(body))
		req.Header.Set("X-API-Key", "k")
		req.Header.Set("Content-Type", "application/json")
		resp, err := testHTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// A customer who never wrote, answered as outside-window says.
	if resp, body := send(); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW") {
		t.Fatalf("session send to a closed window: %d %s", resp.StatusCode, body)
	}
	// One request a second: the next is refused with a Retry-After.
	if resp, body := send(); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second send in the second: %d %q %s; want 429 with a Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// A run's campaign that is gone for good (its file removed) reads as conversation.ErrNoCampaign,
// so its replies trigger nothing; a read that Redis failed does not, so the reply is refused
// and comes again.
func TestRunSourceTellsGoneFromPassing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr, rdb := testredis.Mini(t)
	sent := send(t, config.Default(), rdb, 2)
	source := serve.RunSource(config.Default(), rdb, zerolog.Nop())
	run, err := ledger.New(rdb, nil).GetRun(ctx, sent.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if def, err := source(ctx, run); err != nil || def.ID != "spring-sale" {
		t.Fatalf("source = %+v, %v; want the campaign", def, err)
	}
	mr.SetError("LOADING Redis is loading the dataset in memory")
	_, err = source(ctx, run)
	mr.SetError("")
	if err == nil || errors.Is(err, conversation.ErrNoCampaign) {
		t.Fatalf("source with Redis failing = %v; want an error that is not ErrNoCampaign", err)
	}
	if err := os.Remove(run.Definition); err != nil {
		t.Fatal(err)
	}
	if run.Source != "" {
		if err := rdb.Del(ctx, rkeys.DefinitionFile(run.Campaign, run.Source)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := source(ctx, run); !errors.Is(err, conversation.ErrNoCampaign) {
		t.Fatalf("source with the campaign removed = %v; want ErrNoCampaign", err)
	}
}
