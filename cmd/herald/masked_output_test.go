package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// Phone numbers in the CLI's output are masked to their last 4 digits unless --reveal, and
// text that came from customers or operators cannot write control characters to the terminal.

// audit ls prints --reason and --actor escaped: a newline cannot forge an entry, an escape
// sequence cannot hide the actor; a number in the reason is masked in the log itself (text
// and JSON), and in run show's pause reason, which keeps it too.
func TestAuditLsEscapesAndMasksReasons(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	if err := ledger.New(rdb, nil).CreateRun(ctx, ledger.Run{ID: "promo-1", Campaign: "promo", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	const forged = "2026-01-01T00:00:00Z  root  run cancel  promo-1  all clear"
	reason := "customer +1 415 555 2671 complained\n" + forged
	if code, _, errOut := herald(t, env, "run", "pause", "promo-1", "--actor", "\x1b[2K\rmallory", "--reason", reason); code != 0 {
		t.Fatalf("run pause: %s", errOut)
	}
	code, out, errOut := herald(t, env, "audit", "ls")
	if code != 0 {
		t.Fatalf("audit ls: %s", errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || strings.ContainsAny(out, "\x1b\r") || strings.Contains(out, "415 555 2671") ||
		!strings.Contains(lines[1], `\x1b[2K\rmallory`) || !strings.Contains(lines[1], `customer ***********2671 complained\n`+forged) {
		t.Fatalf("audit ls, want one escaped entry with the number masked:\n%q", out)
	}
	var es []audit.Entry
	if code, out, _ := herald(t, env, "audit", "ls", "--json"); code != 0 || json.Unmarshal([]byte(out), &es) != nil || len(es) != 1 ||
		es[0].Reason != "customer ***********2671 complained\n"+forged || es[0].Actor != "\x1b[2K\rmallory" {
		t.Fatalf("audit ls --json: %s", out)
	}
	code, out, _ = herald(t, env, "run", "show", "promo-1")
	if code != 0 || strings.ContainsAny(out, "\x1b\r") || strings.Contains(out, "415 555 2671") ||
		!strings.Contains(out, `(paused by \x1b[2K\rmallory: customer ***********2671 complained\n`+forged+")") {
		t.Fatalf("run show:\n%q", out)
	}
}

// run show masks the numbers in the labels of the buttons customers tapped, as a signed
// webhook gave them, and escapes their control characters; --json masks them too, and
// --reveal shows them in full.
func TestRunShowMasksButtonLabels(t *testing.T) {
	t.Parallel()
	env, l := webhookEnv(t)
	ctx := context.Background()
	const runID, to = "hooks-1", "+14155550101"
	if err := l.CreateRun(ctx, ledger.Run{ID: runID, Campaign: "spring", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: runID, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: to, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	id := ulidAt(time.Now()) + "AAAAAAAAAAAAAAAA"
	a := ledger.Address{Run: runID, Recipient: to}
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: id}); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(sctx, []string{"webhooks", "--listen", addr}, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	post := func(b []byte) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(b))
		req.Header.Set(webhooks.SignatureHeader, webhooks.Sign(b, webhookSecret))
		resp, err := testHTTP.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 10*time.Second, "the receiver to listen", func() bool { return post([]byte("{}")) == http.StatusOK })
	for i, label := range []string{"Yes, show me +14155466010", "red\x1b[31mX\n\tforged 99"} {
		reply := map[string]any{"sender": map[string]string{"id": to}, "context": map[string]string{"replyToId": id},
			"buttonResponse": map[string]string{"text": label, "payload": "PAY-+14155466010"}, "timestamp": fmt.Sprint(time.Now().Unix() + int64(i))}
		b, _ := json.Marshal(reply)
		if code := post(b); code != http.StatusOK {
			t.Fatalf("reply %d: %d", i, code)
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("webhooks exited %d", code)
	}

	code, out, errOut := herald(t, env, "run", "show", runID)
	if code != 0 || strings.Contains(out, "4155466010") || strings.ContainsAny(out, "\x1b\t") ||
		!strings.Contains(out, "Yes, show me ********6010  1\n") || !strings.Contains(out, `red\x1b[31mX\n\tforged 99  1`+"\n") {
		t.Fatalf("run show (exit %d %s):\n%s", code, errOut, out)
	}
	var rep report.Run
	if code, out, _ := herald(t, env, "run", "show", "--json", runID); code != 0 || json.Unmarshal([]byte(out), &rep) != nil ||
		rep.Delivery == nil || rep.Delivery.ButtonReplies["Yes, show me ********6010"] != 1 || strings.Contains(out, "4155466010") {
		t.Fatalf("run show --json:\n%s", out)
	}
	if code, out, _ := herald(t, env, "run", "show", "--reveal", runID); code != 0 || !strings.Contains(out, "Yes, show me +14155466010  1\n") ||
		strings.ContainsAny(out, "\x1b\t") {
		t.Fatalf("run show --reveal:\n%s", out)
	}
}

// The business's sender number is masked wherever it is shown, unless --reveal: limits show's
// SENDER table and its JSON, run show's note that the sender is slowed, campaign plan's header,
// samples and follow-ups (whose made-up recipient is masked as the others). campaign plan
// --json writes the request paths as its text does, with {businessId}.
func TestSenderNumberMasked(t *testing.T) {
	t.Parallel()
	rdb, env, cfg := limitsEnv(t)
	ctx := context.Background()
	now := time.Now()
	const sender = "+14155550100"
	rdb.HSet(ctx, "herald:limit:{biz}:backoff:"+sender, "f", "0.5", "at", now.Add(time.Minute).UnixMilli(),
		"dec", now.Add(-time.Second).UnixMilli(), "s", "0.25")
	if err := ledger.New(rdb, nil).CreateRun(ctx, ledger.Run{ID: "r-1", Campaign: "spring-promo", Buckets: 1, Sender: sender}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"limits", "show"}, {"limits", "show", "--json"}, {"run", "show", "r-1"}, {"run", "show", "--json", "r-1"},
		{"campaign", "plan", filepath.Join("..", "..", "configs", "campaigns", "spring-promo-replies.yaml")},
		{"campaign", "plan", "--json", filepath.Join("..", "..", "configs", "campaigns", "spring-promo-replies.yaml")},
	} {
		code, out, errOut := herald(t, env, append([]string{"--config", cfg}, args...)...)
		if code != 0 || strings.Contains(out, "4155550100") || strings.Contains(out, conversation.FollowupPlaceholder[2:]) || !strings.Contains(out, "********0100") {
			t.Errorf("%v (exit %d %s): a number in full, or none masked:\n%s", args, code, errOut, out)
		}
		if strings.Contains(out, "%7B") {
			t.Errorf("%v: an escaped path:\n%s", args, out)
		}
		code, out, errOut = herald(t, env, append([]string{"--config", cfg}, append(args, "--reveal")...)...)
		if code != 0 || !strings.Contains(out, sender) {
			t.Errorf("%v --reveal (exit %d %s): the sender is not shown in full:\n%s", args, code, errOut, out)
		}
	}
	var p planOutput
	_, out, _ := herald(t, env, "--config", cfg, "campaign", "plan", "--json", filepath.Join("..", "..", "configs", "campaigns", "spring-promo-replies.yaml"))
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Followups) < 2 || len(p.Followups[1].Requests) == 0 ||
		p.Followups[1].Requests[0].Path != "/v1/businesses/{businessId}/send/messages" {
		t.Fatalf("campaign plan --json follow-ups (%v):\n%s", err, out)
	}
}

// run show counts the archived send tasks whose recipients are still queued: a task archived
// after a permanent failure, whose recipient is failed in the ledger (task show: Ledger
// failed), holds nothing and is not counted.
func TestRunShowCountsOnlyArchivedTasksThatHoldTheRun(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	runID, _ := sendWelcome(t, env)
	var tasks []taskView
	if code, out, errOut := herald(t, env, "task", "ls", welcomeQueue, "--json", "--reveal"); code != 0 || json.Unmarshal([]byte(out), &tasks) != nil || len(tasks) < 2 {
		t.Fatalf("task ls: %d %s %s", code, out, errOut)
	}
	// The worker failed the first recipient for good; asynq archived its task. An operator
	// archived the second, whose recipient stays queued.
	l := ledger.New(rdb, nil)
	r, err := l.GetRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	failed := ledger.AddressIn(runID, tasks[0].Recipient, r.Buckets)
	if _, err := l.Claim(ctx, failed, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, failed, ledger.Outcome{State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}); err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks[:2] {
		if code, _, errOut := herald(t, env, "task", "archive", welcomeQueue, task.ID); code != 0 {
			t.Fatalf("task archive: %s", errOut)
		}
	}
	var v taskView
	if code, out, _ := herald(t, env, "task", "show", welcomeQueue, tasks[0].ID, "--json"); code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Ledger != "failed" {
		t.Fatalf("task show: %s", out)
	}
	code, out, errOut := herald(t, env, "run", "show", runID)
	if code != 0 || !strings.Contains(out, "Archived  1 send task whose recipient is still queued") {
		t.Fatalf("run show (exit %d %s):\n%s", code, errOut, out)
	}
	var rep report.Run
	if code, out, _ := herald(t, env, "run", "show", "--json", runID); code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.ArchivedTasks != 1 {
		t.Fatalf("run show --json: %s", out)
	}
}
