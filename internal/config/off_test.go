package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/config"
)

// Every key that can be turned off takes the word off, and its older spellings keep loading
// with the same meaning.
func TestLoadOffSpellings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yamls []string // the new spelling first, then the old ones
		isOff func(config.Config) bool
		// defaultOff: the default is already off (no messaging tier), so loading proves only
		// that every spelling is taken.
		defaultOff bool
	}{
		{"PairInterval", []string{"limits:\n  pair_interval: off\n", "limits:\n  pair_interval: 0\n", "limits:\n  pair_interval: 0s\n", "limits: {pair_interval: 0s}\n"},
			func(c config.Config) bool { return c.Limits.PairInterval.IsOff() && c.Limits.PairInterval.D() < 0 }, false},
		{"KeepPlaceFor", []string{"retry:\n  keep_place_for: off\n", "retry:\n  keep_place_for: 0s\n"},
			func(c config.Config) bool { return c.Retry.KeepPlaceFor.IsOff() && c.Retry.KeepPlaceFor.D() < 0 }, false},
		{"LateFallbackFor", []string{"windows:\n  late_fallback_for: off\n", "windows:\n  late_fallback_for: 0s\n"},
			func(c config.Config) bool {
				return c.Windows.LateFallbackFor.IsOff() && c.Windows.LateFallbackFor.D() < 0
			}, false},
		{"BurstWindow", []string{"stop_run:\n  burst_window: off\n", "stop_run:\n  burst_window: 0\n"},
			func(c config.Config) bool { return c.StopRun.BurstSample.IsOff() && c.StopRun.BurstSample < 0 }, false},
		{"MessagingTier", []string{"limits:\n  messaging_tier: off\n", "limits:\n  messaging_tier: 0\n", "limits:\n  messaging_tier: unlimited\n", "limits:\n  messaging_tier: Unlimited\n"},
			func(c config.Config) bool { return c.Limits.MessagingTier == 0 }, true},
		{"ExpandConcurrency", []string{"scheduler:\n  expand_concurrency: off\n", "scheduler:\n  expand_concurrency: 0\n"},
			func(c config.Config) bool { return c.Scheduler.ExpandConcurrency == 0 }, false},
		{"Adaptive", []string{"limits:\n  adaptive: off\n", "limits:\n  adaptive: OFF\n", "limits:\n  adaptive:\n    off: true\n", "limits:\n  adaptive:\n    off: true\n    min_factor: 0\n"},
			func(c config.Config) bool { return c.Limits.Adaptive.Off }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.isOff(config.Default()) != tc.defaultOff {
				t.Fatal("the default's off-ness is not what the test expects")
			}
			for _, y := range tc.yamls {
				if c := mustLoad(t, y, env{}); !tc.isOff(c) {
					t.Errorf("%q did not turn it off: %+v", y, c)
				}
			}
		})
	}
}

// A key that can be turned off still takes a value, and an empty adaptive section keeps the
// defaults.
func TestLoadOffKeysTakeValues(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "limits:\n  pair_interval: 3s\n  messaging_tier: 250\n  adaptive:\nretry:\n  keep_place_for: 5s\n"+
		"stop_run:\n  burst_window: 20\nscheduler:\n  expand_concurrency: 2\n", env{})
	if c.Limits.PairInterval.D() != 3*time.Second || c.Limits.PairInterval.IsOff() || c.Limits.PairInterval.String() != "3s" {
		t.Errorf("pair_interval = %v", c.Limits.PairInterval)
	}
	if c.Retry.KeepPlaceFor.D() != 5*time.Second || c.StopRun.BurstSample != 20 || c.Scheduler.ExpandConcurrency != 2 ||
		c.Limits.MessagingTier != 250 {
		t.Errorf("config = %+v", c)
	}
	if !reflect.DeepEqual(c.Limits.Adaptive, config.Default().Limits.Adaptive) {
		t.Errorf("adaptive = %+v, want the defaults", c.Limits.Adaptive)
	}
	if s := mustLoad(t, "limits:\n  pair_interval: off\n", env{}).Limits.PairInterval.String(); s != "off" {
		t.Errorf("String() of off = %q", s)
	}
}

