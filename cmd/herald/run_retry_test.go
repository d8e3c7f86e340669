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
)

// retryAfterAudienceChange sends a five-recipient campaign, fails every recipient with
// ERROR_CODE_UNSPECIFIED, then changes the audience file as an operator might: one row gone,
// a duplicate row of another added. It returns what `run retry --code ERROR_CODE_UNSPECIFIED`
// then prints, with args added.
func retryAfterAudienceChange(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	m, env := miniEnv(t)
	dir := t.TempDir()
	const yaml = "id: welcome\nsender: \"+14155550100\"\ntemplate: {name: welcome_v2, language: en, category: utility}\n" +
		"parameters: {body_1: \"{{ .first_name }}\", body_2: Pro, button_1_url: acc}\n" +
		"audience: {file: audience.csv, phone: phone, default_region: US}\n"
	campaign := filepath.Join(dir, "welcome.yaml")
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("welcome.yaml", yaml)
	write("audience.csv", "first_name,phone\nana,+14155552671\nbo,+14155552672\ncy,+14155553001\ndee,+14155552674\neve,+14155552675\n")
	code, out, errOut := herald(t, env, "campaign", "send", "--json", campaign)
	var started struct{ Run string }
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("campaign send: %d %q %s", code, out, errOut)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	l := ledger.New(rdb, nil)
	var addrs []ledger.Address
	if err := l.EachEntry(ctx, started.Run, func(recipient string, bucket int, _ ledger.Entry) error {
		addrs = append(addrs, ledger.Address{Run: started.Run, Bucket: bucket, Recipient: recipient})
		return nil
	}); err != nil || len(addrs) != 5 {
		t.Fatalf("%d entries, %v; want 5", len(addrs), err)
	}
	for _, a := range addrs {
		c, err := l.Claim(ctx, a, ledger.AtMostOnce)
		if err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("claim: %+v, %v", c, err)
		}
		if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Failed, Code: "ERROR_CODE_UNSPECIFIED", Attempt: c.Attempts}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := l.GetRun(ctx, started.Run); err != nil || r.Status != ledger.RunCompleted {
		t.Fatalf("parent %s, %v; want completed", r.Status, err)
	}
	// ...3001 leaves the audience; ...2674 gets a second row.
	write("audience.csv", "first_name,phone\nana,+14155552671\nbo,+14155552672\ndee,+14155552674\neve,+14155552675\ndee,+14155552674\n")
	code, out, errOut = herald(t, env, append([]string{"run", "retry", started.Run, "--code", "ERROR_CODE_UNSPECIFIED"}, args...)...)
	if code != 0 {
		t.Fatalf("run retry: exit %d %q %s", code, out, errOut)
	}
	return out, errOut
}

// run retry notes the picked recipients that left the audience file even when a duplicate
// row of another picked recipient makes up the row count; --json counts recipients, not rows.
func TestRunRetryNotesRecipientsGoneDespiteADuplicateRow(t *testing.T) {
	t.Parallel()
	t.Run("Text", func(t *testing.T) {
		t.Parallel()
		out, _ := retryAfterAudienceChange(t)
		if !strings.Contains(out, "retries 4 recipients") || !strings.Contains(out, "(1 picked recipients are no longer in the audience file)") {
			t.Fatalf("run retry printed %q; want 4 recipients retried and 1 no longer in the audience file", out)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		out, _ := retryAfterAudienceChange(t, "--json")
		var res struct {
			Recipients int `json:"recipients"`
			Planned    int `json:"planned"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Recipients != 4 || res.Planned != 4 {
			t.Fatalf("run retry --json printed %q (%v); want recipients 4, planned 4", out, err)
		}
	})
}

// run retry that picks nobody names the filter it applied, the default --class transient
// included, and what would pick more. Before, it said only "no recipients matching the
// filter", when the user had given no filter at all.
func TestRunRetryNothingNamesTheFilter(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	welcome, _ := filepath.Abs(filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	l := ledger.New(rdb, nil)
	if err := l.CreateRun(ctx, ledger.Run{ID: "p", Campaign: "welcome", Buckets: 1, Template: "welcome_v2", Language: "en",
		Definition: welcome, Sender: "+14155550100", Queue: "herald:utility"}); err != nil {
		t.Fatal(err)
	}
	// Its one recipient failed permanently: not a transient failure.
	addr := ledger.Address{Run: "p", Bucket: 0, Recipient: "+14155552671"}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "p", From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: addr.Recipient, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, addr, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, addr, ledger.Outcome{State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.FinishExpansion(ctx, "p", 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"nothing to retry (filter: --class transient (the default)); --class any takes every failure; --include-unknown also "}},
		{[]string{"--class", "throttle", "--include-unknown"}, []string{"(filter: --class throttle --include-unknown); --class any takes every failure; herald run show p "}},
		{[]string{"--code", "A,B"}, []string{"(filter: --code A,B); --class any takes every failure"}},
	} {
		code, _, errOut := herald(t, env, append([]string{"run", "retry", "p"}, tc.args...)...)
		for _, w := range tc.want {
			if code != exitError || !strings.Contains(errOut, w) {
				t.Errorf("run retry p %v: exit %d, stderr %q; want %q", tc.args, code, errOut, w)
			}
		}
	}
	// --class any takes the permanent failure.
	if code, out, errOut := herald(t, env, "run", "retry", "p", "--class", "any"); code != 0 || !strings.Contains(out, "retries 1 recipient of p:") {
		t.Fatalf("--class any: exit %d\n%s\n%s", code, out, errOut)
	}
}
