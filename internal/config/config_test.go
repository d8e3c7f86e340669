package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// env is a map-backed getenv; tests never touch the process environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// writeFile writes content to name in a fresh temporary directory and returns its path.
func writeFile(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// load writes yaml to a temporary herald.yaml and loads it with e.
func load(tb testing.TB, yaml string, e env) (config.Config, error) {
	tb.Helper()
	return config.Load(writeFile(tb, "herald.yaml", yaml), e.get)
}

func mustLoad(tb testing.TB, yaml string, e env) config.Config {
	tb.Helper()
	c, err := load(tb, yaml, e)
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return c
}

// checkConfigError asserts err is a *config.Error for key whose message contains every sub.
func checkConfigError(tb testing.TB, err error, key string, subs ...string) {
	tb.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) {
		tb.Fatalf("err = %v (%T), want *config.Error for %s", err, err, key)
	}
	if ce.Key != key {
		tb.Errorf("Key = %q, want %q (err %v)", ce.Key, key, err)
	}
	// A value written in the file is named by its place (herald.yaml:4:11: key: ...), one from
	// the environment by its variable (config: key (VAR): ...), a default by its key alone.
	if !keyPrefix.MatchString(err.Error()) || !strings.Contains(err.Error(), " "+key+": ") && !strings.Contains(err.Error(), " "+key+" (") {
		tb.Errorf("Error() = %q, want it to start with where the value is and the key %q", err, key)
	}
	if ce.Line > 0 && !strings.HasPrefix(err.Error(), ce.File+":"+strconv.Itoa(ce.Line)+":"+strconv.Itoa(ce.Column)+": "+key+": ") {
		tb.Errorf("Error() = %q, want it to start with file:line:column and the key %q", err, key)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			tb.Errorf("Error() = %q, want it to contain %q", err, s)
		}
	}
}

// keyPrefix is how an *Error starts: the value's place in the file, or "config: ".
var keyPrefix = regexp.MustCompile(`^(config: |[^ ]+\.yaml:[0-9]+:[0-9]+: )`)

func TestLoadDefaults(t *testing.T) {
	t.Parallel()

	want := config.Config{
		Redis: config.Redis{URL: "redis://127.0.0.1:6379/0"},
		Connectly: config.Connectly{
			BaseURL:           "https://api.connectly.ai",
			Timeout:           config.Duration(10 * time.Second),
			BusinessRate:      200,
			SessionBSUIDField: "id",
		},
		Windows: config.Windows{Scope: "sender", LateFallbackFor: config.OffDuration(24 * time.Hour)},
		Worker:  config.Worker{Concurrency: 50, ShutdownTimeout: config.Duration(15 * time.Second), WindowMargin: config.Duration(2 * time.Minute)},
		Retry: config.Retry{
			MaxAttempts:   5,
			Base:          config.Duration(time.Second),
			Cap:           config.Duration(5 * time.Minute),
			ThrottleDelay: config.Duration(2 * time.Second),
			HoldDelay:     config.Duration(5 * time.Second),
			MaxPaceWait:   config.Duration(time.Second),
			KeepPlaceFor:  config.OffDuration(20 * time.Second),
		},
		StopRun: config.StopRun{BurstSample: 100, BurstShare: 0.2},
		Limits: config.Limits{PairInterval: config.OffDuration(6 * time.Second), TierPeriod: config.Duration(24 * time.Hour),
			TierRecheck: config.Duration(5 * time.Minute),
			Adaptive: config.Adaptive{MinFactor: 0.2, Period: config.Duration(3 * time.Second), Threshold: 0.05,
				RecoverEvery: config.Duration(time.Second), RecoverStep: 0.01, Codes: []string{"HTTP_429", "130429", "80007", "GRPC_RESOURCE_EXHAUSTED"}}},
		Log:      config.Log{Level: "info", Format: "auto"},
		Webhooks: config.Webhooks{MaxBody: 1 << 20, ParkFor: config.Duration(15 * time.Minute)},
		Scheduler: config.Scheduler{Poll: config.Duration(2 * time.Second), Backlog: config.Duration(2 * time.Minute),
			MinBacklog: 1000, MaxBacklog: 5000, ExpandConcurrency: 4},
	}
	if got := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() (-want, +got):\n- %+v\n+ %+v", want, got)
	}

	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"NoFile", func(*testing.T) string { return "" }},
		{"EmptyFile", func(t *testing.T) string { return writeFile(t, "herald.yaml", "") }},
		{"CommentsOnly", func(t *testing.T) string { return writeFile(t, "herald.yaml", "# nothing set yet\n") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(tc.path(t), env{}.get)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load (-want, +got):\n- %+v\n+ %+v", want, got)
			}
			if err := got.RequireConnectly(); err == nil {
				t.Error("RequireConnectly passed without a business id or key")
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := config.Load(path, env{}.get)
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error naming the file", err)
	}
}