// A value a key cannot take names the key.
func TestLoadBadOffValuesNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, key string
		subs            []string
	}{
		{"PairIntervalWord", "limits:\n  pair_interval: never\n", "limits.pair_interval", []string{"herald.yaml:2:", `"never"`, "off"}},
		{"PairIntervalNegative", "limits:\n  pair_interval: -6s\n", "limits.pair_interval", []string{`"-6s"`, "off"}},
		{"PairIntervalTooLong", "limits:\n  pair_interval: 2h\n", "limits.pair_interval", []string{"off or up to 1h"}},
		{"KeepPlaceForWord", "retry:\n  keep_place_for: no\n", "retry.keep_place_for", []string{`"no"`, "off"}},
		{"KeepPlaceForTooLong", "retry:\n  keep_place_for: 6m\n", "retry.keep_place_for", []string{"up to 5m"}},
		{"BurstWindowNegative", "stop_run:\n  burst_window: -1\n", "stop_run.burst_window", []string{`"-1"`, "off"}},
		{"BurstWindowTooLarge", "stop_run:\n  burst_window: 20000\n", "stop_run.burst_window", []string{"off or 1 to 10000"}},
		{"TierWord", "limits:\n  messaging_tier: lots\n", "limits.messaging_tier", []string{"herald.yaml:2:", `"lots"`, "off"}},
		{"ExpandConcurrencyWord", "scheduler:\n  expand_concurrency: none\n", "scheduler.expand_concurrency", []string{`"none"`, "off"}},
		{"ExpandConcurrencyTooMany", "scheduler:\n  expand_concurrency: 101\n", "scheduler.expand_concurrency", []string{"101", "off"}},
		{"AdaptiveWord", "limits:\n  adaptive: disabled\n", "limits.adaptive", []string{`"disabled"`, "off"}},
		{"DurationInList", "limits:\n  frequency_caps:\n    marketing: {max: 1, window: weekly}\n", "limits.frequency_caps.marketing.window", []string{`"weekly"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tc.yaml, env{})
			checkConfigError(t, err, tc.key, tc.subs...)
		})
	}
}

// The backlog keys were named window, min_window and max_window: either name loads the same
// setting, and a file giving one setting both names is refused with both.
func TestLoadSchedulerBacklogNames(t *testing.T) {
	t.Parallel()
	newer := mustLoad(t, "scheduler:\n  backlog: 90s\n  min_backlog: 50\n  max_backlog: 100\n  poll: 1s\n", env{})
	older := mustLoad(t, "scheduler:\n  window: 90s\n  min_window: 50\n  max_window: 100\n  poll: 1s\n", env{})
	want := config.Scheduler{Poll: config.Duration(time.Second), Backlog: config.Duration(90 * time.Second), MinBacklog: 50,
		MaxBacklog: 100, ExpandConcurrency: config.Default().Scheduler.ExpandConcurrency}
	if newer.Scheduler != want || older.Scheduler != want {
		t.Errorf("scheduler = %+v (new names), %+v (old names), want %+v", newer.Scheduler, older.Scheduler, want)
	}
	// A setting left out keeps its default, whichever name the others use.
	if c := mustLoad(t, "scheduler:\n  max_window: 8000\n", env{}); c.Scheduler.MaxBacklog != 8000 ||
		c.Scheduler.Backlog != config.Default().Scheduler.Backlog || c.Scheduler.MinBacklog != config.Default().Scheduler.MinBacklog {
		t.Errorf("scheduler = %+v", c.Scheduler)
	}
	for _, tc := range []struct{ yaml, key, old string }{
		{"scheduler:\n  window: 1m\n  backlog: 2m\n", "scheduler.backlog", "scheduler.window"},
		{"scheduler:\n  min_backlog: 10\n  min_window: 10\n", "scheduler.min_backlog", "scheduler.min_window"},
		{"scheduler:\n  max_backlog: 10\n  max_window: 20\n", "scheduler.max_backlog", "scheduler.max_window"},
	} {
		_, err := load(t, tc.yaml, env{})
		checkConfigError(t, err, tc.key, tc.old)
	}
	// Validation speaks of the new names.
	_, err := load(t, "scheduler:\n  min_window: 10\n  max_window: 5\n", env{})
	checkConfigError(t, err, "scheduler.max_backlog", "herald.yaml:3:15: ", "5: must be at least scheduler.min_backlog (10) (written as scheduler.max_window, its old name)")
	_, err = load(t, "scheduler:\n  backlog: 10ms\n", env{})
	checkConfigError(t, err, "scheduler.backlog", "at least 1s")
	_, err = load(t, "scheduler:\n  windows: 1m\n", env{})
	if err == nil || !strings.Contains(err.Error(), "windows") {
		t.Errorf("an unknown scheduler key: %v", err)
	}
}

// A file that does not decode keeps yaml's error as its cause.
func TestLoadDecodeErrorWrapsItsCause(t *testing.T) {
	t.Parallel()
	_, err := load(t, "worker:\n  concurency: 5\n", env{})
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want it to wrap *yaml.TypeError", err, err)
	}
	if !strings.HasSuffix(err.Error(), `herald.yaml:2:3: worker.concurency: unknown key (did you mean "concurrency"?)`) || strings.Contains(err.Error(), "yaml: ") {
		t.Errorf("err = %q, want the file, line, column and key", err)
	}
}
