package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/sendpolicy"
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
		w := workerConfig(loadConfig(t, y))
		if w.Limits.PairInterval >= 0 || w.KeepPlaceFor >= 0 || w.BurstWindow >= 0 || !w.Limits.AdaptiveOff {
			t.Errorf("%q: worker config %+v, want pair interval, keep place and burst window negative, adaptive off", y, w)
		}
	}
	w := workerConfig(config.Default())
	if w.Limits.PairInterval != limits.DefaultPairInterval || w.KeepPlaceFor != sendpolicy.DefaultKeepPlaceFor ||
		w.BurstWindow != sendpolicy.DefaultBurstWindow || w.Limits.AdaptiveOff {
		t.Errorf("default worker config %+v", w)
	}
}

// Send tasks' options follow the config; keeping no place adds nothing to the timeout.
func TestSendTaskOptions(t *testing.T) {
	t.Parallel()
	o := sendTaskOptions(config.Default())
	want := sendpolicy.DefaultRequestTimeout + limits.DefaultMaxWait + sendpolicy.DefaultKeepPlaceFor + 30*time.Second
	if o.MaxRetry != sendpolicy.DefaultMaxAttempts+20 || o.Timeout != want || o.Retention != sendpolicy.Retention {
		t.Errorf("default options %+v, want timeout %v", o, want)
	}
	off := sendTaskOptions(loadConfig(t, "retry: {keep_place_for: off, max_attempts: 2}\n"))
	if off.Timeout != want-sendpolicy.DefaultKeepPlaceFor || off.MaxRetry != 22 {
		t.Errorf("options with keep_place_for off: %+v", off)
	}
}

// The backlog keys, new names or old, reach the expander.
func TestBacklogConfigNames(t *testing.T) {
	t.Parallel()
	for _, y := range []string{"scheduler: {backlog: 1m, min_backlog: 10, max_backlog: 20}\n", "scheduler: {window: 1m, min_window: 10, max_window: 20}\n"} {
		e := backlogConfig(loadConfig(t, y), sendTaskOptions(config.Default()))
		if e.Backlog != time.Minute || e.MinBacklog != 10 || e.MaxBacklog != 20 {
			t.Errorf("%q: expand config %+v", y, e)
		}
	}
}
