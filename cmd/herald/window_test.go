package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

func TestWindowShow(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	env["CONNECTLY_BUSINESS_ID"] = "biz-w"
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	// The command reads the wall clock: the window is opened an hour ago by it.
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	tr := servicewindow.New(rdb, time.Now)
	if _, err := tr.Touch(ctx, "biz-w", []string{"+14155552671", "bsuid:US.13491208655302741918"}, at); err != nil {
		t.Fatal(err)
	}
	// Another business's window is not this one's.
	if _, err := tr.Touch(ctx, "biz-other", []string{"+14155550199"}, at); err != nil {
		t.Fatal(err)
	}

	t.Run("OpenJSON", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := herald(t, env, "window", "show", "--json", "+1 415-555-2671")
		var r report.Window
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("exit %d %q %q", code, out, errOut)
		}
		if !r.Open || !r.Recorded || !r.ClosesAt.Equal(at.Add(24*time.Hour)) || !r.LastInbound.Equal(at) ||
			r.ClosesIn <= 22*3600 || r.ClosesIn > 23*3600 || r.Business != "biz-w" || r.Customer != "********2671" {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("OpenText", func(t *testing.T) {
		t.Parallel()
		code, out, _ := herald(t, env, "window", "show", "+14155552671")
		if code != 0 || !strings.Contains(out, "Window     open, closes "+at.Add(24*time.Hour).UTC().Format(time.RFC3339)) ||
			!strings.Contains(out, "********2671") || strings.Contains(out, "4155552671") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		code, out, _ = herald(t, env, "window", "show", "--reveal", "+14155552671")
		if code != 0 || !strings.Contains(out, "+14155552671") {
			t.Fatalf("--reveal: exit %d:\n%s", code, out)
		}
	})
	t.Run("NationalNumberAndBSUID", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"415-555-2671", "--region", "US"}, {"bsuid:US.13491208655302741918"}} {
			code, out, errOut := herald(t, env, append([]string{"window", "show", "--json"}, args...)...)
			var r report.Window
			if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !r.Open {
				t.Fatalf("%v: exit %d %q %q", args, code, out, errOut)
			}
		}
	})
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		code, out, _ := herald(t, env, "window", "show", "+14155550199")
		if code != 0 || !strings.Contains(out, "closed: no inbound message in the last 24 h") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("BadNumber", func(t *testing.T) {
		t.Parallel()
		code, _, errOut := herald(t, env, "window", "show", "12")
		if code != exitUsage || !strings.Contains(errOut, "bsuid:BSUID") {
			t.Fatalf("exit %d %q", code, errOut)
		}
	})
}

