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