func TestLoadFullFile(t *testing.T) {
	t.Parallel()
	keyFile := writeFile(t, "api_key", "file-key\n")
	secretFile := writeFile(t, "webhook_secret", "  file-secret  \n")
	redisPasswordFile := writeFile(t, "redis_password", "pw\n")
	c := mustLoad(t, `
redis:
  url: rediss://user@redis.internal:6380/2
  password_file: `+redisPasswordFile+`
connectly:
  base_url: http://127.0.0.1:8089
  business_id: 6f1c1a9e-8a5b-4d3e-9c2f-0a1b2c3d4e5f
  api_key_file: `+keyFile+`
  webhook_secret_file: `+secretFile+`
  timeout: 30s
  business_rate: 150
  session_bsuid_field: userId
  send_campaign_name: true
senders:
  - number: "+14151111234"
    rate: 80
  - number: "+14152222345"
windows:
  scope: business
  late_fallback_for: off
worker:
  concurrency: 120
  shutdown_timeout: 1m
  window_margin: 0s
retry:
  max_attempts: 7
  base: 500ms
  cap: 10m
  throttle_delay: 3s
  hold_delay: 1m30s
  max_pace_wait: 2s
errors:
  ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID: stop-run
  HTTP_404: permanent
stop_run:
  burst_window: 50
  burst_share: 0.5
limits:
  pair_interval: 10s
  messaging_tier: 10000
  tier_window: 24h
  tier_recheck: 2m
  frequency_caps:
    marketing:
      max: 2
      window: 168h
  adaptive:
    min_factor: 0.25
    recover_every: 30s
    recover_step: 0.05
    window: 2s
    threshold: 0.1
    codes: [HTTP_429]
log:
  level: debug
  format: json
`, env{})

	want := config.Config{
		Redis: config.Redis{URL: "rediss://user:pw@redis.internal:6380/2", PasswordFile: redisPasswordFile},
		Connectly: config.Connectly{
			BaseURL:           "http://127.0.0.1:8089",
			BusinessID:        "6f1c1a9e-8a5b-4d3e-9c2f-0a1b2c3d4e5f",
			APIKeyFile:        keyFile,
			WebhookSecretFile: secretFile,
			Timeout:           config.Duration(30 * time.Second),
			BusinessRate:      150,
			SessionBSUIDField: "userId",
			SendCampaignName:  true,
		},
		// A sender without a rate gets the default 80.
		Senders: []config.Sender{{Number: "+14151111234", Rate: 80}, {Number: "+14152222345", Rate: 80}},
		Windows: config.Windows{Scope: "business", LateFallbackFor: -1},
		Worker:  config.Worker{Concurrency: 120, ShutdownTimeout: config.Duration(time.Minute), WindowMargin: 0},
		Retry: config.Retry{
			MaxAttempts:   7,
			Base:          config.Duration(500 * time.Millisecond),
			Cap:           config.Duration(10 * time.Minute),
			ThrottleDelay: config.Duration(3 * time.Second),
			HoldDelay:     config.Duration(90 * time.Second),
			MaxPaceWait:   config.Duration(2 * time.Second),
			KeepPlaceFor:  config.OffDuration(20 * time.Second),
		},
		Errors:  map[string]string{"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID": "stop-run", "HTTP_404": "permanent"},
		StopRun: config.StopRun{BurstSample: 50, BurstShare: 0.5},
		Limits: config.Limits{PairInterval: config.OffDuration(10 * time.Second), MessagingTier: 10000,
			TierPeriod: config.Duration(24 * time.Hour), TierRecheck: config.Duration(2 * time.Minute),
			FrequencyCaps: map[string]config.FrequencyCap{"marketing": {Max: 2, Period: config.Duration(168 * time.Hour)}},
			Adaptive: config.Adaptive{MinFactor: 0.25, RecoverEvery: config.Duration(30 * time.Second), RecoverStep: 0.05,
				Period: config.Duration(2 * time.Second), Threshold: 0.1, Codes: []string{"HTTP_429"}}},
		Log:      config.Log{Level: "debug", Format: "json"},
		Webhooks: config.Webhooks{MaxBody: 1 << 20, ParkFor: config.Duration(15 * time.Minute)},
		Scheduler: config.Scheduler{Poll: config.Duration(2 * time.Second), Backlog: config.Duration(2 * time.Minute),
			MinBacklog: 1000, MaxBacklog: 5000, ExpandConcurrency: 4},
		APIKey:        "file-key",
		WebhookSecret: "file-secret",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load (-want, +got):\n- %+v\n+ %+v", want, c)
	}
	if p := c.WindowPolicy(); p.Scope != servicewindow.ScopeBusiness || !reflect.DeepEqual(p.Senders, []string{"+14151111234", "+14152222345"}) {
		t.Errorf("WindowPolicy() = %+v, want the senders and windows.scope", p)
	}
	if err := c.RequireConnectly(); err != nil {
		t.Errorf("RequireConnectly: %v", err)
	}
	if got, want := c.SenderRates(), map[string]float64{"+14151111234": 80, "+14152222345": 80}; !reflect.DeepEqual(got, want) {
		t.Errorf("SenderRates = %v, want %v", got, want)
	}
	if got := c.Retry.HoldDelay.D(); got != 90*time.Second {
		t.Errorf("HoldDelay.D() = %v", got)
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	t.Parallel()
	// Every key is also set in the file, so each case shows the environment winning.
	const file = `
redis:
  url: redis://file-redis:6379/0
connectly:
  base_url: https://file.example.com
  business_id: file-business
  session_bsuid_field: id
log:
  level: warn
  format: console
campaigns:
  root: /srv/file-campaigns
`
	tests := []struct {
		name  string
		env   env
		get   func(c config.Config) string
		want  string
		unset string // the value when the variable is absent or empty
	}{
		{"HERALD_REDIS_URL", env{"HERALD_REDIS_URL": "redis-sentinel://s1:26379,s2:26379?master=main"},
			func(c config.Config) string { return c.Redis.URL }, "redis-sentinel://s1:26379,s2:26379?master=main", "redis://file-redis:6379/0"},
		{"CONNECTLY_BASE_URL", env{"CONNECTLY_BASE_URL": "http://127.0.0.1:8089"},
			func(c config.Config) string { return c.Connectly.BaseURL }, "http://127.0.0.1:8089", "https://file.example.com"},
		{"CONNECTLY_BUSINESS_ID", env{"CONNECTLY_BUSINESS_ID": "env-business"},
			func(c config.Config) string { return c.Connectly.BusinessID }, "env-business", "file-business"},
		{"CONNECTLY_API_KEY", env{"CONNECTLY_API_KEY": "env-key"},
			func(c config.Config) string { return c.APIKey }, "env-key", ""},
		{"CONNECTLY_WEBHOOK_SECRET", env{"CONNECTLY_WEBHOOK_SECRET": "env-secret"},
			func(c config.Config) string { return c.WebhookSecret }, "env-secret", ""},
		{"CONNECTLY_SESSION_BSUID_FIELD", env{"CONNECTLY_SESSION_BSUID_FIELD": "userId"},
			func(c config.Config) string { return string(c.Connectly.SessionBSUIDField) }, "userId", "id"},
		{"CONNECTLY_SEND_CAMPAIGN_NAME", env{"CONNECTLY_SEND_CAMPAIGN_NAME": "true"},
			func(c config.Config) string { return strconv.FormatBool(c.Connectly.SendCampaignName) }, "true", "false"},
		{"HERALD_LOG_LEVEL", env{"HERALD_LOG_LEVEL": "debug"},
			func(c config.Config) string { return c.Log.Level }, "debug", "warn"},
		{"HERALD_LOG_FORMAT", env{"HERALD_LOG_FORMAT": "json"},
			func(c config.Config) string { return c.Log.Format }, "json", "console"},
		{"HERALD_CAMPAIGNS_ROOT", env{"HERALD_CAMPAIGNS_ROOT": "/srv/env-campaigns"},
			func(c config.Config) string { return c.Campaigns.Root }, "/srv/env-campaigns", "/srv/file-campaigns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.get(mustLoad(t, file, tc.env)); got != tc.want {
				t.Errorf("with %s set: got %q, want %q", tc.name, got, tc.want)
			}
			if got := tc.get(mustLoad(t, file, env{})); got != tc.unset {
				t.Errorf("without %s: got %q, want %q", tc.name, got, tc.unset)
			}
			if got := tc.get(mustLoad(t, file, env{tc.name: ""})); got != tc.unset {
				t.Errorf("with %s empty: got %q, want %q", tc.name, got, tc.unset)
			}
		})
	}

	t.Run("WithoutFile", func(t *testing.T) {
		t.Parallel()
		c, err := config.Load("", env{"CONNECTLY_BUSINESS_ID": "b-1", "CONNECTLY_API_KEY": "k-1", "HERALD_REDIS_URL": "redis://10.0.0.5:6379/3"}.get)
		if err != nil {
			t.Fatal(err)
		}
		if c.Connectly.BusinessID != "b-1" || c.APIKey != "k-1" || c.Redis.URL != "redis://10.0.0.5:6379/3" {
			t.Errorf("overrides not applied: %+v", c)
		}
		if err := c.RequireConnectly(); err != nil {
			t.Errorf("RequireConnectly: %v", err)
		}
	})

	t.Run("OverrideIsValidated", func(t *testing.T) {
		t.Parallel()
		_, err := config.Load("", env{"HERALD_REDIS_URL": "localhost:6379"}.get)
		checkConfigError(t, err, "redis.url", "not a URL (not shown")
		// A password given in the wrong place is not echoed.
		_, err = config.Load("", env{"HERALD_REDIS_URL": "SuperSecretPw99"}.get)
		checkConfigError(t, err, "redis.url", "not a URL (not shown", "want redis://")
		if strings.Contains(err.Error(), "SuperSecret") {
			t.Errorf("redis.url error echoes the value: %v", err)
		}
		_, err = config.Load("", env{"CONNECTLY_BASE_URL": "api.connectly.ai"}.get)
		checkConfigError(t, err, "connectly.base_url", `"api.connectly.ai"`)
		_, err = config.Load("", env{"CONNECTLY_SESSION_BSUID_FIELD": "recipient.userId"}.get)
		checkConfigError(t, err, "connectly.session_bsuid_field", `"recipient.userId"`)
	})
}

func TestLoadSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		keyFile    string // content; "" means the key is not set in the config
		secretFile string
		env        env
		wantKey    string
		wantSecret string
	}{
		{"FromFiles", "file-key\n", "file-secret\n", env{}, "file-key", "file-secret"},
		{"WhitespaceTrimmed", "  \tfile-key \r\n\n", "\nfile-secret  ", env{}, "file-key", "file-secret"},
		{"EnvWinsOverFile", "file-key", "file-secret", env{"CONNECTLY_API_KEY": "env-key", "CONNECTLY_WEBHOOK_SECRET": "env-secret"}, "env-key", "env-secret"},
		{"EnvKeyFileSecret", "file-key", "file-secret", env{"CONNECTLY_API_KEY": "env-key"}, "env-key", "file-secret"},
		{"NoSecrets", "", "", env{}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yaml := "connectly:\n"
			if tc.keyFile != "" {
				yaml += "  api_key_file: " + writeFile(t, "key", tc.keyFile) + "\n"
			}
			if tc.secretFile != "" {
				yaml += "  webhook_secret_file: " + writeFile(t, "secret", tc.secretFile) + "\n"
			}
			c := mustLoad(t, yaml, tc.env)
			if c.APIKey != tc.wantKey || c.WebhookSecret != tc.wantSecret {
				t.Errorf("APIKey, WebhookSecret = %q, %q, want %q, %q", c.APIKey, c.WebhookSecret, tc.wantKey, tc.wantSecret)
			}
		})
	}

	t.Run("MissingKeyFile", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "no-such-key")
		_, err := load(t, "connectly:\n  api_key_file: "+missing+"\n", env{})
		checkConfigError(t, err, "connectly.api_key_file", "herald.yaml:2:17: ",
			fmt.Sprintf("the file it names (%d characters) does not exist", len(missing)))
		// The cause is kept: a caller can tell a missing file from a bad setting.
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want it to wrap os.ErrNotExist", err)
		}
		if strings.Contains(err.Error(), "no-such-key") || strings.Contains(err.Error(), "like a secret") {
			t.Errorf("err = %q names the file, or takes its path for a secret", err)
		}
	})

	t.Run("MissingSecretFile", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "no-such-secret")
		_, err := load(t, "connectly:\n  webhook_secret_file: "+missing+"\n", env{})
		checkConfigError(t, err, "connectly.webhook_secret_file", "herald.yaml:2:24: ", "does not exist")
		if strings.Contains(err.Error(), "no-such-secret") {
			t.Errorf("err = %q names the file", err)
		}
	})

	// A secret pasted where its file belongs is never shown back: the error names the key and
	// says the value looks like a secret.
	t.Run("SecretPastedAsFileName", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ key, section, name, env string }{
			{"connectly.api_key_file", "connectly", "api_key_file", "CONNECTLY_API_KEY"},
			{"connectly.webhook_secret_file", "connectly", "webhook_secret_file", "CONNECTLY_WEBHOOK_SECRET"},
			{"redis.password_file", "redis", "password_file", "HERALD_REDIS_PASSWORD"},
		} {
			const pasted = "ck_live_9f8e7d6c5b4a"
			_, err := load(t, tc.section+":\n  "+tc.name+": \""+pasted+"\"\n", env{})
			checkConfigError(t, err, tc.key, fmt.Sprintf("herald.yaml:2:%d: ", len(tc.name)+5),
				"the file it names (20 characters) does not exist", "looks like a secret", tc.env)
			if err != nil && strings.Contains(err.Error(), "9f8e7d") {
				t.Errorf("err = %q shows the value", err)
			}
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("err = %v, want it to wrap os.ErrNotExist", err)
			}
			var pe *fs.PathError
			if errors.As(err, &pe) {
				t.Errorf("err = %v wraps %v, which holds the value", err, pe)
			}
		}
	})

	t.Run("UnreadableFile", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "secret-dir")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := load(t, "connectly:\n  api_key_file: "+dir+"\n", env{})
		checkConfigError(t, err, "connectly.api_key_file", "herald.yaml:2:17: ", "could not be read: is a directory")
		if strings.Contains(err.Error(), "secret-dir") {
			t.Errorf("err = %q names the file", err)
		}
	})

	t.Run("MissingFileIgnoredWhenEnvSet", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "no-such-key")
		c := mustLoad(t, "connectly:\n  api_key_file: "+missing+"\n", env{"CONNECTLY_API_KEY": "env-key"})
		if c.APIKey != "env-key" {
			t.Errorf("APIKey = %q, want env-key", c.APIKey)
		}
	})
}

func TestLoadRejectsSecretsInFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		wantSubs []string
	}{
		{"APIKey", "connectly:\n  business_id: b\n  api_key: hk_live_leaked_value\n",
			[]string{"herald.yaml:3:", "api_key", "CONNECTLY_API_KEY", "api_key_file"}},
		{"WebhookSecret", "connectly:\n  webhook_secret: whsec_leaked_value\n",
			[]string{"herald.yaml:2:", "webhook_secret", "CONNECTLY_WEBHOOK_SECRET", "webhook_secret_file"}},
		{"APIKeyAtTopLevel", "api_key: hk_live_leaked_value\n",
			[]string{"herald.yaml:1:", "api_key", "CONNECTLY_API_KEY"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tc.yaml, env{})
			if err == nil {
				t.Fatal("Load accepted a secret in the file")
			}
			for _, s := range tc.wantSubs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "leaked_value") {
				t.Errorf("err = %q repeats the secret", err)
			}
		})
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		wantSubs []string
	}{
		{"Nested", "worker:\n  concurrency: 10\n  concurency: 5\n", []string{"herald.yaml:3:3: worker.concurency: unknown key (did you mean \"concurrency\"?)"}},
		{"TopLevel", "redis:\n  url: redis://127.0.0.1:6379/0\nretries:\n  max_attempts: 3\n", []string{"herald.yaml:3:1: retries: unknown key (known keys: campaigns, connectly, errors, limits, log, redis, retry, scheduler, senders, stop_run, suppression, webhooks, windows, worker)"}},
		{"TopLevelTypo", "wroker:\n  concurrency: 3\n", []string{"herald.yaml:1:1: wroker: unknown key (did you mean \"worker\"?)"}},
		{"InSenderList", "senders:\n  - number: \"+14151111234\"\n    rps: 10\n", []string{"herald.yaml:3:5: senders[0].rps: unknown key (known keys: number, rate)"}},
		{"InSecondSender", "senders:\n  - number: \"+14151111234\"\n  - {number: \"+14152222345\", rat: 10}\n", []string{"herald.yaml:3:30: senders[1].rat: unknown key (did you mean \"rate\"?)"}},
		{"InMapOfSections", "limits:\n  frequency_caps:\n    marketing: {max: 2, windw: 24h}\n", []string{"herald.yaml:3:25: limits.frequency_caps.marketing.windw: unknown key (did you mean \"window\"?)"}},
		{"InSectionReadByItself", "limits:\n  adaptive:\n    treshold: 0.1\n", []string{"herald.yaml:3:5: limits.adaptive.treshold: unknown key (did you mean \"threshold\"?)"}},
		{"InScheduler", "scheduler:\n  pol: 2s\n", []string{"herald.yaml:2:3: scheduler.pol: unknown key (did you mean \"poll\"?)"}},
		{"CaseVariant", "Worker:\n  concurrency: 5\n", []string{"herald.yaml:1:1: Worker: unknown key (did you mean \"worker\"?)"}},
		// An api_key_file typo is not mistaken for a secret.
		{"NearSecretName", "connectly:\n  api_key_path: /run/secrets/key\n", []string{"herald.yaml:2:3: connectly.api_key_path: unknown key (did you mean \"api_key_file\"?)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tc.yaml, env{})
			if err == nil {
				t.Fatal("Load accepted an unknown key")
			}
			for _, s := range tc.wantSubs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "CONNECTLY_API_KEY") {
				t.Errorf("err = %q points to the secret variables for a key that is not a secret", err)
			}
		})
	}
}

func TestLoadBadDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		wantSubs []string
	}{
		{"Word", "retry:\n  max_attempts: 3\n  base: ten\n", []string{"herald.yaml:3:", `"ten"`, "not a duration"}},
		{"MissingUnit", "connectly:\n  timeout: 10\n", []string{"herald.yaml:2:", `"10"`, "not a duration"}},
		{"Empty", "worker:\n  shutdown_timeout: \"\"\n", []string{"herald.yaml:2:", "not a duration"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tc.yaml, env{})
			if err == nil {
				t.Fatal("Load accepted a bad duration")
			}
			for _, s := range tc.wantSubs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestLoadValidationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		wantKey  string
		wantSubs []string
	}{
		{"RedisScheme", "redis:\n  url: http://127.0.0.1:6379\n", "redis.url", []string{"a http:// URL", "redis://"}},
		{"RedisNoScheme", "redis:\n  url: 127.0.0.1:6379\n", "redis.url", nil},
		{"BaseURLScheme", "connectly:\n  base_url: ftp://api.connectly.ai\n", "connectly.base_url", []string{"ftp://api.connectly.ai"}},
		{"ConnectlyTimeoutTooShort", "connectly:\n  timeout: 500ms\n", "connectly.timeout", []string{"at least 1s"}},
		{"SessionBSUIDField", "connectly:\n  session_bsuid_field: user_id\n", "connectly.session_bsuid_field", []string{`"user_id"`, "userId"}},
		{"WindowsScope", "windows:\n  scope: number\n", "windows.scope", []string{`"number"`, "sender", "business"}},
		{"NegativeBusinessRate", "connectly:\n  business_rate: -1\n", "connectly.business_rate", []string{"negative"}},
		{"SenderNotE164", "senders:\n  - number: \"+14151111234\"\n  - number: \"4152222345\"\n", "senders[1].number", []string{`"4152222345"`, "E.164"}},
		{"SenderTooShort", "senders:\n  - number: \"+12345\"\n", "senders[0].number", []string{"E.164"}},
		{"SenderLeadingZero", "senders:\n  - number: \"+0141511112\"\n", "senders[0].number", []string{"E.164"}},
		{"SenderPunctuation", "senders:\n  - number: \"+1 (415) 111-1234\"\n", "senders[0].number", []string{"E.164"}},
		{"DuplicateSender", "senders:\n  - number: \"+14151111234\"\n  - number: \"+14152222345\"\n  - number: \"+14151111234\"\n", "senders[2].number", []string{"+14151111234", "twice"}},
		{"SenderRateTooHigh", "senders:\n  - number: \"+14151111234\"\n    rate: 2000\n", "senders[0].rate", []string{"2000", "1 to 1000"}},
		{"SenderRateNegative", "senders:\n  - number: \"+14151111234\"\n    rate: -5\n", "senders[0].rate", []string{"-5"}},
		{"SenderRateBelowOne", "senders:\n  - number: \"+14151111234\"\n    rate: 0.01\n", "senders[0].rate",
			[]string{"herald.yaml:3:11: ", "0.01: want 1 to 1000 messages/s (0 means the default 80)"}},
		{"ThrottleDelayNegative", "retry: {throttle_delay: -5s}\n", "retry.throttle_delay", []string{"herald.yaml:1:25: ", "-5s: must be positive (default 2s)"}},
		{"ThrottleDelayZero", "retry: {throttle_delay: 0s}\n", "retry.throttle_delay", []string{"0s: must be positive"}},
		{"HoldDelayZero", "retry: {hold_delay: 0s}\n", "retry.hold_delay", []string{"herald.yaml:1:21: ", "0s: must be positive (default 5s)"}},
		{"HoldDelayNegative", "retry: {hold_delay: -1m}\n", "retry.hold_delay", []string{"-1m0s: must be positive"}},
		{"MaxPaceWaitNegative", "retry: {max_pace_wait: -1s}\n", "retry.max_pace_wait", []string{"herald.yaml:1:24: ", "-1s: must be positive (default 1s)"}},
		{"MaxPaceWaitZero", "retry: {max_pace_wait: 0s}\n", "retry.max_pace_wait", []string{"0s: must be positive"}},
		{"WorkerConcurrencyZero", "worker:\n  concurrency: 0\n", "worker.concurrency", []string{"0: want 1 to 10000"}},
		{"WorkerConcurrencyTooHigh", "worker:\n  concurrency: 10001\n", "worker.concurrency", []string{"10001"}},
		{"WorkerShutdownTimeoutNegative", "worker:\n  shutdown_timeout: -1s\n", "worker.shutdown_timeout", []string{"-1s", "negative"}},
		{"WorkerWindowMarginNegative", "worker:\n  window_margin: -1m\n", "worker.window_margin", []string{"-1m0s", "must not be negative"}},
		{"WorkerWindowMarginTooLong", "worker:\n  window_margin: 2h\n", "worker.window_margin", []string{"2h0m0s: at most 54m37s", "retry.keep_place_for 20s"}},
		{"RetryMaxAttemptsZero", "retry:\n  max_attempts: 0\n", "retry.max_attempts", []string{"at least 1"}},
		{"AmbiguousStatusNot5xx", "retry:\n  ambiguous_statuses: [500, 429]\n", "retry.ambiguous_statuses[1]", []string{"429", "5xx"}},
		{"RequestFaultUnknownKey", "retry:\n  request_faults: [ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID, http_400]\n", "retry.request_faults[1]", []string{"http_400", `did you mean "HTTP_400"`}},
		{"RetryAfterHoldsUnknown", "retry:\n  retry_after_holds: everyone\n", "retry.retry_after_holds", []string{"everyone", "business, sender or send"}},
		{"RetryCapBelowBase", "retry:\n  base: 10s\n  cap: 5s\n", "retry.cap", []string{"retry.base"}},
		{"RetryBaseZero", "retry:\n  base: 0s\n", "retry.base", []string{"positive"}},
		{"ErrorsBadClass", "errors:\n  ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID: sometimes\n", "errors.ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", []string{`"sometimes"`, "stop-run"}},
		{"ErrorsNoneNotAClass", "errors:\n  HTTP_500: none\n", "errors.HTTP_500", []string{`"none"`}},
		{"ErrorsGRPCMisspelt", "errors:\n  grpc_deadline_exceeded: permanent\n", "errors.grpc_deadline_exceeded", []string{`(did you mean "GRPC_DEADLINE_EXCEEDED"?)`}},
		{"CapUnknownCategory", "limits:\n  frequency_caps:\n    promo:\n      max: 1\n      window: 24h\n", "limits.frequency_caps.promo", []string{"marketing"}},
		{"CapMaxZero", "limits:\n  frequency_caps:\n    marketing:\n      max: 0\n      window: 24h\n", "limits.frequency_caps.marketing.max", []string{"at least 1"}},
		{"CapWindowShort", "limits:\n  frequency_caps:\n    marketing:\n      max: 2\n      window: 5s\n", "limits.frequency_caps.marketing.window", []string{"1m"}},
		{"AdaptiveMinFactor", "limits:\n  adaptive:\n    min_factor: 2\n", "limits.adaptive.min_factor", []string{"at most 1"}},
		{"AdaptiveCooldown", "limits:\n  adaptive:\n    cooldown: 1s\n", "limits.adaptive.cooldown", []string{"replaced by window"}},
		{"AdaptiveWindowLong", "limits:\n  adaptive:\n    window: 30s\n", "limits.adaptive.window", []string{"1s to 10s"}},
		{"AdaptiveWindowFraction", "limits:\n  adaptive:\n    window: 1500ms\n", "limits.adaptive.window", []string{"whole seconds"}},
		{"AdaptiveThreshold", "limits:\n  adaptive:\n    threshold: 5\n", "limits.adaptive.threshold", []string{"below 1"}},
		{"AdaptiveCodeMisspelt", "limits:\n  adaptive:\n    codes: [HTTP_429, \"130492\", http_503]\n", "limits.adaptive.codes[2]",
			[]string{"herald.yaml:3:33: ", `"http_503" is not an error code`, `(did you mean "HTTP_503"?)`}},
		{"TierRecheckZero", "limits:\n  tier_recheck: 0s\n", "limits.tier_recheck", []string{"at least 1s"}},
		{"WebhooksMaxBodyTooSmall", "webhooks:\n  max_body: 10\n", "webhooks.max_body", []string{"1024"}},
		{"WebhooksParkForZero", "webhooks:\n  park_for: 0s\n", "webhooks.park_for", []string{"1s to 24h"}},
		{"WebhooksInWorkerNeedsListen", "webhooks:\n  in_worker: true\n", "webhooks.in_worker", []string{"webhooks.listen"}},
		{"WebhooksEmptyOptOutWord", "webhooks:\n  opt_out_words:\n    es: [BAJA, \" \"]\n", "webhooks.opt_out_words.es[1]", []string{"empty"}},
		{"CampaignsRecordTooSmall", "campaigns:\n  max_record_bytes: 100\n", "campaigns.max_record_bytes", []string{"1024 to 67108864"}},
		{"CampaignsRecordTooLarge", "campaigns:\n  max_record_bytes: 100000000\n", "campaigns.max_record_bytes", []string{"1024 to 67108864"}},
		{"CampaignsFileNegative", "campaigns:\n  max_file_bytes: -1\n", "campaigns.max_file_bytes", []string{"at least 1024"}},
		{"CampaignsRowsNegative", "campaigns:\n  max_rows: -5\n", "campaigns.max_rows", []string{"at least 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tc.yaml, env{})
			checkConfigError(t, err, tc.wantKey, tc.wantSubs...)
		})
	}
}