func TestRecipientExplainShowsTheWindow(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	env["CONNECTLY_BUSINESS_ID"] = "biz-x"
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	l := ledger.New(rdb, nil)
	rcpts := []string{"+14155550101", "+14155550102"}
	if err := l.CreateRun(ctx, ledger.Run{ID: "r-window", Campaign: "c", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "r-window", From: 0, To: 2, Entries: []ledger.PlanEntry{{Recipient: rcpts[0], Row: 1}, {Recipient: rcpts[1], Row: 2}}}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-30 * time.Hour).Truncate(time.Second)
	if _, err := servicewindow.New(rdb, func() time.Time { return at.Add(time.Minute) }).Touch(ctx, "biz-x", rcpts[1:], at); err != nil {
		t.Fatal(err)
	}
	at = time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if _, err := servicewindow.New(rdb, time.Now).Touch(ctx, "biz-x", rcpts[:1], at); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := herald(t, env, "recipient", "explain", "--json", "r-window", rcpts[0])
	var x report.Explanation
	if code != 0 || json.Unmarshal([]byte(out), &x) != nil {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	if !x.Window.Open || !x.Window.ClosesAt.Equal(at.Add(24*time.Hour)) || x.Window.Customer != "********0101" {
		t.Fatalf("window %+v", x.Window)
	}
	code, out, _ = herald(t, env, "recipient", "explain", "r-window", rcpts[0])
	if code != 0 || !strings.Contains(out, "Window     open, closes "+at.Add(24*time.Hour).UTC().Format(time.RFC3339)) {
		t.Fatalf("explain: %d\n%s", code, out)
	}
	// A window that closed 6 hours ago.
	code, out, _ = herald(t, env, "recipient", "explain", "r-window", rcpts[1])
	if code != 0 || !strings.Contains(out, "Window     closed since ") {
		t.Fatalf("explain of a closed window: %d\n%s", code, out)
	}
}

// window show and recipient explain count worker.window_margin as the workers and message
// send do: a window closing within it takes no session message, where they used to say
// "session messages allowed until" its close.
func TestWindowMarginInWindowShowAndExplain(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	cfg := writeConfig(t, "senders:\n  - {number: \"+14155550100\", rate: 80}\nworker:\n  window_margin: 10m\n")
	env["HERALD_CONFIG"], env["CONNECTLY_BUSINESS_ID"] = cfg, "biz-m"
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	const near, far = "+14155550101", "+14155550102"
	if err := ledger.New(rdb, nil).CreateRun(ctx, ledger.Run{ID: "r-margin", Campaign: "c", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	// The commands read the wall clock: one window closes in 5 min, inside the margin, the
	// other in 2 h.
	tr := servicewindow.New(rdb, time.Now)
	tr.SetPolicy(servicewindow.Policy{Senders: []string{"+14155550100"}})
	for to, at := range map[string]time.Time{near: time.Now().Add(-24*time.Hour + 5*time.Minute), far: time.Now().Add(-22 * time.Hour)} {
		if _, err := tr.TouchTo(ctx, "biz-m", "+14155550100", []string{to}, at.Truncate(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"window", "show", near}, {"recipient", "explain", "r-margin", near}} {
		code, out, errOut := herald(t, env, args...)
		if code != 0 || !strings.Contains(out, "templates only: its own window closes ") ||
			!strings.Contains(out, "too close to its close (worker.window_margin 10m)") || strings.Contains(out, "session messages allowed") {
			t.Errorf("%v: %d %q\n%s", args, code, errOut, out)
		}
	}
	code, out, errOut := herald(t, env, "window", "show", "--json", far)
	var r report.Window
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("window show --json: %d %q %q", code, out, errOut)
	}
	if len(r.Senders) != 1 || !r.Senders[0].Allowed || !r.Senders[0].AllowedUntil.Equal(r.Senders[0].ClosesAt.Add(-10*time.Minute)) {
		t.Errorf("senders %+v, want one allowed until its close less 10m", r.Senders)
	}
	code, out, errOut = herald(t, env, "recipient", "explain", "--json", "r-margin", near)
	var x report.Explanation
	if code != 0 || json.Unmarshal([]byte(out), &x) != nil {
		t.Fatalf("recipient explain --json: %d %q %q", code, out, errOut)
	}
	if len(x.Window.Senders) != 1 || !x.Window.Senders[0].Open || x.Window.Senders[0].Allowed {
		t.Errorf("explain senders %+v, want one open but not allowed", x.Window.Senders)
	}
}

// window show and recipient explain say when a campaign's or follow-up's session message
// stops going as the workers count it: the window's close less worker.window_margin and the
// longest the send waits after its window check (retry.keep_place_for + 3 × max_pace_wait,
// 23s here). A window closing in 2m12s still takes `message send`'s (margin 2m), not a
// campaign's.
func TestWindowShowCountsTheWorkersCutoff(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	cfg := writeConfig(t, "senders:\n  - {number: \"+14155550100\", rate: 80}\nworker:\n  window_margin: 2m\n"+
		"retry:\n  keep_place_for: 5s\n  max_pace_wait: 6s\n")
	env["HERALD_CONFIG"], env["CONNECTLY_BUSINESS_ID"] = cfg, "biz-c"
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	const near = "+14155550111"
	if err := ledger.New(rdb, nil).CreateRun(ctx, ledger.Run{ID: "r-cutoff", Campaign: "c", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	tr := servicewindow.New(rdb, time.Now)
	tr.SetPolicy(servicewindow.Policy{Senders: []string{"+14155550100"}})
	if _, err := tr.TouchTo(ctx, "biz-c", "+14155550100", []string{near}, time.Now().Add(-24*time.Hour+2*time.Minute+12*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"window", "show", near}, {"recipient", "explain", "r-cutoff", near}} {
		code, out, errOut := herald(t, env, args...)
		if code != 0 || !strings.Contains(out, "session messages from message send only, until ") ||
			!strings.Contains(out, "campaigns and follow-ups send their fallback template or skip window_closed since ") ||
			!strings.Contains(out, "campaigns and follow-ups 23s more") {
			t.Errorf("%v: %d %q\n%s", args, code, errOut, out)
		}
	}
	for _, args := range [][]string{{"window", "show", "--json", near}, {"recipient", "explain", "--json", "r-cutoff", near}} {
		code, out, errOut := herald(t, env, args...)
		var w report.Window
		if args[0] == "window" {
			err := json.Unmarshal([]byte(out), &w)
			if code != 0 || err != nil {
				t.Fatalf("%v: %d %q %v", args, code, errOut, err)
			}
		} else {
			var x report.Explanation
			err := json.Unmarshal([]byte(out), &x)
			if code != 0 || err != nil {
				t.Fatalf("%v: %d %q %v", args, code, errOut, err)
			}
			w = x.Window
		}
		if len(w.Senders) != 1 {
			t.Fatalf("%v: senders %+v", args, w.Senders)
		}
		s := w.Senders[0]
		if !s.Allowed || s.CampaignAllowed || !s.AllowedUntil.Equal(s.ClosesAt.Add(-2*time.Minute)) ||
			!s.CampaignAllowedUntil.Equal(s.ClosesAt.Add(-2*time.Minute-23*time.Second)) {
			t.Errorf("%v: sender %+v, want message send allowed until the close less 2m, campaigns not, until 23s before that", args, s)
		}
	}
}

// Windows are recorded per business: with no business id configured, window show refuses
// (naming connectly.business_id and its env), and recipient explain tells the rest of the
// story with the window unknown. Before, both said "closed: no inbound message in the last
// 24 h" of a customer whose window was open.
func TestWindowNeedsABusiness(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t) // HERALD_REDIS_URL alone: no CONNECTLY_BUSINESS_ID
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	const customer = "+14155550101"
	l := ledger.New(rdb, nil)
	if err := l.CreateRun(ctx, ledger.Run{ID: "r-nobiz", Campaign: "c", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "r-nobiz", From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: customer, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	// The customer wrote to the business an hour ago.
	if _, err := servicewindow.New(rdb, time.Now).Touch(ctx, "biz-y", []string{customer}, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"window", "show", customer}, {"window", "show", "--json", customer}} {
		code, out, errOut := herald(t, env, args...)
		if code != exitError || strings.Contains(out+errOut, "closed") || !strings.Contains(errOut, "connectly.business_id") ||
			!strings.Contains(errOut, "CONNECTLY_BUSINESS_ID") {
			t.Errorf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}

	code, out, errOut := herald(t, env, "recipient", "explain", "r-nobiz", customer)
	if code != 0 || strings.Contains(out, "closed") || !strings.Contains(out, "Window     unknown: service windows are recorded per business") ||
		!strings.Contains(out, "CONNECTLY_BUSINESS_ID") || !strings.Contains(out, "Run        r-nobiz") {
		t.Fatalf("explain: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = herald(t, env, "recipient", "explain", "--json", "r-nobiz", customer)
	var x map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &x) != nil {
		t.Fatalf("explain --json: exit %d\n%s\n%s", code, out, errOut)
	}
	if w, ok := x["window"]; !ok || w != nil || !strings.Contains(asString(x["window_unknown"]), "connectly.business_id") || x["run"] != "r-nobiz" {
		t.Fatalf("explain --json: window %v, window_unknown %v, run %v", x["window"], x["window_unknown"], x["run"])
	}

	// With the business named, the same customer's window is open.
	env["CONNECTLY_BUSINESS_ID"] = "biz-y"
	if code, out, _ := herald(t, env, "window", "show", customer); code != 0 || !strings.Contains(out, "Window     open") {
		t.Fatalf("with the business: exit %d\n%s", code, out)
	}
}

// asString is v when it is a string, else "".
func asString(v any) string {
	s, _ := v.(string)
	return s
}
