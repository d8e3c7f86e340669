package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestReadWindowPerNumber: `window show` lists the customer's window to each business number
// they wrote to and the one recorded with no number, and says for each configured sender
// whether a session message may go from it. Business numbers are masked to their last 4
// digits, as customers are.
func TestReadWindowPerNumber(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	const numberA, numberB, numberC, customer = "+16044441234", "+16044445678", "+16044449999", "+14155552671"
	policy := servicewindow.Policy{Senders: []string{numberA, numberB, numberC}}
	tr := servicewindow.New(rdb, func() time.Time { return now })
	tr.SetPolicy(policy)
	for _, w := range []struct {
		to string
		at time.Time
	}{{numberA, now.Add(-2 * time.Hour)}, {numberB, now.Add(-30 * time.Hour)}, {"", now.Add(-time.Hour)}} {
		if _, err := tr.TouchTo(ctx, "biz", w.to, []string{customer}, w.at); err != nil {
			t.Fatal(err)
		}
	}
	// The window to B was recorded a day ago (TouchTo records no window already closed).
	day := servicewindow.New(rdb, func() time.Time { return now.Add(-29 * time.Hour) })
	day.SetPolicy(policy)
	if _, err := day.TouchTo(ctx, "biz", numberB, []string{customer}, now.Add(-30*time.Hour)); err != nil {
		t.Fatal(err)
	}

	r, err := report.ReadWindow(ctx, rdb, report.WindowQuery{Business: "biz", Customer: customer, Shown: "********2671", Policy: policy, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// The latest window, to any number or none: the one with no number, an hour ago.
	if !r.Open || r.To != "" || !r.LastInbound.Equal(now.Add(-time.Hour)) {
		t.Errorf("latest %+v, want the window with no number", r.Opening)
	}
	if len(r.Numbers) != 2 || r.Numbers[0].To != "********1234" || !r.Numbers[0].Open ||
		r.Numbers[1].To != "********5678" || r.Numbers[1].Open || !r.Numbers[1].Recorded {
		t.Errorf("numbers %+v, want A's open and B's closed, masked", r.Numbers)
	}
	if r.NoNumber == nil || !r.NoNumber.Open {
		t.Errorf("no number %+v, want the open window", r.NoNumber)
	}
	// Three senders, sender scope: each counts its own window only.
	if len(r.Senders) != 3 || !r.Senders[0].Open || r.Senders[0].To != "********1234" || r.Senders[1].Open || r.Senders[2].Open ||
		r.Senders[2].Recorded || r.Senders[0].Sender != "********1234" {
		t.Errorf("senders %+v, want only A open", r.Senders)
	}
	var out bytes.Buffer
	report.PrintWindow(&out, r, now)
	for _, want := range []string{"Window     open, closes 2026-11-25T08:00:00Z", "  to ********1234  open, closes 2026-11-25T07:00:00Z",
		"  to ********5678  closed since", "  no number  open", "From ********1234  session messages allowed until 2026-11-25T07:00:00Z (its own window)",
		"From ********9999  templates only: the customer has not written to this number"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("window show lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "6044441234") || strings.Contains(out.String(), "4155552671") {
		t.Errorf("a number in full:\n%s", out.String())
	}
	js, _ := json.Marshal(r)
	if strings.Contains(string(js), "6044441234") {
		t.Errorf("a number in full in JSON: %s", js)
	}

	// Business scope: the window with no number counts for every sender.
	policy.Scope = servicewindow.ScopeBusiness
	r, err = report.ReadWindow(ctx, rdb, report.WindowQuery{Business: "biz", Customer: customer, Shown: "x", Policy: policy, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Senders {
		if !s.Open {
			t.Errorf("business scope: %+v closed", s)
		}
	}
	if s := r.Senders[0]; s.To != "" || !s.LastInbound.Equal(now.Add(-time.Hour)) {
		t.Errorf("from A %+v, want the later window with no number", s)
	}
}

// A session message goes only while the window closes later than worker.window_margin from
// now, as the worker and message send count it: window show says until when, and inside the
// margin says templates only, where it used to say "allowed until" the close.
func TestReadWindowMargin(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	const numberA, numberB, customer = "+16044441234", "+16044445678", "+14155552671"
	policy := servicewindow.Policy{Senders: []string{numberA, numberB}}
	tr := servicewindow.New(rdb, func() time.Time { return now })
	tr.SetPolicy(policy)
	// A's window closes in 5 h; B's in 1 min.
	for to, at := range map[string]time.Time{numberA: now.Add(-19 * time.Hour), numberB: now.Add(-24*time.Hour + time.Minute)} {
		if _, err := tr.TouchTo(ctx, "biz", to, []string{customer}, at); err != nil {
			t.Fatal(err)
		}
	}
	const margin = 2 * time.Minute
	r, err := report.ReadWindow(ctx, rdb, report.WindowQuery{Business: "biz", Customer: customer, Shown: "x", Policy: policy, Margin: margin, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	a, b := r.Senders[0], r.Senders[1]
	if !a.Open || !a.Allowed || !a.AllowedUntil.Equal(now.Add(5*time.Hour-margin)) {
		t.Errorf("from A %+v, want allowed until its close less the margin", a)
	}
	if !b.Open || b.Allowed || !b.AllowedUntil.Equal(now.Add(time.Minute-margin)) {
		t.Errorf("from B %+v, want open but not allowed: within the margin", b)
	}
	var out bytes.Buffer
	report.PrintWindow(&out, r, now)
	for _, want := range []string{
		"From ********1234  session messages allowed until 2026-11-24T13:58:00Z (its own window closes 2026-11-24T14:00:00Z, less worker.window_margin 2m)",
		"From ********5678  templates only: its own window closes 2026-11-24T09:01:00Z (in 1m), too close to its close (worker.window_margin 2m)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("window show lacks %q:\n%s", want, out.String())
		}
	}
	var js struct {
		Senders []map[string]any `json:"senders"`
	}
	raw, _ := json.Marshal(r)
	if err := json.Unmarshal(raw, &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Senders) != 2 || js.Senders[0]["allowed"] != true || js.Senders[0]["allowed_until"] != "2026-11-24T13:58:00Z" ||
		js.Senders[1]["allowed"] != false || js.Senders[1]["open"] != true {
		t.Errorf("JSON senders %v, want A allowed until 13:58 and B open but not allowed", js.Senders)
	}
}
