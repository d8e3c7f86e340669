package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// run show's report holds what customers and operators wrote: the labels of the buttons
// customers tapped (a webhook's text, which may carry anything) and a run's pause reason. Unless
// revealed, its phone numbers are masked in the report itself (so in --json too), and so is the
// run's sender; the text escapes control characters, which would otherwise colour the screen,
// break the BUTTON table or start a line that looks like Herald's.
func TestShowRunMasksAndEscapesCustomerText(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	now := time.Now()
	l := ledger.New(rdb, func() time.Time { return now })
	const run, sender = "promo-1", "+14155550100"
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "promo", Delivery: ledger.AtMostOnce, Buckets: 1, Sender: sender, Created: now}); err != nil {
		t.Fatal(err)
	}
	labels := []string{"Yes, show me +14155466010", "red\x1b[31mX\n\tforged 99"}
	for i, b := range labels {
		if _, err := l.CountReply(ctx, ledger.Reply{Run: run, ID: "+1555000000" + string(rune('1'+i)), Button: b}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Pause(ctx, run, "paused by \x1b[2K\rroot: customer +1 415 555 2671 complained"); err != nil {
		t.Fatal(err)
	}
	// The sender was slowed a second ago: run show names it.
	c := config.Default()
	c.Connectly.BusinessID = "biz"
	c.Senders = []config.Sender{{Number: sender, Rate: 40}}
	rdb.HSet(ctx, rkeys.SenderBackoff("biz", sender), "f", "0.5", "at", now.Add(time.Minute).UnixMilli(),
		"dec", now.Add(-time.Second).UnixMilli(), "s", "0.25")
	show := func(reveal bool) (report.Run, string, string) {
		t.Helper()
		rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: now, Limits: &c, Reveal: reveal,
			RuleIDs: func(context.Context, ledger.Run) []string { return []string{"interested"} }})
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		report.PrintRun(&text, rep)
		report.PrintFunnel(&text, rep.Funnel)
		return rep, string(js), text.String()
	}

	rep, js, text := show(false)
	for _, full := range []string{"4155466010", "415 555 2671", "4155550100"} {
		if strings.Contains(js, full) || strings.Contains(text, full) {
			t.Errorf("a number shows in full (%s):\n%s\n%s", full, js, text)
		}
	}
	if rep.Delivery == nil || rep.Delivery.ButtonReplies["Yes, show me ********6010"] != 1 || rep.Funnel == nil ||
		rep.Funnel.Taps["Yes, show me ********6010"] != 1 {
		t.Errorf("labels not masked in the report: %+v %+v", rep.Delivery, rep.Funnel)
	}
	if strings.ContainsAny(text, "\x1b\r") {
		t.Errorf("control characters reach the terminal:\n%q", text)
	}
	for _, want := range []string{
		"Yes, show me ********6010  1\n", `red\x1b[31mX\n\tforged 99  1` + "\n", // the BUTTON table, one line a label
		`tapped "Yes, show me ********6010"`, `tapped "red\x1b[31mX\n\tforged 99"`,
		`(paused by \x1b[2K\rroot: customer ***********2671 complained)`,
		"Sender    ********0100 slowed to 20.0/s of 40/s",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	// run ls --json masks the pause reason too.
	runs, err := report.RecentRuns(ctx, l, "", 5, now)
	if err != nil || len(runs) != 1 || strings.Contains(runs[0].PauseReason, "2671 complained") == false || strings.Contains(runs[0].PauseReason, "415 555") {
		t.Errorf("run ls: %+v, %v", runs, err)
	}

	// Revealed: the numbers in full, the control characters still escaped in the text.
	_, js, text = show(true)
	for _, full := range []string{"+14155466010", "+1 415 555 2671", sender} {
		if !strings.Contains(js, full) || !strings.Contains(text, full) {
			t.Errorf("revealed, %s is not shown in full:\n%s\n%s", full, js, text)
		}
	}
	if strings.ContainsAny(text, "\x1b\r") || !strings.Contains(text, `red\x1b[31mX\n\tforged 99  1`) {
		t.Errorf("revealed, control characters reach the terminal:\n%q", text)
	}
}
