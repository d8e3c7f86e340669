package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// TestExplainSaysWhatWasSentAndWhy: a session run's recipients, each delivered, read as what
// Connectly accepted for them: the session message; the fallback template because the window
// was closed at send time; the fallback because Connectly refused the session message (its
// code); and a fallback whose delivery then failed still reads as a fallback.
func TestExplainSaysWhatWasSentAndWhy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := defaultTable(t)
	const refusal = "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"
	tos := []string{"+447700900201", "+447700900202", "+447700900203", "+447700900204"}
	b := newExplainBench(t, time.Date(2026, 12, 6, 21, 30, 0, 0, time.UTC), tos...)
	b.settle(t, tos[0], ledger.Outcome{State: ledger.Accepted, Code: ledger.SentSession, MessageID: "m0"})
	b.settle(t, tos[1], ledger.Outcome{State: ledger.Accepted, Code: ledger.SentFallback, MessageID: "m1"})
	b.settle(t, tos[2], ledger.Outcome{State: ledger.Accepted, Code: ledger.SentFallback, MessageID: "m2", WindowRefused: refusal})
	b.settle(t, tos[3], ledger.Outcome{State: ledger.Accepted, Code: ledger.SentFallback, MessageID: "m3", WindowRefused: refusal})
	for i, to := range tos {
		states := []ledger.State{ledger.Sent, ledger.Delivered}
		if i == 3 {
			states = []ledger.State{ledger.Sent, ledger.Failed}
		}
		for _, st := range states {
			ev := ledger.DeliveryEvent{Address: ledger.AddressIn("R1", to, 1), State: st, MessageID: "m" + string(rune('0'+i))}
			if st == ledger.Failed {
				ev.Code, ev.Class = "131026", "permanent"
			}
			if _, _, err := b.l.ApplyDelivery(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		sentAs, why, refused, line string
	}{
		{ledger.SentSession, "", "", "Sent as    the session message"},
		{ledger.SentFallback, report.FallbackWindowClosed, "", "Sent as    the fallback template (the window was closed at send time"},
		{ledger.SentFallback, report.FallbackWindowRefused, refusal, "Sent as    the fallback template (the session message was refused by Connectly as outside the window: " + refusal + ")"},
		{ledger.SentFallback, report.FallbackWindowRefused, refusal, "Sent as    the fallback template (the session message was refused"},
	}
	for i, tc := range cases {
		x, err := report.Explain(ctx, b.l, b.rdb, report.ExplainParams{Run: "R1", Recipient: tos[i], Shown: tos[i], Table: table, Now: b.now})
		if err != nil {
			t.Fatal(err)
		}
		if x.SentAs != tc.sentAs || x.FallbackWhy != tc.why || x.RefusedCode != tc.refused {
			t.Errorf("%s (%s): sent as %q, why %q, refused %q; want %q, %q, %q", tos[i], x.State, x.SentAs, x.FallbackWhy, x.RefusedCode,
				tc.sentAs, tc.why, tc.refused)
		}
		var out bytes.Buffer
		report.PrintExplanation(&out, x, b.now)
		if !strings.Contains(out.String(), tc.line) {
			t.Errorf("%s printed:\n%s\nwant %q", tos[i], out.String(), tc.line)
		}
	}
}

// The codes explain prints come from Connectly's answers: a control character in one is
// escaped, so it cannot rewrite the operator's screen.
func TestExplainPrintsCodesEscaped(t *testing.T) {
	x := report.Explanation{Run: "r1", Recipient: "********2671", InLedger: true, State: "accepted", Attempts: 1,
		SentAs: ledger.SentFallback, FallbackWhy: report.FallbackWindowRefused, RefusedCode: "X\x1b[2J\nherald: ok", Code: "Y\x1b[H"}
	var b strings.Builder
	report.PrintExplanation(&b, x, time.Now())
	if strings.ContainsRune(b.String(), '\x1b') || strings.Contains(b.String(), "\nherald: ok") {
		t.Errorf("explain printed a code raw:\n%q", b.String())
	}
}

// TestExplainAcceptedOutcomeHasNoClass: an accept's code says how the message went (session,
// fallback, in_window), not why a send failed: its history line has no class, in the text and
// in JSON, whether finish wrote it (a story of more than one clean accept) or delivery.lua (the
// accept before a failed delivery, whose failure keeps its class). The refusal and the retry
// before an accept keep theirs.
func TestExplainAcceptedOutcomeHasNoClass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := defaultTable(t)
	const refusal = "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"
	tos := []string{"+447700900211", "+447700900212", "+447700900213"}
	b := newExplainBench(t, time.Date(2026, 12, 6, 21, 30, 0, 0, time.UTC), tos...)
	b.settle(t, tos[0], ledger.Outcome{State: ledger.Accepted, Code: ledger.SentFallback, MessageID: "m0", WindowRefused: refusal})
	b.settle(t, tos[1], ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRetry, Code: "HTTP_503"})
	b.settle(t, tos[1], ledger.Outcome{State: ledger.Accepted, Code: ledger.SentInWindow, MessageID: "m1"})
	b.settle(t, tos[2], ledger.Outcome{State: ledger.Accepted, Code: ledger.SentSession, MessageID: "m2"})
	ev := ledger.DeliveryEvent{Address: ledger.AddressIn("R1", tos[2], 1), State: ledger.Failed, MessageID: "m2", Code: "131026", Class: "permanent"}
	if _, _, err := b.l.ApplyDelivery(ctx, ev); err != nil {
		t.Fatal(err)
	}
	transient, _ := report.ExplainCode(table, "HTTP_503")
	permanent, _ := report.ExplainCode(table, refusal)
	for i, want := range [][]string{
		{ledger.EventWindowRefused + " " + refusal + " " + permanent, "accepted fallback "},
		{"retry HTTP_503 " + transient, "accepted in_window "},
		{"accepted session "},
	} {
		x, err := report.Explain(ctx, b.l, b.rdb, report.ExplainParams{Run: "R1", Recipient: tos[i], Shown: tos[i], Table: table, Now: b.now})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range x.History {
			got = append(got, h.Outcome+" "+h.Code+" "+h.Class)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s history:\n%s\nwant:\n%s", tos[i], strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, ev := range x.Timeline {
			if ev.Outcome == string(ledger.Accepted) && ev.Class != "" {
				t.Errorf("%s timeline: accepted %s with class %q", tos[i], ev.Code, ev.Class)
			}
		}
		if last := x.Timeline[len(x.Timeline)-1]; i == 2 && (last.Kind != report.EventStatus || last.Class != permanent) {
			t.Errorf("%s timeline ends %+v, want the failed delivery with its class %q", tos[i], last, permanent)
		}
		var out bytes.Buffer
		report.PrintExplanation(&out, x, b.now)
		if s := out.String(); regexp.MustCompile(`accepted (session|fallback|in_window) \(`).MatchString(s) {
			t.Errorf("%s printed:\n%s\nwant no class after an accept", tos[i], s)
		}
		j, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`"code":"(session|fallback|in_window)","class"`).Match(j) {
			t.Errorf("%s JSON %s: an accepted code with a class", tos[i], j)
		}
	}
}
