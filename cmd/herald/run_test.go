package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// TestRunLsCountsAcceptedOnwards moves a run's recipients past accepted (sent, delivered,
// read, as delivery webhooks do) and requires run ls to keep counting them as accepted, in
// the table and in --json alike, with the delivered ones in their own column.
func TestRunLsCountsAcceptedOnwards(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	code, out, errOut := herald(t, env, "campaign", "send", "--json", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	var started struct {
		Run     string `json:"run"`
		Planned int    `json:"planned"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil || started.Planned != 6 {
		t.Fatalf("campaign send: %d %q %s", code, out, errOut)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	l := ledger.New(rdb, nil)
	type addr struct {
		bucket    int
		recipient string
	}
	var queued []addr
	err := l.EachEntry(ctx, started.Run, func(recipient string, bucket int, e ledger.Entry) error {
		if e.State == ledger.Queued {
			queued = append(queued, addr{bucket, recipient})
		}
		return nil
	})
	if err != nil || len(queued) != 6 {
		t.Fatalf("%d queued entries, %v; want 6", len(queued), err)
	}
	// Six accepted; then one goes on to sent, two to delivered and one to read.
	later := []ledger.State{ledger.Sent, ledger.Delivered, ledger.Delivered, ledger.Read}
	for i, a := range queued {
		if _, err := l.Claim(ctx, ledger.Address{Run: started.Run, Bucket: a.bucket, Recipient: a.recipient}, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("m-%d", i)
		if _, err := l.Finish(ctx, ledger.Address{Run: started.Run, Bucket: a.bucket, Recipient: a.recipient}, ledger.Outcome{State: ledger.Accepted, MessageID: id, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		if i < len(later) {
			v, _, err := l.ApplyDelivery(ctx, ledger.DeliveryEvent{Address: ledger.Address{Run: started.Run, Bucket: a.bucket, Recipient: a.recipient}, State: later[i], MessageID: id})
			if err != nil || v != ledger.DeliveryApplied {
				t.Fatalf("delivery event %d: %s, %v", i, v, err)
			}
		}
	}

	code, out, errOut = herald(t, env, "run", "ls", "--json")
	var runs []report.Run
	if code != 0 || json.Unmarshal([]byte(out), &runs) != nil || len(runs) != 1 {
		t.Fatalf("run ls --json: %d %q %s", code, out, errOut)
	}
	rep := runs[0]
	if rep.Accepted != 6 || rep.Delivered != 3 || rep.Done != rep.Sum || rep.States["accepted"] != 2 {
		t.Fatalf("run ls --json: accepted %d, delivered %d, done %d of %d, states %v; want 6, 3 and all done",
			rep.Accepted, rep.Delivered, rep.Done, rep.Sum, rep.States)
	}

	code, out, errOut = herald(t, env, "run", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("run ls: %d %q %s", code, out, errOut)
	}
	head, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(head) != len(row) {
		t.Fatalf("run ls: header %q, row %q", lines[0], lines[1])
	}
	col := map[string]string{}
	for i, h := range head {
		col[h] = row[i]
	}
	want := map[string]string{"RUN": started.Run, "DONE": fmt.Sprint(rep.Sum), "ACCEPTED": "6", "DELIVERED": "3", "FAILED": "0"}
	for h, v := range want {
		if col[h] != v {
			t.Fatalf("run ls: %s is %q, want %q:\n%s", h, col[h], v, out)
		}
	}
}

// run show --watch of a run that does not exist says so, draws nothing, and exits 1.
func TestWatchOfNoRun(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	code, out, errOut := herald(t, env, "run", "show", "--watch", "--interval", "50ms", "no-such-run")
	if code != exitError || out != "" || !strings.Contains(errOut, `no run "no-such-run"`) {
		t.Fatalf("watch of no run: %d %q %q", code, out, errOut)
	}
}

// A follow-up run never ends, so run show --watch of one is refused as wrong usage (exit 2)
// before anything is drawn, where it used to watch forever; run show without --watch shows it
// as the run and rule it follows, with its entries, and run retry refuses it as a follow-up.
func TestFollowupRunShowWatchAndRetry(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	l := ledger.New(rdb, nil)
	const run = "promo-20260301T120000Z-a1b2c3"
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "promo", Delivery: ledger.AtMostOnce, Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: ledger.ParentRun{ID: run, Campaign: "promo", Buckets: 1},
		Rule: "yes", Recipient: "+15550000001", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	fu := ledger.FollowupRun(run, "yes")
	code, out, errOut := herald(t, env, "run", "show", fu, "--watch", "--interval", "5ms")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "never ends") || !strings.Contains(errOut, "without --watch") {
		t.Fatalf("watch of follow-up run: %d %q %q; want exit 2 saying it never ends", code, out, errOut)
	}
	code, out, errOut = herald(t, env, "run", "show", fu)
	if code != 0 || !strings.Contains(out, "Follows   "+run+" (on_reply rule yes)") || !strings.Contains(out, "follow-ups: 1 entry (one per reply") ||
		strings.Contains(out, "Retries") || strings.Contains(out, "audience:") {
		t.Fatalf("run show of follow-up run: %d %s %s", code, out, errOut)
	}
	code, _, errOut = herald(t, env, "run", "retry", fu)
	if code != exitError || !strings.Contains(errOut, "follow-up runs cannot be retried") {
		t.Fatalf("retry of follow-up run: %d %q", code, errOut)
	}
}