// A sender's rate of 0 is its documented spelling of the default (the example config says
// so), not a rate: the sender sends at limits.DefaultSenderRate.
func TestLoadSenderRateZeroIsTheDefault(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "senders:\n  - number: \"+14151111234\"\n    rate: 0\n  - number: \"+14152222345\"\n", env{})
	for _, s := range c.Senders {
		if s.Rate != limits.DefaultSenderRate || c.SenderRate(s.Number) != limits.DefaultSenderRate {
			t.Errorf("sender %s: rate %g, SenderRate %g; want the default %g", s.Number, s.Rate, c.SenderRate(s.Number), limits.DefaultSenderRate)
		}
	}
}

// TestLoadZeroShutdownTimeout: a shutdown_timeout of 0 takes the worker's default, counted
// from the configured request timeout, so that the worker and the expansion server started from
// the same config wait alike (before, the expansion server took a fixed 10s of its own).
// Left out, it does the same: a raised connectly.timeout used to keep a 15s shutdown, which a
// SIGTERM then cut requests short by (their recipients unknown). Set, it is kept.
func TestLoadZeroShutdownTimeout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		yaml string
		want time.Duration
	}{
		{"connectly:\n  timeout: 20s\nworker:\n  shutdown_timeout: 0s\n", 20*time.Second + sendpolicy.ShutdownGrace},
		{"connectly:\n  timeout: 20s\n", 20*time.Second + sendpolicy.ShutdownGrace},
		{"", sendpolicy.DefaultRequestTimeout + sendpolicy.ShutdownGrace},
		{"connectly:\n  timeout: 20s\nworker:\n  shutdown_timeout: 12s\n", 12 * time.Second},
	} {
		got, err := load(t, c.yaml, env{})
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Worker.ShutdownTimeout.D(); d != c.want {
			t.Errorf("%q: worker.shutdown_timeout = %v, want %v", c.yaml, d, c.want)
		}
	}
}

func TestLoadAcceptsValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
	}{
		{"ConnectlyTimeoutOneSecond", "connectly:\n  timeout: 1s\n"},
		{"SenderRateBounds", "senders:\n  - number: \"+14151111234\"\n    rate: 1\n  - number: \"+14152222345\"\n    rate: 1000\n"},
		{"SenderFifteenDigits", "senders:\n  - number: \"+123456789012345\"\n"},
		{"ErrorsEveryClass", "errors:\n  HTTP_500: permanent\n  ERROR_CODE_UNSPECIFIED: transient\n  \"131056\": throttle\n  ERROR_TYPE_AUTHENTICATION: stop-run\n  HTTP_404: Stop-Run\n"},
		// Every kind of code an answer is looked up under: Connectly's codes and types, Meta's
		// numeric codes (listed or not), HTTP statuses, failures without an answer.
		{"ErrorsEveryKindOfCode", "errors:\n  ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID: stop-run\n  ERROR_TYPE_INVALID_REQUEST: transient\n" +
			"  131049: transient\n  \"131051\": permanent\n  HTTP_418: transient\n  HTTP_503: permanent\n  NOT_SENT: throttle\n  NO_RESPONSE: permanent\n" +
			"  ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW: stop-run\n"},
		// gRPC statuses of grpc-gateway's error body, with a row in the table or not.
		{"ErrorsGRPCStatuses", "errors:\n  GRPC_INVALID_ARGUMENT: stop-run\n  GRPC_UNAVAILABLE: permanent\n  GRPC_OK: transient\n" +
			"limits:\n  adaptive:\n    codes: [HTTP_429, GRPC_RESOURCE_EXHAUSTED]\n"},
		{"WorkerConcurrencyBounds", "worker:\n  concurrency: 10000\n"},
		{"RetryCapEqualsBase", "retry:\n  base: 2s\n  cap: 2s\n"},
		{"BusinessRateZero", "connectly:\n  business_rate: 0\n"},
		{"SessionBSUIDFieldUserID", "connectly:\n  session_bsuid_field: userId\n"},
		{"SendCampaignName", "connectly:\n  send_campaign_name: true\n"},
		{"TierUnlimited", "limits:\n  messaging_tier: unlimited\n"},
		{"TierNumber", "limits:\n  messaging_tier: 2000\n"},
		{"CapsAndAdaptive", "limits:\n  frequency_caps:\n    marketing:\n      max: 2\n      window: 168h\n  adaptive:\n    window: 2s\n"},
		{"AdaptiveOff", "limits:\n  adaptive:\n    off: true\n    min_factor: 0\n"},
		{"CampaignsRaised", "campaigns:\n  root: /srv/campaigns\n  max_record_bytes: 1048576\n  max_file_bytes: 17179869184\n  max_rows: 50000000\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mustLoad(t, tc.yaml, env{})
		})
	}
}

