package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/servicewindow"
)

// worker.window_margin and the longest a session send waits after its window check
// (retry.keep_place_for + 3 × retry.max_pace_wait) must fit in servicewindow.MaxAhead together:
// with more, an on_reply session follow-up at its longest delay would find its window closing
// every time. The error names the key, at its place, and the largest margin that fits.
func TestWindowMarginFitsTheFollowupHour(t *testing.T) {
	t.Parallel()
	retry := func(keep, pace string) string {
		return "retry:\n  keep_place_for: " + keep + "\n  max_pace_wait: " + pace + "\n"
	}
	// keep_place_for at its cap (5m), max_pace_wait 1s: 5m3s of wait.
	largest := servicewindow.MaxAhead - 5*time.Minute - 3*time.Second
	c := mustLoad(t, retry("5m", "1s")+"worker:\n  window_margin: "+largest.String()+"\n", env{})
	if c.Worker.WindowMargin.D() != largest {
		t.Fatalf("window_margin %v, want %v", c.Worker.WindowMargin.D(), largest)
	}
	_, err := load(t, retry("5m", "1s")+"worker:\n  window_margin: "+(largest+time.Second).String()+"\n", env{})
	checkConfigError(t, err, "worker.window_margin", "49m58s: at most 49m57s", "retry.keep_place_for 5m0s + 3 × retry.max_pace_wait 1s",
		"fit in 55m0s", "longest delay (23h after the reply)")
	if !strings.Contains(err.Error(), "herald.yaml:5:18: worker.window_margin: ") {
		t.Errorf("error %q, want it at window_margin's value (5:18)", err)
	}
	// keep_place_for off waits for no place.
	mustLoad(t, retry("off", "1s")+"worker:\n  window_margin: "+(servicewindow.MaxAhead-3*time.Second).String()+"\n", env{})
	// A pace wait no margin fits with is named.
	_, err = load(t, retry("20s", "20m")+"worker:\n  window_margin: 0s\n", env{})
	checkConfigError(t, err, "worker.window_margin", "0s: no margin fits", "lower retry.max_pace_wait or retry.keep_place_for")
	// The default margin is far inside.
	mustLoad(t, retry("5m", "1s"), env{})
}
