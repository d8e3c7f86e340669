package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// run repair says what it would do and changes nothing; --apply repairs and is audited;
// --json says the same for scripts; a second look finds nothing; a run that does not exist
// is an error naming it.
func TestRunRepair(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	runID, _ := sendWelcome(t, env)
	// A worker claimed the first recipient and died; its task was then removed by hand.
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	l := ledger.New(rdb, nil)
	run, err := l.GetRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	var a ledger.Address
	if err := l.EachEntry(ctx, run.ID, func(rcpt string, bucket int, _ ledger.Entry) error {
		if a.Recipient == "" {
			a = ledger.Address{Run: run.ID, Bucket: bucket, Recipient: rcpt}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Claim(ctx, a, run.Delivery); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	id, err := l.TaskID(ctx, run.ID, a.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, rkeys.AsynqTask(run.Queue, id)).Err(); err != nil {
		t.Fatal(err)
	}
	masked := logx.Phone(a.Recipient)

	code, out, errOut := herald(t, env, "run", "repair", run.ID)
	if code != 0 || !strings.Contains(out, "would repair") || !strings.Contains(out, "stranded_claim          1") ||
		!strings.Contains(out, "e.g. "+masked) || strings.Contains(out, a.Recipient) || !strings.Contains(out, "--apply repairs it") {
		t.Fatalf("run repair: %d\n%s%s", code, out, errOut)
	}
	if e, _, _ := l.Entry(ctx, a); e.State != ledger.Submitting {
		t.Fatalf("after the look: %s, want submitting", e.State)
	}

	code, out, errOut = herald(t, env, "run", "repair", run.ID, "--apply", "--json", "--actor", "ana", "--reason", "task deleted by hand")
	var res struct {
		Run      string
		Applied  bool
		Findings []struct {
			Kind            string
			Found, Repaired int
			Samples         []string
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Applied || len(res.Findings) != 1 ||
		res.Findings[0].Kind != "stranded_claim" || res.Findings[0].Repaired != 1 || res.Findings[0].Samples[0] != masked {
		t.Fatalf("run repair --apply --json: %d\n%s%s", code, out, errOut)
	}
	if e, _, _ := l.Entry(ctx, a); e.State != ledger.Unknown || e.Code != ledger.CodeTaskDeleted {
		t.Fatalf("after the repair: %+v, want unknown(%s)", e, ledger.CodeTaskDeleted)
	}
	code, out, _ = herald(t, env, "audit", "ls")
	if code != 0 || !strings.Contains(out, "run repair") || !strings.Contains(out, "stranded_claim 1") {
		t.Fatalf("audit ls: %d\n%s", code, out)
	}

	code, out, errOut = herald(t, env, "run", "repair", run.ID, "--apply")
	if code != 0 || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("second run repair --apply: %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = herald(t, env, "run", "repair", "no-such-run")
	if code != 1 || !strings.Contains(errOut, `no run "no-such-run"`) {
		t.Fatalf("run repair of no run: %d %s", code, errOut)
	}
}
