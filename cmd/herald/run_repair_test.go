package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// run repair says what it would do and changes nothing; --apply repairs and is audited;
// --json says the same for scripts; a second look finds nothing; a run that does not exist
// is an error naming it.
func TestRunRepair(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	dir := t.TempDir()
	yaml := "id: welcome\nsender: \"+14155550100\"\ntemplate: {name: welcome_v2, language: en, category: utility}\n" +
		"parameters: {body_1: \"{{ .first_name }}\", body_2: Pro, button_1_url: acc}\n" +
		"audience: {file: audience.csv, phone: phone, default_region: US}\n"
	for name, text := range map[string]string{"welcome.yaml": yaml, "audience.csv": "first_name,phone\nana,+14155552671\nbo,+14155552672\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := herald(t, env, "campaign", "send", "--json", filepath.Join(dir, "welcome.yaml"))
	var started struct{ Run string }
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("campaign send: %d %q %s", code, out, errOut)
	}
	// A worker claimed +14155552671 and died; its task was then removed by hand.
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	l := ledger.New(rdb, nil)
	run, err := l.GetRun(ctx, started.Run)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := l.Claim(ctx, ledger.AddressIn(run.ID, "+14155552671", run.Buckets), run.Delivery); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	id, err := l.TaskID(ctx, run.ID, "+14155552671")
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, rkeys.AsynqTask(run.Queue, id)).Err(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = herald(t, env, "run", "repair", run.ID)
	if code != 0 || !strings.Contains(out, "would repair") || !strings.Contains(out, "stranded_claim     1") ||
		!strings.Contains(out, "e.g. ********2671") || strings.Contains(out, "+14155552671") || !strings.Contains(out, "--apply repairs it") {
		t.Fatalf("run repair: %d\n%s%s", code, out, errOut)
	}
	if e, _, _ := l.Entry(ctx, ledger.AddressIn(run.ID, "+14155552671", run.Buckets)); e.State != ledger.Submitting {
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
		res.Findings[0].Kind != "stranded_claim" || res.Findings[0].Repaired != 1 || res.Findings[0].Samples[0] != "********2671" {
		t.Fatalf("run repair --apply --json: %d\n%s%s", code, out, errOut)
	}
	if e, _, _ := l.Entry(ctx, ledger.AddressIn(run.ID, "+14155552671", run.Buckets)); e.State != ledger.Unknown || e.Code != ledger.CodeTaskDeleted {
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