func TestLoadMessagingTier(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "limits:\n  messaging_tier: 250\n  adaptive:\n    window: 3s\n", env{})
	if c.Limits.MessagingTier != 250 {
		t.Fatalf("messaging_tier = %d", c.Limits.MessagingTier)
	}
	// A partly written section keeps the defaults of the keys it leaves out.
	if a := c.Limits.Adaptive; a.Period.D() != 3*time.Second || a.MinFactor != 0.2 || a.Threshold != 0.05 || len(a.Codes) != 4 {
		t.Fatalf("adaptive = %+v", a)
	}
	_, err := load(t, "limits:\n  messaging_tier: lots\n", env{})
	if err == nil || !strings.Contains(err.Error(), "herald.yaml:2:") || !strings.Contains(err.Error(), "unlimited") {
		t.Fatalf("bad tier: %v", err)
	}
}

func TestLoadRedisURLForms(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://redis.internal:6379/2",
		"rediss://user@redis.example.com:6380/0",
		"redis-sentinel://h1:26379,h2:26379?master=m",
		"redis-cluster://h1:7000,h2:7001",
		"redis-socket:///var/run/redis/redis.sock",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, "redis:\n  url: "+url+"\n", env{})
			if c.Redis.URL != url {
				t.Errorf("Redis.URL = %q, want %q", c.Redis.URL, url)
			}
		})
	}
}

func TestValidateFirstErrorOnly(t *testing.T) {
	t.Parallel()
	// Several problems: the first key in file order is reported.
	_, err := load(t, "redis:\n  url: nope\nworker:\n  concurrency: 0\n", env{})
	checkConfigError(t, err, "redis.url")
}

func TestRequireConnectly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		env      env
		wantKey  string // "" means no error
		wantSubs []string
	}{
		{"MissingBusinessID", "", env{"CONNECTLY_API_KEY": "k"}, "connectly.business_id", []string{"CONNECTLY_BUSINESS_ID"}},
		{"MissingAPIKey", "connectly:\n  business_id: b\n", env{}, "connectly.api_key_file", []string{"CONNECTLY_API_KEY"}},
		{"BothMissingReportsBusinessFirst", "", env{}, "connectly.business_id", nil},
		{"FromEnv", "", env{"CONNECTLY_BUSINESS_ID": "b", "CONNECTLY_API_KEY": "k"}, "", nil},
		{"FromFileAndEnv", "connectly:\n  business_id: b\n", env{"CONNECTLY_API_KEY": "k"}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.yaml, tc.env)
			err := c.RequireConnectly()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("RequireConnectly: %v", err)
				}
				return
			}
			checkConfigError(t, err, tc.wantKey, tc.wantSubs...)
		})
	}
}

// The shipped example must keep loading as the config format changes. Secrets come from the
// environment, as they would in a deployment.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "configs", "herald.example.yaml")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s does not exist", path)
	}
	c, err := config.Load(path, env{"CONNECTLY_API_KEY": "example-key", "CONNECTLY_WEBHOOK_SECRET": "example-secret"}.get)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if c.APIKey != "example-key" {
		t.Errorf("APIKey = %q, want the environment value", c.APIKey)
	}
	// Copying the example must not change a limit silently: what it shows is the default.
	if d := config.Default().Limits; !reflect.DeepEqual(c.Limits, d) {
		t.Errorf("the example's limits differ from the defaults:\n example %+v\n default %+v", c.Limits, d)
	}
	d := config.Default()
	for _, s := range []struct {
		name          string
		example, dflt any
	}{{"retry", c.Retry, d.Retry}, {"stop_run", c.StopRun, d.StopRun}, {"scheduler", c.Scheduler, d.Scheduler}, {"worker", c.Worker, d.Worker},
		{"windows", c.Windows, d.Windows}} {
		if !reflect.DeepEqual(s.example, s.dflt) {
			t.Errorf("the example's %s differs from the defaults:\n example %+v\n default %+v", s.name, s.example, s.dflt)
		}
	}
	if c.Suppression.CampaignSessionsAreMarketing == nil || c.Suppression.SessionsNotMarketing() != d.Suppression.SessionsNotMarketing() {
		t.Errorf("the example's suppression section does not show the default: %+v", c.Suppression)
	}
}

// suppression.campaign_sessions_are_marketing: unset, and true, leave campaign session
// messages counting as marketing (the worker's default); false lets them through to a person
// suppressed for marketing only; anything but a boolean is refused with the key.
func TestLoadSuppression(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       bool
	}{
		{"Unset", "", false},
		{"Marketing", "suppression:\n  campaign_sessions_are_marketing: true\n", false},
		{"NotMarketing", "suppression:\n  campaign_sessions_are_marketing: false\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.yaml, env{})
			if got := c.Suppression.SessionsNotMarketing(); got != tc.want {
				t.Fatalf("SessionsNotMarketing = %v, want %v", got, tc.want)
			}
		})
	}
	_, err := load(t, "suppression:\n  campaign_sessions_are_marketing: sometimes\n", env{})
	checkConfigError(t, err, "suppression.campaign_sessions_are_marketing")
}

