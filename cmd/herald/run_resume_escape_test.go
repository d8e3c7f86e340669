package main

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
)

// run resume names the follow-up runs it released with their pause reasons, which other
// operators wrote: escaped, so a reason cannot clear the screen or print a line that looks
// like Herald's own.
func TestRunResumeEscapesPauseReasons(t *testing.T) {
	m, env := miniEnv(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := ledger.New(rdb, nil)
	if err := l.CreateRun(ctx, ledger.Run{ID: "promo-1", Campaign: "promo", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	fid := ledger.FollowupRun("promo-1", "yes")
	if err := l.CreateRun(ctx, ledger.Run{ID: fid, Campaign: "promo", Delivery: ledger.AtMostOnce, Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	reason := "x\x1b[2J\x1b[H\nherald: all runs completed, nothing paused"
	if code, _, errOut := herald(t, env, "run", "pause", fid, "--actor", "mallory", "--reason", reason); code != 0 {
		t.Fatalf("pause %s: %s", fid, errOut)
	}
	if code, _, errOut := herald(t, env, "run", "pause", "promo-1", "--actor", "ana"); code != 0 {
		t.Fatalf("pause promo-1: %s", errOut)
	}
	code, out, errOut := herald(t, env, "run", "resume", "promo-1", "--actor", "bo")
	if code != 0 || !strings.Contains(out, "yes") {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
	}
	if strings.ContainsRune(out, '\x1b') || strings.Contains(out, "\nherald:") {
		t.Errorf("resume printed a pause reason raw: %q", out)
	}
}
