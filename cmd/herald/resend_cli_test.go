package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// TestCampaignSendKeepsTheResendPolicy starts a run from a campaign file with
// unknown.resend_after: the run records the quiet period, and run show reports it.
func TestCampaignSendKeepsTheResendPolicy(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	dir := t.TempDir()
	src := filepath.Join("..", "..", "configs", "campaigns")
	csv, err := os.ReadFile(filepath.Join(src, "welcome.csv"))
	if err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile(filepath.Join(src, "welcome.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	yml = append(yml, "unknown:\n  resend_after: 30m\n"...)
	if err := os.WriteFile(filepath.Join(dir, "welcome.csv"), csv, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "welcome.yaml"), yml, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := herald(t, env, "campaign", "send", "--json", filepath.Join(dir, "welcome.yaml"))
	if code != 0 {
		t.Fatalf("campaign send exited %d: %s", code, errOut)
	}
	var started struct {
		Run string `json:"run"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatal(err, out)
	}
	code, out, errOut = herald(t, env, "run", "show", "--json", started.Run)
	var rep report.Run
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("run show: %d %s %s", code, out, errOut)
	}
	if rep.ResendAfter != "30m0s" || rep.ResentUnknown != 0 {
		t.Fatalf("run show: resend_after %q, resent_unknown %d; want 30m0s, 0", rep.ResendAfter, rep.ResentUnknown)
	}
}

// TestRunShowAndExplainAfterAResend tells a recipient's story through the ledger (unknown,
// resent after the quiet period, accepted) and reads it back with run show and recipient
// explain.
func TestRunShowAndExplainAfterAResend(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC).UnixMilli())
	l := ledger.New(rdb, func() time.Time { return time.UnixMilli(now.Load()) })
	const runID, rcpt = "r-resend", "+14155550101"
	if err := l.CreateRun(ctx, ledger.Run{ID: runID, Campaign: "c", Buckets: 1, Delivery: ledger.AtMostOnce, ResendAfter: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: runID, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: rcpt, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.FinishExpansion(ctx, runID, 1); err != nil {
		t.Fatal(err)
	}
	settle := func(o ledger.Outcome) {
		t.Helper()
		c, err := l.Claim(ctx, ledger.Address{Run: runID, Bucket: 0, Recipient: rcpt}, ledger.AtMostOnce)
		if err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("Claim = %+v, %v", c, err)
		}
		o.Attempt = c.Attempts
		if r, err := l.Finish(ctx, ledger.Address{Run: runID, Bucket: 0, Recipient: rcpt}, o); err != nil || !r.Applied {
			t.Fatalf("Finish = %+v, %v", r, err)
		}
	}
	settle(ledger.Outcome{State: ledger.Unknown, Code: "HTTP_500", Payload: []byte(`{"run":"r-resend"}`)})

	code, out, _ := herald(t, env, "run", "show", "r-resend")
	if code != 0 || !strings.Contains(out, "resent once after 30m0s with no delivery event 0, waiting for the quiet period 1") {
		t.Fatalf("run show while waiting:\n%s", out)
	}
	now.Add((30 * time.Minute).Milliseconds())
	members, _, err := l.LeaseUnknown(ctx, runID, 10, time.Minute)
	if err != nil || len(members) != 1 {
		t.Fatalf("LeaseUnknown = %v, %v", members, err)
	}
	if v, _, err := l.ReleaseForResend(ctx, runID, members[0]); err != nil || v != ledger.ResendEnqueue {
		t.Fatalf("ReleaseForResend = %s, %v", v, err)
	}
	if err := l.ResendEnqueued(ctx, runID, members[0]); err != nil {
		t.Fatal(err)
	}
	settle(ledger.Outcome{State: ledger.Accepted, MessageID: "01JRESENT"})

	code, out, errOut := herald(t, env, "run", "show", "--json", runID)
	var rep report.Run
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("run show: %d %s %s", code, out, errOut)
	}
	if rep.ResentUnknown != 1 || rep.ResendWaiting != 0 || rep.Status != "completed" || rep.States["accepted"] != 1 {
		t.Fatalf("run show: %+v", rep)
	}
	code, out, errOut = herald(t, env, "recipient", "explain", "--json", runID, rcpt)
	var x report.Explanation
	if code != 0 || json.Unmarshal([]byte(out), &x) != nil {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	var outcomes []string
	for _, h := range x.History {
		outcomes = append(outcomes, h.Outcome)
	}
	if strings.Join(outcomes, ",") != "unknown,resend,accepted" || x.Attempts != 2 {
		t.Fatalf("explain: attempts %d, history %v; want 2 attempts, unknown, resend, accepted", x.Attempts, outcomes)
	}
	code, out, _ = herald(t, env, "recipient", "explain", runID, rcpt)
	if code != 0 || !strings.Contains(out, "attempt 1: resend HTTP_500") {
		t.Fatalf("explain text:\n%s", out)
	}
}