// The ambiguity override: unset leaves the table's safe default (every 5xx is "maybe sent"); a list names exactly the 5xx statuses read as maybe sent.
func TestLoadAmbiguousStatuses(t *testing.T) {
	t.Parallel()
	c, err := load(t, "", env{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Retry.AmbiguousStatuses != nil {
		t.Fatalf("default ambiguous_statuses = %v, want unset", c.Retry.AmbiguousStatuses)
	}
	c, err = load(t, "retry:\n  ambiguous_statuses: [500, 503]\n", env{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Retry.AmbiguousStatuses, []int{500, 503}) {
		t.Fatalf("ambiguous_statuses = %v, want [500 503]", c.Retry.AmbiguousStatuses)
	}
}

// The request faults: unset leaves the table's rows; [] is none; a list names exactly its keys.
func TestLoadRequestFaults(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		yaml string
		want []string
	}{
		{"", nil},
		{"retry:\n  request_faults: []\n", []string{}},
		{"retry:\n  request_faults: [HTTP_400, GRPC_INVALID_ARGUMENT]\n", []string{"HTTP_400", "GRPC_INVALID_ARGUMENT"}},
	} {
		got, err := load(t, c.yaml, env{})
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		if f := got.Retry.RequestFaults; !reflect.DeepEqual(f, c.want) || (f == nil) != (c.want == nil) {
			t.Fatalf("%q: request_faults = %#v, want %#v", c.yaml, f, c.want)
		}
	}
}

func TestLoadWebhooks(t *testing.T) {
	t.Parallel()
	c, err := load(t, "webhooks:\n  listen: 127.0.0.1:8090\n  in_worker: true\n  max_body: 65536\n  park_for: 1h\n"+
		"  opt_out_words:\n    es: [BAJA]\n    pt: [SAIR, PARAR]\n", env{"CONNECTLY_WEBHOOK_SECRET": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	words := c.Webhooks.Words()
	sort.Strings(words)
	if c.Webhooks.Listen != "127.0.0.1:8090" || !c.Webhooks.InWorker || c.Webhooks.MaxBody != 65536 ||
		c.Webhooks.ParkFor.D() != time.Hour || !reflect.DeepEqual(words, []string{"BAJA", "PARAR", "SAIR"}) {
		t.Fatalf("webhooks %+v", c.Webhooks)
	}
	if err := c.RequireWebhookSecret(); err != nil {
		t.Fatal(err)
	}
	c, err = load(t, "", env{"HERALD_WEBHOOKS_LISTEN": ":9000"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Webhooks.Listen != ":9000" {
		t.Fatalf("listen %q", c.Webhooks.Listen)
	}
	checkConfigError(t, c.RequireWebhookSecret(), "connectly.webhook_secret_file", "CONNECTLY_WEBHOOK_SECRET")
}

func TestLoadSessionBSUIDField(t *testing.T) {
	t.Parallel()
	// Any case is accepted and normalised to connectly's spelling, which the client takes.
	for in, want := range map[string]connectly.BSUIDField{"": connectly.BSUIDInID, "ID": connectly.BSUIDInID,
		"userid": connectly.BSUIDInUserID, "userId": connectly.BSUIDInUserID} {
		c, err := config.Load("", env{"CONNECTLY_SESSION_BSUID_FIELD": in}.get)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if c.Connectly.SessionBSUIDField != want {
			t.Errorf("%q: got %q, want %q", in, c.Connectly.SessionBSUIDField, want)
		}
	}
}

func TestLoadSendCampaignName(t *testing.T) {
	t.Parallel()
	// Off unless asked for: the file, then the environment, which wins either way.
	tests := []struct {
		name string
		yaml string
		env  env
		want bool
	}{
		{"Default", "", env{}, false},
		{"File", "connectly:\n  send_campaign_name: true\n", env{}, true},
		{"EnvOn", "", env{"CONNECTLY_SEND_CAMPAIGN_NAME": "true"}, true},
		{"EnvOne", "", env{"CONNECTLY_SEND_CAMPAIGN_NAME": "1"}, true},
		{"EnvOffOverFile", "connectly:\n  send_campaign_name: true\n", env{"CONNECTLY_SEND_CAMPAIGN_NAME": "false"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.yaml, tc.env)
			if c.Connectly.SendCampaignName != tc.want {
				t.Errorf("SendCampaignName = %v, want %v", c.Connectly.SendCampaignName, tc.want)
			}
			if w := c.Connectly.Wire(); w.CampaignName != tc.want || w.BSUIDField != c.Connectly.SessionBSUIDField {
				t.Errorf("Wire() = %+v, want CampaignName %v and BSUIDField %q", w, tc.want, c.Connectly.SessionBSUIDField)
			}
		})
	}
	_, err := load(t, "", env{"CONNECTLY_SEND_CAMPAIGN_NAME": "yes please"})
	checkConfigError(t, err, "connectly.send_campaign_name", `"yes please"`, "true or false")
	_, err = load(t, "connectly:\n  send_campaign_name: sometimes\n", env{})
	if err == nil {
		t.Error("send_campaign_name: sometimes loaded")
	}
}

// A problem that comes from another error keeps it as its cause: errors.Is and errors.As see
// through the *config.Error to what the key's parser said.
func TestValidationErrorsKeepTheirCause(t *testing.T) {
	t.Parallel()
	_, holdErr := limits.ParseHoldScope("everyone")
	_, classErr := connectly.ParseClass("sometimes")
	tests := []struct {
		name, yaml, key string
		cause           error
	}{
		{"RetryAfterHolds", "retry:\n  retry_after_holds: everyone\n", "retry.retry_after_holds", holdErr},
		{"ErrorsClass", "errors:\n  HTTP_500: sometimes\n", "errors.HTTP_500", classErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.cause == nil {
				t.Fatal("the parser accepted the value the test gives it")
			}
			_, err := load(t, tc.yaml, env{})
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("err = %v (%T), want a *config.Error for %s", err, err, tc.key)
			}
			cause := errors.Unwrap(ce)
			if cause == nil {
				t.Fatalf("%v: no cause; errors.Is and errors.As cannot reach the parser's error", err)
			}
			if cause.Error() != tc.cause.Error() {
				t.Errorf("cause = %q, want %q", cause, tc.cause)
			}
			if !errors.Is(err, cause) {
				t.Errorf("errors.Is(err, its cause) = false for %v", err)
			}
		})
	}
}

func TestSenderFor(t *testing.T) {
	t.Parallel()
	one := []config.Sender{{Number: "+14151111234"}}
	two := []config.Sender{{Number: "+14151111234"}, {Number: "+14152222345"}}
	tests := []struct {
		name    string
		senders []config.Sender
		asked   string
		want    string
		several int // > 0: a *SenderRequiredError naming this many senders
	}{
		{"NoneListedNoneAsked", nil, "", "", 0},
		{"NoneListedOneAsked", nil, "+14153333456", "+14153333456", 0},
		{"OnlySender", one, "", "+14151111234", 0},
		{"AskedOverOnlySender", one, "+14153333456", "+14153333456", 0},
		{"SeveralListedOneAsked", two, "+14152222345", "+14152222345", 0},
		{"SeveralListedNoneAsked", two, "", "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.Senders = tc.senders
			got, err := c.SenderFor(tc.asked)
			if tc.several > 0 {
				var se *config.SenderRequiredError
				if !errors.As(err, &se) || se.Senders != tc.several {
					t.Fatalf("SenderFor(%q) = %q, %v; want a *SenderRequiredError for %d senders", tc.asked, got, err, tc.several)
				}
				if want := "sender: required, the config lists 2 senders"; err.Error() != want {
					t.Errorf("Error() = %q, want %q", err, want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("SenderFor(%q) = %q, %v; want %q", tc.asked, got, err, tc.want)
			}
		})
	}
}
