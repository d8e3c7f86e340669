package audit_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/rkeys"
)

func newRedis(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return mr, rdb
}

// A record keeps an action with its actor and reason, and a failed one with what went wrong,
// its digits masked; the error of a failed action comes back with it.
func TestRecordKeepsActions(t *testing.T) {
	ctx := context.Background()
	_, rdb := newRedis(t)
	rec := audit.Record{Redis: rdb, Actor: "ana", Reason: "bad template"}
	if err := rec.Keep(ctx, "run pause", "r1", ""); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("task of +14155550123 not found")
	if err := rec.Failed(ctx, "task delete", "q/t1", cause); !errors.Is(err, cause) {
		t.Fatalf("Failed = %v, want the action's error", err)
	}
	es, err := audit.List(ctx, rdb, 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("List = %v, %v; want 2 entries", es, err)
	}
	failed, kept := es[0], es[1]
	if kept.Actor != "ana" || kept.Action != "run pause" || kept.Target != "r1" || kept.Reason != "bad template" || kept.Time.IsZero() {
		t.Errorf("kept entry %+v", kept)
	}
	if failed.Action != "task delete" || failed.Target != "q/t1" || !strings.HasPrefix(failed.Detail, "failed: ") ||
		strings.Contains(failed.Detail, "4155550123") || !strings.Contains(failed.Detail, "0123") {
		t.Errorf("failed entry %+v: want the error with the number masked to its last 4 digits", failed)
	}
}

// An action whose entry cannot be written says it was done all the same; a record with no
// log refuses rather than letting the action go unaudited.
func TestRecordThatCannotWrite(t *testing.T) {
	ctx := context.Background()
	// A Redis that cannot be reached. Not a closed miniredis: its port, once free, may be taken
	// by another test process's server, and the write then went through (seen once in CI).
	rdb := redis.NewClient(&redis.Options{MaxRetries: -1, Dialer: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("connection refused")
	}})
	t.Cleanup(func() { rdb.Close() })
	err := audit.Record{Redis: rdb}.Keep(ctx, "queue pause", "herald:default", "")
	if err == nil || !strings.Contains(err.Error(), "queue pause herald:default was done, but not kept in the audit log") {
		t.Errorf("Keep on a closed Redis = %v", err)
	}
	if err := (audit.Record{}).Keep(ctx, "queue pause", "q", ""); err == nil {
		t.Error("Keep with no log: no error")
	}
}

// Why is the actor, with the reason when there is one; no actor is the OS user.
func TestRecordWhy(t *testing.T) {
	if got := (audit.Record{Actor: "ana", Reason: "spam"}).Why(); got != "ana: spam" {
		t.Errorf("Why = %q", got)
	}
	if got := (audit.Record{Actor: "ana"}).Why(); got != "ana" {
		t.Errorf("Why = %q", got)
	}
	if got := (audit.Record{}).Why(); got == "" || got != audit.Operator("") {
		t.Errorf("Why with no actor = %q, want the OS user %q", got, audit.Operator(""))
	}
}

// A count below 1 is refused: LRANGE read 0 as every entry and -1 as all but the oldest.
func TestListRefusesACountBelowOne(t *testing.T) {
	ctx := context.Background()
	_, rdb := newRedis(t)
	rec := audit.Record{Redis: rdb, Actor: "ana"}
	for _, target := range []string{"r1", "r2", "r3"} {
		if err := rec.Keep(ctx, "run pause", target, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{0, -1} {
		if es, err := audit.List(ctx, rdb, n); err == nil || !strings.Contains(err.Error(), "want 1 or more") {
			t.Errorf("List(%d) = %d entries, %v; want it refused", n, len(es), err)
		}
	}
	if es, err := audit.List(ctx, rdb, 1); err != nil || len(es) != 1 || es[0].Target != "r3" {
		t.Fatalf("List(1) = %+v, %v; want the newest entry", es, err)
	}
}

// A number an operator types into --reason or --actor is never kept in full: the log's entry
// and the run's note (Why) hold it masked to its last 4 digits. Other characters are kept as
// given (the commands escape them when they print).
func TestEntriesKeepNoNumber(t *testing.T) {
	ctx := context.Background()
	_, rdb := newRedis(t)
	rec := audit.Record{Redis: rdb, Actor: "ana +14155550123", Reason: "customer +1 415 555 2671 complained\nsecond line"}
	if err := rec.Keep(ctx, "run pause", "r1", "called 020 7946 0958"); err != nil {
		t.Fatal(err)
	}
	raw, err := rdb.LRange(ctx, rkeys.Audit(), 0, -1).Result()
	if err != nil || len(raw) != 1 {
		t.Fatalf("audit log %q, %v", raw, err)
	}
	for _, full := range []string{"4155550123", "415 555 2671", "7946 0958"} {
		if strings.Contains(raw[0], full) {
			t.Errorf("the stored entry holds %s: %s", full, raw[0])
		}
	}
	es, err := audit.List(ctx, rdb, 1)
	if err != nil || len(es) != 1 || es[0].Actor != "ana ********0123" || es[0].Reason != "customer ***********2671 complained\nsecond line" ||
		es[0].Detail != "called *********0958" || es[0].Target != "r1" {
		t.Fatalf("List = %+v, %v", es, err)
	}
	if got := rec.Why(); got != "ana ********0123: customer ***********2671 complained\nsecond line" {
		t.Errorf("Why = %q", got)
	}
	// An entry kept before entries were masked is listed masked.
	rdb.LPush(ctx, rkeys.Audit(), `{"actor":"bo","action":"run pause","target":"r2","reason":"+14155550199 again"}`)
	if es, err := audit.List(ctx, rdb, 1); err != nil || len(es) != 1 || es[0].Reason != "********0199 again" {
		t.Fatalf("List of an older entry = %+v, %v", es, err)
	}
}
