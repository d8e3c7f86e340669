package serve_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/serve"
)

func loadConfig(t *testing.T, yaml string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A setting turned off in the file, in its new spelling or its old one, reaches the worker as
// the worker's off (negative); the defaults reach it as the defaults.
func TestWorkerConfigOff(t *testing.T) {
	t.Parallel()
	for _, y := range []string{
		"limits: {pair_interval: off, adaptive: off}\nretry: {keep_place_for: off}\nstop_run: {burst_window: off}\n",
		"limits: {pair_interval: 0s, adaptive: {off: true}}\nretry: {keep_place_for: 0s}\nstop_run: {burst_window: 0}\n",
	} {
		w := serve.WorkerConfig(loadConfig(t, y))
		if w.Limits.PairInterval >= 0 || w.KeepPlaceFor >= 0 || w.BurstSample >= 0 || w.Limits.Adapts() {
			t.Errorf("%q: worker config %+v, want pair interval, keep place and burst sample negative, adaptive off", y, w)
		}
	}
	w := serve.WorkerConfig(config.Default())
	if w.Limits.PairInterval != limits.DefaultPairInterval || w.KeepPlaceFor != sendpolicy.DefaultKeepPlaceFor ||
		w.BurstSample != sendpolicy.DefaultBurstSample || !w.Limits.Adapts() {
		t.Errorf("default worker config %+v", w)
	}
	if w.ResendTask != serve.SendTaskOptions(config.Default()) {
		t.Errorf("resend task options %+v, want the send task options", w.ResendTask)
	}
}

// Send tasks' options follow the config; keeping no place adds nothing to the timeout.
// Expanded runs' tasks are not retained.
func TestSendTaskOptions(t *testing.T) {
	t.Parallel()
	o := serve.SendTaskOptions(config.Default())
	// Twice one send: a session message refused for a closed window sends its fallback too.
	want := 2*(sendpolicy.DefaultRequestTimeout+limits.DefaultMaxWait+sendpolicy.DefaultKeepPlaceFor) + 30*time.Second
	if o.MaxRetry != sendpolicy.DefaultMaxAttempts+20 || o.Timeout != want || o.Retention != sendpolicy.Retention {
		t.Errorf("default options %+v, want timeout %v", o, want)
	}
	off := serve.SendTaskOptions(loadConfig(t, "retry: {keep_place_for: off, max_attempts: 2}\n"))
	if off.Timeout != want-2*sendpolicy.DefaultKeepPlaceFor || off.MaxRetry != 22 {
		t.Errorf("options with keep_place_for off: %+v", off)
	}
	if e := serve.ExpandTaskOptions(config.Default()); e.Retention != 0 || e.Timeout != o.Timeout || e.MaxRetry != o.MaxRetry {
		t.Errorf("expansion's task options %+v, want %+v without retention", e, o)
	}
}

// The backlog keys, new names or old, reach the expander.
func TestBacklogConfigNames(t *testing.T) {
	t.Parallel()
	for _, y := range []string{"scheduler: {backlog: 1m, min_backlog: 10, max_backlog: 20}\n", "scheduler: {window: 1m, min_window: 10, max_window: 20}\n"} {
		e := serve.BacklogConfig(loadConfig(t, y), serve.SendTaskOptions(config.Default()))
		if e.Backlog != time.Minute || e.MinBacklog != 10 || e.MaxBacklog != 20 {
			t.Errorf("%q: expand config %+v", y, e)
		}
	}
}

// A run's sender is the campaign's, else the config's only one, else the business's (""); a
// campaign without one under a config of several is an error.
func TestSenderOf(t *testing.T) {
	t.Parallel()
	one := config.Config{Senders: []config.Sender{{Number: "+14155550101"}}}
	two := config.Config{Senders: []config.Sender{{Number: "+14155550101"}, {Number: "+14155550102"}}}
	for _, tc := range []struct {
		def     string
		c       config.Config
		want    string
		wantErr bool
	}{
		{"+14155550100", two, "+14155550100", false},
		{"", config.Config{}, "", false},
		{"", one, "+14155550101", false},
		{"", two, "", true},
	} {
		got, err := serve.SenderOf(&campaigns.Definition{Sender: tc.def, Path: "c.yaml"}, tc.c)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("sender %q, %d configured: got %q, %v; want %q (error %v)", tc.def, len(tc.c.Senders), got, err, tc.want, tc.wantErr)
		}
	}
}

// The receiver knows the business's own numbers, so that an echo of an outbound message is
// not taken for a customer writing.
func TestReceiverConfigOwnNumbers(t *testing.T) {
	t.Parallel()
	c := loadConfig(t, "senders:\n  - number: \"+14155550100\"\n  - number: \"+14155550101\"\n    rate: 20\n")
	rc, err := serve.ReceiverConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.OwnNumbers) != 2 || rc.OwnNumbers[0] != "+14155550100" || rc.OwnNumbers[1] != "+14155550101" {
		t.Fatalf("OwnNumbers = %v, want the two senders", rc.OwnNumbers)
	}
}

// suppression.campaign_sessions_are_marketing reaches the worker: false lets campaign session
// messages through to a person suppressed for marketing only; unset and true leave them
// counting as marketing (the worker's default).
func TestWorkerConfigSuppression(t *testing.T) {
	t.Parallel()
	for y, want := range map[string]bool{
		"": false, "suppression: {campaign_sessions_are_marketing: true}\n": false,
		"suppression: {campaign_sessions_are_marketing: false}\n": true,
	} {
		if got := serve.WorkerConfig(loadConfig(t, y)).CampaignSessionsNotMarketing; got != want {
			t.Errorf("%q: CampaignSessionsNotMarketing = %v, want %v", y, got, want)
		}
	}
}
